//! Text from a language model, one id at a time: the model reads a window of its context (the
//! prompt and what it has generated so far, the last `T` ids once longer); the next id is drawn
//! from its prediction at the window's last filled step, with the temperature applied to the
//! logits. `strom sample` and the sample logged after each epoch of a text job both use it.

use crate::backend::Backend;
use crate::data::text::Vocabulary;
use crate::data::{Batch, BatchInput, BatchTargets};
use crate::nn::{Architecture, Shape};
use crate::rng::Rng;

/// What generation needs of a language model: its window and its vocabulary.
#[derive(Clone, Debug)]
pub struct Sampler {
    pub vocabulary: Vocabulary,
    /// Steps the model reads.
    pub steps: usize,
    /// Ids it predicts (the vocabulary's size).
    pub ids: usize,
}

impl Sampler {
    /// A sampler for `architecture`, when it is a language model of `vocabulary` (token ids
    /// in, a prediction of the next id at every step out); `Err` says what it is instead.
    pub fn new(architecture: &Architecture, vocabulary: Vocabulary) -> Result<Sampler, String> {
        match (architecture.input(), architecture.output()) {
            (Shape::Tokens { steps, vocab }, Shape::Sequence { features, .. }) if features == vocab => {
                if vocabulary.len() != vocab {
                    return Err(format!(
                        "the vocabulary holds {} ids; the model was trained on {vocab}",
                        vocabulary.len()
                    ));
                }
                Ok(Sampler { vocabulary, steps, ids: vocab })
            }
            (input, output) => Err(format!(
                "not a language model (token ids in, a prediction of the next id at every step \
                 out): it takes {input} and gives {output}"
            )),
        }
    }

    /// Continues `prompt` (ids) by `tokens` ids drawn with `temperature`, handing each new id
    /// to `emit`.
    pub fn generate(
        &self,
        backend: &mut dyn Backend,
        prompt: &[u8],
        tokens: usize,
        temperature: f64,
        rng: &mut Rng,
        mut emit: impl FnMut(u8),
    ) {
        let (steps, vocab) = (self.steps, self.ids);
        let mut ids = prompt.to_vec();
        let (mut window, labels, mut outputs) = (vec![0u8; steps], vec![0u32; steps], Vec::new());
        let mut weights = vec![0.0f64; vocab];
        let inv = 1.0 / temperature;
        for _ in 0..tokens {
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
            emit(next as u8);
        }
    }

    /// A short sample as one log line: `tokens` ids after a newline, newlines shown as ` / `.
    pub fn line(&self, backend: &mut dyn Backend, tokens: usize, seed: u64) -> String {
        let prompt = self.vocabulary.encode(b"\n", "prompt").unwrap_or_default();
        let mut out = Vec::with_capacity(tokens);
        self.generate(backend, &prompt, tokens, 0.8, &mut Rng::new(seed), |id| out.push(id));
        String::from_utf8_lossy(&self.vocabulary.decode(&out)).trim().replace('\n', " / ")
    }
}
