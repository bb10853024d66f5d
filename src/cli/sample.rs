//! `strom sample`: text from a language model, one id at a time. The model reads a window of
//! its context (the prompt and what it has generated so far, the last `T` ids once longer);
//! the next id is drawn from its prediction at the window's last filled step, with the
//! temperature applied to the logits. Models that read only earlier steps (embeddings, dense
//! layers per step, LSTMs) give the same prediction whatever follows in the window.

use std::io::Write;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::backend::{Backend, CpuBackend};
use crate::data::{Batch, BatchInput, BatchTargets, text};
use crate::job::DataFormat;
use crate::nn::Shape;
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
    let (steps, vocab) = match (arch.input(), arch.output()) {
        (Shape::Tokens { steps, vocab }, Shape::Sequence { features, .. }) if features == vocab => {
            (steps, vocab)
        }
        (input, output) => bail!(
            "{dir} is not a language model (token ids in, a prediction of the next id at every step \
             out): it takes {input} and gives {output}"
        ),
    };
    let data = &model.meta.job.data;
    if data.format != DataFormat::Text {
        bail!("{dir} was trained on data.format = {:?}, not text", data.format);
    }
    // The vocabulary saved with the model; a model saved before it was is rebuilt from its text.
    let vocabulary = match &model.meta.preprocessing {
        Preprocessing::Text { vocabulary } => vocabulary.clone(),
        _ => text::vocabulary(data).with_context(|| {
            format!("rebuilding the model's vocabulary from its training text {}", data.train)
        })?,
    };
    if vocabulary.len() != vocab {
        bail!("the vocabulary holds {} ids; the model was trained on {vocab}", vocabulary.len());
    }
    let mut ids = vocabulary.encode(args.prompt.as_bytes(), "--prompt")?;
    if ids.is_empty() {
        bail!("--prompt is empty: give the text to continue (default: a newline)");
    }
    let mut backend =
        CpuBackend::new(arch, &model.meta.job.updater(), 0.0, 1, &model.state, crate::job::available_cores());
    let mut rng = Rng::new(args.seed);
    let (mut window, labels, mut outputs) = (vec![0u8; steps], vec![0u32; steps], Vec::new());
    let mut weights = vec![0.0f64; vocab];
    let out = std::io::stdout();
    let mut out = out.lock();
    out.write_all(&vocabulary.decode(&ids))?;
    for _ in 0..args.tokens {
        let start = ids.len().saturating_sub(steps);
        let filled = ids.len() - start;
        window.fill(0);
        window[..filled].copy_from_slice(&ids[start..]);
        let batch = Batch {
            rows: 1,
            input: BatchInput::U8 { data: &window, scale: 1.0 },
            targets: BatchTargets::Classes(&labels),
            lengths: None,
        };
        backend.evaluate(&batch, &mut outputs);
        let probs = &outputs[(filled - 1) * vocab..filled * vocab];
        // p^(1/T), renormalised: softmax of logits / T.
        let inv = 1.0 / args.temperature;
        let top = probs.iter().fold(0.0f32, |m, &p| m.max(p)).max(f32::MIN_POSITIVE) as f64;
        for (w, &p) in weights.iter_mut().zip(probs) {
            *w = (p as f64 / top).powf(inv);
        }
        let mut pick = rng.next_f64() * weights.iter().sum::<f64>();
        let mut next = vocab - 1;
        for (i, &w) in weights.iter().enumerate() {
            if pick < w {
                next = i;
                break;
            }
            pick -= w;
        }
        ids.push(next as u8);
        out.write_all(&vocabulary.decode(&ids[ids.len() - 1..]))?;
    }
    writeln!(out)?;
    Ok(())
}
