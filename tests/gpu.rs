//! The CUDA backend against the CPU backend (build with `--features cuda`), on every kernel:
//! each hidden activation, both losses, each updater with and without L2 (outputs, gradients,
//! updates, parameters, evaluation outputs), and each sharing primitive (residual add, threshold
//! selection and per-segment norms, scatter-subtract into the residual and the parameters,
//! clipping, scaling, a received message applied). Without a CUDA driver and device the tests
//! print why and skip, unless `STROM_REQUIRE_GPU` is set (`benches/gpu.sh` sets it), where
//! they fail. Run them on a GPU machine with `cargo test --features cuda --test gpu`, or
//! `bash benches/gpu.sh`.
#![cfg(feature = "cuda")]

use strom::backend::Target;
use strom::backend::{Backend, BackendError, CpuBackend, cuda::CudaBackend};
use strom::data::{Batch, BatchInput, BatchTargets};
use strom::job::{JobSpec, ModelPreset, ModelSpec, UpdaterKind};
use strom::nn::{Activation, Architecture, Loss, Shape, initial_state};
use strom::rng::Rng;
use strom::sharing::{MessageView, Scheme, ThresholdSharing};

fn setup() -> Option<(Architecture, JobSpec, Vec<f32>)> {
    let mut job = JobSpec::default();
    job.train.updater.kind = Some(UpdaterKind::Nesterov);
    let arch = Architecture::from_job(&job.model, Shape::image(1, 28, 28), 10).unwrap();
    let params = initial_state(&arch, 7);
    let probe = CudaBackend::new(&arch, &job.updater(), 0.0, 4, &params);
    match probe {
        Err(BackendError::CudaUnavailable(why)) => {
            if std::env::var_os("STROM_REQUIRE_GPU").is_some() {
                panic!("STROM_REQUIRE_GPU is set and there is no usable CUDA device: {why}");
            }
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

/// A CPU and a CUDA backend holding the same small network (inputs 12, hidden 24 and 16), or
/// None without a device.
fn pair(
    activation: Activation,
    loss: Loss,
    updater: UpdaterKind,
    l2: f32,
) -> Option<(Architecture, JobSpec, CpuBackend, CudaBackend)> {
    setup()?;
    let mut job = JobSpec::default();
    job.train.updater.kind = Some(updater);
    job.train.l2 = l2;
    job.model = ModelSpec { hidden: vec![24, 16], activation, loss, ..ModelSpec::default() };
    let outputs = if loss == Loss::Mse { 3 } else { 5 };
    let arch = Architecture::from_job(&job.model, Shape::Vector(12), outputs).unwrap();
    let params = initial_state(&arch, 11);
    let u = job.updater();
    let cpu = CpuBackend::new(&arch, &u, l2, 32, &params, 1);
    let gpu = CudaBackend::new(&arch, &u, l2, 32, &params).unwrap();
    Some((arch, job, cpu, gpu))
}

fn assert_close(what: &str, gpu: &[f32], cpu: &[f32], tolerance: f64) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths");
    let e = rel_err(gpu, cpu);
    assert!(e <= tolerance, "{what}: relative error {e} (tolerance {tolerance})");
    assert!(gpu.iter().all(|v| v.is_finite()), "{what}: finite");
}

#[test]
fn every_activation_loss_and_updater_matches_cpu() {
    let activations = [
        Activation::Relu,
        Activation::LeakyRelu,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Identity,
    ];
    let updaters = [UpdaterKind::Sgd, UpdaterKind::Nesterov, UpdaterKind::Adam, UpdaterKind::Rmsprop];
    let mut rng = Rng::new(5);
    let x: Vec<f32> = (0..32 * 12).map(|_| rng.next_f64() as f32 * 2.0 - 1.0).collect();
    let classes: Vec<u32> = (0..32).map(|i| i % 5).collect();
    let values: Vec<f32> = (0..32 * 3).map(|_| rng.next_f64() as f32).collect();
    for loss in [Loss::Xent, Loss::Mse] {
        for (i, activation) in activations.into_iter().enumerate() {
            let updater = updaters[i % updaters.len()];
            let l2 = if i % 2 == 0 { 1e-3 } else { 0.0 };
            let case = format!("{loss:?} {activation:?} {updater:?} l2 {l2}");
            let Some((arch, _, mut cpu, mut gpu)) = pair(activation, loss, updater, l2) else { return };
            let targets = if loss == Loss::Mse {
                BatchTargets::Values(&values)
            } else {
                BatchTargets::Classes(&classes)
            };
            let b = Batch { rows: 32, input: BatchInput::F32(&x), targets, lengths: None };
            let n = arch.layout().len;
            let (mut gc, mut gg) = (vec![0.0; n], vec![0.0; n]);
            for step in 0..3 {
                let (lc, lg) = (cpu.forward_backward(&b, &mut rng), gpu.forward_backward(&b, &mut rng));
                assert!(((lc - lg) / lc).abs() < 1e-4, "{case} step {step}: loss cpu {lc} gpu {lg}");
                cpu.read_gradient(&mut gc);
                gpu.read_gradient(&mut gg);
                assert_close(&format!("{case} step {step}: gradient"), &gg, &gc, 1e-4);
                cpu.compute_update(1.0);
                gpu.compute_update(1.0);
                cpu.read_gradient(&mut gc);
                gpu.read_gradient(&mut gg);
                assert_close(&format!("{case} step {step}: update"), &gg, &gc, 1e-4);
                cpu.apply_update();
                gpu.apply_update();
            }
            let (mut pc, mut pg) = (vec![0.0; arch.state_len()], vec![0.0; arch.state_len()]);
            cpu.read_state(&mut pc);
            gpu.read_state(&mut pg);
            assert_close(&format!("{case}: parameters"), &pg, &pc, 1e-4);
            let (mut oc, mut og) = (vec![], vec![]);
            let (lc, lg) = (cpu.evaluate(&b, &mut oc), gpu.evaluate(&b, &mut og));
            assert!(((lc - lg) / lc).abs() < 1e-4, "{case}: evaluation loss cpu {lc} gpu {lg}");
            assert_close(&format!("{case}: evaluation outputs"), &og, &oc, 1e-4);
            let (uc, ug) = (cpu.updater_state(), gpu.updater_state());
            assert_eq!(uc.step, ug.step, "{case}: updater steps");
            assert_close(&format!("{case}: first moment"), &ug.first, &uc.first, 1e-4);
            assert_close(&format!("{case}: second moment"), &ug.second, &uc.second, 1e-4);
        }
    }
}

#[test]
fn every_sharing_primitive_matches_cpu() {
    let Some((arch, job, mut cpu, mut gpu)) = pair(Activation::Relu, Loss::Xent, UpdaterKind::Nesterov, 0.0)
    else {
        return;
    };
    let mut rng = Rng::new(9);
    let x: Vec<f32> = (0..32 * 12).map(|_| rng.next_f64() as f32 * 2.0 - 1.0).collect();
    let y: Vec<u32> = (0..32).map(|i| i % 5).collect();
    let b = Batch { rows: 32, input: BatchInput::F32(&x), targets: BatchTargets::Classes(&y), lengths: None };
    let n = arch.layout().len;
    let segments: Vec<std::ops::Range<usize>> =
        arch.layout().layers.iter().flat_map(|l| l.tensors.iter().map(|t| t.range.clone())).collect();
    let select = |be: &mut dyn strom::backend::Backend, tau: f32| {
        let (mut out, mut norm2) = (vec![], vec![0.0f64; segments.len()]);
        be.residual_select(tau, &segments, &mut out, &mut norm2);
        (out, norm2)
    };
    for be in [&mut cpu as &mut dyn strom::backend::Backend, &mut gpu] {
        be.forward_backward(&b, &mut Rng::new(1));
        be.compute_update(1.0);
        be.residual_add();
        be.residual_add();
    }
    let tau = 1e-3;
    let ((sc, nc), (sg, ng)) = (select(&mut cpu, tau), select(&mut gpu, tau));
    assert!(!sc.is_empty() && sc.len() < n, "a partial selection ({} of {n})", sc.len());
    assert_eq!(sc, sg, "the same selected entries, in the same order");
    for (i, (c, g)) in nc.iter().zip(&ng).enumerate() {
        assert!((c - g).abs() <= 1e-4 * c.abs().max(1e-12), "segment {i}: norm2 cpu {c} gpu {g}");
    }
    // Subtracting the quanta from the residual leaves nothing at or past tau.
    cpu.scatter_subtract(Target::Residual, &sc, tau);
    gpu.scatter_subtract(Target::Residual, &sg, tau);
    let ((after_c, _), (after_g, _)) = (select(&mut cpu, tau * 0.25), select(&mut gpu, tau * 0.25));
    assert_eq!(after_c, after_g, "residuals agree after the subtraction");
    // Clipping and scaling: both select the same entries at a lower tau afterwards.
    for be in [&mut cpu as &mut dyn strom::backend::Backend, &mut gpu] {
        be.clip_residual(tau * 0.5);
        be.scale_residual(0.9);
    }
    let ((clip_c, _), (clip_g, _)) = (select(&mut cpu, tau * 0.44), select(&mut gpu, tau * 0.44));
    assert!(!clip_c.is_empty(), "entries clipped to 0.45 tau are selected at 0.44 tau");
    assert_eq!(clip_c, clip_g, "after clip and scale");
    assert!(
        select(&mut gpu, tau * 0.46).0.is_empty(),
        "clipped to 0.5 tau then scaled by 0.9: nothing past 0.45 tau"
    );
    // Quanta into the parameters, and a message from another worker.
    cpu.scatter_subtract(Target::Params, &sc, tau);
    gpu.scatter_subtract(Target::Params, &sg, tau);
    let mut sender = ThresholdSharing::new(&job, arch.layout());
    let mut other = CpuBackend::new(&arch, &job.updater(), 0.0, 32, &initial_state(&arch, 3), 1);
    other.forward_backward(&b, &mut Rng::new(2));
    other.compute_update(1.0);
    sender.encode_step(&mut other, 1, 1);
    let bytes = sender.message().to_vec();
    let message = MessageView::parse(&bytes, n).unwrap();
    cpu.apply_message(&message);
    gpu.apply_message(&message);
    let (mut pc, mut pg) = (vec![0.0; arch.state_len()], vec![0.0; arch.state_len()]);
    cpu.read_state(&mut pc);
    gpu.read_state(&mut pg);
    assert_close("parameters after quanta and a message", &pg, &pc, 1e-5);
}
