//! A job resolved once, at the edge where it enters the program (a job file, `strom train`'s
//! flags, a job submitted over the wire, the job a worker receives on joining): validated, and
//! its locations parsed. Data preparation, loading and the cluster's setup take this, so no
//! location is parsed twice and none is parsed late. It reads as the `JobSpec` it came from
//! (`Deref`), except `data`, whose locations are typed.

use std::ops::Deref;

use super::{DataSpec, JobError, JobSpec, KeyError};
use crate::storage::Location;

/// `[data]` with its locations parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedData {
    spec: DataSpec,
    /// `data.train`.
    pub train: Location,
    /// `data.test`; `None` when not given.
    pub test: Option<Location>,
    /// `data.transform`; `None` when not given.
    pub transform: Option<Location>,
}

impl ResolvedData {
    /// Parses `data`'s locations; an error names the key.
    pub fn resolve(data: DataSpec) -> Result<ResolvedData, KeyError> {
        let parse = |key: &str, value: &str| {
            Location::parse(value).map_err(|e| KeyError {
                key: key.into(),
                line: None,
                message: e.to_string(),
            })
        };
        let optional = |key: &str, value: &str| {
            if value.trim().is_empty() { Ok(None) } else { parse(key, value).map(Some) }
        };
        Ok(ResolvedData {
            train: parse("data.train", &data.train)?,
            test: optional("data.test", &data.test)?,
            transform: optional("data.transform", &data.transform)?,
            spec: data,
        })
    }

    /// The section as written.
    pub fn spec(&self) -> &DataSpec {
        &self.spec
    }
}

impl Deref for ResolvedData {
    type Target = DataSpec;
    fn deref(&self) -> &DataSpec {
        &self.spec
    }
}

/// A validated job with typed locations.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedJob {
    spec: JobSpec,
    /// `[data]`, its locations parsed (shadows the spec's `data`).
    pub data: ResolvedData,
}

impl ResolvedJob {
    /// Validates `spec` and parses its locations; every problem names its key.
    pub fn resolve(mut spec: JobSpec) -> Result<ResolvedJob, JobError> {
        spec.move_legacy_keys("the job")?;
        spec.validate().map_err(|errors| JobError::Invalid { file: None, errors })?;
        let data = ResolvedData::resolve(spec.data.clone())
            .map_err(|e| JobError::Invalid { file: None, errors: vec![e] })?;
        Ok(ResolvedJob { spec, data })
    }

    /// Parses, validates and resolves a job file's text; `file` names it in errors.
    pub fn from_toml(text: &str, file: &str) -> Result<ResolvedJob, JobError> {
        ResolvedJob::resolve(JobSpec::parse_toml(text, file)?).map_err(|e| e.in_file(file))
    }

    /// Reads, validates and resolves a job file.
    pub fn load(location: &Location) -> Result<ResolvedJob, JobError> {
        ResolvedJob::resolve(JobSpec::read(location)?).map_err(|e| e.in_file(&location.to_string()))
    }

    /// Checks that the data locations exist and are readable (the cockpit's and `Validate`'s
    /// "does this path exist"); slow for remote locations.
    pub fn check_paths(&self) -> Vec<KeyError> {
        let d = &self.data;
        let mut errors = Vec::new();
        let inputs = [("data.train", Some(&d.train)), ("data.test", d.test.as_ref())];
        for (key, loc) in inputs.into_iter().filter_map(|(k, l)| Some((k, l?))) {
            if let Err(e) = crate::data::resolve_inputs(loc, d) {
                errors.push(KeyError { key: key.into(), line: None, message: e.to_string() });
            }
        }
        if let Some(t) = &d.transform
            && let Err(e) = crate::data::transform::TransformProcess::load(t)
        {
            errors.push(KeyError { key: "data.transform".into(), line: None, message: e.to_string() });
        }
        errors
    }

    /// The job as written (what is saved, shown and sent).
    pub fn spec(&self) -> &JobSpec {
        &self.spec
    }

    pub fn into_spec(self) -> JobSpec {
        self.spec
    }
}

impl Deref for ResolvedJob {
    type Target = JobSpec;
    fn deref(&self) -> &JobSpec {
        &self.spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_parsed_once_and_typed() {
        let mut spec = JobSpec::default();
        spec.data.test = String::new();
        let job = ResolvedJob::resolve(spec.clone()).unwrap();
        assert_eq!(job.data.train, Location::parse(&spec.data.train).unwrap());
        assert_eq!(job.data.test, None);
        assert_eq!(job.data.transform, None);
        assert_eq!(job.train.epochs, spec.train.epochs, "reads as the spec");
        assert_eq!(job.data.format, spec.data.format, "and its data section");
        assert_eq!(job.spec(), &spec);
    }

    #[test]
    fn a_bad_location_names_its_key() {
        let mut spec = JobSpec::default();
        spec.data.test = "ftp://nowhere/x".into();
        let e = ResolvedJob::resolve(spec).unwrap_err().to_string();
        assert!(e.contains("data.test"), "{e}");
    }
}
