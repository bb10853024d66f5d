//! One training step of the Fashion-MNIST MLP (784-256-128-10, batch 128) on the CPU backend:
//! forward, backward, Adam, apply. Throughput is in samples.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use strom::backend::{Backend, CpuBackend};
use strom::data::{Batch, BatchInput, BatchTargets};
use strom::job::{JobSpec, ModelSpec, UpdaterKind, UpdaterSpec};
use strom::nn::{Architecture, Init, initialize};
use strom::rng::Rng;

fn step(c: &mut Criterion) {
    let batch = 128;
    let arch = Architecture::from_job(&ModelSpec { hidden: vec![256, 128], ..ModelSpec::default() }, 784, 10);
    let layout = arch.layout();
    let mut params = vec![0.0; layout.len];
    let mut rng = Rng::new(1);
    initialize(&layout, Init::He, &mut rng, &mut params);
    let updater = UpdaterSpec { kind: Some(UpdaterKind::Adam), ..JobSpec::default().train.updater };
    let mut backend = CpuBackend::new(&arch, &updater, 0.0, batch, &params);
    let images: Vec<u8> = (0..batch * 784).map(|_| rng.below(256) as u8).collect();
    let labels: Vec<u32> = (0..batch).map(|_| rng.below(10) as u32).collect();
    let b = Batch {
        rows: batch,
        input: BatchInput::U8 { data: &images, scale: 1.0 / 255.0 },
        targets: BatchTargets::Classes(&labels),
    };
    let mut group = c.benchmark_group("train_step");
    group.throughput(Throughput::Elements(batch as u64));
    group.bench_function("mlp_784_256_128_10_batch128", |bench| {
        bench.iter(|| {
            let loss = backend.forward_backward(&b, &mut rng);
            backend.compute_update(1.0);
            backend.apply_update();
            loss
        })
    });
    group.finish();
}

criterion_group!(benches, step);
criterion_main!(benches);
