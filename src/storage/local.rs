//! Local files: plain std::fs, with atomic writes by temp-file-and-rename.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Entry, Location, StorageError};

pub(super) fn io_error(location: &Location, source: std::io::Error) -> StorageError {
    if source.kind() == std::io::ErrorKind::NotFound {
        StorageError::NotFound { location: location.to_string() }
    } else {
        StorageError::Io { location: location.to_string(), source }
    }
}

pub(super) fn stat(location: &Location, path: &Path) -> Result<Entry, StorageError> {
    let meta = std::fs::metadata(path).map_err(|e| io_error(location, e))?;
    Ok(entry(location.clone(), &meta))
}

fn entry(location: Location, meta: &std::fs::Metadata) -> Entry {
    use std::os::unix::fs::PermissionsExt;
    Entry { location, is_dir: meta.is_dir(), len: meta.len(), mode: Some(meta.permissions().mode() & 0o7777) }
}

pub(super) fn list(location: &Location, path: &Path) -> Result<Vec<Entry>, StorageError> {
    let mut out = Vec::new();
    for item in std::fs::read_dir(path).map_err(|e| io_error(location, e))? {
        let item = item.map_err(|e| io_error(location, e))?;
        let meta = item.metadata().map_err(|e| io_error(location, e))?;
        out.push(entry(Location::Local(item.path()), &meta));
    }
    Ok(out)
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn temp_for(path: &Path) -> std::path::PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

struct LocalSink {
    file: std::io::BufWriter<std::fs::File>,
    tmp: std::path::PathBuf,
    dst: std::path::PathBuf,
    location: Location,
}

impl Write for LocalSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl super::Sink for LocalSink {
    fn commit(&mut self) -> Result<(), StorageError> {
        let r = self
            .file
            .flush()
            .and_then(|_| self.file.get_ref().sync_all())
            .and_then(|_| std::fs::rename(&self.tmp, &self.dst));
        r.map_err(|e| io_error(&self.location, e))
    }
    fn abort(&mut self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

pub(super) fn create(location: &Location, path: &Path) -> Result<super::FileSink, StorageError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| io_error(location, e))?;
    }
    let tmp = temp_for(path);
    let file = std::fs::File::create(&tmp).map_err(|e| io_error(location, e))?;
    Ok(super::FileSink::new(Box::new(LocalSink {
        file: std::io::BufWriter::with_capacity(1 << 20, file),
        tmp,
        dst: path.to_path_buf(),
        location: location.clone(),
    })))
}

pub(super) fn write_atomic(location: &Location, path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| io_error(location, e))?;
    }
    let tmp = temp_for(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_error(location, e));
    }
    Ok(())
}
