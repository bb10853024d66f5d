//! The chaos suite: seeded and reproducible. Each run trains a job with a coordinator that
//! checkpoints and three local worker processes, and kills with SIGKILL, at moments the seed
//! picks, random workers (the launcher restarts them) and the coordinator itself (restarted with
//! the same command: it resumes from its checkpoint and launches its workers again), some at the
//! epoch barrier while the checkpoint is written. Every run must finish, lose no acknowledged
//! epoch (every epoch appears exactly once in the history) and end within `RUN_TOLERANCE` of
//! the undisturbed accuracy (the mean of three calm runs' final accuracy), and the runs' median
//! within `TOLERANCE` (one point). A failure prints its seed; `STROM_CHAOS_SEEDS=7,8,9` replays
//! or extends (averaging runs seed + 100), `STROM_CHAOS_EPOCHS` lengthens the job,
//! `STROM_CHAOS_DUMP=DIR` keeps each run's coordinator log.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Proc, json, workers_of};
use strom::rng::Rng;

/// The demo job's epochs: long enough for runs to settle (`STROM_CHAOS_EPOCHS` overrides).
fn epochs() -> u64 {
    std::env::var("STROM_CHAOS_EPOCHS").ok().and_then(|e| e.parse().ok()).unwrap_or(8).max(3)
}

fn job(dir: &Path, mode: &str) -> String {
    let p = dir.join("job.toml");
    std::fs::write(
        &p,
        format!(
            "name = \"chaos\"\n[train]\nepochs = {}\nseed = 5\n[sharing]\nmode = \"{mode}\"\n\
             [cluster]\nlauncher = \"local\"\nworkers = 3\nheartbeat_timeout_secs = 2\nmax_restarts = 20\n\
             checkpoint_every = 40\nreconnect_secs = 120\n",
            epochs()
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

/// One run; returns its final test accuracy and what was done to it.
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
            let epoch = 1 + rng.below(epochs() - 2);
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
    assert_eq!(s["epochs"].as_u64(), Some(epochs()), "seed {seed:?} ({done:?}): {s}");
    let seen: Vec<u64> =
        s["per_epoch"].as_array().unwrap().iter().map(|e| e["epoch"].as_u64().unwrap()).collect();
    assert_eq!(
        seen,
        (1..=epochs()).collect::<Vec<_>>(),
        "seed {seed:?}: every epoch once, none lost or repeated ({done:?}, {:.0} s)",
        started.elapsed().as_secs_f64()
    );
    let curve: Vec<f64> = s["per_epoch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["test_accuracy"].as_f64().unwrap_or(0.0))
        .collect();
    eprintln!(
        "seed {seed:?}: per epoch {:?}; lost {}, requeued {}",
        curve.iter().map(|a| format!("{a:.3}")).collect::<Vec<_>>(),
        s["workers_lost"],
        s["partitions_requeued"]
    );
    // The run's accuracy is its final model's: with the learning rate decayed to its end (and
    // the residual following it) the last epoch is steady, while mid-training epochs swing by
    // up to 3 points on the demo subset.
    (curve.last().copied().unwrap_or(0.0), done)
}

/// The undisturbed accuracy: the mean of `CALM_RUNS` runs, because one run alone differs from
/// the next by up to a point (asynchronous sharing between processes depends on timing).
fn undisturbed(mode: &str) -> f64 {
    let runs: Vec<f64> = (0..CALM_RUNS).map(|_| run(None, mode).0).collect();
    let mean = runs.iter().sum::<f64>() / runs.len() as f64;
    eprintln!("undisturbed ({mode}): {runs:.4?}, mean {mean:.4}");
    mean
}

/// How far below the undisturbed accuracy the disturbed runs may end: the one point,
/// held by the seeds' median. One run's final accuracy spreads with a standard deviation of
/// about 0.0034 whether disturbed or not (three calm runs alone spanned 1.25 points once): of
/// 193 disturbed runs measured, 189 ended within 1 point of the calm mean, 3 within 1.5 and
/// one 3.9 below (seed 20, once; its replays were within 0.5). "Each run within 1 point" would
/// fail at chance; the median of the seeds does not, while a systematic cost (progress lost at
/// every restart, a stale residual) moves every run.
const TOLERANCE: f64 = 0.01;
/// How far below any one run may end: an epoch lost, a reset replica or updates applied twice
/// cost more than this; the run-to-run spread does not.
const RUN_TOLERANCE: f64 = 0.05;
const CALM_RUNS: usize = 3;

/// The runs compare accuracies, so they take the machine one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn seeds() -> Vec<u64> {
    match std::env::var("STROM_CHAOS_SEEDS") {
        Ok(s) => s.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => vec![1, 2, 3],
    }
}

/// The calm runs, then one disturbed run per seed (plus `offset`), each held to
/// `RUN_TOLERANCE` and all together to `TOLERANCE`.
fn suite(mode: &str, offset: u64) {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let calm = undisturbed(mode);
    let mut accs = Vec::new();
    for seed in seeds().into_iter().map(|s| s + offset) {
        let (acc, done) = run(Some(seed), mode);
        eprintln!("chaos seed {seed} ({mode}): accuracy {acc:.4} (undisturbed {calm:.4}) after {done:?}");
        assert!(
            acc >= calm - RUN_TOLERANCE,
            "seed {seed} ({mode}): accuracy {acc:.4} vs undisturbed {calm:.4} after {done:?}"
        );
        accs.push(acc);
    }
    accs.sort_by(f64::total_cmp);
    let median = accs.get(accs.len().saturating_sub(1) / 2).copied().unwrap_or(0.0);
    let mean = accs.iter().sum::<f64>() / accs.len().max(1) as f64;
    let within = accs.iter().filter(|&&a| a >= calm - TOLERANCE).count();
    eprintln!(
        "chaos ({mode}): {} runs, median {median:.4}, mean {mean:.4} vs undisturbed {calm:.4}; {within} within 1 point",
        accs.len()
    );
    assert!(
        median >= calm - TOLERANCE,
        "{mode}: the disturbed runs' median {median:.4} vs undisturbed {calm:.4} ({accs:.4?})"
    );
}

#[test]
fn threshold_sharing_survives_kills_of_workers_and_the_coordinator() {
    suite("threshold", 0);
}

#[test]
fn averaging_survives_kills_during_its_rounds() {
    suite("averaging", 100);
}
