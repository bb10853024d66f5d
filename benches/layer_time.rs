//! Where a training step's time goes: each layer's forward and backward pass of a preset on the
//! CPU backend, timed separately and summed by layer kind (conv2d, batch_norm, add, ...), at
//! batch 128 on 1x28x28 inputs. Not a Criterion bench: one table, printed.
//!
//!   cargo bench --bench layer_time -- [PRESET (resnet20)] [THREADS (1)] [STEPS (20)]
//!   cargo test --bench layer_time     # quick: 1 step (CI)

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use strom::backend::{LayerOps, Net};
use strom::data::{BatchInput, BatchTargets};
use strom::job::{ModelPreset, ModelSpec};
use strom::nn::{Architecture, Shape, initial_state};
use strom::rng::Rng;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let preset_name = args.first().map(String::as_str).unwrap_or("resnet20");
    let threads: usize = args.get(1).and_then(|t| t.parse().ok()).unwrap_or(1);
    // `cargo bench` passes --bench, `cargo test --bench layer_time` does not: one step (CI).
    let quick = !std::env::args().any(|a| a == "--bench");
    let steps: usize = args.get(2).and_then(|t| t.parse().ok()).unwrap_or(if quick { 1 } else { 20 });
    let presets = [ModelPreset::Mlp, ModelPreset::Cnn, ModelPreset::Lenet5, ModelPreset::Resnet20];
    let Some(preset) = presets.into_iter().find(|p| p.name() == preset_name) else {
        eprintln!("layer_time: unknown preset {preset_name}");
        std::process::exit(2);
    };
    let batch = 128;
    let model = ModelSpec { preset, hidden: vec![256, 128], ..ModelSpec::default() };
    let arch = Architecture::from_job(&model, Shape::image(1, 28, 28), 10).expect("preset fits 28x28");
    let layout = arch.layout();
    let state = initial_state(&arch, 1);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("thread pool");
    let mut net: Net<f32> = Net::new(layout, batch, threads);
    let (params, running) = state.split_at(layout.len);
    net.params.copy_from_slice(params);
    net.running.copy_from_slice(running);
    let mut rng = Rng::new(1);
    let images: Vec<u8> = (0..batch * 784).map(|_| rng.below(256) as u8).collect();
    let labels: Vec<u32> = (0..batch).map(|_| rng.below(10) as u32).collect();
    let layers = net.layer_count();
    let (mut fwd, mut bwd) = (vec![Duration::ZERO; layers], vec![Duration::ZERO; layers]);
    let mut total = Duration::ZERO;
    pool.install(|| {
        for step in 0..steps + 3 {
            let warm = step < 3;
            let start = Instant::now();
            net.set_input(BatchInput::U8 { data: &images, scale: 1.0 / 255.0 }, batch);
            net.resample(batch, &mut rng);
            for (l, spent) in fwd.iter_mut().enumerate() {
                let t = Instant::now();
                net.forward(l, batch, true);
                if !warm {
                    *spent += t.elapsed();
                }
            }
            net.loss(batch, BatchTargets::Classes(&labels));
            for l in (0..layers).rev() {
                let t = Instant::now();
                net.backward(l, batch, l > 0);
                if !warm {
                    bwd[l] += t.elapsed();
                }
            }
            if !warm {
                total += start.elapsed();
            }
        }
    });
    let ms = |d: Duration| d.as_secs_f64() * 1e3 / steps as f64;
    println!("{preset_name}, batch {batch}, {threads} thread(s), {steps} steps: forward + backward per step");
    println!("{:>3}  {:<34} {:>10} {:>9} {:>9}", "#", "layer", "output", "fwd ms", "bwd ms");
    let mut kinds: BTreeMap<&str, (Duration, Duration, usize)> = BTreeMap::new();
    for (l, layer) in layout.layers.iter().enumerate() {
        let kind = layer.spec.layer().kind();
        let e = kinds.entry(kind).or_default();
        e.0 += fwd[l];
        e.1 += bwd[l];
        e.2 += 1;
        println!(
            "{l:>3}  {:<34} {:>10} {:>9.2} {:>9.2}",
            arch.node_name(l + 1),
            layer.output.to_string(),
            ms(fwd[l]),
            ms(bwd[l])
        );
    }
    let step_ms = ms(total);
    println!("\nby kind                        layers    fwd ms    bwd ms   share");
    let mut rows: Vec<_> = kinds.into_iter().collect();
    rows.sort_by_key(|(_, (f, b, _))| std::cmp::Reverse(*f + *b));
    for (kind, (f, b, n)) in rows {
        println!("{kind:<30} {n:>6} {:>9.2} {:>9.2} {:>6.1}%", ms(f), ms(b), 100.0 * ms(f + b) / step_ms);
    }
    println!(
        "step (forward, loss, backward; no updater): {step_ms:.2} ms = {:.0} samples/s",
        batch as f64 / step_ms * 1e3
    );
}
