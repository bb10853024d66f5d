//! `powersgd`: PowerSGD (Vogels et al., NeurIPS 2019). Each parameter tensor, viewed as an
//! n x m matrix (its first dimension by the rest), is approximated at rank r by one step of
//! power iteration with a warm-started Q: `P = M·Q`, all-reduced and orthonormalised, then
//! `Q = Mᵀ·P`, all-reduced, and every worker applies `P·Qᵀ` divided by the workers — the same
//! on every replica. `M` is the gradient plus the error left by the last approximation (error
//! feedback). Tensors where low rank does not pay (`(n + m)·r ≥ n·m / 2`, biases, norms) and
//! the first `warmup_steps` steps go through a dense all-reduce, as PyTorch's hook does. One
//! updater then runs on the mean.

use super::scheme::SchemeError;
use super::{Collective, Figures, Format, HEADER_LEN, Scheme, SchemeInfo, StepCtx, TransportError};
use crate::job::JobSpec;
use crate::nn::Layout;
use crate::rng::Rng;

/// The collectives' tags: a worker still warming up and one past it never sum unlike buffers.
const TAG_DENSE: u32 = 0;
const TAG_P: u32 = 1;
const TAG_Q: u32 = 2;

/// Whether an n x m matrix is worth approximating at rank r.
pub fn low_rank_pays(n: usize, m: usize, r: usize) -> bool {
    n >= 2 && m >= 2 && (n + m) * r < n * m / 2
}

/// Gram-Schmidt on the r columns of the row-major n x r matrix `p`, in place; a column that
/// vanishes is left at zero.
pub fn orthonormalize(p: &mut [f32], n: usize, r: usize) {
    for c in 0..r {
        for prev in 0..c {
            let dot: f64 = (0..n).map(|i| p[i * r + c] as f64 * p[i * r + prev] as f64).sum();
            for i in 0..n {
                p[i * r + c] -= (dot as f32) * p[i * r + prev];
            }
        }
        let norm = (0..n).map(|i| (p[i * r + c] as f64).powi(2)).sum::<f64>().sqrt();
        let inv = if norm > 1e-12 { (1.0 / norm) as f32 } else { 0.0 };
        for i in 0..n {
            p[i * r + c] *= inv;
        }
    }
}

/// One compressed tensor: its place, shape, warm-started Q and factor offsets.
struct Matrix {
    start: usize,
    n: usize,
    m: usize,
    q: Vec<f32>,
    /// Offsets of this matrix's P and Q in the collective buffers.
    p_at: usize,
    q_at: usize,
}

pub struct PowerSgd {
    info: SchemeInfo,
    /// The learning rate's factor for a batch of all the workers' ([`super::gradient::lr_gain`]).
    gain: f32,
    rank: usize,
    warmup: u64,
    error_clip: f64,
    matrices: Vec<Matrix>,
    /// Parameter ranges sent dense.
    dense: Vec<std::ops::Range<usize>>,
    /// Gradient plus error, then the approximation.
    m: Vec<f32>,
    error: Vec<f32>,
    /// The first collective: dense tensors, then every P; the second: every Q.
    first: Vec<f32>,
    second: Vec<f32>,
}

impl PowerSgd {
    pub fn new(job: &JobSpec, layout: &Layout) -> Result<Self, SchemeError> {
        let rank = job.sharing.powersgd.rank as usize;
        if rank == 0 {
            return Err(SchemeError::Knob {
                key: "sharing.powersgd.rank",
                message: "must be at least 1".into(),
            });
        }
        // Q starts the same on every worker: from the job's seed alone.
        let mut rng = Rng::derive(job.train.seed, 0x9053_0000);
        let (mut matrices, mut dense) = (Vec::new(), Vec::new());
        let (mut p_len, mut q_len) = (0, 0);
        for t in layout.tensors() {
            let n = t.dims.first().copied().unwrap_or(1);
            let m = t.range.len() / n.max(1);
            if t.dims.len() >= 2 && n * m == t.range.len() && low_rank_pays(n, m, rank) {
                let q = (0..m * rank).map(|_| rng.normal() as f32).collect();
                matrices.push(Matrix { start: t.range.start, n, m, q, p_at: p_len, q_at: q_len });
                p_len += n * rank;
                q_len += m * rank;
            } else {
                dense.push(t.range.clone());
            }
        }
        let dense_len: usize = dense.iter().map(|r| r.len()).sum();
        for mat in &mut matrices {
            mat.p_at += dense_len;
        }
        Ok(PowerSgd {
            info: super::describe(job),
            gain: super::gradient::lr_gain(job),
            rank,
            warmup: job.sharing.powersgd.warmup_steps as u64,
            error_clip: job.sharing.powersgd.error_clip as f64,
            matrices,
            dense,
            m: vec![0.0; layout.len],
            error: vec![0.0; layout.len],
            first: vec![0.0; dense_len + p_len],
            second: vec![0.0; q_len],
        })
    }

    /// Keeps the error within `error_clip` times this step's gradient norm (scaled down whole,
    /// its direction kept). Without it the error of a rank-2 approximation grew without bound
    /// on the MLP with four workers and training diverged within two epochs (Nesterov and
    /// plain SGD alike); a residual that cannot grow without bound is threshold sharing's
    /// `residual_clip` too.
    fn clip_error(&mut self) {
        if self.error_clip <= 0.0 {
            return;
        }
        let (g, e) = (super::l2_norm(&self.m), super::l2_norm(&self.error));
        let limit = self.error_clip * g;
        if e > limit && e > 0.0 {
            let s = (limit / e) as f32;
            self.error.iter_mut().for_each(|x| *x *= s);
        }
    }

    /// Values sent per step once compressing.
    pub fn compressed_len(&self) -> usize {
        self.first.len() + self.second.len()
    }

    /// The low-rank step over `self.m` (gradient plus error); leaves the mean approximation in
    /// `self.m` and the new error in `self.error`. Returns the bytes sent.
    fn compress(&mut self, ctx: &mut StepCtx<'_>) -> Result<Option<u64>, TransportError> {
        let r = self.rank;
        let mut at = 0;
        for range in &self.dense {
            self.first[at..at + range.len()].copy_from_slice(&self.m[range.clone()]);
            at += range.len();
        }
        for mat in &self.matrices {
            let p = &mut self.first[mat.p_at..mat.p_at + mat.n * r];
            let m = &self.m[mat.start..mat.start + mat.n * mat.m];
            p.fill(0.0);
            for i in 0..mat.n {
                let row = &m[i * mat.m..(i + 1) * mat.m];
                let out = &mut p[i * r..(i + 1) * r];
                for (j, &x) in row.iter().enumerate() {
                    for (o, q) in out.iter_mut().zip(&mat.q[j * r..(j + 1) * r]) {
                        *o += x * q;
                    }
                }
            }
        }
        let workers =
            ctx.link.all_reduce(&mut self.first, Collective::sum(TAG_P, Format::Dense, ctx.idle))?;
        if workers == 0 {
            return Ok(None);
        }
        let inv = 1.0 / workers as f32;
        for mat in &mut self.matrices {
            let p = &mut self.first[mat.p_at..mat.p_at + mat.n * r];
            orthonormalize(p, mat.n, r);
            let q = &mut self.second[mat.q_at..mat.q_at + mat.m * r];
            let m = &self.m[mat.start..mat.start + mat.n * mat.m];
            q.fill(0.0);
            for i in 0..mat.n {
                let row = &m[i * mat.m..(i + 1) * mat.m];
                let pi = &p[i * r..(i + 1) * r];
                for (j, &x) in row.iter().enumerate() {
                    for (o, pv) in q[j * r..(j + 1) * r].iter_mut().zip(pi) {
                        *o += x * pv;
                    }
                }
            }
        }
        if ctx.link.all_reduce(&mut self.second, Collective::sum(TAG_Q, Format::Dense, ctx.idle))? == 0 {
            return Ok(None);
        }
        // The dense tensors' mean; the matrices' approximation P·Qᵀ / workers, whose
        // difference from this worker's M is the error it keeps.
        let mut at = 0;
        for range in &self.dense {
            for (k, i) in range.clone().enumerate() {
                self.m[i] = self.first[at + k] * inv;
                self.error[i] = 0.0;
            }
            at += range.len();
        }
        for mat in &mut self.matrices {
            let p = &self.first[mat.p_at..mat.p_at + mat.n * r];
            let q = &self.second[mat.q_at..mat.q_at + mat.m * r];
            for i in 0..mat.n {
                let pi = &p[i * r..(i + 1) * r];
                for j in 0..mat.m {
                    let approx: f32 =
                        pi.iter().zip(&q[j * r..(j + 1) * r]).map(|(a, b)| a * b).sum::<f32>() * inv;
                    let k = mat.start + i * mat.m + j;
                    self.error[k] = self.m[k] - approx;
                    self.m[k] = approx;
                }
            }
            // Warm start: the next step's power iteration begins from this Q.
            mat.q.copy_from_slice(q);
        }
        Ok(Some(2 * (HEADER_LEN as u64) + 4 * (self.first.len() + self.second.len()) as u64))
    }
}

impl Scheme for PowerSgd {
    fn info(&self) -> SchemeInfo {
        self.info
    }

    fn step(&mut self, mut ctx: StepCtx<'_>) -> Result<Figures, TransportError> {
        let n = self.m.len();
        ctx.backend.read_gradient(&mut self.m);
        self.clip_error();
        let warming = ctx.step <= self.warmup || self.matrices.is_empty();
        let (bytes, entries) = if warming {
            let workers =
                ctx.link.all_reduce(&mut self.m, Collective::sum(TAG_DENSE, Format::Dense, ctx.idle))?;
            if workers == 0 {
                return Ok(Figures::default());
            }
            let inv = 1.0 / workers as f32;
            self.m.iter_mut().for_each(|g| *g *= inv);
            ((HEADER_LEN + 4 * n) as u64, n as u64)
        } else {
            self.m.iter_mut().zip(&self.error).for_each(|(m, e)| *m += e);
            match self.compress(&mut ctx)? {
                Some(bytes) => (bytes, self.compressed_len() as u64),
                None => return Ok(Figures::default()),
            }
        };
        super::gradient::apply_mean(ctx.backend, &self.m, ctx.lr_scale, self.gain);
        let norm = super::l2_norm(&self.error);
        Ok(Figures {
            entries,
            sparsity: entries as f64 / n.max(1) as f64,
            bytes_sent: bytes,
            bytes_received: bytes,
            tau: 0.0,
            residual_norm: norm,
            k: 0,
            rank: if warming { 0 } else { self.rank as u32 },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Backend;
    use crate::job::{SharingMode, UpdaterKind};
    use crate::sharing::testing::{Loopback, ctx, model, params};

    /// With plain SGD at rate 1 on one worker the parameters move by exactly the approximation,
    /// and approximation plus the error kept is the gradient plus the error before: error
    /// feedback loses nothing.
    #[test]
    fn the_approximation_plus_the_error_is_the_gradient() {
        let mut job = JobSpec::default();
        job.sharing.mode = Some(SharingMode::Powersgd);
        job.sharing.powersgd = crate::job::PowersgdSpec { rank: 1, warmup_steps: 1, error_clip: 0.0 };
        job.train.updater.kind = Some(UpdaterKind::Sgd);
        job.train.updater.lr = Some(1.0);
        let (arch, mut backend) = model(&mut job);
        let mut p = PowerSgd::new(&job, arch.layout()).unwrap();
        assert_eq!(p.matrices.len(), 3, "the three weight matrices pay at rank 1");
        assert_eq!(p.dense.len(), 3, "the biases go dense");
        let n = arch.param_count();
        let mut rng = Rng::new(4);
        let mut link = Loopback::default();
        let mut old_error = vec![0.0f32; n];
        for step in 1..=4u64 {
            let g: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
            let before = params(&mut backend);
            backend.write_gradient(&g);
            let f = p.step(ctx(&mut backend, &mut link, step)).unwrap();
            let after = params(&mut backend);
            for i in 0..n {
                let applied = before[i] - after[i];
                let want = g[i] + old_error[i];
                assert!(
                    (applied + p.error[i] - want).abs() < 1e-4,
                    "step {step} entry {i}: {applied} + {} != {want}",
                    p.error[i]
                );
            }
            if step == 1 {
                assert_eq!((f.rank, f.entries), (0, n as u64), "warming up: dense");
            } else {
                assert_eq!(f.rank, 1);
                assert!(f.entries < n as u64 / 2, "compressed: {} of {n}", f.entries);
                assert!(p.error.iter().any(|e| *e != 0.0), "rank 1 leaves an error");
            }
            old_error.copy_from_slice(&p.error);
        }
        let tags: Vec<u32> = link.reduced.iter().map(|(c, _)| c.tag).collect();
        assert_eq!(tags, vec![TAG_DENSE, TAG_P, TAG_Q, TAG_P, TAG_Q, TAG_P, TAG_Q]);
    }

    #[test]
    fn low_rank_pays_only_where_the_factors_are_small() {
        assert!(low_rank_pays(256, 784, 2));
        assert!(!low_rank_pays(10, 1, 2), "a bias");
        assert!(!low_rank_pays(4, 4, 2), "(4 + 4)·2 ≥ 16 / 2");
    }

    #[test]
    fn orthonormalized_columns_are_orthonormal() {
        let mut rng = Rng::new(1);
        let (n, r) = (50, 3);
        let mut p: Vec<f32> = (0..n * r).map(|_| rng.normal() as f32).collect();
        orthonormalize(&mut p, n, r);
        for a in 0..r {
            for b in 0..r {
                let dot: f32 = (0..n).map(|i| p[i * r + a] * p[i * r + b]).sum();
                let want = if a == b { 1.0 } else { 0.0 };
                assert!((dot - want).abs() < 1e-4, "{a},{b}: {dot}");
            }
        }
    }
}
