//! `strom fs`: list, copy, print, remove and create files on every location Strom reads (local
//! paths, `hdfs://`, `viewfs://`), through the same storage layer and errors as training, so the
//! data gets onto HDFS without a Hadoop install.

use std::io::{Read, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::storage::{Entry, Location};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
strom fs mkdir hdfs://namenode:8020/data\n  \
strom fs put train.csv test.csv hdfs://namenode:8020/data\n  \
strom fs put images/ hdfs:///data/images          (hdfs:/// is fs.defaultFS of HADOOP_CONF_DIR)\n  \
strom fs ls hdfs:///data\n  \
strom fs cat hdfs:///data/train.csv | head\n  \
strom fs get hdfs:///runs/demo ./demo-model\n  \
strom fs rm -r hdfs:///runs/old")]
pub struct FsArgs {
    #[command(subcommand)]
    pub command: FsCommand,
}

#[derive(Debug, Subcommand)]
pub enum FsCommand {
    /// List directories (or show files): mode, size in bytes and location, one per line.
    Ls {
        /// Locations to list.
        #[arg(required = true, value_name = "LOC")]
        locations: Vec<String>,
    },
    /// Copy files and folders to a location (local to HDFS, or any to any), with a progress bar.
    /// Into an existing folder, or a new one when there are several sources.
    Put(CopyArgs),
    /// Copy files and folders from a location (HDFS to local, or any to any); `put` in reverse.
    Get(CopyArgs),
    /// Print files to standard output, one after the other.
    Cat {
        #[arg(required = true, value_name = "LOC")]
        locations: Vec<String>,
    },
    /// Remove files (folders with -r).
    Rm {
        /// Remove folders and everything in them.
        #[arg(short = 'r', long)]
        recursive: bool,
        /// A location that does not exist is not an error.
        #[arg(short = 'f', long)]
        force: bool,
        #[arg(required = true, value_name = "LOC")]
        locations: Vec<String>,
    },
    /// Create folders, with their parents; an existing folder is not an error.
    Mkdir {
        #[arg(required = true, value_name = "LOC")]
        locations: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// Sources, then the destination.
    #[arg(required = true, num_args = 2.., value_name = "SRC... DST")]
    paths: Vec<String>,
    /// Replace files that exist at the destination (without it they are an error).
    #[arg(short = 'f', long)]
    force: bool,
}

pub fn run(args: FsArgs) -> Result<()> {
    match args.command {
        FsCommand::Ls { locations } => {
            for text in &locations {
                ls(&parse(text)?)?;
            }
            Ok(())
        }
        FsCommand::Put(a) | FsCommand::Get(a) => copy(&a),
        FsCommand::Cat { locations } => {
            for text in &locations {
                if !cat(&parse(text)?)? {
                    break;
                }
            }
            Ok(())
        }
        FsCommand::Rm { recursive, force, locations } => {
            for text in &locations {
                rm(&parse(text)?, recursive, force)?;
            }
            Ok(())
        }
        FsCommand::Mkdir { locations } => {
            for text in &locations {
                let loc = parse(text)?;
                if let Ok(e) = loc.stat()
                    && !e.is_dir
                {
                    bail!("{loc} is a file, not a folder");
                }
                loc.create_dir_all()?;
            }
            Ok(())
        }
    }
}

fn parse(text: &str) -> Result<Location> {
    Ok(Location::parse(text)?)
}

fn ls(loc: &Location) -> Result<()> {
    let entry = loc.stat()?;
    let entries = if entry.is_dir { loc.list()? } else { vec![entry] };
    let mut out = std::io::stdout().lock();
    for e in entries {
        let size = if e.is_dir { "-".to_string() } else { e.len.to_string() };
        let slash = if e.is_dir { "/" } else { "" };
        if writeln!(out, "{} {size:>12}  {}{slash}", e.mode_text(), e.location).is_err() {
            break;
        }
    }
    Ok(())
}

/// Prints a file; `false` once standard output is closed (`strom fs cat ... | head`).
fn cat(loc: &Location) -> Result<bool> {
    let mut reader = loc.open()?;
    let mut out = std::io::stdout().lock();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf).with_context(|| format!("reading {loc}"))?;
        if n == 0 {
            return Ok(true);
        }
        match out.write_all(&buf[..n]) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(false),
            Err(e) => return Err(e).context("writing to standard output"),
        }
    }
}

fn rm(loc: &Location, recursive: bool, force: bool) -> Result<()> {
    let entry = match loc.stat() {
        Ok(e) => e,
        Err(e) if e.is_not_found() && force => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if entry.is_dir && !recursive {
        bail!("{loc} is a folder: remove it with -r (and everything in it)");
    }
    loc.remove_all()?;
    Ok(())
}

/// Files copied at the same time.
const PARALLEL_COPIES: usize = 4;

/// One file to copy: from, to, bytes.
struct Job {
    from: Location,
    to: Location,
    len: u64,
}

fn copy(args: &CopyArgs) -> Result<()> {
    let (dst_text, srcs) = args.paths.split_last().context("a source and a destination are needed")?;
    let dst = parse(dst_text)?;
    let dst_entry = match dst.stat() {
        Ok(e) => Some(e),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e.into()),
    };
    let into_folder = match &dst_entry {
        Some(e) if e.is_dir => true,
        Some(_) if srcs.len() > 1 => bail!("{dst} is a file: several sources go into a folder"),
        _ => srcs.len() > 1,
    };
    // Plan every file first: the sizes for the progress bar, and errors before any byte moves.
    let mut jobs = Vec::new();
    let mut folders = Vec::new();
    for text in srcs {
        let src = parse(text)?;
        let entry = src.stat()?;
        let target = if into_folder { dst.join(&src.file_name()) } else { dst.clone() };
        plan(&entry, &target, &mut jobs, &mut folders)?;
    }
    if !args.force
        && let Some(job) = jobs.iter().find(|j| j.to.exists().unwrap_or(false))
    {
        bail!("{} exists: pass -f to replace it", job.to);
    }
    if into_folder && dst_entry.is_none() {
        dst.create_dir_all()?;
    }
    for folder in &folders {
        folder.create_dir_all()?;
    }
    let total: u64 = jobs.iter().map(|j| j.len).sum();
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{msg:30!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let started = Instant::now();
    // A few files at a time: on HDFS a small file's time is mostly round trips and waiting for
    // its block to be reported, which overlap.
    let next = AtomicUsize::new(0);
    let failed: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL_COPIES.min(jobs.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let failed = || failed.lock().unwrap_or_else(|p| p.into_inner());
                    if failed().is_some() {
                        break;
                    }
                    bar.set_message(job.from.file_name());
                    if let Err(e) = copy_file(job, &bar) {
                        failed().get_or_insert(e);
                        break;
                    }
                }
            });
        }
    });
    bar.finish_and_clear();
    if let Some(e) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "copied {} file(s), {} bytes, to {dst} in {secs:.2} s ({:.1} MB/s)",
        jobs.len(),
        total,
        total as f64 / 1e6 / secs.max(1e-9)
    );
    Ok(())
}

/// Adds `entry` (a file, or a folder walked to its files) copied to `to`.
fn plan(entry: &Entry, to: &Location, jobs: &mut Vec<Job>, folders: &mut Vec<Location>) -> Result<()> {
    if !entry.is_dir {
        jobs.push(Job { from: entry.location.clone(), to: to.clone(), len: entry.len });
        return Ok(());
    }
    folders.push(to.clone());
    for child in entry.location.list()? {
        let target = to.join(&child.location.file_name());
        plan(&child, &target, jobs, folders)?;
    }
    Ok(())
}

fn copy_file(job: &Job, bar: &ProgressBar) -> Result<()> {
    let mut reader = job.from.open()?;
    let mut sink = job.to.create()?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf).with_context(|| format!("reading {}", job.from))?;
        if n == 0 {
            break;
        }
        sink.write_all(&buf[..n]).with_context(|| format!("writing {}", job.to))?;
        bar.inc(n as u64);
    }
    sink.commit()?;
    Ok(())
}
