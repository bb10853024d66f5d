use std::time::Instant;
use strom::backend::gemm::{Op, gemm};
fn main() {
    for &(m, n, k, ta, tb, name) in &[
        (16, 784, 144, Op::N, Op::N, "fwd s1"),
        (16, 144, 784, Op::N, Op::T, "dW s1"),
        (144, 16, 784, Op::N, Op::T, "dWt s1 (cols·dzT)"),
        (144, 784, 16, Op::T, Op::N, "dcols s1"),
        (64, 49, 576, Op::N, Op::N, "fwd s3"),
        (64, 576, 49, Op::N, Op::T, "dW s3"),
        (64, 49 * 8, 576, Op::N, Op::N, "fwd s3 x8"),
        (16, 784 * 8, 144, Op::N, Op::N, "fwd s1 x8"),
        (16, 144, 784 * 8, Op::N, Op::T, "dW s1 x8"),
    ] {
        let a = vec![0.5f32; m * k];
        let b = vec![0.25f32; k * n];
        let mut c = vec![0f32; m * n];
        let iters = 2000;
        for _ in 0..50 {
            gemm(m, n, k, &a, ta, &b, tb, &mut c, true, 1);
        }
        let t = Instant::now();
        for _ in 0..iters {
            gemm(m, n, k, &a, ta, &b, tb, &mut c, true, 1);
        }
        let s = t.elapsed().as_secs_f64() / iters as f64;
        println!(
            "{name:<20} {m}x{n}x{k}: {:.1} us, {:.1} GFLOP/s",
            s * 1e6,
            2.0 * (m * n * k) as f64 / s / 1e9
        );
    }
}
