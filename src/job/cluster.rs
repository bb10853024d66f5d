//! `[cluster]`: where workers run, how many, timeouts, checkpoints and launchers' settings.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LauncherKind {
    /// Workers are threads of this process.
    Embedded,
    /// Workers are `strom worker` processes on this machine.
    Local,
    /// Workers are started on SSH hosts.
    Ssh,
    /// Workers are Spark barrier tasks.
    Spark,
    /// Nothing is started; workers join by themselves.
    None,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSpec {
    pub launcher: LauncherKind,
    pub workers: usize,
    /// A worker that sends nothing for this long is lost; its partitions go back to the queue.
    pub heartbeat_timeout_secs: u64,
    /// A worker the job waits for (a partition, the barrier, an averaging round) that makes no
    /// training call for this long is lost even if it still heartbeats (a hung training
    /// thread); its partitions go back to the queue.
    pub step_timeout_secs: u64,
    /// Workers keep trying to reach a lost coordinator this long (long enough for it to restart
    /// and prepare the data again); a job with no live worker for this long fails.
    pub reconnect_secs: u64,
    /// Local and SSH launchers start a crashed worker again this many times (with backoff:
    /// 1, 2, 4, ... s); Spark relies on its own task retries.
    pub max_restarts: u32,
    /// With a checkpoint directory: write a checkpoint every this many steps (all workers'
    /// steps together), besides every epoch end. 0: epoch ends only.
    pub checkpoint_every: u64,
    /// SSH launcher: the hosts workers start on, in turn ("user@host", or a table with host,
    /// port and the binary's path there).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostSpec>,
    /// SSH and Spark launchers: the job runs if at least this many workers start (hosts that
    /// cannot be reached are reported and skipped). Launcher `none`: training starts when this
    /// many have joined. Default: all of them (`workers`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_workers: Option<usize>,
    pub ssh: SshSpec,
    pub spark: SparkSpec,
    pub relay: RelaySpec,
    /// `backend`, `cuda_device`, `cpu_fallback` and `threads` as older job files give them
    /// here; loading moves them to `[compute]` (see `compute::move_legacy`).
    #[serde(rename = "backend", skip_serializing)]
    pub legacy_backend: Option<super::BackendKind>,
    #[serde(rename = "cuda_device", skip_serializing)]
    pub legacy_cuda_device: Option<usize>,
    #[serde(rename = "cpu_fallback", skip_serializing)]
    pub legacy_cpu_fallback: Option<bool>,
    #[serde(rename = "threads", skip_serializing)]
    pub legacy_threads: Option<usize>,
}

/// How updates reach the workers: a star through the coordinator, or, for more workers than
/// `star_max`, a tree of at most `fanout` children per node (see `cluster/relay.rs`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelaySpec {
    /// Up to this many workers (`workers`), the coordinator relays to each; above, a tree.
    pub star_max: usize,
    /// Children per node of the tree (the coordinator's and each relaying worker's).
    pub fanout: usize,
}

impl Default for RelaySpec {
    fn default() -> Self {
        RelaySpec { star_max: 32, fanout: 8 }
    }
}

impl ClusterSpec {
    /// Whether this job's updates travel through the relay tree.
    pub fn relay_tree(&self) -> bool {
        self.workers > self.relay.star_max
    }
}

/// How the Spark launcher submits worker tasks (the cockpit's and `strom train`'s; `strom
/// submit` takes the same settings as flags).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SparkSpec {
    /// Spark master: local[N], spark://host:7077, yarn, k8s://...
    pub master: String,
    /// spark-submit to run [default: $SPARK_HOME/bin/spark-submit, else on PATH].
    pub submit: String,
    /// Extra spark-submit arguments.
    pub args: Vec<String>,
    /// Ship this binary to the executors with --files.
    pub ship_binary: bool,
}

impl Default for SparkSpec {
    fn default() -> Self {
        SparkSpec { master: "local[2]".into(), submit: String::new(), args: vec![], ship_binary: false }
    }
}

/// An SSH host: "user@host" or `{ host = "user@host", port = 2222, binary = "/opt/strom" }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HostSpec {
    Name(String),
    Full(HostTable),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostTable {
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The `strom` binary on that host [default: cluster.ssh.binary].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<String>,
}

impl HostSpec {
    /// The text as written: `user@host`, `user@host:port`, `user@[v6]:port`, or a table's `host`.
    fn written(&self) -> &str {
        match self {
            HostSpec::Name(h) => h,
            HostSpec::Full(t) => &t.host,
        }
    }

    /// Where ssh connects, and the port written with it; an error says what is wrong.
    pub fn destination(&self) -> Result<(String, Option<u16>), String> {
        let (dest, port) = split_destination(self.written())?;
        let port = match self {
            HostSpec::Full(HostTable { port: Some(p), .. }) => Some(*p),
            _ => port,
        };
        Ok((dest, port))
    }

    /// The ssh destination without the port (`user@host`, `user@::1`).
    pub fn host(&self) -> String {
        self.destination().map(|(d, _)| d).unwrap_or_else(|_| self.written().to_string())
    }

    pub fn port(&self) -> Option<u16> {
        self.destination().ok().and_then(|(_, p)| p)
    }

    /// The host as logs and messages name it: with its port when it has one, so two hosts that
    /// differ only by port are told apart.
    pub fn label(&self) -> String {
        match self.destination() {
            Ok((dest, Some(port))) if dest.contains(':') => match dest.rsplit_once('@') {
                Some((user, ip)) => format!("{user}@[{ip}]:{port}"),
                None => format!("[{dest}]:{port}"),
            },
            Ok((dest, Some(port))) => format!("{dest}:{port}"),
            Ok((dest, None)) => dest,
            Err(_) => self.written().to_string(),
        }
    }

    pub fn binary<'a>(&'a self, default: &'a str) -> &'a str {
        match self {
            HostSpec::Full(HostTable { binary: Some(b), .. }) => b,
            _ => default,
        }
    }
    /// The machine's name, without the user or port (`user@node2:22` → `node2`).
    pub fn machine(&self) -> String {
        self.host().rsplit('@').next().unwrap_or_default().to_string()
    }
    /// Whether the host is another machine than this one (not a loopback name).
    pub fn is_remote(&self) -> bool {
        !matches!(self.machine().as_str(), "127.0.0.1" | "localhost" | "::1")
    }
}

/// `user@host:port` → (`user@host`, 2222); `user@[::1]:2222` → (`user@::1`, 2222); a bare IPv6
/// address has no port.
pub fn split_destination(text: &str) -> Result<(String, Option<u16>), String> {
    let text = text.trim();
    let (user, rest) = match text.rsplit_once('@') {
        Some((u, r)) => (Some(u), r),
        None => (None, text),
    };
    let port_of = |p: &str| p.parse::<u16>().map_err(|_| format!("the port '{p}' is not a number"));
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        let (h, after) = inner.split_once(']').ok_or("a '[' without its ']'")?;
        match after {
            "" => (h, None),
            a => (h, Some(port_of(a.strip_prefix(':').ok_or("expected ':PORT' after ']'")?)?)),
        }
    } else {
        match rest.split_once(':') {
            Some((h, p)) if !p.contains(':') => (h, Some(port_of(p)?)),
            _ => (rest, None),
        }
    };
    if host.is_empty() {
        return Err("no host name".into());
    }
    Ok((user.map_or_else(|| host.to_string(), |u| format!("{u}@{host}")), port))
}

/// How the SSH launcher reaches hosts and what it runs there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SshSpec {
    /// The `strom` binary on the hosts: a path, or a name found on their PATH.
    pub binary: String,
    /// Copy this machine's binary there with scp when a host lacks it (same OS and CPU family).
    pub copy_binary: bool,
    /// Extra arguments for ssh and scp (e.g. ["-i", "~/.ssh/cluster", "-o", "ProxyJump=gw"]).
    pub options: Vec<String>,
    /// The coordinator's URL as the hosts reach it [default: this machine's host name and the
    /// coordinator's port].
    pub coordinator_url: String,
    /// Seconds to wait for a host to answer.
    pub connect_timeout_secs: u64,
}

impl Default for SshSpec {
    fn default() -> Self {
        SshSpec {
            binary: "strom".into(),
            copy_binary: false,
            options: vec![],
            coordinator_url: String::new(),
            connect_timeout_secs: 10,
        }
    }
}

impl Default for ClusterSpec {
    fn default() -> Self {
        ClusterSpec {
            launcher: LauncherKind::Embedded,
            workers: 1,
            heartbeat_timeout_secs: 10,
            step_timeout_secs: 300,
            reconnect_secs: 300,
            max_restarts: 3,
            checkpoint_every: 200,
            hosts: vec![],
            min_workers: None,
            ssh: SshSpec::default(),
            spark: SparkSpec::default(),
            relay: RelaySpec::default(),
            legacy_backend: None,
            legacy_cuda_device: None,
            legacy_cpu_fallback: None,
            legacy_threads: None,
        }
    }
}

/// The cores this process may use.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_as_people_write_them() {
        let name = |t: &str| HostSpec::Name(t.into());
        let d = |t: &str| name(t).destination();
        assert_eq!(d("alice@node1"), Ok(("alice@node1".into(), None)));
        assert_eq!(d("alice@127.0.0.1:22422"), Ok(("alice@127.0.0.1".into(), Some(22422))));
        assert_eq!(d("alice@[::1]:2222"), Ok(("alice@::1".into(), Some(2222))));
        assert_eq!(d("[fe80::1]"), Ok(("fe80::1".into(), None)));
        assert_eq!(d("::1"), Ok(("::1".into(), None)));
        assert!(d("alice@node1:ssh").unwrap_err().contains("'ssh' is not a number"));
        assert!(d("alice@[::1").is_err() && d("alice@").is_err());
        // A table's port wins over one written in its host.
        let t = HostSpec::Full(HostTable { host: "bob@n:1".into(), port: Some(2), binary: None });
        assert_eq!(t.destination(), Ok(("bob@n".into(), Some(2))));
        // Logged with the port, so hosts that differ only by it are told apart.
        assert_eq!(name("alice@n1:2201").label(), "alice@n1:2201");
        assert_eq!(name("alice@[::1]:2201").label(), "alice@[::1]:2201");
        assert_eq!(name("alice@n1").label(), "alice@n1");
        assert_eq!(name("alice@n1:2201").machine(), "n1");
    }
}
