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
    // One portable binary (it is copied to SSH hosts and Spark executors), with the loop
    // compiled a second time for AVX2 and chosen at run time.
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        for (seg, n2) in segments.iter().zip(norm2.iter_mut()) {
            // SAFETY: the CPU supports AVX2, checked just above.
            *n2 = unsafe { select_segment_avx2(residual, seg.clone(), tau, out) };
        }
        return;
    }
    for (seg, n2) in segments.iter().zip(norm2.iter_mut()) {
        *n2 = select_segment(residual, seg.clone(), tau, out);
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
    let mut total = 0.0f64;
    let mut lane_sq = [0.0f32; LANES];
    for (c, chunk) in chunks.iter().enumerate() {
        let mut hit = false;
        let mut after = [0.0f32; LANES];
        for k in 0..LANES {
            let v = chunk[k];
            hit |= v.abs() >= tau;
            after[k] = v;
        }
        if hit {
            for (k, a) in after.iter_mut().enumerate() {
                if *a >= tau {
                    *a -= tau;
                    out.push(quantum::pack(base + c * LANES + k, false));
                } else if *a <= -tau {
                    *a += tau;
                    out.push(quantum::pack(base + c * LANES + k, true));
                }
            }
        }
        for (acc, a) in lane_sq.iter_mut().zip(after) {
            *acc += a * a;
        }
        // Flush the f32 lane sums now and then so long buffers keep their precision.
        if c % 1024 == 1023 {
            total += lane_sq.iter().map(|&x| x as f64).sum::<f64>();
            lane_sq = [0.0; LANES];
        }
    }
    total += lane_sq.iter().map(|&x| x as f64).sum::<f64>();
    let start = base + chunks.len() * LANES;
    for (k, &v) in tail.iter().enumerate() {
        let mut a = v;
        if a >= tau {
            a -= tau;
            out.push(quantum::pack(start + k, false));
        } else if a <= -tau {
            a += tau;
            out.push(quantum::pack(start + k, true));
        }
        total += (a as f64) * (a as f64);
    }
    total
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
