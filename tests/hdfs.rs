//! HDFS access up to the client: unreachable namenodes fail fast and name the address. The
//! real-cluster round trip runs only when STROM_TEST_HDFS=hdfs://host:port names a namenode
//! (no HDFS server can run in CI).

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use strom::storage::Location;

#[test]
fn refused_namenode_fails_fast_naming_the_address() {
    // A port that was just free: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("hdfs://127.0.0.1:{port}/datasets/train");
    let t0 = Instant::now();
    let (ok, _, stderr) = common::run(&["train", "--train", &url, "--test", ""]);
    assert!(!ok);
    assert!(t0.elapsed() < Duration::from_secs(8), "took {:?}", t0.elapsed());
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
}

#[test]
fn silent_namenode_times_out_naming_the_address() {
    // Accepts connections and never answers: the client must not hang.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let url = format!("hdfs://127.0.0.1:{port}/x");
    let t0 = Instant::now();
    let out = common::strom()
        .args(["train", "--train", &url, "--test", ""])
        .env("STROM_HDFS_TIMEOUT_SECS", "2")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(t0.elapsed() < Duration::from_secs(10), "took {:?}", t0.elapsed());
    assert!(
        stderr.contains(&format!("127.0.0.1:{port}")) && stderr.contains("did not answer within 2 s"),
        "{stderr}"
    );
}

/// Opt-in: `STROM_TEST_HDFS=hdfs://namenode:9000 cargo test --test hdfs -- --ignored`.
#[test]
#[ignore = "needs a real HDFS namenode: set STROM_TEST_HDFS=hdfs://host:port"]
fn real_cluster_round_trip_and_training() {
    let Ok(base) = std::env::var("STROM_TEST_HDFS") else {
        eprintln!("STROM_TEST_HDFS is not set; skipping");
        return;
    };
    let dir =
        Location::parse(&format!("{}/tmp/strom-test-{}", base.trim_end_matches('/'), std::process::id()))
            .unwrap();
    dir.create_dir_all().unwrap();
    // Copy the demo data to HDFS, then train from it.
    for name in ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"] {
        let bytes = Location::parse(&format!("builtin:fashion-mnist-demo/{name}")).unwrap().read().unwrap();
        dir.join(name).write_atomic(&bytes).unwrap();
        assert_eq!(dir.join(name).read().unwrap(), bytes);
    }
    let names: Vec<String> = dir.list().unwrap().iter().map(|e| e.location.file_name()).collect();
    assert!(names.contains(&"train-images-idx3-ubyte.gz".to_string()), "{names:?}");
    let (ok, _, stderr) = common::run(&["train", "--train", &dir.join("train").to_string(), "--epochs", "1"]);
    assert!(ok, "{stderr}");
}
