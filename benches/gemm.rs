//! Why the CPU kernels use the `gemm` crate: its f32 product against `matrixmultiply` (what
//! ndarray uses) on the shapes the MLP and the `cnn` preset multiply at batch 128, one thread,
//! measured side by side in one run. `cargo bench --bench gemm`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use strom::backend::gemm::{Op, gemm};

/// (name, m, n, k, A transposed): the products of one training step.
const SHAPES: &[(&str, usize, usize, usize, bool)] = &[
    ("mlp_forward_784x256", 128, 256, 784, false),
    ("mlp_weight_grad_784x256", 784, 256, 128, true),
    ("conv2_forward", 64, 196, 288, false),
    ("conv2_weight_grad", 64, 288, 196, false),
    ("conv2_input_grad", 288, 196, 64, true),
    ("cnn_dense_3136x128", 128, 128, 3136, false),
];

fn products(c: &mut Criterion) {
    let mut group = c.benchmark_group("gemm");
    for &(name, m, n, k, ta) in SHAPES {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut out = vec![0.0f32; m * n];
        group.throughput(Throughput::Elements((2 * m * n * k) as u64));
        let op = if ta { Op::T } else { Op::N };
        group.bench_function(BenchmarkId::new("gemm", name), |bench| {
            bench.iter(|| gemm(m, n, k, &a, op, &b, Op::N, &mut out, false, 1))
        });
        // (row stride, column stride) of A as stored.
        let (rsa, csa) = if ta { (1, m as isize) } else { (k as isize, 1) };
        group.bench_function(BenchmarkId::new("matrixmultiply", name), |bench| {
            bench.iter(|| unsafe {
                // SAFETY: the strides stay inside the buffers sized above.
                matrixmultiply::sgemm(
                    m,
                    k,
                    n,
                    1.0,
                    a.as_ptr(),
                    rsa,
                    csa,
                    b.as_ptr(),
                    n as isize,
                    1,
                    0.0,
                    out.as_mut_ptr(),
                    n as isize,
                    1,
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, products);
criterion_main!(benches);
