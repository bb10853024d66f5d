//! Gradient-sharing codec throughput against a plain copy of the same buffer, measured in one
//! run: threshold encode (residual += update, threshold, subtract, pack) and decode + apply, for
//! 1M and 10M parameters at densities 1e-4, 1e-3 and 1e-2; top-k's (the scheme's own pass:
//! the threshold sampled from what the residual will hold, then residual += gradient and the
//! selection in one sweep, round to f16, pack the values) at the same densities; dense16's
//! (round to f16, pack; decode + apply). `python3 benches/codec_ratios.py` prints the ratios
//! from criterion's results.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use strom::rng::Rng;
use strom::sharing::{Format, MessageView, ThresholdEncoder, accumulate_and_select, codec};

const TAU: f32 = 1e-3;

/// An update where a fraction `density` of entries crosses tau every step and the rest stay
/// far below it, so every iteration sends the same number of entries.
fn update(n: usize, density: f64, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let sign = if rng.next_u64() & 1 == 0 { 1.0 } else { -1.0 };
            if rng.next_f64() < density { sign * 1.5 * TAU } else { sign * 1e-9 }
        })
        .collect()
}

fn codec(c: &mut Criterion) {
    for &n in &[1_000_000usize, 10_000_000] {
        let mut group = c.benchmark_group(format!("codec_{}M", n / 1_000_000));
        group.throughput(Throughput::Bytes(4 * n as u64));
        if n >= 10_000_000 {
            group.sample_size(20);
        }
        let src = vec![1.0f32; n];
        let mut dst = vec![0.0f32; n];
        group.bench_function("copy", |b| b.iter(|| dst.copy_from_slice(std::hint::black_box(&src))));
        for &density in &[1e-4, 1e-3, 1e-2] {
            let u = update(n, density, 7);
            let mut residual = vec![0.0f32; n];
            let mut enc = ThresholdEncoder::new(n);
            group.bench_with_input(BenchmarkId::new("encode", density), &density, |b, _| {
                b.iter(|| enc.encode(&mut residual, &u, TAU, 0, 0).bytes)
            });
            let message = enc.message().to_vec();
            let mut params = vec![0.0f32; n];
            group.bench_with_input(BenchmarkId::new("decode_apply", density), &density, |b, _| {
                b.iter(|| match MessageView::parse(&message, n) {
                    Ok(v) => v.subtract_from(&mut params, 1.0),
                    Err(e) => panic!("{e}"),
                })
            });
            // Top-k: the same update as a gradient, k = density·n.
            let k = (density * n as f64) as usize;
            let mut residual = vec![0.0f32; n];
            let (mut rng, mut scratch, mut selected, mut out) =
                (Rng::new(3), Vec::new(), Vec::new(), Vec::new());
            group.bench_with_input(BenchmarkId::new("topk_encode", density), &density, |b, _| {
                b.iter(|| {
                    accumulate_and_select(
                        &mut residual,
                        &u,
                        None,
                        Some(k),
                        &mut rng,
                        &mut scratch,
                        &mut selected,
                    );
                    codec::encode_values(&mut out, n, 1.0, &selected, 0, 0);
                    out.len()
                })
            });
            group.bench_with_input(BenchmarkId::new("topk_decode_apply", density), &density, |b, _| {
                b.iter(|| match MessageView::parse(&out, n) {
                    Ok(v) => v.subtract_from(&mut params, 1.0),
                    Err(e) => panic!("{e}"),
                })
            });
        }
        let g = update(n, 1e-3, 11);
        let mut out = Vec::new();
        group.bench_function("dense16_encode", |b| {
            b.iter(|| {
                codec::encode_half(&mut out, Format::Half, std::hint::black_box(&g), 0, 0);
                out.len()
            })
        });
        let mut params = vec![0.0f32; n];
        group.bench_function("dense16_decode_apply", |b| {
            b.iter(|| match MessageView::parse(&out, n) {
                Ok(v) => v.subtract_from(&mut params, 1.0),
                Err(e) => panic!("{e}"),
            })
        });
        group.finish();
    }
}

criterion_group!(benches, codec);
criterion_main!(benches);
