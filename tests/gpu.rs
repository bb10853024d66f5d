//! The CUDA backend against the CPU backend (build with `--features cuda`). Without a CUDA
//! driver and device the tests print why and skip; run them on a GPU machine with
//! `cargo test --features cuda --test gpu`.
#![cfg(feature = "cuda")]

use strom::backend::{Backend, BackendError, CpuBackend, cuda::CudaBackend};
use strom::data::{Batch, BatchInput, BatchTargets};
use strom::job::{JobSpec, ModelPreset, ModelSpec, UpdaterKind};
use strom::nn::{Architecture, Shape, initial_state};
use strom::rng::Rng;
use strom::sharing::{Scheme, ThresholdSharing};

fn setup() -> Option<(Architecture, JobSpec, Vec<f32>)> {
    let mut job = JobSpec::default();
    job.train.updater.kind = Some(UpdaterKind::Nesterov);
    let arch = Architecture::from_job(&job.model, Shape::image(1, 28, 28), 10).unwrap();
    let params = initial_state(&arch, 7);
    let probe = CudaBackend::new(&arch, &job.updater(), 0.0, 4, &params);
    match probe {
        Err(BackendError::CudaUnavailable(why)) => {
            eprintln!("skipped: no usable CUDA device: {why}");
            None
        }
        Err(e) => panic!("{e}"),
        Ok(_) => Some((arch, job, params)),
    }
}

fn batch(rows: usize, seed: u64) -> (Vec<u8>, Vec<u32>) {
    let mut rng = Rng::new(seed);
    let x = (0..rows * 784).map(|_| (rng.next_f64() * 255.0) as u8).collect();
    let y = (0..rows).map(|_| (rng.next_f64() * 10.0) as u32 % 10).collect();
    (x, y)
}

fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum::<f64>().sqrt();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum::<f64>().sqrt().max(1e-12);
    num / den
}

#[test]
fn cuda_matches_cpu_on_forward_backward_update_and_encoding() {
    let Some((arch, job, params)) = setup() else { return };
    let updater = job.updater();
    let mut cpu = CpuBackend::new(&arch, &updater, 0.0, 64, &params, 1);
    let mut gpu = CudaBackend::new(&arch, &updater, 0.0, 64, &params).unwrap();
    let (x, y) = batch(64, 3);
    let b = Batch {
        rows: 64,
        input: BatchInput::U8 { data: &x, scale: 1.0 / 255.0 },
        targets: BatchTargets::Classes(&y),
        lengths: None,
    };
    let mut rng = Rng::new(1);
    let (lc, lg) = (cpu.forward_backward(&b, &mut rng), gpu.forward_backward(&b, &mut rng));
    assert!(((lc - lg) / lc).abs() < 1e-4, "loss cpu {lc} gpu {lg}");
    for _ in 0..3 {
        cpu.compute_update(1.0);
        gpu.compute_update(1.0);
        let (mut ec, mut eg) =
            (ThresholdSharing::new(&job, arch.layout()), ThresholdSharing::new(&job, arch.layout()));
        let sc = ec.encode_step(&mut cpu, 0, 1);
        let sg = eg.encode_step(&mut gpu, 0, 1);
        assert_eq!(sc.entries, sg.entries, "same number of quanta");
        assert_eq!(ec.message(), eg.message(), "same encoded message");
        assert_eq!(ec.layers(), eg.layers(), "same per-layer figures");
        let (mut pc, mut pg) = (vec![0.0; arch.state_len()], vec![0.0; arch.state_len()]);
        cpu.read_state(&mut pc);
        gpu.read_state(&mut pg);
        let e = rel_err(&pg, &pc);
        assert!(e <= 1e-4, "parameters relative error {e}");
        cpu.forward_backward(&b, &mut rng);
        gpu.forward_backward(&b, &mut rng);
    }
}

#[test]
fn models_with_layers_cuda_lacks_are_refused_before_training() {
    let job = JobSpec::default();
    let model = ModelSpec { preset: ModelPreset::Cnn, ..ModelSpec::default() };
    let arch = Architecture::from_job(&model, Shape::image(1, 28, 28), 10).unwrap();
    let state = initial_state(&arch, 1);
    match CudaBackend::new(&arch, &job.updater(), 0.0, 4, &state) {
        Err(e @ BackendError::Unsupported { .. }) => {
            let m = e.to_string();
            assert!(m.contains("layer 0 (conv2d 3x3 32 same relu)") && m.contains("--device cpu"), "{m}");
        }
        Err(e) => panic!("expected a refusal naming the layer, got {e}"),
        Ok(_) => panic!("the CUDA backend has no convolution kernel yet"),
    }
}
