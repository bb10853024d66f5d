//! The `strom` command line: argument definitions and one module per command. `main.rs` parses
//! and dispatches; these modules report errors with context (anyhow).

pub mod cockpit;
pub mod coordinator;
pub mod etl;
pub mod eval;
pub mod fs;
pub mod import;
mod progress;
pub mod sample;
pub mod submit;
pub mod train;
pub mod worker;

use clap::{Parser, Subcommand};

use crate::telemetry::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "strom",
    version,
    about = "Distributed neural-network training by gradient sharing, with a terminal cockpit",
    long_about = "Strom trains neural networks data-parallel across workers that share \
threshold-encoded, residual-accumulated updates (Strom, Interspeech 2015).\n\n\
Quick start:\n  strom                        the cockpit on the demo job (press s to start, ? for keys)\n  \
strom demo                   the same, with a guided walkthrough\n  \
strom train                  train the built-in Fashion-MNIST demo subset, headless\n  \
strom train --workers 4      the same with 4 workers sharing sparse updates\n  \
strom eval --model DIR       evaluate a saved model"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Log format on stderr.
    #[arg(
        long,
        global = true,
        default_value = "pretty",
        value_name = "pretty|json",
        help_heading = "Global options"
    )]
    pub log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The cockpit on the demo job (the same as `strom` with no command).
    Cockpit(cockpit::CockpitArgs),
    /// The cockpit with a guided walkthrough of gradient sharing.
    Demo(cockpit::CockpitArgs),
    /// The cockpit on a coordinator elsewhere (a cluster's head node, over SSH).
    Attach(cockpit::AttachArgs),
    /// Train a model (the demo job when given no flags).
    Train(Box<train::TrainArgs>),
    /// Evaluate a saved model on test data.
    Eval(eval::EvalArgs),
    /// Generate text from a language model (a text job's model).
    Sample(sample::SampleArgs),
    /// Statistics and data quality of a CSV file or directory.
    Analyze(etl::AnalyzeArgs),
    /// Run a transform process over CSV data (the local executor).
    Transform(etl::TransformArgs),
    /// Run a coordinator: workers join it, the cockpit attaches to it.
    Coordinator(Box<coordinator::CoordinatorArgs>),
    /// Join a coordinator and train until its job ends.
    Worker(worker::WorkerArgs),
    /// Run a job (or a transform process) on a Spark cluster through spark-submit.
    Submit(Box<submit::SubmitArgs>),
    /// Bring a Deeplearning4j network configuration or a DataVec transform process over.
    Import(import::ImportArgs),
    /// Files on HDFS, ViewFS or the local disk: ls, put, get, cat, rm, mkdir (no Hadoop install).
    Fs(fs::FsArgs),
}

/// An error and its causes on one line, each said once: a cause whose text its parent already
/// shows (typed errors name their source in their own message) is not repeated.
pub fn error_text(e: &anyhow::Error) -> String {
    strom_proto::errors::say_once(e.chain().map(ToString::to_string))
}

/// Parses a whole-number flag, saying so when it is not one.
pub(crate) fn whole<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.trim().parse().map_err(|_| format!("'{s}' is not a whole number (or too large)"))
}

/// Parses a numeric flag (negative values reach the key's range check, which names it).
pub(crate) fn number<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.trim().parse().map_err(|_| format!("'{s}' is not a number"))
}

/// Parses a flag value through the same names the job file uses (`adam`, `threshold`, ...).
pub(crate) fn parse_name<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|e| {
        let msg = e.to_string();
        let expected: Vec<&str> = msg.split('`').skip(1).step_by(2).skip(1).collect();
        if expected.is_empty() { msg } else { format!("'{s}' is not one of: {}", expected.join(", ")) }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_error_chain_says_each_thing_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("x.csv: not found")]
        struct Missing;
        let e = anyhow::Error::new(Missing).context("reading x.csv").context("loading the job");
        assert_eq!(super::error_text(&e), "loading the job: reading x.csv: not found");
        let e = anyhow::Error::new(Missing).context("x.csv: not found");
        assert_eq!(super::error_text(&e), "x.csv: not found");
    }
}
