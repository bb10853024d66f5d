//! Self-attention kernel, forward and backward side by side. One product makes every step's
//! queries, keys and values (`[r][t][q k v]`); per example and head, scores `Q Kᵀ / √d` (a
//! causal mask leaves later steps out), a softmax per row, `P V` into the heads' columns of the
//! attended values; one product makes the output. Heads are strided views of the projection,
//! no copies; the projections, attention weights and attended values of the last forward pass
//! are kept (capacity rows, allocated once).

use super::Kernel;
use super::gemm::{Op, View, gemm, gemm_view};
use crate::nn::Real;

pub struct SelfAttentionKernel<F> {
    pub features: usize,
    pub steps: usize,
    pub heads: usize,
    pub causal: bool,
    pub threads: usize,
    /// Queries, keys, values: `[r][t][3 features]`.
    qkv: Vec<F>,
    /// Attention weights: `[r][head][t][t]`.
    probs: Vec<F>,
    /// Attended values, heads side by side: `[r][t][features]`.
    attended: Vec<F>,
    /// Backward: the attended values' gradient, the projection's gradient, one head's scores'.
    d_attended: Vec<F>,
    d_qkv: Vec<F>,
    d_scores: Vec<F>,
    /// Each example's steps this batch (empty: all of them): no step attends past its end.
    lengths: Vec<u32>,
    /// Dropout of the attention weights while training: the rate, each weight's mask (0 or
    /// 1/(1-rate), `[r][head][t][t]`, drawn before each training pass) and the weights after
    /// it (what multiplies the values); empty without dropout.
    pub dropout: f32,
    mask: Vec<F>,
    dropped: Vec<F>,
    /// Whether the last forward pass dropped weights (a training pass).
    dropping: bool,
}

impl<F: Real> SelfAttentionKernel<F> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        features: usize,
        steps: usize,
        heads: usize,
        causal: bool,
        dropout: f32,
        capacity: usize,
        threads: usize,
    ) -> Self {
        let values = capacity * steps * features;
        let weights = if dropout > 0.0 { capacity * heads * steps * steps } else { 0 };
        SelfAttentionKernel {
            features,
            steps,
            heads,
            causal,
            threads,
            qkv: vec![F::zero(); 3 * values],
            probs: vec![F::zero(); capacity * heads * steps * steps],
            attended: vec![F::zero(); values],
            d_attended: vec![F::zero(); values],
            d_qkv: vec![F::zero(); 3 * values],
            d_scores: vec![F::zero(); steps * steps],
            lengths: Vec::with_capacity(capacity),
            dropout,
            mask: vec![F::zero(); weights],
            dropped: vec![F::zero(); weights],
            dropping: false,
        }
    }
}

impl<F: Real> Kernel<F> for SelfAttentionKernel<F> {
    fn forward(&mut self, x: &[F], y: &mut [F], p: &[F], _r: &mut [F], rows: usize, train: bool) {
        let (f, t, heads) = (self.features, self.steps, self.heads);
        self.dropping = train && self.dropout > 0.0;
        let (d, f3) = (f / heads, 3 * f);
        let (wqkv, rest) = p.split_at(f * f3);
        let (bqkv, rest) = rest.split_at(f3);
        let (wo, bo) = rest.split_at(f * f);
        let qkv = &mut self.qkv[..rows * t * f3];
        for row in qkv.chunks_exact_mut(f3) {
            row.copy_from_slice(bqkv);
        }
        gemm(rows * t, f3, f, &x[..rows * t * f], Op::N, wqkv, Op::N, qkv, true, self.threads);
        let scale = F::one() / F::of(d as f64).sqrt();
        for r in 0..rows {
            let base = r * t * f3;
            let len = super::steps_of(&self.lengths, r, t).max(1);
            for h in 0..heads {
                let probs = &mut self.probs[(r * heads + h) * t * t..(r * heads + h + 1) * t * t];
                let q = View { data: &self.qkv[base + h * d..], rs: f3, cs: 1 };
                let kt = View { data: &self.qkv[base + f + h * d..], rs: 1, cs: f3 };
                gemm_view(t, t, d, q, kt, probs, t, false, 1);
                for (i, row) in probs.chunks_exact_mut(t).enumerate() {
                    let seen = if self.causal { i + 1 } else { t }.min(len);
                    let max = row[..seen].iter().fold(F::neg_infinity(), |m, &v| m.max(v)) * scale;
                    let mut sum = F::zero();
                    for v in &mut row[..seen] {
                        *v = (*v * scale - max).exp();
                        sum = sum + *v;
                    }
                    let inv = F::one() / sum;
                    row[..seen].iter_mut().for_each(|v| *v = *v * inv);
                    row[seen..].fill(F::zero());
                }
                let at = (r * heads + h) * t * t..(r * heads + h + 1) * t * t;
                let weights: &[F] = if self.dropping {
                    let kept = &mut self.dropped[at.clone()];
                    kept.iter_mut().zip(&*probs).zip(&self.mask[at]).for_each(|((k, &p), &m)| *k = p * m);
                    kept
                } else {
                    probs
                };
                let pv = View { data: weights, rs: t, cs: 1 };
                let v = View { data: &self.qkv[base + 2 * f + h * d..], rs: f3, cs: 1 };
                gemm_view(t, d, t, pv, v, &mut self.attended[r * t * f + h * d..], f, false, 1);
            }
        }
        let out = &mut y[..rows * t * f];
        for row in out.chunks_exact_mut(f) {
            row.copy_from_slice(bo);
        }
        gemm(rows * t, f, f, &self.attended[..rows * t * f], Op::N, wo, Op::N, out, true, self.threads);
    }

    fn backward(
        &mut self,
        x: &[F],
        _y: &[F],
        dy: &mut [F],
        dx: Option<&mut [F]>,
        p: &[F],
        g: &mut [F],
        rows: usize,
    ) {
        let (f, t, heads) = (self.features, self.steps, self.heads);
        let (d, f3, n) = (f / heads, 3 * f, rows * t);
        let wqkv = &p[..f * f3];
        let wo = &p[f * f3 + f3..f * f3 + f3 + f * f];
        let (gwqkv, rest) = g.split_at_mut(f * f3);
        let (gbqkv, rest) = rest.split_at_mut(f3);
        let (gwo, gbo) = rest.split_at_mut(f * f);
        let dy = &dy[..n * f];
        // Output projection: dWo = Aᵀ dY, dbo = Σ dY, dA = dY Woᵀ.
        gemm(f, f, n, &self.attended[..n * f], Op::T, dy, Op::N, gwo, false, self.threads);
        gbo.fill(F::zero());
        super::reduce::add_rows(gbo, dy);
        gemm(n, f, f, dy, Op::N, wo, Op::T, &mut self.d_attended[..n * f], false, self.threads);
        let scale = F::one() / F::of(d as f64).sqrt();
        for r in 0..rows {
            let base = r * t * f3;
            for h in 0..heads {
                let at = (r * heads + h) * t * t..(r * heads + h + 1) * t * t;
                let probs = &self.probs[at.clone()];
                let weights = if self.dropping { &self.dropped[at.clone()] } else { probs };
                let da = View { data: &self.d_attended[r * t * f + h * d..], rs: f, cs: 1 };
                // dV = P'ᵀ dA (P' the weights after dropout)
                let pt = View { data: weights, rs: 1, cs: t };
                gemm_view(t, d, t, pt, da, &mut self.d_qkv[base + 2 * f + h * d..], f3, false, 1);
                // dP' = dA Vᵀ, dP = dP' ∘ mask, then through the softmax: dS = P ∘ (dP - Σ_j dP P) · scale.
                let vt = View { data: &self.qkv[base + 2 * f + h * d..], rs: 1, cs: f3 };
                gemm_view(t, t, d, da, vt, &mut self.d_scores, t, false, 1);
                if self.dropping {
                    self.d_scores.iter_mut().zip(&self.mask[at]).for_each(|(g, &m)| *g = *g * m);
                }
                for (ds, pr) in self.d_scores.chunks_exact_mut(t).zip(probs.chunks_exact(t)) {
                    let dot = ds.iter().zip(pr).map(|(&a, &b)| a * b).sum::<F>();
                    ds.iter_mut().zip(pr).for_each(|(v, &pv)| *v = pv * (*v - dot) * scale);
                }
                // dQ = dS K; dK = dSᵀ Q
                let ds = View { data: &self.d_scores[..], rs: t, cs: 1 };
                let k = View { data: &self.qkv[base + f + h * d..], rs: f3, cs: 1 };
                gemm_view(t, d, t, ds, k, &mut self.d_qkv[base + h * d..], f3, false, 1);
                let dst = View { data: &self.d_scores[..], rs: 1, cs: t };
                let q = View { data: &self.qkv[base + h * d..], rs: f3, cs: 1 };
                gemm_view(t, d, t, dst, q, &mut self.d_qkv[base + f + h * d..], f3, false, 1);
            }
        }
        let dqkv = &self.d_qkv[..n * f3];
        gemm(f, f3, n, &x[..n * f], Op::T, dqkv, Op::N, gwqkv, false, self.threads);
        gbqkv.fill(F::zero());
        super::reduce::add_rows(gbqkv, dqkv);
        if let Some(dx) = dx {
            gemm(n, f, f3, dqkv, Op::N, wqkv, Op::T, &mut dx[..n * f], false, self.threads);
        }
    }

    fn mask(&mut self, lengths: Option<&[u32]>) {
        super::keep_lengths(&mut self.lengths, lengths);
    }

    fn resample(&mut self, rows: usize, rng: &mut crate::rng::Rng) {
        if self.dropout <= 0.0 {
            return;
        }
        let n = rows * self.heads * self.steps * self.steps;
        super::dropout::draw_mask(&mut self.mask[..n], self.dropout, rng);
    }
}
