//! One training step on the CPU backend (forward, backward, Adam, apply) of the MLP
//! 784-256-128-10, the `cnn` preset and the `resnet20` preset (a graph) on 1x28x28 inputs, at
//! batch 128 and 1024 (resnet20: 128), with 1 and 2 threads. Throughput is in samples. `bash benches/peers/pytorch.sh` runs this bench and
//! PyTorch on the same cases and prints the ratios.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use strom::backend::{Backend, CpuBackend};
use strom::data::{Batch, BatchInput, BatchTargets};
use strom::job::{JobSpec, ModelPreset, ModelSpec, UpdaterKind, UpdaterSpec};
use strom::nn::{Architecture, Shape, initial_state};
use strom::rng::Rng;

fn step(c: &mut Criterion) {
    let updater = UpdaterSpec { kind: Some(UpdaterKind::Adam), ..JobSpec::default().train.updater };
    for preset in [ModelPreset::Mlp, ModelPreset::Cnn, ModelPreset::Resnet20] {
        let model = ModelSpec { preset, hidden: vec![256, 128], ..ModelSpec::default() };
        let arch = Architecture::from_job(&model, Shape::image(1, 28, 28), 10).expect("preset fits 28x28");
        let state = initial_state(&arch, 1);
        let mut group = c.benchmark_group(format!("train_step_{}", preset.name()));
        if preset != ModelPreset::Mlp {
            group.sample_size(10);
        }
        let batches: &[usize] = if preset == ModelPreset::Resnet20 { &[128] } else { &[128, 1024] };
        for &batch in batches {
            let mut rng = Rng::new(1);
            let images: Vec<u8> = (0..batch * 784).map(|_| rng.below(256) as u8).collect();
            let labels: Vec<u32> = (0..batch).map(|_| rng.below(10) as u32).collect();
            let b = Batch {
                rows: batch,
                input: BatchInput::U8 { data: &images, scale: 1.0 / 255.0 },
                targets: BatchTargets::Classes(&labels),
                lengths: None,
            };
            group.throughput(Throughput::Elements(batch as u64));
            for threads in [1usize, 2] {
                group.bench_function(
                    BenchmarkId::new(format!("batch{batch}"), format!("threads{threads}")),
                    |bench| {
                        // Built here, so a run filtered to one case holds one replica (its
                        // peak RSS is what benches/peers/pytorch_step.py reports).
                        let mut backend = CpuBackend::new(&arch, &updater, 0.0, batch, &state, threads);
                        bench.iter(|| {
                            let loss = backend.forward_backward(&b, &mut rng);
                            backend.compute_update(1.0);
                            backend.apply_update();
                            loss
                        })
                    },
                );
            }
        }
        group.finish();
    }
}

criterion_group!(benches, step);
criterion_main!(benches);
