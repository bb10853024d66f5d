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
    let a = match ta {
        Op::N => View { data: a, rs: k, cs: 1 },
        Op::T => View { data: a, rs: 1, cs: m },
    };
    let b = match tb {
        Op::N => View { data: b, rs: n, cs: 1 },
        Op::T => View { data: b, rs: 1, cs: k },
    };
    gemm_view(m, n, k, a, b, c, n, accumulate, threads)
}

/// A matrix read in place: element (i, j) is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub struct View<'a, F> {
    pub data: &'a [F],
    pub rs: usize,
    pub cs: usize,
}

impl<F> View<'_, F> {
    /// Whether every element of a rows x cols matrix lies inside `data`.
    fn holds(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }
}

/// `c = a · b + (accumulate ? c : 0)` with a m x k, b k x n and c m x n, rows `ldc` apart in
/// `c` (a band of rows of a wider matrix, say).
#[allow(clippy::too_many_arguments)]
pub fn gemm_view<F: Real>(
    m: usize,
    n: usize,
    k: usize,
    a: View<'_, F>,
    b: View<'_, F>,
    c: &mut [F],
    ldc: usize,
    accumulate: bool,
    threads: usize,
) {
    assert!(ldc >= n, "gemm: output rows overlap");
    assert!(
        a.holds(m, k) && b.holds(k, n) && (m == 0 || n == 0 || (m - 1) * ldc + n <= c.len()),
        "gemm operands too short"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c.chunks_mut(ldc).take(m).for_each(|row| row[..n].fill(F::zero()));
        }
        return;
    }
    let parallelism =
        if threads > 1 { ::gemm::Parallelism::Rayon(threads) } else { ::gemm::Parallelism::None };
    IN_PRODUCT.with(|f| f.set(true));
    // SAFETY: the asserts above keep every index the strides reach inside the slices (a: up to
    // (m-1)·rs + (k-1)·cs, b likewise, c: (m-1)·ldc + n - 1); `c` does not alias `a` or `b` (a
    // unique borrow), and rows of `c` do not overlap (ldc >= n).
    unsafe {
        ::gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            ldc as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
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
                // The same product into a band of a wider matrix: the rest is untouched.
                let ldc = n + 3;
                let mut wide = vec![7.0; m * ldc];
                let va = if ta == Op::N {
                    View { data: &a[..], rs: k, cs: 1 }
                } else {
                    View { data: &a[..], rs: 1, cs: m }
                };
                let vb = if tb == Op::N {
                    View { data: &b[..], rs: n, cs: 1 }
                } else {
                    View { data: &b[..], rs: 1, cs: k }
                };
                gemm_view(m, n, k, va, vb, &mut wide, ldc, false, 1);
                for i in 0..m {
                    for j in 0..ldc {
                        let v = wide[i * ldc + j];
                        if j < n {
                            assert!((v - expect[i * n + j]).abs() < 1e-12);
                        } else {
                            assert_eq!(v, 7.0);
                        }
                    }
                }
            }
        }
    }
}
