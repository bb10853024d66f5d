//! Sums over slices that vectorise: eight independent partial sums (a plain `iter().sum()` is
//! one serial chain of additions, which the compiler may not reorder for floats). The order of
//! additions differs from a serial sum by rounding only.

use crate::nn::Real;

const LANES: usize = 8;

/// Σ f(x_i), with `f` applied per element.
#[inline]
fn sum_by<F: Real>(xs: &[F], f: impl Fn(F) -> F) -> F {
    let mut acc = [F::zero(); LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a = *a + f(x);
        }
    }
    let mut total = tail.iter().fold(F::zero(), |s, &x| s + f(x));
    for a in acc {
        total = total + a;
    }
    total
}

/// Σ x_i.
#[inline]
pub fn sum<F: Real>(xs: &[F]) -> F {
    sum_by(xs, |x| x)
}

/// Σ (x_i - mean)².
#[inline]
pub fn sum_sq_dev<F: Real>(xs: &[F], mean: F) -> F {
    sum_by(xs, |x| (x - mean) * (x - mean))
}

/// (Σ a_i·b_i, Σ a_i).
#[inline]
pub fn dot_and_sum<F: Real>(a: &[F], b: &[F]) -> (F, F) {
    let (mut d, mut s) = ([F::zero(); LANES], [F::zero(); LANES]);
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..LANES {
            d[k] = d[k] + x[k] * y[k];
            s[k] = s[k] + x[k];
        }
    }
    let (mut dot, mut total) = (F::zero(), F::zero());
    for (&x, &y) in ta.iter().zip(tb) {
        dot = dot + x * y;
        total = total + x;
    }
    for k in 0..LANES {
        dot = dot + d[k];
        total = total + s[k];
    }
    (dot, total)
}

/// Adds each row of `rows` (back to back, `acc.len()` values each) into `acc`: a bias's
/// gradient is the column sums of its layer's output gradient.
pub fn add_rows<F: Real>(acc: &mut [F], rows: &[F]) {
    for row in rows.chunks_exact(acc.len()) {
        acc.iter_mut().zip(row).for_each(|(s, &v)| *s = *s + v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_match_serial_sums_for_every_length() {
        for n in [0usize, 1, 7, 8, 9, 16, 31, 100] {
            let a: Vec<f64> = (0..n).map(|i| (i as f64 * 0.7).sin()).collect();
            let b: Vec<f64> = (0..n).map(|i| (i as f64 * 0.3).cos()).collect();
            let close = |x: f64, y: f64| (x - y).abs() < 1e-12;
            assert!(close(sum(&a), a.iter().sum()));
            let mean = 0.25;
            assert!(close(sum_sq_dev(&a, mean), a.iter().map(|x| (x - mean) * (x - mean)).sum()));
            let (d, s) = dot_and_sum(&a, &b);
            assert!(close(d, a.iter().zip(&b).map(|(x, y)| x * y).sum()) && close(s, a.iter().sum()));
        }
    }
}
