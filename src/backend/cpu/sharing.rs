//! The CPU's sharing primitives over plain slices: residual accumulation, selection of the
//! entries at or past tau, scatter-subtraction of quanta and clipping. The threshold scheme
//! that composes them lives in `sharing/`.

use std::ops::Range;

use crate::sharing::quantum;

/// `residual += update`.
pub fn add(residual: &mut [f32], update: &[f32]) {
    residual.iter_mut().zip(update).for_each(|(r, &u)| *r += u);
}

const LANES: usize = 16;

/// Appends every entry with `|r| >= tau` to `out` (ascending, sign in bit 31) and writes, per
/// segment, the squared L2 norm the residual will have once the quanta are subtracted. The
/// segments partition the buffer in order.
pub fn select(residual: &[f32], tau: f32, segments: &[Range<usize>], out: &mut Vec<u32>, norm2: &mut [f64]) {
    out.clear();
    each_segment(segments, norm2, |seg, avx2| {
        let _ = avx2; // used only on x86-64
        #[cfg(target_arch = "x86_64")]
        if avx2 {
            // SAFETY: the CPU supports AVX2 (each_segment checked).
            return unsafe { select_segment_avx2(residual, seg, tau, out) };
        }
        select_segment(residual, seg, tau, out)
    });
}

/// Whether the CPU runs AVX2 (checked at run time: one portable binary is copied to SSH hosts
/// and Spark executors). The one check behind every AVX2 choice of the sharing kernels.
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// No AVX2 off x86-64.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
pub fn avx2() -> bool {
    false
}

/// Runs `segment` over the segments in order and writes each one's result into `norm2`. One
/// portable binary (it is copied to SSH hosts and Spark executors): the loops are compiled a
/// second time for AVX2, and `segment` learns whether the CPU has it (checked once).
fn each_segment(
    segments: &[Range<usize>],
    norm2: &mut [f64],
    mut segment: impl FnMut(Range<usize>, bool) -> f64,
) {
    let avx2 = avx2();
    debug_assert_eq!(segments.len(), norm2.len(), "one norm per segment");
    for (seg, n2) in segments.iter().zip(norm2.iter_mut()) {
        *n2 = segment(seg.clone(), avx2);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn select_segment_avx2(residual: &[f32], seg: Range<usize>, tau: f32, out: &mut Vec<u32>) -> f64 {
    select_segment(residual, seg, tau, out)
}

#[inline(always)]
fn select_segment(residual: &[f32], seg: Range<usize>, tau: f32, out: &mut Vec<u32>) -> f64 {
    let base = seg.start;
    let r = &residual[seg];
    let (chunks, tail) = r.as_chunks::<LANES>();
    let mut norm = LaneNorm::default();
    for (c, chunk) in chunks.iter().enumerate() {
        let mut after = *chunk;
        if chunk.iter().fold(false, |hit, v| hit | (v.abs() >= tau)) {
            take_quanta(&mut after, base + c * LANES, tau, out);
        }
        norm.add(&after, c);
    }
    let mut last = [0.0f32; LANES];
    let last = &mut last[..tail.len()];
    last.copy_from_slice(tail);
    take_quanta(last, base + chunks.len() * LANES, tau, out);
    norm.total(last)
}

/// `residual += update`, [`select`] and the selected quanta subtracted from the residual, in
/// one pass over the buffers (threshold encoding's step; `select` alone leaves the residual
/// as it is, for backends that subtract later).
pub fn add_select(
    residual: &mut [f32],
    update: &[f32],
    tau: f32,
    segments: &[Range<usize>],
    out: &mut Vec<u32>,
    norm2: &mut [f64],
) {
    out.clear();
    each_segment(segments, norm2, |seg, avx2| {
        let _ = avx2; // used only on x86-64
        #[cfg(target_arch = "x86_64")]
        if avx2 {
            // SAFETY: the CPU supports AVX2 (each_segment checked).
            return unsafe { add_select_segment_avx2(residual, update, seg, tau, out) };
        }
        add_select_segment(residual, update, seg, tau, out)
    });
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn add_select_segment_avx2(
    residual: &mut [f32],
    update: &[f32],
    seg: Range<usize>,
    tau: f32,
    out: &mut Vec<u32>,
) -> f64 {
    add_select_segment(residual, update, seg, tau, out)
}

#[inline(always)]
fn add_select_segment(
    residual: &mut [f32],
    update: &[f32],
    seg: Range<usize>,
    tau: f32,
    out: &mut Vec<u32>,
) -> f64 {
    let base = seg.start;
    let (r, u) = (&mut residual[seg.clone()], &update[seg]);
    let (chunks, tail) = r.as_chunks_mut::<LANES>();
    let (uc, ut) = u.as_chunks::<LANES>();
    let mut norm = LaneNorm::default();
    for (c, (r, u)) in chunks.iter_mut().zip(uc).enumerate() {
        let mut hit = false;
        for k in 0..LANES {
            r[k] += u[k];
            hit |= r[k].abs() >= tau;
        }
        if hit {
            take_quanta(r, base + c * LANES, tau, out);
        }
        norm.add(r, c);
    }
    let start = base + chunks.len() * LANES;
    for (r, u) in tail.iter_mut().zip(ut) {
        *r += u;
    }
    take_quanta(tail, start, tau, out);
    norm.total(tail)
}

/// Takes one ±tau quantum out of every value of `group` (at most [`LANES`] values) at or past
/// tau, the first at index `base`, and appends it to `out`: the hits are found as bit masks
/// without a branch per value, then visited in ascending order. Kept out of line: most groups
/// have none, and the sweep's loop stays small.
#[inline(never)]
fn take_quanta(group: &mut [f32], base: usize, tau: f32, out: &mut Vec<u32>) {
    debug_assert!(group.len() <= LANES);
    let (mut pos, mut neg) = (0u32, 0u32);
    for (k, a) in group.iter().enumerate() {
        pos |= ((*a >= tau) as u32) << k;
        neg |= ((*a <= -tau) as u32) << k;
    }
    let mut hits = pos | neg;
    while hits != 0 {
        let k = hits.trailing_zeros() as usize;
        hits &= hits - 1;
        let negative = (neg >> k) & 1 == 1;
        group[k] -= if negative { -tau } else { tau };
        out.push(quantum::pack(base + k, negative));
    }
}

/// A squared L2 norm summed in f32 lanes (so it vectorises), flushed to f64 now and then so
/// long buffers keep their precision.
#[derive(Default)]
struct LaneNorm {
    lanes: [f32; LANES],
    total: f64,
}

impl LaneNorm {
    /// Adds group `c` of a segment.
    #[inline(always)]
    fn add(&mut self, group: &[f32; LANES], c: usize) {
        for (acc, a) in self.lanes.iter_mut().zip(group) {
            *acc += a * a;
        }
        if c % 1024 == 1023 {
            self.total += self.lanes.iter().map(|&x| x as f64).sum::<f64>();
            self.lanes = [0.0; LANES];
        }
    }

    /// The sum, with the segment's last values (fewer than a group).
    #[inline(always)]
    fn total(self, tail: &[f32]) -> f64 {
        self.total
            + self.lanes.iter().map(|&x| x as f64).sum::<f64>()
            + tail.iter().map(|&a| (a as f64) * (a as f64)).sum::<f64>()
    }
}

/// `buf[i] -= ±tau` for every selected entry.
pub fn scatter_subtract(buf: &mut [f32], selected: &[u32], tau: f32) {
    for &q in selected {
        buf[quantum::index(q)] -= quantum::value(q, tau);
    }
}

pub fn clip(buf: &mut [f32], limit: f32) {
    buf.iter_mut().for_each(|r| *r = r.clamp(-limit, limit));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fused pass is the three steps one after the other: the same quanta in the same
    /// order, the same residual, the same norms, over segments that leave partial groups.
    #[test]
    fn add_select_is_add_then_select_then_subtract() {
        let n = 5_003;
        let mut rng = crate::rng::Rng::new(9);
        let update: Vec<f32> = (0..n).map(|_| rng.normal() as f32 * 0.3).collect();
        let start: Vec<f32> = (0..n).map(|_| rng.normal() as f32 * 0.3).collect();
        let segments = [0..17, 17..2_048, 2_048..2_049, 2_049..n];
        for tau in [0.05f32, 0.5, 3.0, 100.0] {
            let (mut a, mut b) = (start.clone(), start.clone());
            let (mut qa, mut qb) = (Vec::new(), Vec::new());
            let (mut na, mut nb) = ([0.0; 4], [0.0; 4]);
            add(&mut a, &update);
            select(&a, tau, &segments, &mut qa, &mut na);
            scatter_subtract(&mut a, &qa, tau);
            add_select(&mut b, &update, tau, &segments, &mut qb, &mut nb);
            assert_eq!(qa, qb, "tau {tau}");
            assert_eq!(a, b, "tau {tau}");
            for (x, y) in na.iter().zip(&nb) {
                assert!((x - y).abs() <= 1e-6 * x.max(1e-12), "tau {tau}: norm {x} against {y}");
            }
        }
    }
}
