//! The cockpit's link to the coordinator: a watch stream (snapshot, then deltas) and a log
//! stream, each re-established with capped, jittered backoff, and one task that carries out
//! the app's requests. A dropped stream always resumes from a fresh snapshot. What arrives is
//! converted into the cockpit's own types (`model`) here, before it goes to the app.

use std::time::Duration;

use strom_proto::tls::ClientTls;
use strom_proto::v1 as pb;
use strom_proto::v1::control_client::ControlClient;
use tokio::sync::mpsc;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request as GrpcRequest, Status};

use crate::app::{Msg, Request};
use crate::state::Connection;

/// How to reach the coordinator.
#[derive(Clone, Debug)]
pub struct Target {
    pub url: String,
    pub token: Option<String>,
    pub tls: Option<ClientTls>,
}

#[derive(Clone)]
pub struct Auth(Option<MetadataValue<Ascii>>);

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, mut r: GrpcRequest<()>) -> Result<GrpcRequest<()>, Status> {
        if let Some(v) = &self.0 {
            r.metadata_mut().insert(strom_proto::AUTHORIZATION, v.clone());
        }
        Ok(r)
    }
}

type Client = ControlClient<InterceptedService<Channel, Auth>>;

pub fn client(target: &Target) -> anyhow::Result<Client> {
    let ep = strom_proto::tls::endpoint(&target.url, target.tls.as_ref())?
        .connect_timeout(Duration::from_secs(3))
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(10));
    let auth = Auth(match &target.token {
        Some(t) => Some(format!("Bearer {t}").parse()?),
        None => None,
    });
    Ok(ControlClient::with_interceptor(strom_proto::tls::connect_lazy(&ep, target.tls.as_ref()), auth)
        .max_decoding_message_size(256 << 20))
}

/// Backoff between reconnection attempts: 250 ms doubling to 5 s, each ±50% at random.
pub fn backoff(attempt: u32, seed: &mut u64) -> Duration {
    let base = 0.25 * 2f64.powi(attempt.min(5) as i32);
    // xorshift: enough randomness to keep many cockpits from reconnecting in step.
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    let jitter = 0.5 + (*seed % 1000) as f64 / 1000.0;
    Duration::from_secs_f64(base.min(5.0) * jitter)
}

fn describe(status: &Status) -> String {
    match status.code() {
        tonic::Code::Unauthenticated => format!("refused: {} (pass --token-file)", status.message()),
        tonic::Code::Unavailable => "coordinator unavailable".into(),
        _ => status.message().to_string(),
    }
}

/// A status and its causes, each said once.
fn chain(status: &Status) -> String {
    let causes =
        std::iter::successors(std::error::Error::source(status), |e| e.source()).map(|e| e.to_string());
    strom_proto::errors::say_once(std::iter::once(status.message().to_string()).chain(causes))
}

/// Why the watch failed, and whether that is final: a refusal no retry changes stops the
/// cockpit's retries (README states the rule); anything else is retried.
pub async fn why(status: &Status, url: &str) -> (String, bool) {
    let text = chain(status);
    if text.contains("not the pinned") {
        let detail = text.rsplit("certificate is ").next().unwrap_or(&text);
        return (format!("the coordinator's certificate is {detail}"), true);
    }
    if text.contains("certificate") || text.contains("UnknownIssuer") {
        return (format!("the coordinator's certificate is not trusted: {text}"), true);
    }
    match status.code() {
        tonic::Code::Unauthenticated => {
            return (
                format!("token refused: {} (attach needs the control token: --token-file)", status.message()),
                true,
            );
        }
        tonic::Code::PermissionDenied => return (status.message().to_string(), true),
        _ => {}
    }
    if url.starts_with("http://") && strom_proto::tls::answers_tls(url).await {
        return (strom_proto::tls::serves_tls(url), true);
    }
    if let Some(said) = strom_proto::tls::serves_plaintext(url, &text) {
        return (said, true);
    }
    if text.contains("Connection refused") || text.contains("connection refused") {
        return ("nothing listens there (connection refused)".into(), false);
    }
    (if text.is_empty() { describe(status) } else { text }, false)
}

/// Streams the job: snapshot first, then deltas; reconnects for ever.
pub async fn watch(target: Target, interval: Duration, tx: mpsc::Sender<Msg>) {
    let Ok(mut c) = client(&target) else {
        let _ = tx.send(Msg::Reply(false, format!("bad coordinator URL {}", target.url))).await;
        return;
    };
    let mut attempt = 0u32;
    let mut seed = std::process::id() as u64 | 1;
    loop {
        let result = c.watch_job(pb::WatchRequest { interval_ms: interval.as_millis() as u32 }).await;
        let error = match result {
            Ok(resp) => {
                let mut stream = resp.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(update)) => {
                            attempt = 0;
                            let msg = match update.kind {
                                Some(pb::job_update::Kind::Snapshot(s)) => Msg::Snapshot(s.into()),
                                Some(pb::job_update::Kind::Delta(d)) => Msg::Delta(d.into()),
                                None => continue,
                            };
                            if tx.send(msg).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => break "the coordinator closed the stream".to_string(),
                        Err(s) => break describe(&s),
                    }
                }
            }
            Err(s) => {
                let (reason, last) = why(&s, &target.url).await;
                if last {
                    let _ = tx.send(Msg::Connection(Connection::Refused(reason))).await;
                    return;
                }
                reason
            }
        };
        attempt += 1;
        let wait = backoff(attempt, &mut seed);
        let state = Connection::Reconnecting { attempt, retry_in: wait.as_secs_f64(), error };
        if tx.send(Msg::Connection(state)).await.is_err() {
            return;
        }
        tokio::time::sleep(wait).await;
    }
}

/// Streams log lines; reconnects for ever.
pub async fn logs(target: Target, tx: mpsc::Sender<Msg>) {
    let Ok(mut c) = client(&target) else { return };
    let mut attempt = 0u32;
    let mut seed = (std::process::id() as u64) << 1 | 1;
    loop {
        if let Ok(resp) = c.watch_logs(pb::LogsRequest { min_level: "debug".into(), workers: vec![] }).await {
            let mut stream = resp.into_inner();
            while let Ok(Some(batch)) = stream.message().await {
                attempt = 0;
                if tx.send(Msg::Logs(batch.into())).await.is_err() {
                    return;
                }
            }
        }
        attempt += 1;
        tokio::time::sleep(backoff(attempt, &mut seed)).await;
    }
}

/// Reads a job file where the cockpit runs.
async fn read_job(path: &str) -> Result<String, String> {
    tokio::fs::read_to_string(path).await.map_err(|e| format!("cannot open {path}: {e}"))
}

/// Writes the job to a file where the cockpit runs; what to tell the user.
async fn write_job(path: &str, toml: &str) -> Result<String, String> {
    match tokio::fs::write(path, toml).await {
        Ok(()) => Ok(format!("saved the job to {path}")),
        Err(e) => Err(format!("cannot write {path}: {e}")),
    }
}

/// The job form's text as the requests leave it. The app builds each request from the text of
/// the last form it has been sent, which lags behind edits still in flight (every keystroke
/// is an edit): a save, a submit or the next edit made right after typing would carry the
/// text from before the last keystrokes. Requests are carried out in order, so the text of
/// the last form this task produced is the one the app's request means.
#[derive(Default)]
struct FormText(Option<String>);

impl FormText {
    /// The text to act on: the last form's, or (none yet) what the app sent.
    fn current(&self, sent: String) -> String {
        self.0.clone().unwrap_or(sent)
    }

    /// A form reply on its way to the app: its text is now the current one.
    fn formed(&mut self, msg: &Msg) {
        if let Msg::Form(form) = msg {
            self.0 = Some(form.toml.clone());
        }
    }
}

/// Carries out the app's requests, one at a time, in order.
pub async fn requests(target: Target, mut rx: mpsc::Receiver<Request>, tx: mpsc::Sender<Msg>) {
    let Ok(mut c) = client(&target) else { return };
    let mut text = FormText::default();
    while let Some(req) = rx.recv().await {
        // A new job's text (described, opened) starts afresh; the others act on the current one.
        let req = match req {
            Request::Submit { toml, start } => Request::Submit { toml: text.current(toml), start },
            Request::Edit { toml, key, value } => Request::Edit { toml: text.current(toml), key, value },
            Request::Validate { toml } => Request::Validate { toml: text.current(toml) },
            Request::SaveFile { path, toml } => Request::SaveFile { path, toml: text.current(toml) },
            other => other,
        };
        let reply = |r: Result<tonic::Response<pb::ControlReply>, Status>| match r {
            Ok(r) => Msg::Reply(r.get_ref().ok, r.into_inner().message),
            Err(s) => Msg::Reply(false, describe(&s)),
        };
        let msg = match req {
            Request::Submit { toml, start } => match c.submit(pb::SubmitRequest { toml, start }).await {
                Ok(r) => {
                    let r = r.into_inner();
                    let detail =
                        r.problems.first().map(|p| format!(": {}: {}", p.key, p.message)).unwrap_or_default();
                    Msg::Reply(r.ok, format!("{}{detail}", r.message))
                }
                Err(s) => Msg::Reply(false, describe(&s)),
            },
            Request::Pause => reply(c.pause(pb::Empty {}).await),
            Request::Resume => reply(c.resume(pb::Empty {}).await),
            Request::Stop => reply(c.stop(pb::Empty {}).await),
            Request::AddWorkers { count, host } => {
                reply(c.add_workers(pb::AddWorkersRequest { count, host }).await)
            }
            Request::RemoveWorker(id) => {
                reply(c.remove_worker(pb::RemoveWorkerRequest { worker_id: id }).await)
            }
            Request::Describe { toml } => {
                match c.describe_job(pb::JobText { toml, check_paths: false, base_dir: String::new() }).await
                {
                    Ok(r) => Msg::Form(r.into_inner().into()),
                    Err(s) => Msg::Reply(false, describe(&s)),
                }
            }
            Request::Edit { toml, key, value } => {
                match c.edit_job(pb::EditRequest { toml, key, value }).await {
                    Ok(r) => Msg::Form(r.into_inner().into()),
                    Err(s) => Msg::Reply(false, describe(&s)),
                }
            }
            Request::Validate { toml } => {
                match c.validate(pb::JobText { toml, check_paths: true, ..Default::default() }).await {
                    Ok(r) => Msg::Validated(r.into_inner().into()),
                    Err(s) => Msg::Reply(false, describe(&s)),
                }
            }
            Request::OpenFile { path } => match read_job(&path).await {
                Ok(toml) => {
                    if tx.send(Msg::Reply(true, format!("opened {path}"))).await.is_err() {
                        return;
                    }
                    // Relative paths in the file are the file's folder's, wherever the cockpit runs.
                    let base_dir = std::path::absolute(&path)
                        .ok()
                        .and_then(|p| p.parent().map(|d| d.display().to_string()))
                        .unwrap_or_default();
                    match c.describe_job(pb::JobText { toml, check_paths: false, base_dir }).await {
                        Ok(r) => Msg::Form(r.into_inner().into()),
                        Err(s) => Msg::Reply(false, describe(&s)),
                    }
                }
                Err(e) => Msg::Reply(false, e),
            },
            Request::SaveFile { path, toml } => match write_job(&path, &toml).await {
                Ok(said) => Msg::Reply(true, said),
                Err(e) => Msg::Reply(false, e),
            },
        };
        text.formed(&msg);
        if tx.send(msg).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keystrokes sent before the reply to the first came back: the save after them writes the
    /// text of the last form, not the one the app held when it asked.
    #[test]
    fn requests_act_on_the_last_form_not_the_apps_lagging_copy() {
        let mut text = FormText::default();
        assert_eq!(text.current("from the app".into()), "from the app", "no form yet");
        let form = |t: &str| Msg::Form(crate::model::JobForm { toml: t.into(), ..Default::default() });
        text.formed(&form("name = \"xkeep-b\""));
        text.formed(&Msg::Reply(false, "an edit refused".into()));
        assert_eq!(text.current("name = \"xkeep-b\"".into()), "name = \"xkeep-b\"");
        text.formed(&form("name = \"xkeepb\""));
        assert_eq!(text.current("name = \"xkeep-b\"".into()), "name = \"xkeepb\"");
    }

    #[tokio::test]
    async fn job_files_are_written_and_read_back_with_errors_that_name_the_path() {
        let dir = std::env::temp_dir().join(format!("strom-ui-conn-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("j.toml").display().to_string();
        assert_eq!(write_job(&path, "T").await, Ok(format!("saved the job to {path}")));
        assert_eq!(read_job(&path).await.as_deref(), Ok("T"));
        let missing = read_job("/no/such/file.toml").await.unwrap_err();
        assert!(missing.starts_with("cannot open /no/such/file.toml: "), "{missing}");
        let unwritable = write_job("/no/such/dir/j.toml", "T").await.unwrap_err();
        assert!(unwritable.starts_with("cannot write /no/such/dir/j.toml: "), "{unwritable}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let mut seed = 7;
        let waits: Vec<f64> = (1..20).map(|a| backoff(a, &mut seed).as_secs_f64()).collect();
        assert!(waits.iter().all(|w| *w <= 7.5 && *w >= 0.125), "{waits:?}");
        assert!(waits[0] < 1.0);
        let distinct: std::collections::BTreeSet<u64> = waits.iter().map(|w| (w * 1000.0) as u64).collect();
        assert!(distinct.len() > 10, "jittered: {waits:?}");
    }
}
