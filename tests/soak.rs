//! A job that runs longer than every timeout in the system (heartbeat 10 s, the step timeout
//! set to 60 s here, long polls 20 s, unary deadlines 30 and 60 s, HTTP/2 keep-alive 20 s, and
//! the one-minute stream cut this test was written for): three worker processes over gRPC for
//! at least 150 s lose no worker, never reconnect, and the model meets its accuracy bound.

mod common;

use std::time::{Duration, Instant};

use common::{Proc, json, token_file};
use strom_proto::v1 as pb;

const TOKEN: &str = "soak-test-token-of-some-length";
const SOAK: Duration = Duration::from_secs(155);

#[test]
fn three_worker_processes_outlast_every_timeout_and_none_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(dir.path(), TOKEN);
    let job = dir.path().join("soak.toml");
    std::fs::write(
        &job,
        "name = \"soak\"\n[train]\nepochs = 100000\nlr_schedule = \"constant\"\n[sharing]\nmode = \"threshold\"\n\
         [cluster]\nlauncher = \"none\"\nworkers = 3\nheartbeat_timeout_secs = 10\nstep_timeout_secs = 60\n\
         checkpoint_every = 300\n",
    )
    .unwrap();
    let summary = dir.path().join("s.json");
    let coordinator = Proc::spawn(&[
        "coordinator",
        "--listen",
        "127.0.0.1:0",
        "--token-file",
        &token,
        "--job",
        job.to_str().unwrap(),
        "--checkpoint-dir",
        dir.path().join("ckpt").to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
        "--output",
        dir.path().join("m").to_str().unwrap(),
    ]);
    let url = coordinator.coordinator_url();
    let mut workers: Vec<Proc> =
        (0..3).map(|_| Proc::spawn(&["worker", "--coordinator", &url, "--token-file", &token])).collect();
    coordinator
        .wait_for("epoch 1 done", Duration::from_secs(120))
        .unwrap_or_else(|| panic!("{}", coordinator.output()));
    let started = Instant::now();
    while started.elapsed() < SOAK {
        std::thread::sleep(Duration::from_secs(1));
        let out = coordinator.output();
        assert!(
            !out.contains(" lost"),
            "a worker was lost after {:.0} s:\n{out}",
            started.elapsed().as_secs_f64()
        );
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(url.clone()).unwrap().connect().await.unwrap();
        let auth: tonic::metadata::MetadataValue<_> = format!("Bearer {TOKEN}").parse().unwrap();
        let mut client =
            pb::control_client::ControlClient::with_interceptor(channel, move |mut r: tonic::Request<()>| {
                r.metadata_mut().insert("authorization", auth.clone());
                Ok(r)
            });
        let reply = client.stop(pb::Empty {}).await.unwrap().into_inner();
        assert!(reply.ok, "{}", reply.message);
    });
    let mut coordinator = coordinator;
    coordinator.wait_exit(Duration::from_secs(60)).expect("the coordinator ends the stopped job");
    for w in &mut workers {
        assert!(w.wait_exit(Duration::from_secs(60)).expect("worker exits").success(), "{}", w.output());
        assert!(!w.output().contains("reconnect"), "no worker lost its coordinator:\n{}", w.output());
    }
    let s = json(&summary);
    assert_eq!(s["workers_lost"], 0, "{s}");
    assert_eq!(s["partitions_requeued"], 0, "{s}");
    assert!(s["epochs"].as_u64().unwrap() >= 5, "{s}");
    assert!(s["test_accuracy"].as_f64().unwrap() >= 0.8, "{s}");
    assert!(s["train_seconds"].as_f64().unwrap() >= SOAK.as_secs_f64(), "{s}");
}
