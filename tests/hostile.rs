//! Hostile clients on loopback: raw HTTP/2 with garbage, truncated and oversized gRPC
//! messages; a worker speaking for another; the workers' token calling the control service; a
//! submitted job trying to make the coordinator run a program; a removed worker coming back.
//! Each is refused (and counted where it reaches a job), and the coordinator keeps serving:
//! the job trains to its accuracy bound on the real workers beside them.

mod common;

use std::time::Duration;

use common::{Proc, json, token_file};
use strom_proto::v1 as pb;
use tonic::Code;

const TOKEN: &str = "hostile-worker-token-0123456789";
const CONTROL: &str = "hostile-control-token-9876543210";
/// The parameter a hostile update sets to NaN: entry 5 of layer 1 (the MLP's second dense
/// layer starts after 784 x 256 weights and 256 biases).
const NAN_AT: usize = 784 * 256 + 256 + 5;

fn job(dir: &std::path::Path, epochs: u32) -> String {
    let p = dir.join("job.toml");
    std::fs::write(
        &p,
        format!(
            "name = \"hostile\"\n[train]\nepochs = {epochs}\n[sharing]\nmode = \"threshold\"\n[cluster]\nlauncher = \"none\"\nworkers = 2\n"
        ),
    )
    .unwrap();
    p.display().to_string()
}

fn coordinator(
    dir: &std::path::Path,
    epochs: u32,
    summary: &std::path::Path,
    extra: &[&str],
) -> (Proc, String, String) {
    let token = token_file(dir, TOKEN);
    let control = dir.join("control-token");
    std::fs::write(&control, CONTROL).unwrap();
    let job = job(dir, epochs);
    let out = dir.join("m");
    let mut args = vec![
        "coordinator",
        "--listen",
        "127.0.0.1:0",
        "--token-file",
        &token,
        "--control-token-file",
        control.to_str().unwrap(),
        "--job",
        &job,
        "--output",
        out.to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let p = Proc::spawn(&args);
    let url = p.coordinator_url();
    (p, url, token)
}

type AddMetadata = Box<dyn FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Send>;
type Intercepted = tonic::service::interceptor::InterceptedService<tonic::transport::Channel, AddMetadata>;

async fn channel(url: &str) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(url.to_string()).unwrap().connect().await.unwrap()
}

/// A client whose every call carries `token` and, when given, a worker id and secret.
fn with_metadata(
    channel: tonic::transport::Channel,
    token: &str,
    worker: Option<(u32, String)>,
) -> Intercepted {
    let auth: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    let f: AddMetadata = Box::new(move |mut r| {
        r.metadata_mut().insert("authorization", auth.clone());
        if let Some((id, secret)) = &worker {
            r.metadata_mut().insert("strom-worker-id", id.to_string().parse().unwrap());
            r.metadata_mut().insert("strom-worker-secret", secret.parse().unwrap());
        }
        Ok(r)
    });
    tonic::service::interceptor::InterceptedService::new(channel, f)
}

async fn join(url: &str) -> pb::JoinReply {
    let mut c = pb::cluster_client::ClusterClient::new(with_metadata(channel(url).await, TOKEN, None))
        .max_decoding_message_size(64 << 20);
    for _ in 0..300 {
        match c
            .join(pb::JoinRequest {
                protocol_version: strom_proto::PROTOCOL_VERSION,
                host: "intruder".into(),
                ..Default::default()
            })
            .await
        {
            Ok(r) => return r.into_inner(),
            Err(e) if e.code() == Code::FailedPrecondition => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("{e}"),
        }
    }
    panic!("the job never started");
}

/// Raw HTTP/2 at the coordinator: not HTTP/2 at all, gRPC frames cut short, a frame far past
/// the limit, a frame that is not the message it claims to be. Returns what each got.
async fn raw_http2(addr: &str) -> Vec<String> {
    use tokio::io::AsyncWriteExt;
    let mut seen = Vec::new();
    // 1. Garbage instead of the HTTP/2 preface.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(b"GET / HTTP/1.1\r\n\r\n\x00\xff\xfe garbage \x13\x37").await;
    let _ = s.write_all(&[0xAB; 4096]).await;
    drop(s);
    seen.push("garbage connection closed".to_string());
    // 2-4. Proper HTTP/2, broken gRPC bodies.
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", {
            // Claims 1000 bytes, sends 10, ends the stream.
            let mut b = vec![0u8];
            b.extend_from_slice(&1000u32.to_be_bytes());
            b.extend_from_slice(&[1; 10]);
            b
        }),
        ("oversized", {
            // Claims 2 GiB: past every limit.
            let mut b = vec![0u8];
            b.extend_from_slice(&(2u32 << 30).to_be_bytes());
            b.extend_from_slice(&[7; 64]);
            b
        }),
        ("past the model", {
            // Claims 64 MiB: under the service's ceiling, far over what this job's model
            // needs; refused from the header, before any of it is read.
            let mut b = vec![0u8];
            b.extend_from_slice(&(64u32 << 20).to_be_bytes());
            b.extend_from_slice(&[7; 64]);
            b
        }),
        ("not protobuf", {
            let junk = [0xFFu8; 40];
            let mut b = vec![0u8];
            b.extend_from_slice(&(junk.len() as u32).to_be_bytes());
            b.extend_from_slice(&junk);
            b
        }),
    ];
    for (what, body) in bodies {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (client, conn) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut client = client.ready().await.unwrap();
        let request = http::Request::builder()
            .method("POST")
            .uri(format!("http://{addr}/strom.v1.Cluster/Join"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(())
            .unwrap();
        let (response, mut stream) = client.send_request(request, false).unwrap();
        let _ = stream.send_data(bytes::Bytes::from(body), true);
        let outcome = match tokio::time::timeout(Duration::from_secs(10), response).await {
            Ok(Ok(r)) => {
                let status = r.headers().get("grpc-status").map(|v| v.to_str().unwrap_or("").to_string());
                let mut body = r.into_body();
                let trailers = tokio::time::timeout(Duration::from_secs(10), async {
                    while let Some(Ok(_)) = body.data().await {}
                    body.trailers().await
                })
                .await;
                let t = match trailers {
                    Ok(Ok(Some(t))) => t.get("grpc-status").map(|v| v.to_str().unwrap_or("").to_string()),
                    _ => None,
                };
                format!("{what}: grpc-status {:?}", status.or(t))
            }
            Ok(Err(e)) => format!("{what}: reset ({e})"),
            Err(_) => panic!("{what}: no answer within 10 s: the coordinator hangs on a broken message"),
        };
        seen.push(outcome);
    }
    seen
}

#[test]
fn hostile_clients_are_refused_and_the_job_trains_beside_them() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("s.json");
    let (mut coord, url, token) = coordinator(dir.path(), 8, &summary, &[]);
    let addr = url.trim_start_matches("http://").to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut workers: Vec<Proc> =
        (0..2).map(|_| Proc::spawn(&["worker", "--coordinator", &url, "--token-file", &token])).collect();
    let (raw, refused_calls) = rt.block_on(async {
        let raw = raw_http2(&addr).await;
        // Every broken message got an error status (not OK) or a reset, and nothing hung.
        for r in &raw[1..] {
            assert!(!r.contains("Some(\"0\")"), "a broken message was accepted: {r}");
        }
        let past = raw.iter().find(|r| r.starts_with("past the model")).unwrap();
        assert!(past.contains("Some(\"8\")"), "refused as too large (RESOURCE_EXHAUSTED): {past}");
        // A worker speaking for another: its own secret with another id, and no secret at all.
        let me = join(&url).await;
        let other = if me.worker_id == 0 { 1 } else { 0 };
        let mut as_other = pb::cluster_client::ClusterClient::new(with_metadata(
            channel(&url).await,
            TOKEN,
            Some((other, me.session_secret.clone())),
        ));
        let e = as_other
            .heartbeat(pb::HeartbeatRequest { worker_id: other, ..Default::default() })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{e}");
        assert!(e.message().contains("may only speak for itself"), "{e}");
        let mut mine = pb::cluster_client::ClusterClient::new(with_metadata(
            channel(&url).await,
            TOKEN,
            Some((me.worker_id, me.session_secret.clone())),
        ));
        let e = mine.next_shard(pb::ShardRequest { worker_id: other, done: vec![] }).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "naming another worker in the body: {e}");
        // An update with a NaN (a dense message, well formed otherwise): refused, never relayed,
        // and the coordinator names where the first bad value is.
        let n = me.params.len() / 4;
        let mut nan = b"SU\x01\x02".to_vec();
        for v in [n as u32, 0f32.to_bits(), n as u32, me.worker_id] {
            nan.extend_from_slice(&v.to_le_bytes());
        }
        nan.extend_from_slice(&7u64.to_le_bytes());
        for i in 0..n {
            nan.extend_from_slice(&(if i == NAN_AT { f32::NAN } else { 0.0 }).to_le_bytes());
        }
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tx.send(pb::Update { origin: me.worker_id, seq: 0, payload: nan.into() }).await.unwrap();
        let _inbound = mine.exchange(tokio_stream::wrappers::ReceiverStream::new(rx)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        drop(tx);
        let mut no_secret = pb::cluster_client::ClusterClient::new(with_metadata(
            channel(&url).await,
            TOKEN,
            Some((other, String::new())),
        ));
        let e = no_secret
            .heartbeat(pb::HeartbeatRequest { worker_id: other, ..Default::default() })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{e}");
        // Nor can it read the coordinator's relayed updates.
        let mut relay = pb::relay_client::RelayClient::new(with_metadata(
            channel(&url).await,
            TOKEN,
            Some((other, String::new())),
        ));
        let e = relay.subscribe(pb::SubscribeRequest { worker_id: other, from_seq: 1 }).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{e}");
        // Taking over another worker's id on a re-join needs that session's secret.
        let mut c = pb::cluster_client::ClusterClient::new(with_metadata(channel(&url).await, TOKEN, None))
            .max_decoding_message_size(64 << 20);
        let taken = c
            .join(pb::JoinRequest {
                protocol_version: strom_proto::PROTOCOL_VERSION,
                previous_worker_id: Some(other),
                previous_secret: "guessed".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_ne!(taken.worker_id, other, "an id is not handed over without its secret");
        // The workers' token on the control service.
        let mut control =
            pb::control_client::ControlClient::new(with_metadata(channel(&url).await, TOKEN, None));
        // (Authenticated, but not permitted: the reply names the role.)
        let e = control.stop(pb::Empty {}).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "a worker credential cannot steer the job: {e}");
        assert!(e.message().contains("wrong role"), "{e}");
        let e = control.watch_job(pb::WatchRequest::default()).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{e}");
        // The control token cannot join as a worker either.
        let mut c = pb::cluster_client::ClusterClient::new(with_metadata(channel(&url).await, CONTROL, None));
        let e = c
            .join(pb::JoinRequest { protocol_version: strom_proto::PROTOCOL_VERSION, ..Default::default() })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{e}");
        assert!(e.message().contains("wrong role"), "{e}");
        // The intruders leave; their ids are lost like any worker's.
        drop((as_other, mine, no_secret));
        (raw, 5u64)
    });
    let status = coord.wait_exit(Duration::from_secs(240)).expect("the job completes");
    assert!(status.success(), "{}", coord.output());
    for w in &mut workers {
        assert!(w.wait_exit(Duration::from_secs(30)).expect("worker exits").success(), "{}", w.output());
    }
    let s = json(&summary);
    assert!(s["calls_refused"].as_u64().unwrap() >= refused_calls, "every refusal is counted: {s}");
    assert!(s["messages_rejected"].as_u64().unwrap() >= 1, "the NaN update is counted: {s}");
    let log = coord.output();
    assert!(
        log.contains("update of its step 7 holds a non-finite value first at layer 1 (")
            && log.contains("entry 5: refused, not relayed"),
        "the NaN is named by worker, step and layer: {log}"
    );
    assert!(s["test_accuracy"].as_f64().unwrap() >= 0.8, "the job is unaffected: {s} ({raw:?})");
}

#[test]
fn submitted_jobs_cannot_choose_programs_and_removed_workers_stay_out() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("s.json");
    // Serving on after the stopped job: the next submission meets it, and the removed worker
    // is refused when it comes back.
    let (coord, url, token) = coordinator(dir.path(), 400, &summary, &["--serve"]);
    let mut workers: Vec<Proc> =
        (0..2).map(|_| Proc::spawn(&["worker", "--coordinator", &url, "--token-file", &token])).collect();
    coord.wait_for("epoch 1 done", Duration::from_secs(120)).unwrap_or_else(|| panic!("{}", coord.output()));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut control =
            pb::control_client::ControlClient::new(with_metadata(channel(&url).await, CONTROL, None));
        // Remove worker 0: it is told to finish, and never admitted again under that id.
        let r = control.remove_worker(pb::RemoveWorkerRequest { worker_id: 0 }).await.unwrap().into_inner();
        assert!(r.ok, "{}", r.message);
        let mut c = pb::cluster_client::ClusterClient::new(with_metadata(channel(&url).await, TOKEN, None));
        let e = c
            .join(pb::JoinRequest {
                protocol_version: strom_proto::PROTOCOL_VERSION,
                previous_worker_id: Some(0),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(e.message().contains("was removed from this job"), "{e}");
        // A running job can be stopped, and the next one cannot bring a ProxyCommand along.
        control.stop(pb::Empty {}).await.unwrap();
        let toml = "name = \"sneaky\"\n[cluster]\nlauncher = \"ssh\"\nhosts = [\"me@127.0.0.1\"]\n\
                    [cluster.ssh]\noptions = [\"-oProxyCommand=touch /tmp/strom-pwned\"]\n";
        let mut reply =
            control.submit(pb::SubmitRequest { toml: toml.into(), start: true }).await.unwrap().into_inner();
        for _ in 0..50 {
            if !reply.message.contains("still running") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            reply = control
                .submit(pb::SubmitRequest { toml: toml.into(), start: true })
                .await
                .unwrap()
                .into_inner();
        }
        assert!(!reply.ok, "{}", reply.message);
        assert!(reply.problems.iter().any(|p| p.key == "cluster.ssh.options"), "{reply:?}");
    });
    assert!(!std::path::Path::new("/tmp/strom-pwned").exists());
    let mut removed = Vec::new();
    for (i, w) in workers.iter_mut().enumerate() {
        match w.wait_exit(Duration::from_secs(60)) {
            Some(status) => removed.push(status),
            None => panic!("worker {i} did not exit:\n{}\n---\n{}", w.output(), coord.output()),
        }
    }
    assert!(
        removed.iter().all(|s| s.success()),
        "a removed worker exits cleanly (nothing restarts it): {removed:?}\n{}\n---\n{}",
        workers[0].output(),
        workers[1].output()
    );
    assert!(coord.output().contains("removed by request"), "{}", coord.output());
    // It serves on (--serve); dropping it ends it.
}
