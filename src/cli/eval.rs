//! `strom eval`: evaluate a saved model on test data.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use super::parse_name;
use crate::backend::CpuBackend;
use crate::data;
use crate::engine::evaluate;
use crate::job::{DataFormat, ResolvedData};
use crate::nn::saved::{Preprocessing, SavedModel};
use crate::storage::Location;

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  strom eval --model strom-runs/fashion-mnist-demo --test builtin:fashion-mnist-demo/test"
)]
pub struct EvalArgs {
    /// Model directory written by `strom train --output`.
    #[arg(long, value_name = "DIR")]
    pub model: String,
    /// Test data [default: the model's job's data.test].
    #[arg(long, value_name = "LOC")]
    pub test: Option<String>,
    /// Data format [default: the model's job's data.format].
    #[arg(long, value_name = "idx|csv|text|sequence_csv", value_parser = parse_name::<DataFormat>)]
    pub format: Option<DataFormat>,
    /// Minibatch size for the evaluation.
    #[arg(long, default_value_t = 512)]
    pub batch_size: usize,
    /// Write the evaluation as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let dir = Location::parse(&args.model)?;
    let model = SavedModel::load(&dir).with_context(|| format!("loading model {dir}"))?;
    let mut spec = model.meta.job.data.clone();
    if let Some(f) = args.format {
        spec.format = f;
    }
    let process = match &model.meta.preprocessing {
        Preprocessing::Transform { process } => Some(process.as_ref()),
        _ => None,
    };
    // A language model's test text is read with the vocabulary saved with it (its training
    // text need not be at hand): --test, data.test, or the held-out tail of data.train.
    use crate::data::table::Split;
    let text_test = match &model.meta.preprocessing {
        Preprocessing::Text { vocabulary } if spec.format == crate::job::DataFormat::Text => {
            match (&args.test, spec.test.trim().is_empty()) {
                (Some(t), _) => Some((vocabulary, t.clone(), Split::All)),
                (None, false) => Some((vocabulary, spec.test.clone(), Split::All)),
                (None, true) if spec.holdout > 0.0 => Some((vocabulary, spec.train.clone(), Split::Held)),
                (None, true) => None,
            }
        }
        _ => None,
    };
    let (mut dataset, loc) = match (&args.test, text_test) {
        (_, Some((vocabulary, at, split))) => {
            let loc = Location::parse(&at)?;
            (
                data::text::load_with(&loc, &spec, split, Some(vocabulary))
                    .with_context(|| format!("loading test data from {loc}"))?,
                loc.to_string(),
            )
        }
        (Some(t), None) => {
            let loc = Location::parse(t)?;
            (
                data::load(&loc, &spec, process).with_context(|| format!("loading test data from {loc}"))?,
                loc.to_string(),
            )
        }
        (None, _) => match ResolvedData::resolve(spec)
            .map_err(|e| anyhow::anyhow!("the model's job: `{}`: {}", e.key, e.message))
            .and_then(|d| Ok(data::load_test(&d, model.meta.job.train.seed, process)?))
            .context("loading the model's test data")?
        {
            Some(d) => {
                let name = d.source.clone();
                (d, name)
            }
            None => bail!(
                "no test data: pass --test LOC (the model's job has neither data.test nor data.holdout)"
            ),
        },
    };
    // Classes named as the model learnt them (test files often carry ids only).
    let numbered = dataset.class_names.iter().enumerate().all(|(i, n)| *n == i.to_string());
    if numbered && model.meta.class_names.len() >= dataset.output_width() {
        dataset.class_names = model.meta.class_names.clone();
    }
    let arch = &model.meta.architecture;
    if !arch.input().accepts(dataset.shape) {
        bail!("{loc} has examples of {}; the model takes {}", dataset.shape, arch.input());
    }
    if dataset.output_width() > arch.outputs() {
        bail!("{loc} has {} classes; the model predicts {}", dataset.output_width(), arch.outputs());
    }
    let mut backend = CpuBackend::new(
        arch,
        &model.meta.job.updater(),
        0.0,
        args.batch_size.max(1),
        &model.state,
        crate::job::available_cores(),
    );
    let report = evaluate(&mut backend, &dataset, args.batch_size);
    println!("model {} ({})\ndata  {loc}\n\n{}", dir, arch.describe(), report.table());
    if let Some(path) = &args.summary_json {
        let text = serde_json::json!({
            "model": dir.to_string(),
            "test": loc.to_string(),
            "test_accuracy": report.accuracy(),
            "test_loss": report.loss(),
            "evaluation": report,
        });
        Location::local(path).write_atomic(serde_json::to_string_pretty(&text)?.as_bytes())?;
    }
    Ok(())
}
