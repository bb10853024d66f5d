//! The chaos suite: seeded and reproducible. Each run trains a job with a coordinator that
//! checkpoints and three local worker processes, and kills with SIGKILL, at moments the seed
//! picks, random workers (the launcher restarts them) and the coordinator itself (restarted with
//! the same command: it resumes from its checkpoint and launches its workers again), some at the
//! epoch barrier while the checkpoint is written. Every run must finish, lose no acknowledged
//! epoch (every epoch appears exactly once in the history) and land within `TOLERANCE` of the
//! undisturbed run. A failure prints its seed; `STROM_CHAOS_SEEDS=7,8,9` replays or extends,
//! `STROM_CHAOS_DUMP=DIR` keeps each run's coordinator log.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Proc, json, workers_of};
use strom::rng::Rng;

const EPOCHS: u64 = 8;

fn job(dir: &Path, mode: &str) -> String {
    let p = dir.join("job.toml");
    std::fs::write(
        &p,
        format!(
            "name = \"chaos\"\n[train]\nepochs = {EPOCHS}\nseed = 5\n[sharing]\nmode = \"{mode}\"\n\
             [cluster]\nlauncher = \"local\"\nworkers = 3\nheartbeat_timeout_secs = 2\nmax_restarts = 20\n\
             checkpoint_every = 40\nreconnect_secs = 120\n"
        ),
    )
    .unwrap();
    p.display().to_string()
}

fn coordinator(dir: &Path, job: &str, summary: &Path) -> Proc {
    Proc::spawn(&[
        "coordinator",
        "--listen",
        "127.0.0.1:0",
        "--job",
        job,
        "--checkpoint-dir",
        dir.join("ckpt").to_str().unwrap(),
        "--output",
        dir.join("m").to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
        "--token-file",
        &common::token_file(dir, "chaos-token-0123456789abcdef"),
    ])
}

/// One run; returns the mean test accuracy of its last three epochs and what was done to it.
fn run(seed: Option<u64>, mode: &str) -> (f64, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("s.json");
    let job = job(dir.path(), mode);
    let mut coord = coordinator(dir.path(), &job, &summary);
    let mut done = Vec::new();
    if let Some(seed) = seed {
        let mut rng = Rng::new(seed);
        let mut coordinator_kills = 0;
        // Three disruptions, each after a random epoch boundary and a random delay.
        for _ in 0..3 {
            let epoch = 1 + rng.below(EPOCHS - 2);
            let line = format!("epoch {epoch} done");
            if coord.wait_for(&line, Duration::from_secs(300)).is_none() {
                break; // the run went past it while restarting: fine, go on to the next
            }
            let at_barrier = rng.next_f64() < 0.3;
            if !at_barrier {
                // Within the next epoch: the demo's epochs take a fraction of a second.
                std::thread::sleep(Duration::from_millis(rng.below(300)));
            }
            if coord.child.try_wait().ok().flatten().is_some() {
                break;
            }
            if rng.next_f64() < 0.35 && coordinator_kills < 2 {
                coordinator_kills += 1;
                coord.kill9();
                done.push(format!(
                    "coordinator after epoch {epoch}{}",
                    if at_barrier { " (barrier)" } else { "" }
                ));
                // Its local workers die with it (they are tied to it); the new one resumes and
                // launches new ones.
                coord = coordinator(dir.path(), &job, &summary);
            } else {
                let pids = workers_of(coord.child.id());
                if pids.is_empty() {
                    continue;
                }
                let victim = pids[rng.below(pids.len() as u64) as usize];
                unsafe { libc::kill(victim as libc::pid_t, libc::SIGKILL) };
                done.push(format!("worker pid {victim} after epoch {epoch}"));
            }
        }
    }
    let started = Instant::now();
    let status = coord
        .wait_exit(Duration::from_secs(600))
        .unwrap_or_else(|| panic!("seed {seed:?}: the run did not finish ({done:?}):\n{}", coord.output()));
    assert!(status.success(), "seed {seed:?}: the run failed ({done:?}):\n{}", coord.output());
    if let Some(dump) = std::env::var_os("STROM_CHAOS_DUMP") {
        let name = format!("{mode}-{}.log", seed.map_or("calm".to_string(), |s| s.to_string()));
        let _ = std::fs::write(Path::new(&dump).join(name), coord.output());
    }
    let s = json(&summary);
    assert_eq!(s["epochs"].as_u64(), Some(EPOCHS), "seed {seed:?} ({done:?}): {s}");
    let epochs: Vec<u64> =
        s["per_epoch"].as_array().unwrap().iter().map(|e| e["epoch"].as_u64().unwrap()).collect();
    assert_eq!(
        epochs,
        (0..EPOCHS).collect::<Vec<_>>(),
        "seed {seed:?}: every epoch once, none lost or repeated ({done:?}, {:.0} s)",
        started.elapsed().as_secs_f64()
    );
    let curve: Vec<String> = s["per_epoch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{:.3}", e["test_accuracy"].as_f64().unwrap_or(0.0)))
        .collect();
    eprintln!(
        "seed {seed:?}: per epoch {curve:?}; lost {}, requeued {}",
        s["workers_lost"], s["partitions_requeued"]
    );
    // The last epochs' mean: one epoch's test accuracy swings by up to 3 points on the demo
    // subset (0.848 then 0.815 in one undisturbed stretch), three together much less.
    let last: Vec<f64> = s["per_epoch"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .take(3)
        .filter_map(|e| e["test_accuracy"].as_f64())
        .collect();
    (last.iter().sum::<f64>() / last.len() as f64, done)
}

/// How far below the undisturbed run a disturbed one may end (means of the last three epochs).
/// Undisturbed runs spread about 0.006 (asynchronous sharing between processes depends on
/// timing); 38 of 40 seeds land within 0.01, but a coordinator restart also restarts its local
/// workers, whose residuals and momentum start over, and two of them have cost up to 0.028. A
/// reset replica or updates applied twice cost far more.
const TOLERANCE: f64 = 0.025;

/// The runs compare accuracies, so they take the machine one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn seeds() -> Vec<u64> {
    match std::env::var("STROM_CHAOS_SEEDS") {
        Ok(s) => s.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => vec![1, 2, 3],
    }
}

#[test]
fn threshold_sharing_survives_kills_of_workers_and_the_coordinator() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let (calm, _) = run(None, "threshold");
    for seed in seeds() {
        let (acc, done) = run(Some(seed), "threshold");
        eprintln!("chaos seed {seed}: accuracy {acc:.4} (undisturbed {calm:.4}) after {done:?}");
        assert!(
            acc >= calm - TOLERANCE,
            "seed {seed}: accuracy {acc:.4} vs undisturbed {calm:.4} after {done:?}"
        );
    }
}

#[test]
fn averaging_survives_kills_during_its_rounds() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let (calm, _) = run(None, "averaging");
    let seed = seeds()[0] + 100;
    let (acc, done) = run(Some(seed), "averaging");
    eprintln!("chaos seed {seed} (averaging): accuracy {acc:.4} (undisturbed {calm:.4}) after {done:?}");
    assert!(
        acc >= calm - TOLERANCE,
        "seed {seed}: accuracy {acc:.4} vs undisturbed {calm:.4} after {done:?}"
    );
}
