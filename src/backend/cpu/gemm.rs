//! Matrix products for the CPU kernels, on the `gemm` crate (AVX-512, AVX2 and FMA kernels
//! chosen at run time; f32 for training, f64 for gradient checks). All matrices are row-major.

use std::cell::Cell;

use crate::nn::Real;

thread_local! {
    static IN_PRODUCT: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread is inside a `gemm` crate product right now. The crate allocates its
/// packing buffers there; tests/no_alloc.rs uses this to hold Strom's own code to zero
/// allocations per step while naming the crate's share separately.
pub fn in_product() -> bool {
    IN_PRODUCT.with(Cell::get)
}

/// Which operand is read transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    N,
    T,
}

/// `c = op(a) · op(b) + (accumulate ? c : 0)` with op(a) m x k, op(b) k x n, c m x n.
/// `threads` > 1 splits the product over the current rayon pool.
#[allow(clippy::too_many_arguments)]
pub fn gemm<F: Real>(
    m: usize,
    n: usize,
    k: usize,
    a: &[F],
    ta: Op,
    b: &[F],
    tb: Op,
    c: &mut [F],
    accumulate: bool,
    threads: usize,
) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n, "gemm operands too short");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(F::zero());
        }
        return;
    }
    // (row stride, column stride) of each operand as stored.
    let (a_rs, a_cs) = match ta {
        Op::N => (k as isize, 1),
        Op::T => (1, m as isize),
    };
    let (b_rs, b_cs) = match tb {
        Op::N => (n as isize, 1),
        Op::T => (1, k as isize),
    };
    let parallelism =
        if threads > 1 { ::gemm::Parallelism::Rayon(threads) } else { ::gemm::Parallelism::None };
    IN_PRODUCT.with(|f| f.set(true));
    // SAFETY: the asserts above keep every index the strides reach inside the slices; `c` does
    // not alias `a` or `b` (a unique borrow).
    unsafe {
        ::gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            F::one(),
            F::one(),
            false,
            false,
            false,
            parallelism,
        )
    }
    IN_PRODUCT.with(|f| f.set(false));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: &[f64], ta: Op, b: &[f64], tb: Op) -> Vec<f64> {
        let at = |i: usize, p: usize| if ta == Op::N { a[i * k + p] } else { a[p * m + i] };
        let bt = |p: usize, j: usize| if tb == Op::N { b[p * n + j] } else { b[j * k + p] };
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| at(i, p) * bt(p, j)).sum();
            }
        }
        c
    }

    #[test]
    fn every_transpose_combination_matches_the_naive_product() {
        let (m, n, k) = (7, 5, 9);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.11).cos()).collect();
        for ta in [Op::N, Op::T] {
            for tb in [Op::N, Op::T] {
                let expect = naive(m, n, k, &a, ta, &b, tb);
                let mut c = vec![1.0; m * n];
                gemm(m, n, k, &a, ta, &b, tb, &mut c, true, 1);
                for (x, e) in c.iter().zip(&expect) {
                    assert!((x - (e + 1.0)).abs() < 1e-12, "{ta:?}{tb:?}");
                }
                let mut c32 = vec![0.0f32; m * n];
                let (a32, b32): (Vec<f32>, Vec<f32>) =
                    (a.iter().map(|&x| x as f32).collect(), b.iter().map(|&x| x as f32).collect());
                gemm(m, n, k, &a32, ta, &b32, tb, &mut c32, false, 2);
                for (x, e) in c32.iter().zip(&expect) {
                    assert!((*x as f64 - e).abs() < 1e-5);
                }
            }
        }
    }
}
