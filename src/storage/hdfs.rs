//! HDFS and ViewFS through hdfs-native (no JVM, no Hadoop install). `HADOOP_CONF_DIR` (or
//! `HADOOP_HOME/etc/hadoop`) is honoured by the client itself.
//!
//! hdfs-native is async and retries an unreachable namenode for 20 s or more; the engine is
//! synchronous and a user deserves a fast answer, so every call runs on one shared runtime
//! under a deadline, with failover retries turned down.

use std::collections::HashMap;
use std::future::Future;
use std::io::Read;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::StreamExt;
use hdfs_native::client::FileStatus;
use hdfs_native::{Client, ClientBuilder, HdfsError, WriteOptions};

use super::{Entry, Location, StorageError, hdfs_timeout};

/// Reading the bytes of a large file may take much longer than a metadata call.
const DATA_TIMEOUT: Duration = Duration::from_secs(600);
/// Chunk size of streamed writes.
const CHUNK: usize = 8 << 20;
/// Packets (about 64 KiB each) read ahead of the caller: a few MiB per open file.
const READ_AHEAD_PACKETS: usize = 64;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("strom-hdfs")
            .enable_all()
            .build()
            .expect("the HDFS I/O runtime cannot be created (out of threads?)")
    })
}

fn client(location: &Location, namenode: &str) -> Result<Client, StorageError> {
    static CLIENTS: OnceLock<Mutex<HashMap<String, Client>>> = OnceLock::new();
    let clients = CLIENTS.get_or_init(Default::default);
    let mut guard = clients.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = guard.get(namenode) {
        return Ok(c.clone());
    }
    let mut builder = ClientBuilder::new()
        .with_config(vec![("dfs.client.failover.max.attempts", "1")])
        .with_io_runtime(runtime().handle().clone());
    // `hdfs:///path` means the default file system of the loaded configuration.
    if namenode != "hdfs://" {
        builder = builder.with_url(namenode);
    }
    let c = builder.build().map_err(|e| match e {
        HdfsError::InvalidArgument(m) if m.contains("fs.defaultFS") => StorageError::NoDefaultFs {
            location: location.to_string(),
            host: crate::cluster::worker::host_name(),
            conf: conf_dir_text(),
        },
        e => hdfs_error(location, namenode, e),
    })?;
    guard.insert(namenode.to_string(), c.clone());
    Ok(c)
}

/// How new files are created: with the cluster's umask applied, as Hadoop's own client does
/// (the namenode does not apply it).
fn write_options() -> WriteOptions {
    WriteOptions { permission: super::new_file_mode(umask()), ..WriteOptions::default() }
}

/// The cluster's `fs.permissions.umask-mode` from the Hadoop configuration (Hadoop's default
/// 022 without one), read once.
fn umask() -> u32 {
    static UMASK: OnceLock<u32> = OnceLock::new();
    *UMASK.get_or_init(|| {
        let dir = std::env::var_os("HADOOP_CONF_DIR")
            .map(std::path::PathBuf::from)
            .or_else(|| std::env::var_os("HADOOP_HOME").map(|h| std::path::Path::new(&h).join("etc/hadoop")));
        let value = dir.and_then(|d| {
            ["hdfs-site.xml", "core-site.xml"]
                .iter()
                .find_map(|f| std::fs::read_to_string(d.join(f)).ok().and_then(|x| property(&x, UMASK_KEY)))
        });
        match value.as_deref().map(parse_umask) {
            Some(Some(u)) => u,
            Some(None) => {
                tracing::warn!("{UMASK_KEY} = {:?} is not a umask; using 022", value.unwrap_or_default());
                DEFAULT_UMASK
            }
            None => DEFAULT_UMASK,
        }
    })
}

const UMASK_KEY: &str = "fs.permissions.umask-mode";
const DEFAULT_UMASK: u32 = 0o022;

/// The value of property `name` in a Hadoop `*-site.xml`.
fn property(xml: &str, name: &str) -> Option<String> {
    let at = xml.find(&format!("<name>{name}</name>"))?;
    let rest = &xml[at..];
    let end = rest.find("</property>").unwrap_or(rest.len());
    let rest = &rest[..end];
    let v = rest.find("<value>")? + "<value>".len();
    let e = rest[v..].find("</value>")?;
    Some(rest[v..v + e].trim().to_string())
}

/// A umask as Hadoop writes it: octal (`022`, `0077`) or symbolic, naming what is allowed
/// (`u=rwx,g=rx,o=`).
fn parse_umask(text: &str) -> Option<u32> {
    let text = text.trim();
    if !text.is_empty() && text.chars().all(|c| c.is_digit(8)) {
        return u32::from_str_radix(text, 8).ok().filter(|u| *u <= 0o777);
    }
    let mut allowed = 0u32;
    for part in text.split(',') {
        let (who, perms) = part.split_once('=')?;
        let bits = perms.chars().try_fold(0u32, |b, c| match c {
            'r' => Some(b | 4),
            'w' => Some(b | 2),
            'x' => Some(b | 1),
            '-' => Some(b),
            _ => None,
        })?;
        for w in who.chars() {
            let shift = match w {
                'u' => 6,
                'g' => 3,
                'o' => 0,
                'a' => {
                    allowed |= bits * 0o111;
                    continue;
                }
                _ => return None,
            };
            allowed |= bits << shift;
        }
    }
    Some(!allowed & 0o777)
}

/// Where this process looked for the Hadoop configuration, for the message that says it found none.
fn conf_dir_text() -> String {
    match (std::env::var_os("HADOOP_CONF_DIR"), std::env::var_os("HADOOP_HOME")) {
        (Some(dir), _) => format!("HADOOP_CONF_DIR={}", std::path::Path::new(&dir).display()),
        (None, Some(home)) => {
            format!(
                "HADOOP_CONF_DIR is not set; looked in {}/etc/hadoop",
                std::path::Path::new(&home).display()
            )
        }
        (None, None) => "HADOOP_CONF_DIR is not set".to_string(),
    }
}

fn hdfs_error(location: &Location, namenode: &str, e: HdfsError) -> StorageError {
    let location_text = location.to_string();
    match e {
        // The namenode answers a read of a directory with FileNotFoundException("Path is not a
        // file: ..."): a different problem from a missing path, and said so.
        HdfsError::FileNotFound(m) | HdfsError::RPCError(_, m) if m.contains("is not a file") => {
            StorageError::NotAFile { location: location_text }
        }
        HdfsError::IsADirectoryError(_) => StorageError::NotAFile { location: location_text },
        HdfsError::FileNotFound(_) => StorageError::NotFound { location: location_text },
        HdfsError::RPCError(class, _) if class.ends_with("FileNotFoundException") => {
            StorageError::NotFound { location: location_text }
        }
        HdfsError::RPCError(class, message) if class.ends_with("AccessControlException") => {
            // "Permission denied: user=alice, access=READ_EXECUTE, inode=\"/x\":hdfs:supergroup:drwx------"
            let message = message.lines().next().unwrap_or_default();
            StorageError::PermissionDenied {
                location: location_text,
                message: message.strip_prefix("Permission denied: ").unwrap_or(message).to_string(),
            }
        }
        other => StorageError::Hdfs {
            location: location_text,
            namenode: namenode.to_string(),
            message: other.to_string(),
        },
    }
}

/// Runs `fut` on the HDFS runtime and waits for it, from any thread (also from inside another
/// tokio runtime's blocking section), under `limit`.
fn run<T, F>(location: &Location, namenode: &str, limit: Duration, fut: F) -> Result<T, StorageError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, HdfsError>> + Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime().spawn(async move {
        let _ = tx.send(tokio::time::timeout(limit, fut).await);
    });
    match rx.recv() {
        Ok(Ok(Ok(v))) => Ok(v),
        Ok(Ok(Err(e))) => Err(hdfs_error(location, namenode, e)),
        Ok(Err(_elapsed)) => Err(StorageError::Timeout {
            location: location.to_string(),
            namenode: namenode.to_string(),
            seconds: limit.as_secs(),
        }),
        Err(_) => Err(StorageError::Hdfs {
            location: location.to_string(),
            namenode: namenode.to_string(),
            message: "the HDFS task ended without an answer".into(),
        }),
    }
}

fn entry(namenode: &str, status: &FileStatus) -> Entry {
    Entry {
        location: Location::Hdfs { namenode: namenode.to_string(), path: status.path.clone() },
        is_dir: status.isdir,
        len: status.length as u64,
        mode: Some(u32::from(status.permission)),
    }
}

pub(super) fn stat(location: &Location, namenode: &str, path: &str) -> Result<Entry, StorageError> {
    let c = client(location, namenode)?;
    let p = path.to_string();
    let status = run(location, namenode, hdfs_timeout(), async move { c.get_file_info(&p).await })?;
    let mut e = entry(namenode, &status);
    e.location = location.clone();
    Ok(e)
}

pub(super) fn list(location: &Location, namenode: &str, path: &str) -> Result<Vec<Entry>, StorageError> {
    let c = client(location, namenode)?;
    let p = path.to_string();
    let statuses = run(location, namenode, hdfs_timeout(), async move { c.list_status(&p, false).await })?;
    Ok(statuses.iter().map(|s| entry(namenode, s)).collect())
}

pub(super) fn read_all(location: &Location, namenode: &str, path: &str) -> Result<Vec<u8>, StorageError> {
    let mut out = Vec::new();
    open(location, namenode, path)?
        .read_to_end(&mut out)
        .map_err(|e| StorageError::Io { location: location.to_string(), source: e })?;
    Ok(out)
}

pub(super) fn open(
    location: &Location,
    namenode: &str,
    path: &str,
) -> Result<Box<dyn Read + Send>, StorageError> {
    // The metadata call fails fast when the namenode is unreachable; the reads that follow go
    // to datanodes and get the longer deadline.
    let c = client(location, namenode)?;
    let p = path.to_string();
    let reader = run(location, namenode, hdfs_timeout(), async move { c.read(&p).await })?;
    let len = reader.file_length();
    // One stream over the whole file, block after block, read ahead on the I/O runtime into a
    // bounded queue of packets (about 64 KiB each): no new datanode request per chunk, and the
    // network keeps going while the caller parses.
    let (tx, rx) = std::sync::mpsc::sync_channel(READ_AHEAD_PACKETS);
    let (loc, nn) = (location.clone(), namenode.to_string());
    runtime().spawn(async move {
        let mut stream = reader.read_range_stream(0, len);
        loop {
            let item = match tokio::time::timeout(DATA_TIMEOUT, stream.next()).await {
                Ok(Some(Ok(bytes))) => Ok(bytes),
                Ok(Some(Err(e))) => Err(hdfs_error(&loc, &nn, e)),
                Ok(None) => break,
                Err(_) => Err(StorageError::Timeout {
                    location: loc.to_string(),
                    namenode: nn.clone(),
                    seconds: DATA_TIMEOUT.as_secs(),
                }),
            };
            let last = item.is_err();
            // Never block an I/O thread on a slow reader: wait for room asynchronously.
            let mut item = item;
            loop {
                match tx.try_send(item) {
                    Ok(()) => break,
                    Err(std::sync::mpsc::TrySendError::Full(back)) => {
                        item = back;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Err(std::sync::mpsc::TrySendError::Disconnected(_)) => return,
                }
            }
            if last {
                return;
            }
        }
    });
    Ok(Box::new(HdfsReader {
        location: location.clone(),
        len,
        packets: rx,
        current: bytes::Bytes::new(),
        pos: 0,
    }))
}

/// A `Read` over an HDFS file, fed by the read-ahead task; memory stays bounded.
struct HdfsReader {
    location: Location,
    len: usize,
    packets: std::sync::mpsc::Receiver<Result<bytes::Bytes, StorageError>>,
    current: bytes::Bytes,
    pos: usize,
}

impl Read for HdfsReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            if self.pos >= self.len {
                return Ok(0);
            }
            match self.packets.recv_timeout(DATA_TIMEOUT + Duration::from_secs(5)) {
                Ok(Ok(bytes)) => self.current = bytes,
                Ok(Err(e)) => return Err(std::io::Error::other(e)),
                Err(_) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("{}: file ended early ({} of {} bytes)", self.location, self.pos, self.len),
                    ));
                }
            }
        }
        let n = out.len().min(self.current.len());
        out[..n].copy_from_slice(&self.current[..n]);
        bytes::Buf::advance(&mut self.current, n);
        self.pos += n;
        Ok(n)
    }
}

pub(super) fn write_atomic(
    location: &Location,
    namenode: &str,
    path: &str,
    bytes: &[u8],
) -> Result<(), StorageError> {
    let c = client(location, namenode)?;
    let tmp = temp_name(path);
    let (dst, data) = (path.to_string(), bytes::Bytes::copy_from_slice(bytes));
    let (c2, t2) = (c.clone(), tmp.clone());
    let result = run(location, namenode, DATA_TIMEOUT, async move {
        let mut writer = c2.create(&t2, write_options()).await?;
        writer.write_bytes(data).await?;
        // close() commits the last block; without it the file is incomplete.
        writer.close().await?;
        c2.rename(&t2, &dst, true).await
    });
    if result.is_err() {
        // Best effort: a failed write leaves no temporary file behind.
        let _ =
            run(location, namenode, hdfs_timeout(), async move { c.delete(&tmp, false).await.map(|_| ()) });
    }
    result
}

/// A temporary name beside `path`, unique per process and write: a temporary file a failed
/// write left behind never blocks a later write.
fn temp_name(path: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{path}.{}-{n}.tmp", std::process::id())
}

/// Streams to a temporary HDFS file in chunks; commit closes it (mandatory) and renames it.
struct HdfsSink {
    location: Location,
    namenode: String,
    client: Client,
    writer: Option<Arc<tokio::sync::Mutex<hdfs_native::file::FileWriter>>>,
    tmp: String,
    dst: String,
    buf: Vec<u8>,
}

impl HdfsSink {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = bytes::Bytes::from(std::mem::take(&mut self.buf));
        let w = self.writer.clone().ok_or_else(|| std::io::Error::other("the HDFS file is closed"))?;
        run(&self.location, &self.namenode, DATA_TIMEOUT, async move {
            w.lock().await.write_bytes(data).await.map(|_| ())
        })
        .map_err(std::io::Error::other)
    }
}

impl std::io::Write for HdfsSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(buf);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

impl super::Sink for HdfsSink {
    fn commit(&mut self) -> Result<(), StorageError> {
        self.send().map_err(|e| StorageError::Io { location: self.location.to_string(), source: e })?;
        let Some(w) = self.writer.take() else { return Ok(()) };
        let (c, tmp, dst) = (self.client.clone(), self.tmp.clone(), self.dst.clone());
        run(&self.location, &self.namenode, DATA_TIMEOUT, async move {
            w.lock().await.close().await?;
            c.rename(&tmp, &dst, true).await
        })
    }
    fn abort(&mut self) {
        if let Some(w) = self.writer.take() {
            let (c, tmp) = (self.client.clone(), self.tmp.clone());
            let _ = run(&self.location, &self.namenode, hdfs_timeout(), async move {
                let _ = w.lock().await.close().await;
                c.delete(&tmp, false).await.map(|_| ())
            });
        }
    }
}

pub(super) fn create(
    location: &Location,
    namenode: &str,
    path: &str,
) -> Result<super::FileSink, StorageError> {
    let c = client(location, namenode)?;
    let tmp = temp_name(path);
    let (c2, t2) = (c.clone(), tmp.clone());
    let writer =
        run(location, namenode, hdfs_timeout(), async move { c2.create(&t2, write_options()).await })?;
    Ok(super::FileSink::new(Box::new(HdfsSink {
        location: location.clone(),
        namenode: namenode.to_string(),
        client: c,
        writer: Some(Arc::new(tokio::sync::Mutex::new(writer))),
        tmp,
        dst: path.to_string(),
        buf: Vec::new(),
    })))
}

pub(super) fn mkdirs(location: &Location, namenode: &str, path: &str) -> Result<(), StorageError> {
    let c = client(location, namenode)?;
    let p = path.to_string();
    let mode = super::new_dir_mode(umask());
    run(location, namenode, hdfs_timeout(), async move { c.mkdirs(&p, mode, true).await })
}

pub(super) fn remove_all(location: &Location, namenode: &str, path: &str) -> Result<(), StorageError> {
    let c = client(location, namenode)?;
    let p = path.to_string();
    run(location, namenode, DATA_TIMEOUT, async move { c.delete(&p, true).await.map(|_| ()) })
}

pub(super) fn remove(location: &Location, namenode: &str, path: &str) -> Result<(), StorageError> {
    let c = client(location, namenode)?;
    let p = path.to_string();
    run(location, namenode, hdfs_timeout(), async move { c.delete(&p, false).await.map(|_| ()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn umasks_octal_and_symbolic() {
        assert_eq!(parse_umask("022"), Some(0o022));
        assert_eq!(parse_umask("0077"), Some(0o077));
        assert_eq!(parse_umask("u=rwx,g=rx,o="), Some(0o027));
        assert_eq!(parse_umask("a=rx,u=rwx"), Some(0o022));
        assert_eq!(parse_umask("999"), None);
        assert_eq!(parse_umask("u=rwz"), None);
        let xml = "<configuration><property><name>fs.defaultFS</name><value>hdfs://x</value></property>\n\
                   <property>\n <name>fs.permissions.umask-mode</name>\n <value> 077 </value>\n</property></configuration>";
        assert_eq!(property(xml, UMASK_KEY).as_deref(), Some("077"));
        assert_eq!(property(xml, "dfs.replication"), None);
    }
}
