//! Where data lives: local paths, `file://`, `hdfs://` / `viewfs://` (hdfs-native), and the demo
//! data built into the binary (`builtin:`). Every read and write of the engine goes through here.

mod builtin;
mod hdfs;
mod local;

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use builtin::BUILTIN_PREFIX;

/// Errors from reading or writing a [`Location`]. Every variant names the location.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid location '{input}': {reason}")]
    Invalid { input: String, reason: String },
    #[error("{location}: not found")]
    NotFound { location: String },
    #[error("{location}: {source}")]
    Io {
        location: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{location}: HDFS namenode {namenode} did not answer within {seconds} s (is it running and \
         reachable? set STROM_HDFS_TIMEOUT_SECS to wait longer)"
    )]
    Timeout { location: String, namenode: String, seconds: u64 },
    #[error("{location}: permission denied ({message})")]
    PermissionDenied { location: String, message: String },
    #[error("{location}: not a file (it is a directory)")]
    NotAFile { location: String },
    #[error("{location}: HDFS ({namenode}): {message}")]
    Hdfs { location: String, namenode: String, message: String },
    #[error("{location}: {message}")]
    Unsupported { location: String, message: String },
    /// `hdfs:///path` names the default file system, and this host has no Hadoop configuration
    /// that says which it is.
    #[error(
        "{location}: hdfs:/// means the cluster's default file system, and host {host} has no \
         fs.defaultFS setting ({conf}); set HADOOP_CONF_DIR to the folder with the cluster's \
         core-site.xml, or write the namenode into the location (hdfs://namenode:port/...)"
    )]
    NoDefaultFs { location: String, host: String, conf: String },
}

impl StorageError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound { .. })
    }
}

/// A file or directory: on the local disk, in HDFS, or built into the binary.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Location {
    Local(PathBuf),
    /// `hdfs://authority/path` or `viewfs://cluster/path`; `namenode` is `scheme://authority`.
    Hdfs {
        namenode: String,
        path: String,
    },
    /// Demo data compiled into the binary, e.g. `builtin:fashion-mnist-demo/train`.
    Builtin(String),
}

/// What a listing or a stat returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub location: Location,
    pub is_dir: bool,
    pub len: u64,
    /// Permission bits (`0o755`); `None` for built-in data.
    pub mode: Option<u32>,
}

impl Entry {
    /// `drwxr-xr-x` / `-rw-r--r--`, as `ls -l` and `hadoop fs -ls` show them.
    pub fn mode_text(&self) -> String {
        let mut out = String::with_capacity(10);
        out.push(if self.is_dir { 'd' } else { '-' });
        match self.mode {
            Some(mode) => {
                for shift in [6, 3, 0] {
                    let bits = (mode >> shift) & 7;
                    out.push(if bits & 4 != 0 { 'r' } else { '-' });
                    out.push(if bits & 2 != 0 { 'w' } else { '-' });
                    out.push(if bits & 1 != 0 { 'x' } else { '-' });
                }
            }
            None => out.push_str("r--r--r--"),
        }
        out
    }
}

impl Location {
    /// Parses a user-supplied location string.
    pub fn parse(input: &str) -> Result<Location, StorageError> {
        let invalid =
            |reason: &str| StorageError::Invalid { input: input.to_string(), reason: reason.to_string() };
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(invalid("empty; expected a local path, file://, hdfs:// or viewfs://"));
        }
        if let Some(rest) = trimmed.strip_prefix(BUILTIN_PREFIX) {
            let name = rest.trim_matches('/');
            if name.is_empty() {
                return Err(invalid("builtin: needs a name, e.g. builtin:fashion-mnist-demo/train"));
            }
            return Ok(Location::Builtin(name.to_string()));
        }
        if let Some(rest) = trimmed.strip_prefix("file://") {
            if rest.is_empty() {
                return Err(invalid("file:// needs a path"));
            }
            return Ok(Location::Local(PathBuf::from(rest)));
        }
        if let Some((scheme, rest)) = trimmed.split_once("://") {
            let scheme_lc = scheme.to_ascii_lowercase();
            if scheme_lc != "hdfs" && scheme_lc != "viewfs" {
                return Err(invalid(&format!(
                    "unsupported scheme '{scheme}'; expected a local path, file://, hdfs:// or viewfs://"
                )));
            }
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            };
            if scheme_lc == "viewfs" && authority.is_empty() {
                return Err(invalid("viewfs:// needs a mount-table name, e.g. viewfs://cluster/path"));
            }
            if authority.contains(char::is_whitespace) {
                return Err(invalid("the namenode address contains white space"));
            }
            return Ok(Location::Hdfs {
                namenode: format!("{scheme_lc}://{authority}"),
                path: normalise_hdfs_path(path),
            });
        }
        Ok(Location::Local(PathBuf::from(trimmed)))
    }

    /// A local path as a location.
    pub fn local(path: impl AsRef<Path>) -> Location {
        Location::Local(path.as_ref().to_path_buf())
    }

    /// The child `name` of this location.
    pub fn join(&self, name: &str) -> Location {
        match self {
            Location::Local(p) => Location::Local(p.join(name)),
            Location::Hdfs { namenode, path } => Location::Hdfs {
                namenode: namenode.clone(),
                path: normalise_hdfs_path(&format!("{}/{}", path.trim_end_matches('/'), name)),
            },
            Location::Builtin(n) => Location::Builtin(format!("{}/{}", n.trim_end_matches('/'), name)),
        }
    }

    /// This location with `suffix` appended to its last component (`data/train` + `-labels`).
    pub fn with_suffix(&self, suffix: &str) -> Location {
        match self {
            Location::Local(p) => {
                let mut s = p.as_os_str().to_os_string();
                s.push(suffix);
                Location::Local(PathBuf::from(s))
            }
            Location::Hdfs { namenode, path } => {
                Location::Hdfs { namenode: namenode.clone(), path: format!("{path}{suffix}") }
            }
            Location::Builtin(n) => Location::Builtin(format!("{n}{suffix}")),
        }
    }

    /// The last path component.
    pub fn file_name(&self) -> String {
        match self {
            Location::Local(p) => p.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
            Location::Hdfs { path, .. } => path.rsplit('/').next().unwrap_or_default().to_string(),
            Location::Builtin(n) => n.rsplit('/').next().unwrap_or_default().to_string(),
        }
    }

    /// The parent directory, if there is one.
    pub fn parent(&self) -> Option<Location> {
        match self {
            Location::Local(p) => p.parent().map(|p| Location::Local(p.to_path_buf())),
            Location::Hdfs { namenode, path } => {
                let trimmed = path.trim_end_matches('/');
                let i = trimmed.rfind('/')?;
                Some(Location::Hdfs {
                    namenode: namenode.clone(),
                    path: if i == 0 { "/".into() } else { trimmed[..i].to_string() },
                })
            }
            Location::Builtin(n) => n.rfind('/').map(|i| Location::Builtin(n[..i].to_string())),
        }
    }

    pub fn is_local(&self) -> bool {
        matches!(self, Location::Local(_))
    }

    /// Whether the location exists.
    pub fn exists(&self) -> Result<bool, StorageError> {
        match self.stat() {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Size and kind of the file or directory.
    pub fn stat(&self) -> Result<Entry, StorageError> {
        match self {
            Location::Local(p) => local::stat(self, p),
            Location::Hdfs { namenode, path } => hdfs::stat(self, namenode, path),
            Location::Builtin(n) => builtin::stat(self, n),
        }
    }

    /// The whole content in memory.
    pub fn read(&self) -> Result<Vec<u8>, StorageError> {
        match self {
            Location::Local(p) => std::fs::read(p).map_err(|e| local::io_error(self, e)),
            Location::Hdfs { namenode, path } => hdfs::read_all(self, namenode, path),
            Location::Builtin(n) => builtin::read(self, n).map(|b| b.to_vec()),
        }
    }

    /// The content as a stream, for files too large to hold in memory.
    pub fn open(&self) -> Result<Box<dyn Read + Send>, StorageError> {
        match self {
            Location::Local(p) => std::fs::File::open(p)
                .map(|f| Box::new(std::io::BufReader::with_capacity(1 << 20, f)) as Box<dyn Read + Send>)
                .map_err(|e| local::io_error(self, e)),
            Location::Hdfs { namenode, path } => hdfs::open(self, namenode, path),
            Location::Builtin(n) => builtin::read(self, n).map(|b| Box::new(b) as Box<dyn Read + Send>),
        }
    }

    /// The entries of a directory, sorted by name.
    pub fn list(&self) -> Result<Vec<Entry>, StorageError> {
        let mut entries = match self {
            Location::Local(p) => local::list(self, p)?,
            Location::Hdfs { namenode, path } => hdfs::list(self, namenode, path)?,
            Location::Builtin(n) => builtin::list(self, n)?,
        };
        entries.sort_by_key(|e| e.location.file_name());
        Ok(entries)
    }

    /// Writes `bytes` so that readers see either the old content or the new, never a part:
    /// a temporary sibling is written in full, then renamed over the target.
    pub fn write_atomic(&self, bytes: &[u8]) -> Result<(), StorageError> {
        match self {
            Location::Local(p) => local::write_atomic(self, p, bytes),
            Location::Hdfs { namenode, path } => hdfs::write_atomic(self, namenode, path, bytes),
            Location::Builtin(_) => Err(read_only(self)),
        }
    }

    /// A streaming writer whose output appears at this location only when it is committed
    /// (a temporary sibling is renamed into place); dropped uncommitted, it leaves nothing.
    pub fn create(&self) -> Result<FileSink, StorageError> {
        match self {
            Location::Local(p) => local::create(self, p),
            Location::Hdfs { namenode, path } => hdfs::create(self, namenode, path),
            Location::Builtin(_) => Err(read_only(self)),
        }
    }

    /// Creates the directory and its parents.
    pub fn create_dir_all(&self) -> Result<(), StorageError> {
        match self {
            Location::Local(p) => std::fs::create_dir_all(p).map_err(|e| local::io_error(self, e)),
            Location::Hdfs { namenode, path } => hdfs::mkdirs(self, namenode, path),
            Location::Builtin(_) => Err(read_only(self)),
        }
    }

    /// Removes a file, or a directory with everything in it. A missing location is
    /// [`StorageError::NotFound`].
    pub fn remove_all(&self) -> Result<(), StorageError> {
        let entry = self.stat()?;
        match self {
            Location::Local(p) if entry.is_dir => {
                std::fs::remove_dir_all(p).map_err(|e| local::io_error(self, e))
            }
            Location::Local(p) => std::fs::remove_file(p).map_err(|e| local::io_error(self, e)),
            Location::Hdfs { namenode, path } => hdfs::remove_all(self, namenode, path),
            Location::Builtin(_) => Err(read_only(self)),
        }
    }

    /// Removes a file (not a directory). Missing files are not an error.
    pub fn remove_file(&self) -> Result<(), StorageError> {
        match self {
            Location::Local(p) => match std::fs::remove_file(p) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(local::io_error(self, e)),
            },
            Location::Hdfs { namenode, path } => hdfs::remove(self, namenode, path),
            Location::Builtin(_) => Err(read_only(self)),
        }
    }
}

/// Writes several files at once, each as [`Location::write_atomic`] does, and returns the first
/// error. On HDFS each small file costs namenode round trips and the wait for its block to be
/// reported; side by side they cost that about once.
pub fn write_atomic_all(files: &[(&Location, &[u8])]) -> Result<(), StorageError> {
    if files.len() < 2 || files.iter().all(|(l, _)| l.is_local()) {
        return files.iter().try_for_each(|(l, b)| l.write_atomic(b));
    }
    std::thread::scope(|scope| {
        let writers: Vec<_> = files.iter().map(|(l, b)| scope.spawn(move || l.write_atomic(b))).collect();
        let mut first = Ok(());
        for (w, (l, _)) in writers.into_iter().zip(files) {
            let r = w.join().unwrap_or_else(|_| {
                Err(StorageError::Unsupported {
                    location: l.to_string(),
                    message: "the writer panicked".into(),
                })
            });
            if first.is_ok() {
                first = r;
            }
        }
        first
    })
}

/// See [`Location::create`].
pub struct FileSink {
    inner: Box<dyn Sink>,
    committed: bool,
}

/// What a storage back end provides to [`FileSink`].
pub(crate) trait Sink: std::io::Write + Send {
    fn commit(&mut self) -> Result<(), StorageError>;
    fn abort(&mut self);
}

impl FileSink {
    pub(crate) fn new(inner: Box<dyn Sink>) -> Self {
        FileSink { inner, committed: false }
    }

    /// Makes the output visible at its location.
    pub fn commit(mut self) -> Result<(), StorageError> {
        self.inner.flush().map_err(|e| StorageError::Io { location: "output".into(), source: e })?;
        self.inner.commit()?;
        self.committed = true;
        Ok(())
    }
}

impl std::io::Write for FileSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        if !self.committed {
            self.inner.abort();
        }
    }
}

fn read_only(location: &Location) -> StorageError {
    StorageError::Unsupported { location: location.to_string(), message: "built-in data is read-only".into() }
}

fn normalise_hdfs_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 1);
    for part in path.split('/').filter(|p| !p.is_empty()) {
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::Hdfs { namenode, path } => write!(f, "{namenode}{path}"),
            Location::Builtin(n) => write!(f, "{BUILTIN_PREFIX}{n}"),
        }
    }
}

impl std::str::FromStr for Location {
    type Err = StorageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Location::parse(s)
    }
}

/// The permission bits new files and folders get: 0o666 / 0o777 less the umask (the cluster's
/// `fs.permissions.umask-mode` for HDFS, Hadoop's default 022; the process umask locally).
pub fn new_file_mode(umask: u32) -> u32 {
    0o666 & !umask
}

/// See [`new_file_mode`].
pub fn new_dir_mode(umask: u32) -> u32 {
    0o777 & !umask
}

/// How long one HDFS metadata call may take before it is reported as unreachable.
pub fn hdfs_timeout() -> Duration {
    std::env::var("STROM_HDFS_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|&s| s > 0)
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind() {
        assert_eq!(Location::parse("data/x").unwrap(), Location::local("data/x"));
        assert_eq!(Location::parse("file:///tmp/x").unwrap(), Location::local("/tmp/x"));
        assert_eq!(
            Location::parse("hdfs://nn:9000/a//b/").unwrap(),
            Location::Hdfs { namenode: "hdfs://nn:9000".into(), path: "/a/b".into() }
        );
        assert_eq!(
            Location::parse("viewfs://cluster/x").unwrap(),
            Location::Hdfs { namenode: "viewfs://cluster".into(), path: "/x".into() }
        );
        assert_eq!(
            Location::parse("hdfs:///user/me").unwrap(),
            Location::Hdfs { namenode: "hdfs://".into(), path: "/user/me".into() }
        );
        assert_eq!(
            Location::parse("builtin:fashion-mnist-demo/train").unwrap(),
            Location::Builtin("fashion-mnist-demo/train".into())
        );
    }

    #[test]
    fn rejects_bad_locations_with_reasons() {
        let e = Location::parse("s3://bucket/x").unwrap_err().to_string();
        assert!(e.contains("unsupported scheme 's3'"), "{e}");
        assert!(Location::parse("  ").unwrap_err().to_string().contains("empty"));
        assert!(Location::parse("viewfs:///x").unwrap_err().to_string().contains("mount-table"));
    }

    #[test]
    fn join_suffix_parent_and_display_round_trip() {
        let h = Location::parse("hdfs://nn:9000/data").unwrap();
        assert_eq!(h.join("train").to_string(), "hdfs://nn:9000/data/train");
        assert_eq!(h.join("train").with_suffix("-x").to_string(), "hdfs://nn:9000/data/train-x");
        assert_eq!(h.join("train").parent().unwrap(), h);
        assert_eq!(Location::parse(&h.to_string()).unwrap(), h);
        let b = Location::parse("builtin:fashion-mnist-demo/train").unwrap();
        assert_eq!(b.file_name(), "train");
        assert_eq!(Location::parse(&b.to_string()).unwrap(), b);
    }

    #[test]
    fn local_write_is_atomic_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let loc = Location::local(dir.path().join("sub/x.bin"));
        loc.write_atomic(b"hello").unwrap();
        assert_eq!(loc.read().unwrap(), b"hello");
        loc.write_atomic(b"world!").unwrap();
        assert_eq!(loc.read().unwrap(), b"world!");
        let names: Vec<String> = Location::local(dir.path().join("sub"))
            .list()
            .unwrap()
            .iter()
            .map(|e| e.location.file_name())
            .collect();
        assert_eq!(names, vec!["x.bin"], "no temporary file is left behind");
        assert_eq!(loc.stat().unwrap().len, 6);
    }

    #[test]
    fn sinks_appear_only_when_committed() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let loc = Location::local(dir.path().join("out/x.csv"));
        let mut sink = loc.create().unwrap();
        sink.write_all(b"a,b\n").unwrap();
        assert!(!loc.exists().unwrap(), "not before the commit");
        sink.commit().unwrap();
        assert_eq!(loc.read().unwrap(), b"a,b\n");
        let other = Location::local(dir.path().join("out/y.csv"));
        let mut sink = other.create().unwrap();
        sink.write_all(b"partial").unwrap();
        drop(sink);
        assert!(!other.exists().unwrap());
        let names: Vec<String> = Location::local(dir.path().join("out"))
            .list()
            .unwrap()
            .iter()
            .map(|e| e.location.file_name())
            .collect();
        assert_eq!(names, vec!["x.csv"], "no temporary file is left behind");
    }

    #[test]
    fn missing_local_file_is_not_found_and_named() {
        let loc = Location::local("/definitely/not/here.idx");
        let e = loc.read().unwrap_err();
        assert!(e.is_not_found());
        assert!(e.to_string().contains("/definitely/not/here.idx"));
        assert!(!loc.exists().unwrap());
    }

    #[test]
    fn builtin_demo_files_are_listed_and_read() {
        let dir = Location::parse("builtin:fashion-mnist-demo").unwrap();
        let names: Vec<String> = dir.list().unwrap().iter().map(|e| e.location.file_name()).collect();
        assert!(names.contains(&"train-images-idx3-ubyte.gz".to_string()), "{names:?}");
        let f = dir.join("test-labels-idx1-ubyte.gz");
        assert!(f.exists().unwrap());
        assert_eq!(f.read().unwrap()[..2], [0x1f, 0x8b]);
        assert!(f.write_atomic(b"x").is_err());
    }
}
