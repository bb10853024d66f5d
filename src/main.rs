//! The `strom` binary: parse the command line and dispatch. Everything else is in the library.

use std::time::Instant;

use clap::Parser;
use strom::cli::{self, Cli, Command};

fn main() -> std::process::ExitCode {
    let started = Instant::now();
    let args = Cli::parse();
    let cockpit =
        matches!(args.command, None | Some(Command::Cockpit(_) | Command::Demo(_) | Command::Attach(_)));
    if cockpit {
        strom::telemetry::init_tap_only("info");
    } else {
        strom::telemetry::init(args.log_format, "info");
    }
    let result = match args.command {
        None => cli::cockpit::run(Default::default(), false, started),
        Some(Command::Cockpit(a)) => cli::cockpit::run(a, false, started),
        Some(Command::Demo(a)) => cli::cockpit::run(a, true, started),
        Some(Command::Attach(a)) => cli::cockpit::attach(a, started),
        Some(Command::Train(a)) => cli::train::run(*a),
        Some(Command::Eval(a)) => cli::eval::run(a),
        Some(Command::Sample(a)) => cli::sample::run(a),
        Some(Command::Analyze(a)) => cli::etl::analyze(a),
        Some(Command::Transform(a)) => cli::etl::transform(a),
        Some(Command::Coordinator(a)) => cli::coordinator::run(*a),
        Some(Command::Worker(a)) => cli::worker::run(a),
        Some(Command::Submit(a)) => cli::submit::run(*a),
        Some(Command::Import(a)) => cli::import::run(a),
        Some(Command::Fs(a)) => cli::fs::run(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", cli::error_text(&e));
            std::process::ExitCode::FAILURE
        }
    }
}
