//! `topk`: Deep Gradient Compression (Lin et al., ICLR 2018). Each worker accumulates its
//! gradient in a residual `v` and sends the k entries of largest magnitude as (index, f16 value)
//! pairs, keeping the rest (and the f16 rounding) for later: error feedback, nothing lost.
//!
//! With SGD or Nesterov the scheme corrects momentum as DGC does: the velocity `u = μu + g`
//! is kept per worker and accumulated into `v` (Nesterov: `u = μ(u + g)`, `v += u + g`), sent
//! entries are cleared from both (momentum-factor masking), and the messages are parameter
//! updates `lr·v` (the header's tau carries the step's rate) that every replica, the hub's
//! included, subtracts. The updater does not run then, so the scheme adds `train.l2` itself:
//! `l2·w` joins the (clipped) gradient of the weights before the velocity, as DGC's SGD adds
//! weight decay. Other updaters (Adam, RMSProp) send the gradient and run once on the workers'
//! sum, their own L2 included. Local gradient clipping (`clip_norm / sqrt(workers)`) and DGC's
//! sparsity warm-up (25 % of the entries falling exponentially to `density` over
//! `warmup_epochs`) come with it. k is found by sampling: the threshold is the matching
//! quantile of a random sample of |v|, with an exact top-k only over the few entries past it
//! when the sample misjudged.

use super::gradient::GradientSum;
use super::scheme::momentum_corrected;
use super::{Figures, MessageView, Scheme, SchemeInfo, StepCtx, TransportError, codec};
use crate::backend::Backend;
use crate::job::{JobSpec, UpdaterKind};
use crate::nn::Layout;
use crate::rng::Rng;
use std::ops::Range;

/// The density DGC starts from.
const WARMUP_START: f64 = 0.25;

/// The fraction of entries to send after `epochs_done` epochs: exponential from 25 % to
/// `density` over `warmup_epochs`, then `density`.
pub fn warmup_density(density: f64, warmup_epochs: f64, epochs_done: f64) -> f64 {
    if warmup_epochs <= 0.0 || epochs_done >= warmup_epochs || density >= WARMUP_START {
        return density;
    }
    WARMUP_START * (density / WARMUP_START).powf(epochs_done.max(0.0) / warmup_epochs)
}

/// The magnitude above which about `k` of `values` lie, estimated from a random sample (about
/// 100 expected hits where 1 % of the values hold them, at least 20, never more than all
/// values): `scratch` holds the sample.
pub fn estimate_threshold(values: &[f32], k: usize, rng: &mut Rng, scratch: &mut Vec<f32>) -> f32 {
    estimate_threshold_of(values.len(), |i| values[i], &[values], k, rng, scratch)
}

/// [`estimate_threshold`] over the `n` values `value(i)` (computed only where sampled), which
/// reads `streams` (fetched ahead of the sampled runs).
fn estimate_threshold_of(
    n: usize,
    value: impl Fn(usize) -> f32,
    streams: &[&[f32]],
    k: usize,
    rng: &mut Rng,
    scratch: &mut Vec<f32>,
) -> f32 {
    if n == 0 || k == 0 {
        return f32::INFINITY;
    }
    if k >= n {
        return 0.0;
    }
    let density = k as f64 / n as f64;
    // About 100 expected hits, within 1 % of the values, and never fewer than 20 hits.
    let samples =
        ((100.0 / density).ceil() as usize).min(n / 100).max((20.0 / density).ceil() as usize).max(64).min(n);
    scratch.clear();
    if samples == n {
        scratch.extend((0..n).map(|i| value(i).abs()));
    } else {
        // Runs of neighbours at random places (a few cache lines each, which the CPU fetches
        // as a stream), not single values: random single reads of a large model cost more
        // than the pass itself. At least about 1024 places, each run at most SAMPLE_RUN long.
        // The places are drawn AHEAD runs early and their lines prefetched, so the reads of
        // several runs overlap instead of waiting on memory one run at a time.
        let run = (samples / 1024).clamp(1, SAMPLE_RUN);
        let starts = (n - run + 1) as u64;
        let mut draw = || {
            let at = rng.below(starts) as usize;
            prefetch(streams, at, run);
            at
        };
        let mut ahead = [0usize; AHEAD];
        ahead.iter_mut().for_each(|at| *at = draw());
        let mut next = 0;
        while scratch.len() < samples {
            let at = std::mem::replace(&mut ahead[next], draw());
            next = (next + 1) % AHEAD;
            scratch.extend((at..at + run).map(|i| value(i).abs()));
        }
    }
    let samples = scratch.len();
    let rank = ((samples as f64 * (1.0 - density)) as usize).min(samples - 1);
    let (_, nth, above) = scratch.select_nth_unstable_by(rank, |a, b| a.total_cmp(b));
    let nth = *nth;
    // A tie at the estimate (values accumulated alike, as many small ones can be) would let far
    // more than k through. Step above it where the values past the tie are nearer k, as a
    // ratio, and at least half of it: a bar too low is brought back to k during the sweep, one
    // too high is not. Without a tie (the estimate alone at its value) the bar stays.
    let over = above.iter().filter(|&&v| v > nth || v.is_nan()).count();
    let at_or_over = samples - rank + tied_below(scratch, rank, nth);
    let expected = (samples as f64 * density).max(1.0);
    let tie = at_or_over > over + 1;
    if tie && over as f64 >= expected / 2.0 && at_or_over as f64 * over as f64 > expected * expected {
        return nth.next_up();
    }
    nth
}

/// How many of the values before `rank` (all at most the value there) equal `nth`.
fn tied_below(sorted_around: &[f32], rank: usize, nth: f32) -> usize {
    sorted_around[..rank].iter().filter(|&&v| v == nth).count()
}

/// DGC's momentum correction as the encoder runs it: the factor, and whether Nesterov.
#[derive(Clone, Copy, Debug)]
pub struct Momentum {
    pub factor: f32,
    pub nesterov: bool,
}

/// Top-k's encoder in one pass over the model: adds this step's gradient `grad` to the
/// `residual` (through the `velocity` with momentum correction), and puts about `k` entries of
/// largest magnitude into `selected` (ascending index, values rounded to f16), taking them out
/// of the residual and the velocity. The threshold is estimated first from a sample of what the
/// residual will hold, so accumulating and selecting share one pass. Returns the residual's L2
/// norm once the selected entries are out.
pub fn accumulate_and_select(
    residual: &mut [f32],
    grad: &[f32],
    mut momentum: Option<(Momentum, &mut [f32])>,
    k: Option<usize>,
    rng: &mut Rng,
    scratch: &mut Vec<f32>,
    selected: &mut Vec<(u32, f32)>,
) -> f64 {
    let n = residual.len();
    selected.clear();
    let threshold = match (k, &momentum) {
        // Nothing to send: no comparison with NaN holds, not even an infinite residual's.
        (None, _) => f32::NAN,
        (Some(k), None) => {
            estimate_threshold_of(n, |i| residual[i] + grad[i], &[residual, grad], k, rng, scratch)
        }
        (Some(k), Some((m, u))) => {
            let (f, u) = (m.factor, &**u);
            let streams = [&*residual, grad, u];
            if m.nesterov {
                estimate_threshold_of(
                    n,
                    |i| residual[i] + f * (u[i] + grad[i]) + grad[i],
                    &streams,
                    k,
                    rng,
                    scratch,
                )
            } else {
                estimate_threshold_of(n, |i| residual[i] + f * u[i] + grad[i], &streams, k, rng, scratch)
            }
        }
    };
    let mut bar = Bar::new(threshold, k.unwrap_or(0));
    sweep(residual, grad, momentum.as_mut().map(|(m, u)| (*m, &mut **u)), &mut bar, selected);
    if selected.len() > 2 * bar.k {
        // The sample put the bar too low: an exact top-k over what passed it.
        bar.keep_top_k(residual, selected);
    }
    let (raised, mut norm2) = (bar.raised, bar.norm2);
    if raised {
        selected.sort_unstable_by_key(|e| e.0);
    }
    // The residual already holds what each entry's rounding to f16 leaves (written when it was
    // selected, while its block was in cache); the values are rounded here a group at a time
    // (the slice conversion uses F16C where the CPU has it), to the same f16.
    let mut rounded = [0f32; 256];
    for group in selected.chunks_mut(rounded.len()) {
        let rounded = &mut rounded[..group.len()];
        rounded.iter_mut().zip(group.iter()).for_each(|(r, e)| *r = e.1);
        codec::round_half_slice(codec::Format::Half, rounded);
        for (e, &sent) in group.iter_mut().zip(rounded.iter()) {
            let after = e.1 - sent;
            e.1 = sent;
            norm2 += f64::from(after) * f64::from(after);
        }
    }
    if let Some((_, u)) = momentum.as_mut() {
        for e in selected.iter() {
            if let Some(u) = u.get_mut(e.0 as usize) {
                *u = 0.0;
            }
        }
    }
    norm2.sqrt()
}

/// The sum of the squares of the entries' values, in f64.
fn squares(entries: &[(u32, f32)]) -> f64 {
    entries.iter().map(|e| f64::from(e.1) * f64::from(e.1)).sum()
}

/// Values accumulated, searched for candidates, then offered to the bar, a block at a time
/// (8 KB of f32: the search and the offers read the block again from L1).
const BLOCK: usize = 2048;

/// Values tested together by the portable candidate search: a group with nothing at or past
/// the bar (most of them) costs no branch per value.
const LANES: usize = 16;

/// The selection bar of one sweep. Selected: at or above the bar and not zero (a bar of 0
/// keeps only what moves). A sample that put the bar too low would collect far more than k:
/// at 4k candidates the bar rises to just above the k-th largest so far and the rest are
/// dropped, so `selected` stays small.
struct Bar {
    bar: f32,
    k: usize,
    cap: usize,
    raised: bool,
    /// The squared L2 norm of what stays in the residual so far: the values below the bar, and
    /// candidates dropped (by the bar rising or the top k). Sent entries add what their f16
    /// rounding leaves. Nothing is subtracted, so nothing cancels.
    norm2: f64,
}

impl Bar {
    fn new(bar: f32, k: usize) -> Self {
        Bar { bar, k, cap: 4 * k.max(1), raised: false, norm2: 0.0 }
    }

    /// Offers the candidates `at` (ascending offsets from `start` into `residual`; each was at
    /// or past the bar when its block was searched): each is checked again, since the bar may
    /// have risen meanwhile. A selected entry keeps its value, and the residual keeps what its
    /// rounding to f16 will leave.
    fn offer(&mut self, residual: &mut [f32], start: usize, at: &[u32], selected: &mut Vec<(u32, f32)>) {
        for &j in at {
            let i = start + j as usize;
            let r = residual[i];
            if r.abs() < self.bar {
                self.norm2 += f64::from(r) * f64::from(r);
                continue;
            }
            residual[i] = r - codec::round_half(codec::Format::Half, r);
            selected.push((i as u32, r));
            if selected.len() >= self.cap {
                self.keep_top_k(residual, selected);
                // Above the k-th largest so far (the next f32 up): a value equal to it cannot
                // improve the top k, and a run of equal values must not raise the bar again
                // and again.
                self.bar = selected[self.k - 1].1.abs().next_up();
            }
        }
    }

    /// Keeps the k largest of `selected` (in any order); the others go back to the residual
    /// whole, and their squares to the norm.
    fn keep_top_k(&mut self, residual: &mut [f32], selected: &mut Vec<(u32, f32)>) {
        let k = self.k;
        selected.select_nth_unstable_by(k - 1, |a, b| b.1.abs().total_cmp(&a.1.abs()));
        for &(i, v) in &selected[k..] {
            residual[i as usize] = v;
        }
        self.norm2 += squares(&selected[k..]);
        selected.truncate(k);
        self.raised = true;
    }
}

/// The sweep of [`accumulate_and_select`], a block at a time: accumulate, find the block's
/// candidates against the bar (their offsets, and the squares of the rest), offer them in
/// index order. The bar only rises, so finding candidates against the block's first bar
/// selects what a value-by-value pass would. With AVX2 (chosen at run time: one portable
/// binary) accumulating and finding are one branch-free pass of compress-stores.
fn sweep(
    residual: &mut [f32],
    grad: &[f32],
    momentum: Option<(Momentum, &mut [f32])>,
    bar: &mut Bar,
    selected: &mut Vec<(u32, f32)>,
) {
    #[cfg(target_arch = "x86_64")]
    if avx2_popcnt() {
        // SAFETY: the CPU supports AVX2 and POPCNT, checked just above.
        return unsafe { sweep_avx2(residual, grad, momentum, bar, selected) };
    }
    sweep_blocks(0, residual, grad, momentum, bar, selected)
}

/// Whether the CPU has what [`sweep_avx2`] is compiled for.
#[cfg(target_arch = "x86_64")]
fn avx2_popcnt() -> bool {
    crate::backend::cpu_sharing::avx2() && std::arch::is_x86_feature_detected!("popcnt")
}

/// Candidate offsets of one block, with room for a compress-store's eight lanes past the last.
type Candidates = [u32; BLOCK + 8];

/// The portable sweep over the values from index `from` on: per block, accumulate (which the
/// compiler vectorises), then [`find`], then offer.
fn sweep_blocks(
    from: usize,
    residual: &mut [f32],
    grad: &[f32],
    momentum: Option<(Momentum, &mut [f32])>,
    bar: &mut Bar,
    selected: &mut Vec<(u32, f32)>,
) {
    let n = residual.len().min(grad.len()).min(momentum.as_ref().map_or(usize::MAX, |(_, u)| u.len()));
    let mut momentum = momentum.map(|(m, u)| (m, &mut u[..n]));
    let mut found: Candidates = [0; BLOCK + 8];
    let mut start = from;
    while start < n {
        let end = (start + BLOCK).min(n);
        let (r, g) = (&mut residual[start..end], &grad[start..end]);
        match &mut momentum {
            None => r.iter_mut().zip(g).for_each(|(r, g)| *r += g),
            Some((m, u)) => {
                let (f, u) = (m.factor, &mut u[start..end]);
                if m.nesterov {
                    for ((r, v), g) in r.iter_mut().zip(u.iter_mut()).zip(g) {
                        *v = f * (*v + g);
                        *r += *v + g;
                    }
                } else {
                    for ((r, v), g) in r.iter_mut().zip(u.iter_mut()).zip(g) {
                        *v = f * *v + g;
                        *r += *v;
                    }
                }
            }
        }
        let count = find(r, bar.bar, &mut found, &mut bar.norm2);
        bar.offer(residual, start, &found[..count], selected);
        start = end;
    }
}

/// The offsets in `block` (at most [`BLOCK`] values) of the candidates: at or past `bar` and
/// not zero, in ascending order; the squares of the values below the bar go to `norm2`.
/// Returns how many were found.
fn find(block: &[f32], bar: f32, found: &mut Candidates, norm2: &mut f64) -> usize {
    let (mut count, mut sq) = (0, [0.0f32; LANES]);
    let (groups, tail) = block.as_chunks::<LANES>();
    // The last values padded with zeros, which are never candidates and add nothing to the norm.
    let mut last = [0.0f32; LANES];
    last[..tail.len()].copy_from_slice(tail);
    let groups = groups.iter().chain((!tail.is_empty()).then_some(&last));
    for (c, group) in groups.enumerate() {
        // The candidates of a group (at most LANES) as a bit mask, without a branch per value.
        let mut hits = 0u32;
        for (j, &v) in group.iter().enumerate() {
            hits |= ((v.abs() >= bar && v != 0.0) as u32) << j;
            sq[j] += if v.abs() >= bar { 0.0 } else { v * v };
        }
        while hits != 0 {
            found[count] = (c * LANES + hits.trailing_zeros() as usize) as u32;
            count += 1;
            hits &= hits - 1;
        }
    }
    *norm2 += sq.iter().map(|&x| f64::from(x)).sum::<f64>();
    count
}

/// [`sweep`] in AVX2, eight values at a time in one pass: accumulate, store, test against the
/// bar, and write the candidates' offsets by one compress-store (a permutation from the
/// threshold encoder's table packs the hit lanes to the front; the count advances by their
/// number), with no branch per value or group; a block's candidates are then offered. The last
/// values (fewer than eight) go through [`sweep_blocks`]. Same selection, residual and velocity
/// as the portable sweep; the squares are summed in another order.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
fn sweep_avx2(
    residual: &mut [f32],
    grad: &[f32],
    momentum: Option<(Momentum, &mut [f32])>,
    bar: &mut Bar,
    selected: &mut Vec<(u32, f32)>,
) {
    use std::arch::x86_64::*;
    let n = residual.len().min(grad.len()).min(momentum.as_ref().map_or(usize::MAX, |(_, u)| u.len()));
    let whole = n / 8 * 8;
    let mut momentum = momentum.map(|(m, u)| (m, &mut u[..n]));
    let factor = _mm256_set1_ps(momentum.as_ref().map_or(0.0, |(m, _)| m.factor));
    let (r, g) = (residual.as_mut_ptr(), grad.as_ptr());
    let zero = _mm256_setzero_ps();
    let mut found: Candidates = [0; BLOCK + 8];
    // Every block of `whole`: `$acc` gives the accumulated eight values at `at` (and stores
    // the velocity where there is one).
    macro_rules! blocks {
        ($at:ident => $acc:expr) => {{
            let mut start = 0;
            while start < whole {
                let end = (start + BLOCK).min(whole);
                let bar_v = _mm256_set1_ps(bar.bar);
                let (mut sq, mut count) = ([zero; 2], 0usize);
                // Two accumulators in turn, so the squares' additions do not wait on each other.
                let mut $at = start;
                while $at < end {
                    for sq in sq.iter_mut() {
                        if $at == end {
                            break;
                        }
                        // SAFETY: `at + 8 <= whole <= n`, within `residual`, `grad` and the
                        // velocity; `count <= at - start` and `at - start + 8 <= BLOCK`, so the
                        // eight lanes stored at `count` lie within `found`'s `BLOCK + 8`.
                        unsafe {
                            let v = $acc;
                            _mm256_storeu_ps(r.add($at), v);
                            let offset = ($at - start) as i32;
                            take_eight(v, bar_v, offset, sq, found.as_mut_ptr(), &mut count);
                        }
                        $at += 8;
                    }
                }
                bar.norm2 += crate::backend::cpu_sharing::flush(sq);
                // SAFETY: `r` points at `residual`'s `n` values, and no other access to them
                // happens while this borrow lives.
                let all = unsafe { std::slice::from_raw_parts_mut(r, n) };
                bar.offer(all, start, &found[..count], selected);
                start = end;
            }
        }};
    }
    match momentum.as_mut() {
        None => blocks!(at => _mm256_add_ps(_mm256_loadu_ps(r.add(at)), _mm256_loadu_ps(g.add(at)))),
        Some((m, u)) => {
            let u = u.as_mut_ptr();
            if m.nesterov {
                // v = f·(v + g); r += v + g
                blocks!(at => {
                    let gv = _mm256_loadu_ps(g.add(at));
                    let v = _mm256_mul_ps(factor, _mm256_add_ps(_mm256_loadu_ps(u.add(at)), gv));
                    _mm256_storeu_ps(u.add(at), v);
                    _mm256_add_ps(_mm256_loadu_ps(r.add(at)), _mm256_add_ps(v, gv))
                })
            } else {
                // v = f·v + g; r += v
                blocks!(at => {
                    let v = _mm256_add_ps(_mm256_mul_ps(factor, _mm256_loadu_ps(u.add(at))), _mm256_loadu_ps(g.add(at)));
                    _mm256_storeu_ps(u.add(at), v);
                    _mm256_add_ps(_mm256_loadu_ps(r.add(at)), v)
                })
            }
        }
    }
    sweep_blocks(whole, residual, grad, momentum, bar, selected)
}

/// [`sweep_avx2`]'s test of eight accumulated values `v` at `offset` in their block: the
/// offsets of those at or past `bar` and not zero are compress-stored at `found + count` (a
/// permutation from the threshold encoder's table packs the hit lanes to the front) and
/// `count` advances by their number; the squares of the rest are added to `sq`.
///
/// # Safety
/// `found + count` must have room for eight `u32`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
#[inline]
unsafe fn take_eight(
    v: std::arch::x86_64::__m256,
    bar: std::arch::x86_64::__m256,
    offset: i32,
    sq: &mut std::arch::x86_64::__m256,
    found: *mut u32,
    count: &mut usize,
) {
    use crate::backend::cpu_sharing::COMPRESS;
    use std::arch::x86_64::*;
    let magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
    let past = _mm256_cmp_ps::<_CMP_GE_OQ>(_mm256_and_ps(v, magnitude), bar);
    let moves = _mm256_cmp_ps::<_CMP_NEQ_UQ>(v, _mm256_setzero_ps());
    let hits = _mm256_movemask_ps(_mm256_and_ps(past, moves)) as usize;
    let below = _mm256_andnot_ps(past, v);
    *sq = _mm256_add_ps(*sq, _mm256_mul_ps(below, below));
    let offsets = _mm256_add_epi32(_mm256_set1_epi32(offset), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    // SAFETY: `hits < 256`; the caller guarantees room for eight at `found + count`.
    unsafe {
        let order = _mm256_loadu_si256(COMPRESS[hits].as_ptr().cast());
        _mm256_storeu_si256(found.add(*count).cast(), _mm256_permutevar8x32_epi32(offsets, order));
    }
    *count += hits.count_ones() as usize;
}

/// How many sampled runs ahead of the one being read are fetched.
const AHEAD: usize = 8;

/// Asks the CPU to fetch `len` values from `at` of every stream into cache (a hint: nothing
/// where the architecture has none; `at + len` is within each stream's length or ignored).
fn prefetch(streams: &[&[f32]], at: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    for s in streams {
        if let Some(run) = s.get(at..at + len) {
            for line in run.chunks(16) {
                // SAFETY: a prefetch only hints; the address is within `s`. SSE is baseline on
                // x86-64.
                unsafe {
                    std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                        line.as_ptr().cast(),
                    )
                };
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (streams, at, len);
}

/// The most neighbouring values read per sampled place by [`estimate_threshold`] (four cache
/// lines of f32).
const SAMPLE_RUN: usize = 64;

pub struct TopK {
    info: SchemeInfo,
    density: f64,
    warmup_epochs: f64,
    clip: f32,
    /// DGC's momentum correction: (momentum, Nesterov); None: the updater runs after the sum.
    momentum: Option<(f32, bool)>,
    lr: f32,
    /// With momentum correction: `train.l2`, added to the gradient of the weights (0: none).
    l2: f32,
    weight_ranges: Vec<Range<usize>>,
    /// The model state, read each step where L2 needs the weights.
    state: Vec<f32>,
    grad: Vec<f32>,
    velocity: Vec<f32>,
    residual: Vec<f32>,
    selected: Vec<(u32, f32)>,
    scratch: Vec<f32>,
    message: Vec<u8>,
    rng: Rng,
    gradient: Option<GradientSum>,
}

impl TopK {
    pub fn new(job: &JobSpec, layout: &Layout) -> Self {
        let updater = job.updater();
        let info = super::describe(job);
        let momentum = momentum_corrected(job).then(|| match updater.kind() {
            UpdaterKind::Nesterov => (updater.momentum, true),
            _ => (0.0, false),
        });
        let l2 = if momentum.is_some() { job.train.l2 } else { 0.0 };
        let n = layout.len;
        TopK {
            info,
            density: job.sharing.topk.density as f64,
            warmup_epochs: job.sharing.topk.warmup_epochs as f64,
            clip: job.sharing.topk.clip_norm / (job.cluster.workers.max(1) as f32).sqrt(),
            momentum,
            lr: updater.learning_rate(),
            l2,
            weight_ranges: if l2 > 0.0 { layout.weight_ranges() } else { Vec::new() },
            state: Vec::new(),
            grad: vec![0.0; n],
            velocity: if momentum.is_some() { vec![0.0; n] } else { Vec::new() },
            residual: vec![0.0; n],
            selected: Vec::new(),
            scratch: Vec::new(),
            message: Vec::new(),
            rng: Rng::derive(job.train.seed, 0x70F0_0000),
            gradient: momentum.is_none().then(|| GradientSum::new(n, job)),
        }
    }

    /// Local clipping, L2 (with momentum correction; `self.state` holds the model state), then
    /// the one pass that accumulates and selects (`k`: None sends nothing); returns the
    /// residual's L2 norm after the selection.
    fn accumulate_and_select(&mut self, k: Option<usize>) -> f64 {
        if self.clip > 0.0 {
            let norm = super::l2_norm(&self.grad) as f32;
            if norm > self.clip {
                let s = self.clip / norm;
                self.grad.iter_mut().for_each(|g| *g *= s);
            }
        }
        crate::nn::updater::add_l2(&mut self.grad, &self.state, self.l2, &self.weight_ranges);
        let momentum = self
            .momentum
            .map(|(factor, nesterov)| (Momentum { factor, nesterov }, self.velocity.as_mut_slice()));
        accumulate_and_select(
            &mut self.residual,
            &self.grad,
            momentum,
            k,
            &mut self.rng,
            &mut self.scratch,
            &mut self.selected,
        )
    }
}

impl Scheme for TopK {
    fn info(&self) -> SchemeInfo {
        self.info
    }

    fn step(&mut self, ctx: StepCtx<'_>) -> Result<Figures, TransportError> {
        ctx.backend.read_gradient(&mut self.grad);
        if self.l2 > 0.0 {
            // Sized once; the state is parameters then running state.
            self.state.resize(ctx.backend.state_len(), 0.0);
            ctx.backend.read_state(&mut self.state);
        }
        let n = self.residual.len();
        let density = warmup_density(self.density, self.warmup_epochs, ctx.epochs_done);
        let k = ((density * n as f64).ceil() as usize).clamp(1, n.max(1));
        // With momentum correction the message is the parameter update `rate·v`; the rate
        // travels as the header's tau. A schedule at zero moves nothing: keep everything.
        let rate = if self.momentum.is_some() { self.lr * ctx.lr_scale } else { 1.0 };
        let sendable = rate.is_finite() && rate > 0.0 && rate <= codec::MAX_TAU;
        // A value the f16 wire cannot carry finitely stays in the residual (saturated).
        let norm = self.accumulate_and_select(sendable.then_some(k));
        let mut bytes = 0;
        if !self.selected.is_empty() {
            codec::encode_values(&mut self.message, n, rate, &self.selected, ctx.origin, ctx.step);
            ctx.link.send(&self.message)?;
            bytes = self.message.len() as u64;
        }
        match &mut self.gradient {
            Some(sum) => {
                for &(i, v) in &self.selected {
                    sum.add(i as usize, v);
                }
                sum.apply(ctx.backend, ctx.lr_scale);
            }
            None => {
                if let Ok(view) = MessageView::parse(&self.message, n)
                    && !self.selected.is_empty()
                {
                    ctx.backend.apply_message(&view);
                }
            }
        }
        let sent = self.selected.len() as u64;
        Ok(Figures {
            entries: sent,
            sparsity: sent as f64 / n.max(1) as f64,
            bytes_sent: bytes,
            bytes_received: 0,
            tau: 0.0,
            residual_norm: norm,
            k: k as u64,
            rank: 0,
        })
    }

    fn receive(&mut self, backend: &mut dyn Backend, message: &MessageView<'_>) {
        super::gradient::receive(&mut self.gradient, backend, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::SharingMode;
    use crate::sharing::StepCtx;
    use crate::sharing::testing::{Loopback, ctx, model};

    /// Error feedback loses nothing: what was sent plus the residual is every gradient.
    #[test]
    fn sent_values_plus_the_residual_are_the_gradients() {
        let mut job = JobSpec::default();
        job.sharing.mode = Some(SharingMode::Topk);
        job.cluster.workers = 2;
        job.train.updater.kind = Some(UpdaterKind::Adam);
        job.sharing.topk = crate::job::TopkSpec { density: 0.05, warmup_epochs: 0.0, clip_norm: 0.0 };
        let (arch, mut backend) = model(&mut job);
        let mut topk = TopK::new(&job, arch.layout());
        assert!(topk.momentum.is_none(), "Adam: gradient messages");
        let n = arch.param_count();
        let mut rng = Rng::new(9);
        let mut link = Loopback::default();
        let mut total = vec![0.0f64; n];
        for step in 1..=20 {
            let g: Vec<f32> = (0..n).map(|_| rng.normal() as f32 * 0.1).collect();
            g.iter().zip(&mut total).for_each(|(g, t)| *t += *g as f64);
            backend.write_gradient(&g);
            let f = topk.step(ctx(&mut backend, &mut link, step)).unwrap();
            assert_eq!(f.k, (0.05 * n as f64).ceil() as u64);
            assert!(f.entries > 0 && f.entries <= 2 * f.k, "about k sent: {} of k {}", f.entries, f.k);
        }
        let mut sent = vec![0.0f64; n];
        for m in &link.sent {
            let v = MessageView::parse(m, n).unwrap();
            assert_eq!(v.header.format, codec::Format::Values);
            for (s, d) in sent.iter_mut().zip(v.to_dense()) {
                *s += d as f64;
            }
        }
        for i in 0..n {
            let err = (sent[i] + topk.residual[i] as f64 - total[i]).abs();
            assert!(
                err < 1e-4,
                "entry {i}: sent {} + residual {} != {}",
                sent[i],
                topk.residual[i],
                total[i]
            );
        }
    }

    #[test]
    fn momentum_correction_sends_parameter_updates_the_replica_applies() {
        let mut job = JobSpec::default();
        job.sharing.mode = Some(SharingMode::Topk);
        job.cluster.workers = 2;
        let (arch, mut backend) = model(&mut job);
        assert!(crate::sharing::describe(&job).replica_follows, "Nesterov: the messages are updates");
        let mut topk = TopK::new(&job, arch.layout());
        let before = crate::sharing::testing::params(&mut backend);
        let n = arch.param_count();
        backend.write_gradient(&vec![1.0; n]);
        let mut link = Loopback::default();
        topk.step(StepCtx { lr_scale: 0.5, epochs_done: 10.0, ..ctx(&mut backend, &mut link, 1) }).unwrap();
        let after = crate::sharing::testing::params(&mut backend);
        let view = MessageView::parse(&link.sent[0], n).unwrap();
        assert_eq!(view.header.tau, 0.01 * 0.5, "the step's rate travels as tau");
        let mut expect = before.clone();
        view.subtract_from(&mut expect, 1.0);
        assert_eq!(after, expect, "this replica applied exactly its own message");
        assert!(after.iter().zip(&before).any(|(a, b)| a != b));
    }

    /// With momentum correction L2 joins the gradient of the weights (not biases) before the
    /// velocity, as the updater it replaces would add it.
    #[test]
    fn momentum_correction_adds_l2_to_the_weights_gradient() {
        let mut job = JobSpec::default();
        job.sharing.mode = Some(SharingMode::Topk);
        job.cluster.workers = 2;
        job.sharing.topk = crate::job::TopkSpec { density: 1.0, warmup_epochs: 0.0, clip_norm: 0.0 };
        job.train.updater.kind = Some(UpdaterKind::Sgd);
        let l2 = 0.5;
        job.train.l2 = l2;
        let (arch, mut backend) = model(&mut job);
        let mut topk = TopK::new(&job, arch.layout());
        let n = arch.param_count();
        let before = crate::sharing::testing::params(&mut backend);
        let g: Vec<f32> = (0..n).map(|i| (i % 5) as f32 * 0.25 - 0.5).collect();
        backend.write_gradient(&g);
        let mut link = Loopback::default();
        topk.step(ctx(&mut backend, &mut link, 1)).unwrap();
        let view = MessageView::parse(&link.sent[0], n).unwrap();
        let rate = view.header.tau;
        let sent = view.to_dense();
        let weights = arch.layout().weight_ranges();
        let is_weight = |i: usize| weights.iter().any(|r| r.contains(&i));
        assert!((0..n).any(is_weight) && !(0..n).all(is_weight), "the model has weights and biases");
        for i in 0..n {
            let want = g[i] + if is_weight(i) { l2 * before[i] } else { 0.0 };
            // Every entry is sent (density 1) as an f16 value of the update `rate·v`.
            let got = sent[i] / rate;
            assert!((got - want).abs() <= 2e-3 * want.abs().max(1e-2), "entry {i}: {got} != {want}");
        }
    }

    #[test]
    fn the_warmup_falls_from_a_quarter_to_the_density() {
        assert_eq!(warmup_density(1e-3, 4.0, 0.0), 0.25);
        assert!((warmup_density(1e-3, 4.0, 2.0) - (0.25f64 * 1e-3).sqrt()).abs() < 1e-9);
        assert_eq!(warmup_density(1e-3, 4.0, 4.0), 1e-3);
        assert_eq!(warmup_density(1e-3, 0.0, 0.0), 1e-3, "no warm-up");
    }

    /// The grouped sweep against the same arithmetic one value at a time, for every momentum
    /// mode and a length that leaves a tail: the residual plus what was sent is the
    /// accumulation, sent entries' velocity is cleared, and the returned norm is the residual's.
    #[test]
    fn the_sweep_accumulates_like_one_value_at_a_time() {
        let n = 10_007;
        let mut rng = Rng::new(5);
        let grad: Vec<f32> = (0..n).map(|_| rng.normal() as f32 * 1e-2).collect();
        for mode in [None, Some(false), Some(true)] {
            let f = 0.9f32;
            let mut residual: Vec<f32> = (0..n).map(|i| ((i % 13) as f32 - 6.0) * 1e-3).collect();
            let mut velocity: Vec<f32> = (0..n).map(|i| ((i % 7) as f32 - 3.0) * 1e-3).collect();
            let (mut want_r, mut want_v) = (residual.clone(), velocity.clone());
            for i in 0..n {
                match mode {
                    None => want_r[i] += grad[i],
                    Some(false) => {
                        want_v[i] = f * want_v[i] + grad[i];
                        want_r[i] += want_v[i];
                    }
                    Some(true) => {
                        want_v[i] = f * (want_v[i] + grad[i]);
                        want_r[i] += want_v[i] + grad[i];
                    }
                }
            }
            let momentum = mode.map(|nesterov| (Momentum { factor: f, nesterov }, velocity.as_mut_slice()));
            let (mut scratch, mut selected) = (Vec::new(), Vec::new());
            let norm = accumulate_and_select(
                &mut residual,
                &grad,
                momentum,
                Some(50),
                &mut rng,
                &mut scratch,
                &mut selected,
            );
            assert!((20..=200).contains(&selected.len()), "{mode:?}: {} selected", selected.len());
            let mut sent = vec![0.0f32; n];
            for &(i, v) in &selected {
                sent[i as usize] = v;
            }
            for i in 0..n {
                assert!((residual[i] + sent[i] - want_r[i]).abs() < 1e-6, "{mode:?}: residual {i}");
                if mode.is_some() {
                    let v = if sent[i] != 0.0 { 0.0 } else { want_v[i] };
                    assert!((velocity[i] - v).abs() < 1e-6, "{mode:?}: velocity {i}");
                }
            }
            let want = crate::sharing::l2_norm(&residual);
            assert!((norm - want).abs() <= 1e-5 * want, "{mode:?}: norm {norm} against {want}");
        }
    }

    /// The residual's norm when the sent entries held nearly all of it (only their f16
    /// rounding stays), and when the residual holds a NaN: summed, not subtracted, so neither
    /// cancels to noise nor hides the NaN.
    #[test]
    fn the_norm_is_what_stays_even_when_nearly_everything_is_sent() {
        let n = 1_000;
        let grad: Vec<f32> = (0..n).map(|i| if i % 100 == 3 { 1.0 + i as f32 * 1e-4 } else { 0.0 }).collect();
        let (mut rng, mut scratch, mut selected) = (Rng::new(1), Vec::new(), Vec::new());
        let mut residual = vec![0.0f32; n];
        let norm = accumulate_and_select(
            &mut residual,
            &grad,
            None,
            Some(10),
            &mut rng,
            &mut scratch,
            &mut selected,
        );
        assert_eq!(selected.len(), 10);
        let want = crate::sharing::l2_norm(&residual);
        assert!(want > 0.0 && (norm - want).abs() <= 1e-9 * want.max(1e-30), "{norm} against {want}");
        let mut grad = grad;
        grad[500] = f32::NAN;
        let norm = accumulate_and_select(
            &mut residual,
            &grad,
            None,
            Some(10),
            &mut rng,
            &mut scratch,
            &mut selected,
        );
        assert!(norm.is_nan(), "a NaN in the residual shows in its norm: {norm}");
        assert!(selected.iter().all(|e| e.1.is_finite()), "a NaN is never sent");
    }

    /// A sample that lands below a cliff (0.1% large values, the rest tiny) would pick nearly
    /// everything: the bar rises during the pass, the exact top k is sent, in index order.
    #[test]
    fn a_threshold_below_a_cliff_still_sends_the_top_k() {
        let n = 100_000;
        let grad: Vec<f32> =
            (0..n).map(|i| if i % 1000 == 7 { 1.0 + i as f32 * 1e-6 } else { 1e-9 }).collect();
        let k = 100;
        let (mut scratch, mut selected) = (Vec::new(), Vec::new());
        for seed in 0..20 {
            let mut residual = vec![0.0f32; n];
            let mut rng = Rng::new(seed);
            accumulate_and_select(&mut residual, &grad, None, Some(k), &mut rng, &mut scratch, &mut selected);
            assert!(selected.len() <= 2 * k, "seed {seed}: {} selected", selected.len());
            assert!(selected.windows(2).all(|w| w[0].0 < w[1].0), "in index order");
            // About k (the bar is a sample's estimate), and never a tiny value before a large one.
            let large = selected.iter().filter(|e| e.1 >= 1.0).count();
            assert!(large >= k / 2, "seed {seed}: {large} large values sent");
            assert!(large == selected.len() || large == 100, "seed {seed}: a tiny value beat a large one");
            // Error feedback: what was sent plus what stays is the gradient.
            for &(i, v) in &selected {
                assert!((residual[i as usize] + v - grad[i as usize]).abs() < 1e-3);
            }
        }
    }

    #[test]
    fn the_sampled_threshold_keeps_about_k() {
        let mut rng = Rng::new(5);
        let values: Vec<f32> = (0..200_000).map(|_| rng.normal() as f32).collect();
        let mut scratch = Vec::new();
        for k in [200, 2_000, 20_000] {
            let t = estimate_threshold(&values, k, &mut rng, &mut scratch);
            let above = values.iter().filter(|v| v.abs() >= t).count();
            assert!(above as f64 > 0.5 * k as f64 && (above as f64) < 2.0 * k as f64, "k {k}: {above}");
        }
        assert_eq!(estimate_threshold(&values, 200_000, &mut rng, &mut scratch), 0.0);
    }

    /// The AVX2 pass selects what the portable sweep selects, in the same order, and leaves
    /// the same residual and velocity bit for bit, for every momentum mode, lengths around the
    /// vector width and the block, bars that keep everything, some, or force the bar to rise,
    /// zeros of both signs, infinities and NaN; the norms agree to rounding.
    #[test]
    fn avx2_pass_is_the_portable_sweep() {
        #[cfg(target_arch = "x86_64")]
        {
            if !avx2_popcnt() {
                return;
            }
            let mut rng = Rng::new(11);
            let specials = [0.0f32, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 3.0, -3.0];
            let values = |len: usize, rng: &mut Rng| -> Vec<f32> {
                (0..len)
                    .map(|_| match rng.below(50) {
                        0 => specials[rng.below(specials.len() as u64) as usize],
                        1..=4 => rng.normal() as f32 * 4.0,
                        _ => rng.normal() as f32 * 0.1,
                    })
                    .collect()
            };
            let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            for len in [0, 1, 7, 8, 9, 100, BLOCK - 1, BLOCK, BLOCK + 9, 3 * BLOCK + 5] {
                for mode in [None, Some(false), Some(true)] {
                    for (bar, k) in [(0.0f32, len.max(1)), (1.0, len.max(1)), (0.5, 3)] {
                        let (residual, grad, velocity) =
                            (values(len, &mut rng), values(len, &mut rng), values(len, &mut rng));
                        let run = |avx2: bool| {
                            let (mut r, mut u) = (residual.clone(), velocity.clone());
                            let momentum =
                                mode.map(|nesterov| (Momentum { factor: 0.9, nesterov }, u.as_mut_slice()));
                            let (mut b, mut selected) = (Bar::new(bar, k), Vec::new());
                            if avx2 {
                                // SAFETY: the CPU supports AVX2 and POPCNT, checked above.
                                unsafe { sweep_avx2(&mut r, &grad, momentum, &mut b, &mut selected) };
                            } else {
                                sweep_blocks(0, &mut r, &grad, momentum, &mut b, &mut selected);
                            }
                            (r, u, selected, b)
                        };
                        let ((ra, ua, sa, ba), (rb, ub, sb, bb)) = (run(false), run(true));
                        let case = format!("len {len}, momentum {mode:?}, bar {bar}, k {k}");
                        assert_eq!(bits(&ra), bits(&rb), "{case}: residual");
                        assert_eq!(bits(&ua), bits(&ub), "{case}: velocity");
                        let entries =
                            |s: &[(u32, f32)]| s.iter().map(|e| (e.0, e.1.to_bits())).collect::<Vec<_>>();
                        assert_eq!(entries(&sa), entries(&sb), "{case}: selected");
                        assert_eq!(
                            (ba.bar.to_bits(), ba.raised),
                            (bb.bar.to_bits(), bb.raised),
                            "{case}: bar"
                        );
                        let close = (ba.norm2 - bb.norm2).abs() <= 1e-5 * ba.norm2.abs().max(1.0);
                        assert!(
                            close || (ba.norm2.is_nan() && bb.norm2.is_nan()),
                            "{case}: {} {}",
                            ba.norm2,
                            bb.norm2
                        );
                    }
                }
            }
        }
    }

    /// Where all but the top 1% hold one same value, a sample with slightly fewer large values
    /// than expected lands on the tie: the bar goes just above it, not to a value that
    /// everything passes. (The sample holds about 100 large values here, so never fewer than
    /// the half of that which the rule asks for.)
    #[test]
    fn a_tie_at_the_estimate_does_not_let_everything_through() {
        let mut rng = Rng::new(9);
        let n = 2_000_000;
        let values: Vec<f32> = (0..n).map(|_| if rng.next_f64() < 0.01 { 1.0 } else { 1e-6 }).collect();
        let large = values.iter().filter(|&&v| v == 1.0).count();
        let mut scratch = Vec::new();
        for _ in 0..20 {
            let t = estimate_threshold(&values, large, &mut rng, &mut scratch);
            let above = values.iter().filter(|v| v.abs() >= t).count();
            assert_eq!(above, large, "bar {t}");
        }
    }
}
