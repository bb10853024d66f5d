//! The local executor (`strom transform`): streams a CSV input through a transform process in
//! parallel (rayon) and writes the rows, in input order, to a CSV output. Memory stays bounded:
//! a few chunks of records are in flight at a time, whatever the input's size.

use std::io::Write;
use std::time::Instant;

use rayon::prelude::*;

use super::DataError;
use super::csv::{CsvSource, RawRecord};
use super::schema::Value;
use super::transform::{Compiled, Report, TransformProcess};
use crate::storage::Location;

/// Records per chunk handed to one thread.
const CHUNK: usize = 8192;

#[derive(Clone, Debug, serde::Serialize)]
pub struct TransformRun {
    pub report: Report,
    pub seconds: f64,
    pub rows_per_sec: f64,
    pub columns: Vec<String>,
    /// Peak resident memory of this process, in MB.
    pub peak_rss_mb: f64,
    /// Passes over the input spent fitting the process.
    pub fit_passes: usize,
}

/// Peak resident set size of this process so far, in MB.
pub fn peak_rss_mb() -> f64 {
    // SAFETY: getrusage fills the struct we pass it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss as f64 / 1024.0
}

/// Writes one value as a CSV field's text (shortest round-trip form for floats).
fn push_value(out: &mut Vec<u8>, v: &Value, ints: &mut itoa::Buffer, floats: &mut ryu::Buffer) {
    match v {
        Value::Missing => {}
        Value::Int(i) => out.extend_from_slice(ints.format(*i).as_bytes()),
        Value::Float(f) if f.is_nan() => out.extend_from_slice(b"NaN"),
        Value::Float(f) if f.is_infinite() => out.extend_from_slice(if *f > 0.0 { b"inf" } else { b"-inf" }),
        Value::Float(f) => out.extend_from_slice(floats.format(*f).as_bytes()),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Time(ms) => match jiff::Timestamp::from_millisecond(*ms) {
            Ok(t) => out.extend_from_slice(t.to_string().as_bytes()),
            Err(_) => out.extend_from_slice(ints.format(*ms).as_bytes()),
        },
        Value::Str(s) => {
            if s.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
                out.push(b'"');
                for b in s.bytes() {
                    if b == b'"' {
                        out.push(b'"');
                    }
                    out.push(b);
                }
                out.push(b'"');
            } else {
                out.extend_from_slice(s.as_bytes());
            }
        }
    }
}

/// Transforms a chunk into CSV text.
fn run_chunk(
    compiled: &Compiled,
    source: &CsvSource,
    chunk: &[RawRecord],
) -> Result<(Vec<u8>, Report), DataError> {
    let mut out = Vec::with_capacity(chunk.len() * 64);
    let mut report = Report::default();
    let (mut ints, mut floats) = (itoa::Buffer::new(), ryu::Buffer::new());
    let mut file_name = (u32::MAX, String::new());
    for rec in chunk {
        if file_name.0 != rec.file {
            file_name = (rec.file, source.file_name(rec.file));
        }
        if let Some(row) = compiled.record(rec, &file_name.1, &mut report)? {
            for (i, v) in row.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_value(&mut out, v, &mut ints, &mut floats);
            }
            out.push(b'\n');
        }
    }
    Ok((out, report))
}

/// Fits the statistics a process still needs on `source`; returns the passes it took.
pub fn fit(source: &CsvSource, process: &mut TransformProcess) -> Result<usize, DataError> {
    let mut passes = 0;
    if process.needs_fit() {
        process.fit(
            || {
                passes += 1;
                source.records()
            },
            &|i| source.file_name(i),
        )?;
    }
    Ok(passes)
}

/// Fits the process if it needs it (on this input), then writes the transformed rows.
pub fn transform(
    source: &CsvSource,
    process: &mut TransformProcess,
    output: &Location,
) -> Result<TransformRun, DataError> {
    let started = Instant::now();
    let fit_passes = fit(source, process)?;
    let compiled = process.compile()?;
    let columns: Vec<String> = compiled.output.columns.iter().map(|c| c.name.clone()).collect();
    let mut sink = output.create()?;
    let io = |e: std::io::Error| DataError::Format { file: output.to_string(), message: e.to_string() };
    sink.write_all(columns.join(",").as_bytes()).and_then(|_| sink.write_all(b"\n")).map_err(io)?;
    let threads = rayon::current_num_threads().max(1);
    let mut report = Report::default();
    let mut records = source.records();
    loop {
        // Read a round of chunks, transform them in parallel, write them in order.
        let mut round: Vec<Vec<RawRecord>> = Vec::with_capacity(threads * 2);
        'read: for _ in 0..threads * 2 {
            let mut chunk = Vec::with_capacity(CHUNK);
            while chunk.len() < CHUNK {
                match records.next() {
                    Some(r) => chunk.push(r?),
                    None => {
                        if !chunk.is_empty() {
                            round.push(chunk);
                        }
                        break 'read;
                    }
                }
            }
            round.push(chunk);
        }
        if round.is_empty() {
            break;
        }
        let done: Vec<Result<(Vec<u8>, Report), DataError>> =
            round.par_iter().map(|c| run_chunk(&compiled, source, c)).collect();
        for d in done {
            let (bytes, r) = d?;
            report.add(&r);
            sink.write_all(&bytes).map_err(io)?;
        }
    }
    sink.commit()?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(TransformRun {
        rows_per_sec: report.rows_in as f64 / seconds.max(1e-9),
        report,
        seconds,
        columns,
        peak_rss_mb: peak_rss_mb(),
        fit_passes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::csv::CsvOptions;

    #[test]
    fn values_print_as_csv() {
        let mut out = Vec::new();
        let (mut i, mut f) = (itoa::Buffer::new(), ryu::Buffer::new());
        for v in [
            Value::Int(-3),
            Value::Float(0.1),
            Value::Float(f64::NAN),
            Value::Str("a,\"b\"".into()),
            Value::Missing,
            Value::Time(0),
        ] {
            push_value(&mut out, &v, &mut i, &mut f);
            out.push(b'|');
        }
        assert_eq!(String::from_utf8(out).unwrap(), "-3|0.1|NaN|\"a,\"\"b\"\"\"||1970-01-01T00:00:00Z|");
    }

    #[test]
    fn transforms_in_order_and_leaves_nothing_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.csv");
        let mut text = String::from("x,y\n");
        for i in 0..20_000 {
            text.push_str(&format!("{i},{}\n", i % 3));
        }
        std::fs::write(&input, &text).unwrap();
        let source = CsvSource::open(&Location::local(&input), &CsvOptions::default()).unwrap();
        let mut p = TransformProcess::from_json(
            r#"{"schema":{"columns":[{"name":"x","type":"integer"},{"name":"y","type":"integer"}]},
                "steps":[{"step":"filter","remove":{"kind":"compare","column":"y","op":"eq","value":0}},
                         {"step":"normalize","column":"x","kind":"min_max"}]}"#,
            "tp",
        )
        .unwrap();
        let out = Location::local(dir.path().join("out.csv"));
        let run = transform(&source, &mut p, &out).unwrap();
        assert_eq!(run.fit_passes, 1);
        assert_eq!((run.report.rows_in, run.report.rows_out, run.report.filtered), (20_000, 13_333, 6_667));
        let got = String::from_utf8(out.read().unwrap()).unwrap();
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(lines[0], "x,y");
        // min-max is fitted on rows that survive the filter: x runs 1..=19_999 there
        assert_eq!(lines[1], "0.0,1");
        assert_eq!(lines[2], format!("{},2", ryu::Buffer::new().format(1.0 / 19_998.0)));
        assert_eq!(lines[13_333], "1.0,1");
        assert_eq!(lines.len(), 13_334, "order kept, every surviving row written");
        std::fs::write(&input, "x,y\n1,2\n3,oops\n").unwrap();
        let source = CsvSource::open(&Location::local(&input), &CsvOptions::default()).unwrap();
        let bad = Location::local(dir.path().join("bad.csv"));
        let e = transform(&source, &mut p, &bad).unwrap_err().to_string();
        assert!(e.contains("in.csv:3: column 'y': expected an integer"), "{e}");
        assert!(!bad.exists().unwrap(), "no partial output");
    }
}
