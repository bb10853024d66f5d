//! Workers on SSH hosts, started with the system `ssh` client (batch mode: the user's keys,
//! agent and known hosts; never a password prompt). Each host is probed first; hosts that
//! cannot be reached, refuse us or lack the binary are reported by name and skipped, and the
//! job fails only when fewer than `min_workers` can start. The token travels on ssh's stdin,
//! never on a command line. Killing the local `ssh` ends the remote worker: it is started
//! with `--exit-with-parent` naming its sshd session.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use super::local::{ChildSlots, Tail, lock, spawn_tied};
use super::{LaunchContext, Launcher};
use crate::cluster::ClusterError;
use crate::job::{ClusterSpec, HostSpec};

/// Quotes `s` for a POSIX shell (the remote side runs the command through one).
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:=@+,".contains(&b)) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// What probing a host found.
#[derive(Clone, Debug, PartialEq)]
enum Probe {
    Ready,
    /// ssh worked; the binary is not there (or not executable).
    NoBinary,
    Failed(String),
}

pub struct SshLauncher {
    hosts: Vec<HostSpec>,
    spec: crate::job::SshSpec,
    min_workers: Option<usize>,
    children: ChildSlots,
    /// Workers started so far (the next one goes to the next good host).
    started: Mutex<usize>,
    probed: Mutex<BTreeMap<usize, Probe>>,
}

impl SshLauncher {
    pub fn new(cluster: &ClusterSpec) -> SshLauncher {
        SshLauncher {
            hosts: cluster.hosts.clone(),
            spec: cluster.ssh.clone(),
            min_workers: cluster.min_workers,
            children: ChildSlots::default(),
            started: Mutex::new(0),
            probed: Mutex::new(BTreeMap::new()),
        }
    }

    fn ssh(&self, host: &HostSpec) -> Command {
        ssh_command(&self.spec, host)
    }

    fn binary<'a>(&'a self, host: &'a HostSpec) -> &'a str {
        host.binary(&self.spec.binary)
    }

    /// Checks that the host answers and has the binary (copying it there if asked to).
    fn probe(&self, host: &HostSpec, ctx: &LaunchContext) -> Probe {
        let bin = self.binary(host);
        // (dash's `command -v` accepts any path, so paths are tested as files.)
        let check = if bin.contains('/') {
            format!("test -x {} || exit 86", shell_quote(bin))
        } else {
            format!("command -v {} >/dev/null 2>&1 || exit 86", shell_quote(bin))
        };
        let out = match self.ssh(host).arg(check).stdin(Stdio::null()).output() {
            Ok(o) => o,
            Err(e) => return Probe::Failed(format!("cannot run ssh: {e}")),
        };
        let probe = match out.status.code() {
            Some(0) => Probe::Ready,
            Some(86) => Probe::NoBinary,
            Some(255) => Probe::Failed(ssh_failure(&host.label(), &String::from_utf8_lossy(&out.stderr))),
            other => Probe::Failed(shell_refused(other, &out)),
        };
        if probe != Probe::NoBinary {
            return probe;
        }
        if !self.spec.copy_binary {
            return Probe::Failed(format!(
                "no '{bin}' there (set cluster.ssh.binary or the host's binary, or cluster.ssh.copy_binary = true)"
            ));
        }
        self.copy_binary(host, ctx)
    }

    /// Copies this machine's binary to the host's binary path with scp.
    fn copy_binary(&self, host: &HostSpec, ctx: &LaunchContext) -> Probe {
        let bin = self.binary(host);
        if !bin.contains('/') {
            return Probe::Failed(format!(
                "'{bin}' is not on the host's PATH and copy_binary needs a path to copy to (e.g. binary = \"/tmp/strom\")"
            ));
        }
        // The folder first: scp does not make it.
        if let Some((dir, _)) = bin.rsplit_once('/').filter(|(d, _)| !d.is_empty()) {
            let mkdir = format!("mkdir -p -- {}", shell_quote(dir));
            match self.ssh(host).arg(mkdir).stdin(Stdio::null()).output() {
                Ok(o) if o.status.success() => {}
                Ok(o) => {
                    return Probe::Failed(format!(
                        "cannot create {dir} there for the binary: {}",
                        said(&o).unwrap_or_else(|| format!("mkdir exited with {}", o.status))
                    ));
                }
                Err(e) => return Probe::Failed(format!("cannot run ssh: {e}")),
            }
        }
        let mut scp = Command::new("scp");
        scp.args([
            "-q",
            "-o",
            "BatchMode=yes",
            "-o",
            &format!("ConnectTimeout={}", self.spec.connect_timeout_secs),
        ])
        .args(&self.spec.options);
        if let Some(p) = host.port() {
            scp.args(["-P", &p.to_string()]);
        }
        let dest = host.host();
        // An IPv6 address goes in brackets for scp (`user@[::1]:/path`).
        let target = match dest.rsplit_once('@') {
            Some((user, ip)) if ip.contains(':') => format!("{user}@[{ip}]:{bin}"),
            None if dest.contains(':') => format!("[{dest}]:{bin}"),
            _ => format!("{dest}:{bin}"),
        };
        scp.arg(&ctx.binary).arg(target);
        match scp.stdin(Stdio::null()).output() {
            Ok(o) if o.status.success() => {
                tracing::info!("copied {} to {}:{bin}", ctx.binary.display(), host.label());
                Probe::Ready
            }
            Ok(o) => {
                Probe::Failed(format!("scp to {bin} failed: {}", String::from_utf8_lossy(&o.stderr).trim()))
            }
            Err(e) => Probe::Failed(format!("cannot run scp: {e}")),
        }
    }

    /// Probes every host not probed yet, in parallel.
    fn probe_all(&self, ctx: &LaunchContext) {
        let todo: Vec<usize> = {
            let probed = lock(&self.probed);
            (0..self.hosts.len()).filter(|i| !probed.contains_key(i)).collect()
        };
        let results: Vec<(usize, Probe)> = std::thread::scope(|s| {
            let handles: Vec<_> =
                todo.iter().map(|&i| (i, s.spawn(move || self.probe(&self.hosts[i], ctx)))).collect();
            handles
                .into_iter()
                .map(|(i, h)| (i, h.join().unwrap_or_else(|_| Probe::Failed("the probe panicked".into()))))
                .collect()
        });
        let mut probed = lock(&self.probed);
        for (i, p) in results {
            if let Probe::Failed(why) = &p {
                let message = format!("host {}: {why}", self.hosts[i].label());
                tracing::error!("{message}");
                lock(&ctx.problems).push(message);
            }
            probed.insert(i, p);
        }
    }
}

/// What a command printed (stdout, then stderr, less ssh's note on a host key it recorded), or
/// `None` when it printed nothing.
fn said(out: &std::process::Output) -> Option<String> {
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = stdout
        .lines()
        .chain(stderr.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
        .collect();
    (!lines.is_empty()).then(|| lines.join("; "))
}

/// The check ran but not as a command: the login shell refused it (`nologin`, `false`, a
/// forced command), in its own words.
fn shell_refused(code: Option<i32>, out: &std::process::Output) -> String {
    let code = code.map_or_else(|| "a signal".to_string(), |c| format!("exit {c}"));
    match said(out) {
        Some(text) => format!("the login shell there refused the check ({code}): {text}"),
        None => format!("the login shell there refused the check ({code}) and printed nothing"),
    }
}

/// ssh itself failed (exit 255): what it said, with the fix for an unknown or changed host key.
fn ssh_failure(host: &str, stderr: &str) -> String {
    let said = stderr.trim();
    if said.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
        return format!(
            "its host key has changed since it was recorded in known_hosts (ssh refuses: \
             REMOTE HOST IDENTIFICATION HAS CHANGED); if the host was reinstalled, remove the old \
             key (ssh-keygen -R {}) and connect once by hand",
            host.rsplit('@').next().unwrap_or(host)
        );
    }
    if said.contains("Host key verification failed") || said.contains("No ED25519 host key is known") {
        return format!(
            "its host key is not in this machine's known_hosts, and the launcher never answers \
             ssh's question (Host key verification failed): connect once by hand (ssh {host}) to \
             accept it, or add [\"-o\", \"StrictHostKeyChecking=accept-new\"] to cluster.ssh.options"
        );
    }
    if said.is_empty() {
        "ssh failed and said nothing".into()
    } else {
        said.lines().collect::<Vec<_>>().join("; ")
    }
}

/// `ssh` with batch mode, timeouts, keep-alives, the job's options and the host's port.
fn ssh_command(spec: &crate::job::SshSpec, host: &HostSpec) -> Command {
    let mut c = Command::new("ssh");
    c.args(["-o", "BatchMode=yes", "-o", &format!("ConnectTimeout={}", spec.connect_timeout_secs)])
        .args(["-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"])
        .args(&spec.options);
    if let Some(p) = host.port() {
        c.args(["-p", &p.to_string()]);
    }
    c.arg(host.host());
    c
}

/// One worker on one host: what it takes to start it, and to start it again after a crash.
struct RemoteWorker {
    spec: crate::job::SshSpec,
    host: HostSpec,
    ctx: LaunchContext,
    name: String,
}

impl RemoteWorker {
    fn remote_command(&self, restart: u32) -> String {
        let mut args: Vec<String> = vec![self.host.binary(&self.spec.binary).to_string()];
        args.extend(self.ctx.worker_args(true));
        args.extend(["--name".into(), self.name.clone(), "--log-format".into(), "json".into()]);
        if restart > 0 {
            args.extend(["--restarts".into(), restart.to_string()]);
        }
        let quoted: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
        // $PPID is the sshd session: when the connection goes, so does the worker.
        format!("exec {} --exit-with-parent $PPID", quoted.join(" "))
    }

    fn spawn(&self, restart: u32) -> std::io::Result<(std::process::Child, Tail)> {
        let mut cmd = ssh_command(&self.spec, &self.host);
        cmd.arg(self.remote_command(restart))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = spawn_tied(cmd)?;
        if let Some(mut stdin) = child.stdin.take() {
            let token = self.ctx.token.clone().unwrap_or_default();
            // The worker reads the token from stdin up to EOF; dropping closes it.
            let _ = stdin.write_all(token.as_bytes());
        }
        let tail = Tail::default();
        if let Some(stderr) = child.stderr.take() {
            forward_logs(stderr, self.name.clone(), tail.clone());
        }
        Ok((child, tail))
    }
}

impl Launcher for SshLauncher {
    fn start(&self, count: usize, ctx: &LaunchContext) -> Result<(), ClusterError> {
        self.probe_all(ctx);
        let good: Vec<usize> = {
            let probed = lock(&self.probed);
            (0..self.hosts.len()).filter(|i| probed.get(i) == Some(&Probe::Ready)).collect()
        };
        let already = *lock(&self.started);
        let need = self.min_workers.unwrap_or(count).min(count);
        if good.is_empty() {
            return Err(ClusterError::Launch(format!(
                "no SSH host can run a worker:\n  {}",
                lock(&ctx.problems).join("\n  ")
            )));
        }
        let mut started = 0;
        let mut failures = Vec::new();
        for k in 0..count {
            let n = already + k;
            let host = &self.hosts[good[n % good.len()]];
            let worker = RemoteWorker {
                spec: self.spec.clone(),
                host: host.clone(),
                ctx: ctx.clone(),
                name: format!("{}#{n}", host.label()),
            };
            let (child, tail) = match worker.spawn(0) {
                Ok(c) => c,
                Err(e) => {
                    failures.push(format!("host {}: cannot run ssh: {e}", host.label()));
                    continue;
                }
            };
            tracing::info!("started worker {} over ssh (local ssh pid {})", worker.name, child.id());
            let name = worker.name.clone();
            self.children.push(
                child,
                tail,
                name,
                ctx.problems.clone(),
                Some(Box::new(move |restart| worker.spawn(restart))),
                ctx.max_restarts,
            );
            started += 1;
        }
        *lock(&self.started) += started;
        for f in &failures {
            tracing::error!("{f}");
            lock(&ctx.problems).push(f.clone());
        }
        if already == 0 && started < need {
            self.stop_all();
            return Err(ClusterError::Launch(format!(
                "only {started} of {count} workers could start (cluster.min_workers = {need}):\n  {}",
                lock(&ctx.problems).join("\n  ")
            )));
        }
        if good.len() < self.hosts.len() {
            tracing::warn!(
                "running on {} of {} SSH hosts; the others are reported above",
                good.len(),
                self.hosts.len()
            );
        }
        self.children.start_monitor();
        Ok(())
    }

    fn stop_all(&self) {
        self.children.stop_all();
    }

    fn describe(&self) -> String {
        format!("ssh to {} host(s)", self.hosts.len())
    }
}

impl Drop for SshLauncher {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Forwards what a remote worker says on stderr to the coordinator's log, prefixed with its
/// name: everything until it has joined (ssh's own errors, "cannot reach the coordinator"),
/// then only errors (its other logs arrive over gRPC).
fn forward_logs(stderr: impl std::io::Read + Send + 'static, name: String, tail: Tail) {
    let _ = std::thread::Builder::new().name("strom-ssh-stderr".into()).spawn(move || {
        let mut joined = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let (level, message) = match serde_json::from_str::<serde_json::Value>(&line) {
                Ok(v) => (
                    v["level"].as_str().unwrap_or("INFO").to_string(),
                    v["fields"]["message"].as_str().unwrap_or(&line).to_string(),
                ),
                Err(_) => ("WARN".to_string(), line.clone()),
            };
            if message.contains(" joined ") {
                joined = true;
            }
            if !joined || level == "ERROR" {
                match level.as_str() {
                    "ERROR" => tracing::error!("[{name}] {message}"),
                    "WARN" => tracing::warn!("[{name}] {message}"),
                    _ => tracing::info!("[{name}] {message}"),
                }
            }
            tail.push(message);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_survives_a_shell() {
        for s in ["plain", "with space", "it's", "$HOME", "a\"b", "", "x;rm -rf /"] {
            let out =
                Command::new("sh").arg("-c").arg(format!("printf %s {}", shell_quote(s))).output().unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), s);
        }
        assert_eq!(shell_quote("http://h:1"), "http://h:1");
    }
}
