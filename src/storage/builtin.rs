//! Demo data compiled into the binary, so `strom train` and the cockpit's demo job run on a
//! fresh machine, on an SSH host or inside a Spark executor with nothing to download or ship.

use super::{Entry, Location, StorageError};

pub const BUILTIN_PREFIX: &str = "builtin:";

macro_rules! asset {
    ($name:literal) => {
        ($name, include_bytes!(concat!("../../assets/", $name)) as &'static [u8])
    };
}

static FILES: &[(&str, &[u8])] = &[
    asset!("fashion-mnist-demo/train-images-idx3-ubyte.gz"),
    asset!("fashion-mnist-demo/train-labels-idx1-ubyte.gz"),
    asset!("fashion-mnist-demo/test-images-idx3-ubyte.gz"),
    asset!("fashion-mnist-demo/test-labels-idx1-ubyte.gz"),
];

fn not_found(location: &Location) -> StorageError {
    StorageError::NotFound { location: location.to_string() }
}

pub(super) fn read(location: &Location, name: &str) -> Result<&'static [u8], StorageError> {
    FILES.iter().find(|(n, _)| *n == name).map(|(_, b)| *b).ok_or_else(|| not_found(location))
}

pub(super) fn stat(location: &Location, name: &str) -> Result<Entry, StorageError> {
    if let Ok(bytes) = read(location, name) {
        return Ok(Entry { location: location.clone(), is_dir: false, len: bytes.len() as u64, mode: None });
    }
    let prefix = format!("{name}/");
    if FILES.iter().any(|(n, _)| n.starts_with(&prefix)) {
        return Ok(Entry { location: location.clone(), is_dir: true, len: 0, mode: None });
    }
    Err(not_found(location))
}

pub(super) fn list(location: &Location, name: &str) -> Result<Vec<Entry>, StorageError> {
    let prefix = format!("{name}/");
    let entries: Vec<Entry> = FILES
        .iter()
        .filter_map(|(n, b)| {
            let rest = n.strip_prefix(&prefix)?;
            (!rest.contains('/')).then(|| Entry {
                location: Location::Builtin(n.to_string()),
                is_dir: false,
                len: b.len() as u64,
                mode: None,
            })
        })
        .collect();
    if entries.is_empty() {
        return Err(not_found(location));
    }
    Ok(entries)
}
