//! Reading from HDFS against reading the same file from the local disk, in one run: the full
//! Fashion-MNIST training images (or the demo subset where the full set is not installed) and a
//! generated CSV of `STROM_BENCH_CSV_MB` MiB (default 1024), from Hadoop's MiniDFSCluster on
//! this machine.
//!
//! To say where the time goes it also reads each file: with hdfs-native directly as one stream,
//! in 4 concurrent ranges, and with Hadoop's own Java client inside the minicluster's JVM.
//!
//!     cargo bench --bench hdfs_read            (needs Java 17 and Maven, like the HDFS tests)
//!     cargo test --bench hdfs_read             # quick: a 4 MiB CSV, one read each (CI)

#[allow(dead_code)]
#[path = "../tests/common/minidfs.rs"]
mod minidfs;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures_util::StreamExt;
use strom::storage::Location;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Seconds to read all of `loc` through Strom's storage layer (what training and ETL use).
fn strom_read(loc: &Location) -> (f64, usize) {
    let t0 = Instant::now();
    let mut r = loc.open().expect("open");
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0;
    loop {
        let k = r.read(&mut buf).expect("read");
        if k == 0 {
            break;
        }
        n += k;
    }
    (t0.elapsed().as_secs_f64(), n)
}

/// Seconds to read all of `path` with hdfs-native: one stream over the whole file, or `parts`
/// ranges read concurrently.
fn native_read(rt: &tokio::runtime::Runtime, url: &str, path: &str, parts: usize) -> (f64, usize) {
    rt.block_on(async {
        let client = hdfs_native::ClientBuilder::new().with_url(url).build().expect("client");
        let t0 = Instant::now();
        let reader = client.read(path).await.expect("open");
        let len = reader.file_length();
        let step = len.div_ceil(parts);
        let reads = (0..parts).map(|i| {
            let (start, end) = (i * step, ((i + 1) * step).min(len));
            let mut s = reader.read_range_stream(start, end - start);
            async move {
                let mut n = 0;
                while let Some(b) = s.next().await {
                    n += b.expect("read").len();
                }
                n
            }
        });
        let n: usize = futures_util::future::join_all(reads).await.into_iter().sum();
        (t0.elapsed().as_secs_f64(), n)
    })
}

fn make_csv(path: &Path, mib: usize) {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(w, "id,city,temp,n,when,label").unwrap();
    let cities = ["Paris", "Lyon", "Nice", "Lille"];
    let (mut written, mut i, mut x) = (0usize, 0u64, 0x9e37_79b9_7f4a_7c15u64);
    while written < mib << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let line = format!(
            "{i},{},{:.2},{},2024-{:02}-{:02},{}\n",
            cities[(x % 4) as usize],
            (x >> 8) as f64 % 4000.0 / 100.0 - 5.0,
            (x >> 20) % 50,
            1 + (x >> 30) % 12,
            1 + (x >> 34) % 28,
            (x >> 40) % 3
        );
        w.write_all(line.as_bytes()).unwrap();
        written += line.len();
        i += 1;
    }
    w.flush().unwrap();
}

fn main() {
    // `cargo bench` passes --bench (a filter argument is not supported); `cargo test --bench
    // hdfs_read` does not: a quick run that checks the bench still works (CI).
    let quick = !std::env::args().any(|a| a == "--bench");
    let repeats = if quick { 1 } else { 3 };
    let csv_mib: usize = std::env::var("STROM_BENCH_CSV_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 4 } else { 1024 });
    let scratch = tempfile::tempdir().unwrap();
    let fmnist = ["/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/fashion-mnist-demo/train-images-idx3-ubyte.gz")
        });
    let csv = scratch.path().join("big.csv");
    eprintln!("writing a {csv_mib} MiB CSV to {}", csv.display());
    make_csv(&csv, csv_mib);

    eprintln!("starting MiniDFS");
    let dfs = minidfs::MiniDfs::start(&[]);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    println!(
        "{:<34} {:>9} {:>10} {:>10} {:>8} {:>12} {:>12} {:>12}",
        "file", "MiB", "local MB/s", "HDFS MB/s", "ratio", "1 stream", "4 ranges", "Java client"
    );
    for (name, local) in
        [("fashion-mnist train images (gz)", fmnist.as_path()), ("generated CSV", csv.as_path())]
    {
        let hdfs_path = format!("/bench/{}", local.file_name().unwrap().to_string_lossy());
        dfs.command(&format!("put {} {hdfs_path}", local.display()));
        let (l, h) = (Location::local(local), Location::parse(&dfs.at(&hdfs_path)).unwrap());
        let (mut tl, mut th, mut t1, mut t4, mut tj) = (vec![], vec![], vec![], vec![], vec![]);
        let mut bytes = 0;
        for _ in 0..repeats {
            let (t, n) = strom_read(&l);
            tl.push(t);
            bytes = n;
            let (t, n) = strom_read(&h);
            assert_eq!(n, bytes, "HDFS returned every byte");
            th.push(t);
            t1.push(native_read(&rt, dfs.url(), &hdfs_path, 1).0);
            t4.push(native_read(&rt, dfs.url(), &hdfs_path, 4).0);
            let reply = dfs.command(&format!("read {hdfs_path}"));
            let ms: f64 = reply.split("ms=").nth(1).and_then(|v| v.trim().parse().ok()).unwrap();
            tj.push(ms / 1000.0);
        }
        let mb = bytes as f64 / 1e6;
        let rate = |t: Vec<f64>| mb / median(t);
        let (local_rate, hdfs_rate) = (rate(tl), rate(th));
        println!(
            "{name:<34} {:>9.1} {local_rate:>10.0} {hdfs_rate:>10.0} {:>7.2}x {:>12.0} {:>12.0} {:>12.0}",
            bytes as f64 / (1 << 20) as f64,
            hdfs_rate / local_rate,
            rate(t1),
            rate(t4),
            rate(tj)
        );
    }
    println!(
        "(MB/s, medians of {repeats}; ratio = HDFS through Strom / local disk; the last three read the HDFS \
         file with hdfs-native as one stream, in 4 concurrent ranges, and with Hadoop's Java client)"
    );
}
