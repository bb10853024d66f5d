//! A network fault: a worker in its own network namespace, joined to the coordinator by a veth
//! pair, loses its link for longer than the heartbeat timeout. It is lost (its partitions go
//! back to the queue), rejoins by itself under its own id once the link is back, and the job
//! finishes. Needs root (or CAP_NET_ADMIN) and `ip`; elsewhere the test says so and skips (CI
//! runs as root and must not skip).

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Proc, json, token_file};

struct Net {
    ns: String,
    host_if: String,
}

impl Net {
    /// A namespace with one end of a veth pair; host side 10.231.N.1, namespace side 10.231.N.2.
    fn create(n: u8) -> Result<Net, String> {
        let net = Net { ns: format!("strom-test-{}", std::process::id()), host_if: format!("stromh{n}") };
        let ns_if = format!("stromw{n}");
        let steps: Vec<Vec<String>> = vec![
            vec!["netns".into(), "add".into(), net.ns.clone()],
            vec![
                "link".into(),
                "add".into(),
                net.host_if.clone(),
                "type".into(),
                "veth".into(),
                "peer".into(),
                "name".into(),
                ns_if.clone(),
            ],
            vec!["link".into(), "set".into(), ns_if.clone(), "netns".into(), net.ns.clone()],
            vec!["addr".into(), "add".into(), format!("10.231.{n}.1/24"), "dev".into(), net.host_if.clone()],
            vec!["link".into(), "set".into(), net.host_if.clone(), "up".into()],
            vec![
                "-n".into(),
                net.ns.clone(),
                "addr".into(),
                "add".into(),
                format!("10.231.{n}.2/24"),
                "dev".into(),
                ns_if.clone(),
            ],
            vec!["-n".into(), net.ns.clone(), "link".into(), "set".into(), ns_if, "up".into()],
            vec!["-n".into(), net.ns.clone(), "link".into(), "set".into(), "lo".into(), "up".into()],
        ];
        for args in steps {
            let out = Command::new("ip").args(&args).output().map_err(|e| format!("cannot run ip: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "ip {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
        Ok(net)
    }

    fn link(&self, up: bool) {
        let s = Command::new("ip")
            .args(["link", "set", &self.host_if, if up { "up" } else { "down" }])
            .status()
            .unwrap();
        assert!(s.success());
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.host_if]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

#[test]
fn a_worker_cut_off_longer_than_the_heartbeat_timeout_is_lost_rejoins_and_the_job_finishes() {
    let net = match Net::create((std::process::id() % 200) as u8 + 20) {
        Ok(n) => n,
        Err(why) => {
            assert!(std::env::var_os("CI").is_none(), "CI must be able to create network namespaces: {why}");
            eprintln!("skipped: cannot create a network namespace here ({why}); run as root");
            return;
        }
    };
    let n = (std::process::id() % 200) as u8 + 20;
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(dir.path(), "netfault-token-0123456789");
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        "name = \"netfault\"\n[train]\nepochs = 40\n[sharing]\nmode = \"threshold\"\n[cluster]\nlauncher = \"none\"\n\
         workers = 2\nheartbeat_timeout_secs = 3\n",
    )
    .unwrap();
    let summary = dir.path().join("s.json");
    let port = std::net::TcpListener::bind(format!("10.231.{n}.1:0")).unwrap().local_addr().unwrap().port();
    let listen = format!("10.231.{n}.1:{port}");
    let mut coordinator = Proc::spawn(&[
        "coordinator",
        "--listen",
        &listen,
        "--token-file",
        &token,
        "--job",
        job.to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
        "--output",
        dir.path().join("m").to_str().unwrap(),
    ]);
    // Beyond loopback: TLS with a certificate the coordinator made, pinned by both workers.
    let url = coordinator.coordinator_url();
    assert_eq!(url, format!("https://{listen}"));
    let pin = coordinator.tls_pin();
    let mut here = Proc::spawn(&["worker", "--coordinator", &url, "--token-file", &token, "--tls-pin", &pin]);
    // The other worker lives in the namespace: only the veth pair joins it to the coordinator.
    let bin = env!("CARGO_BIN_EXE_strom");
    let mut cut = {
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &net.ns,
            bin,
            "worker",
            "--coordinator",
            &url,
            "--token-file",
            &token,
            "--tls-pin",
            &pin,
        ])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1");
        Proc::from_command(cmd)
    };
    coordinator
        .wait_for("epoch 2 done", Duration::from_secs(120))
        .unwrap_or_else(|| panic!("{}", coordinator.output()));
    net.link(false);
    let lost = coordinator.wait_for(" lost: ", Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(2));
    net.link(true);
    let lost =
        lost.unwrap_or_else(|| panic!("the cut-off worker was not declared lost:\n{}", coordinator.output()));
    coordinator.wait_for("joined again", Duration::from_secs(60)).unwrap_or_else(|| {
        panic!("the cut-off worker did not come back ({lost}):\n{}\n{}", coordinator.output(), cut.output())
    });
    let status = coordinator.wait_exit(Duration::from_secs(300)).expect("the job finishes");
    assert!(status.success(), "{}", coordinator.output());
    for w in [&mut here, &mut cut] {
        assert!(w.wait_exit(Duration::from_secs(30)).expect("worker exits").success(), "{}", w.output());
    }
    assert!(cut.output().contains("reconnected to"), "{}", cut.output());
    let s = json(&summary);
    assert!(s["workers_lost"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(s["epochs"], 40, "{s}");
    assert!(s["test_accuracy"].as_f64().unwrap() >= 0.8, "{s}");
}
