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
    Ok(Entry { location: location.clone(), is_dir: meta.is_dir(), len: meta.len() })
}

pub(super) fn list(location: &Location, path: &Path) -> Result<Vec<Entry>, StorageError> {
    let mut out = Vec::new();
    for item in std::fs::read_dir(path).map_err(|e| io_error(location, e))? {
        let item = item.map_err(|e| io_error(location, e))?;
        let meta = item.metadata().map_err(|e| io_error(location, e))?;
        out.push(Entry { location: Location::Local(item.path()), is_dir: meta.is_dir(), len: meta.len() });
    }
    Ok(out)
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

pub(super) fn write_atomic(location: &Location, path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| io_error(location, e))?;
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
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
