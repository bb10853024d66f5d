//! Helpers shared by the end-to-end tests: run the real `strom` binary, make data files.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

pub fn strom() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_strom"));
    c.env("RUST_LOG", "warn").env_remove("HADOOP_CONF_DIR").env("NO_COLOR", "1");
    c
}

/// Runs `strom ARGS`; returns (success, stdout, stderr).
pub fn run(args: &[&str]) -> (bool, String, String) {
    let out: Output = strom().args(args).output().expect("strom runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An IDX file of unsigned bytes.
pub fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

/// Writes `prefix-images-idx3-ubyte` and `prefix-labels-idx1-ubyte`.
pub fn write_idx_pair(dir: &Path, prefix: &str, images: &[u8], rows: u32, side: u32, labels: &[u8]) {
    std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), idx(&[rows, side, side], images))
        .unwrap();
    std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), idx(&[labels.len() as u32], labels))
        .unwrap();
}

/// Where the real Fashion-MNIST (Debian's dataset-fashion-mnist) is, if installed.
pub fn full_fashion_mnist() -> Option<&'static str> {
    let dir = "/usr/share/datasets/fashion-mnist";
    Path::new(dir).join("train-images-idx3-ubyte.gz").exists().then_some(dir)
}
