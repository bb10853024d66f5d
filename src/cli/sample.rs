//! `strom sample`: text from a language model (`engine::sample`). Models that read only earlier
//! steps (embeddings, dense layers per step, LSTMs, causal attention) give the same prediction
//! whatever follows in the window.

use std::io::Write;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::backend::CpuBackend;
use crate::data::text;
use crate::engine::sample::Sampler;
use crate::job::DataFormat;
use crate::nn::saved::{Preprocessing, SavedModel};
use crate::rng::Rng;
use crate::storage::Location;

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  strom sample --model strom-runs/shakespeare-bigram --prompt \"ROMEO:\" --tokens 300 --temperature 0.8 --seed 1"
)]
pub struct SampleArgs {
    /// Model directory written by `strom train --output` (a text job's model).
    #[arg(long, value_name = "DIR")]
    pub model: String,
    /// Text the sample continues.
    #[arg(long, default_value = "\n")]
    pub prompt: String,
    /// Ids to generate (characters, or bytes for data.unit = "byte").
    #[arg(long, default_value_t = 300)]
    pub tokens: usize,
    /// Logits are divided by it: below 1 sharper, above 1 flatter.
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f64,
    /// Seed of the draws: the same seed, model and prompt give the same text.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub fn run(args: SampleArgs) -> Result<()> {
    if !(args.temperature.is_finite() && args.temperature > 0.0) {
        bail!("--temperature must be a positive number (got {})", args.temperature);
    }
    let dir = Location::parse(&args.model)?;
    let model = SavedModel::load(&dir).with_context(|| format!("loading model {dir}"))?;
    let arch = &model.meta.architecture;
    let data = &model.meta.job.data;
    // The vocabulary saved with the model; a model saved before it was is rebuilt from its text.
    let vocabulary = match &model.meta.preprocessing {
        Preprocessing::Text { vocabulary } => vocabulary.clone(),
        _ if data.format != DataFormat::Text => {
            bail!(
                "{dir} is not a language model (token ids in, a prediction of the next id at every step \
                 out): it takes {} and gives {}",
                arch.input(),
                arch.output()
            )
        }
        _ => text::vocabulary(data).with_context(|| {
            format!("rebuilding the model's vocabulary from its training text {}", data.train)
        })?,
    };
    let sampler = Sampler::new(arch, vocabulary).map_err(|e| anyhow::anyhow!("{dir}: {e}"))?;
    let ids = sampler.vocabulary.encode(args.prompt.as_bytes(), "--prompt")?;
    if ids.is_empty() {
        bail!("--prompt is empty: give the text to continue (default: a newline)");
    }
    let mut backend =
        CpuBackend::new(arch, &model.meta.job.updater(), 0.0, 1, &model.state, crate::job::available_cores());
    let out = std::io::stdout();
    let mut out = out.lock();
    out.write_all(&sampler.vocabulary.decode(&ids))?;
    let mut failed = None;
    sampler.generate(&mut backend, &ids, args.tokens, args.temperature, &mut Rng::new(args.seed), |id| {
        if failed.is_none()
            && let Err(e) = out.write_all(&sampler.vocabulary.decode(&[id]))
        {
            failed = Some(e);
        }
    });
    if let Some(e) = failed {
        return Err(e.into());
    }
    writeln!(out)?;
    Ok(())
}
