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

/// The fused pass in AVX2, eight values at a time: the quanta are subtracted as a vector (zero
/// where there is none) and a group's quanta are written to `out` by one compress-store (a
/// permutation from [`COMPRESS`] packs the hit lanes to the front; the pointer advances by
/// their count). Where quanta are dense (density 1e-2: one group of sixteen in six has one)
/// every group is stored without a branch, since the portable loop's branch per group with a
/// hit mispredicts there; where they are rare a branch skips the empty groups. Same quanta,
/// same order, same residual as [`add_select_segment`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn add_select_segment_avx2(
    residual: &mut [f32],
    update: &[f32],
    seg: Range<usize>,
    tau: f32,
    out: &mut Vec<u32>,
) -> f64 {
    use std::arch::x86_64::*;
    let base = seg.start;
    let (r, u) = (&mut residual[seg.clone()], &update[seg]);
    let whole = r.len() / 8 * 8;
    let (tau_v, neg_tau_v) = (_mm256_set1_ps(tau), _mm256_set1_ps(-tau));
    let sign = _mm256_set1_epi32(quantum::NEG as i32);
    let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    // Two accumulators of eight: the portable loop's sixteen f32 lanes, flushed as often.
    let mut total = 0.0f64;
    let mut acc = [_mm256_setzero_ps(); 2];
    // One group of eight: the residual updated and its quanta compress-stored at `dst + len`
    // (with `$branch`, only when it has any).
    macro_rules! group {
        ($at:expr, $dst:expr, $len:expr, $branch:expr) => {{
            let at = $at;
            // SAFETY: `at + 8 <= whole <= r.len() == u.len()`; `out` has room for eight more
            // entries past `len` (the block's reserve below: a group adds at most eight).
            unsafe {
                let v =
                    _mm256_add_ps(_mm256_loadu_ps(r.as_ptr().add(at)), _mm256_loadu_ps(u.as_ptr().add(at)));
                let pos = _mm256_cmp_ps::<_CMP_GE_OQ>(v, tau_v);
                let neg = _mm256_cmp_ps::<_CMP_LE_OQ>(v, neg_tau_v);
                let quanta = _mm256_or_ps(_mm256_and_ps(pos, tau_v), _mm256_and_ps(neg, neg_tau_v));
                let after = _mm256_sub_ps(v, quanta);
                _mm256_storeu_ps(r.as_mut_ptr().add(at), after);
                let k = (at / 8) % 2;
                acc[k] = _mm256_add_ps(acc[k], _mm256_mul_ps(after, after));
                let hits = _mm256_movemask_ps(_mm256_or_ps(pos, neg)) as usize;
                if !$branch || hits != 0 {
                    let index = _mm256_add_epi32(_mm256_set1_epi32((base + at) as i32), lane);
                    let packed = _mm256_or_si256(index, _mm256_and_si256(_mm256_castps_si256(neg), sign));
                    let order = _mm256_loadu_si256(COMPRESS[hits].as_ptr().cast());
                    _mm256_storeu_si256($dst.add($len).cast(), _mm256_permutevar8x32_epi32(packed, order));
                    $len += hits.count_ones() as usize;
                }
            }
        }};
    }
    // Blocks of 1,024 groups of sixteen (where the portable loop flushes its norm). A block
    // after a sparse one branches past groups with no quanta (predicted well when they are
    // rare); after a denser one (above 1 in 256 values) it stores every group without a branch.
    let mut at = 0;
    let mut sparse = true;
    while at < whole {
        let end = (at + 1024 * LANES).min(whole);
        out.reserve(end - at);
        let before = out.len();
        let mut len = before;
        let dst = out.as_mut_ptr();
        if sparse {
            while at < end {
                group!(at, dst, len, true);
                at += 8;
            }
        } else {
            while at < end {
                group!(at, dst, len, false);
                at += 8;
            }
        }
        // SAFETY: the entries up to `len` were written above, within the reserved capacity.
        unsafe { out.set_len(len) };
        sparse = (len - before) * 256 < 1024 * LANES;
        total += flush(acc);
        acc = [_mm256_setzero_ps(); 2];
    }
    let tail = &mut r[whole..];
    let tail_start = base + whole;
    // The last values (fewer than eight) as the portable loop takes them.
    for (v, &d) in tail.iter_mut().zip(&u[whole..]) {
        *v += d;
    }
    take_quanta(tail, tail_start, tau, out);
    total + tail.iter().map(|&a| (a as f64) * (a as f64)).sum::<f64>()
}

/// The sum of two accumulators' sixteen lanes, in f64 (top-k's AVX2 sweep sums its squares
/// with it too).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) fn flush(acc: [std::arch::x86_64::__m256; 2]) -> f64 {
    use std::arch::x86_64::_mm256_storeu_ps;
    let mut lanes = [0.0f32; 16];
    // SAFETY: `lanes` holds sixteen f32.
    unsafe {
        _mm256_storeu_ps(lanes.as_mut_ptr(), acc[0]);
        _mm256_storeu_ps(lanes.as_mut_ptr().add(8), acc[1]);
    }
    lanes.iter().map(|&x| x as f64).sum()
}

/// For each mask of eight lanes, the set lanes first, in ascending order (the rest: lane 0,
/// written past the end and overwritten by the next group). Top-k's candidate search uses it
/// too.
#[cfg(target_arch = "x86_64")]
pub(crate) static COMPRESS: [[u32; 8]; 256] = {
    let mut table = [[0u32; 8]; 256];
    let mut mask = 0;
    while mask < 256 {
        let (mut lane, mut to) = (0, 0);
        while lane < 8 {
            if (mask >> lane) & 1 == 1 {
                table[mask][to] = lane as u32;
                to += 1;
            }
            lane += 1;
        }
        mask += 1;
    }
    table
};

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

    /// The AVX2 compress-store pass and the portable loop agree bit for bit on the quanta and
    /// the residual, across its blocks (more than 16,384 values in a segment), at densities
    /// from none to all, with NaN and infinities in the residual.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn avx2_pass_is_the_portable_pass() {
        if !avx2() {
            return;
        }
        let n = 70_001;
        let mut rng = crate::rng::Rng::new(4);
        let update: Vec<f32> = (0..n).map(|_| rng.normal() as f32 * 0.3).collect();
        let mut start: Vec<f32> = (0..n).map(|_| rng.normal() as f32 * 0.3).collect();
        start[5] = f32::NAN;
        start[40_000] = f32::INFINITY;
        start[40_001] = f32::NEG_INFINITY;
        let segments = [0..9, 9..16_393, 16_393..16_400, 16_400..n];
        for tau in [1e-3f32, 0.3, 0.9, 1.2, 2.0, 1e9] {
            for seg in &segments {
                let (mut a, mut b) = (start.clone(), start.clone());
                let (mut qa, mut qb) = (vec![7], vec![7]);
                let na = add_select_segment(&mut a, &update, seg.clone(), tau, &mut qa);
                // SAFETY: the CPU supports AVX2 (checked above).
                let nb = unsafe { add_select_segment_avx2(&mut b, &update, seg.clone(), tau, &mut qb) };
                assert_eq!(qa, qb, "tau {tau}, segment {seg:?}");
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&a), bits(&b), "tau {tau}, segment {seg:?}");
                assert!(
                    na == nb || (na - nb).abs() <= 1e-6 * na.abs() || (na.is_nan() && nb.is_nan()),
                    "tau {tau}, segment {seg:?}: norm {na} against {nb}"
                );
            }
        }
    }
}
