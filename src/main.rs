//! The `strom` binary: parse the command line and dispatch. Everything else is in the library.

use clap::{CommandFactory, Parser};
use strom::cli::{self, Cli, Command};

fn main() -> std::process::ExitCode {
    let args = Cli::parse();
    strom::telemetry::init(args.log_format, "info");
    let result = match args.command {
        Some(Command::Train(a)) => cli::train::run(*a),
        Some(Command::Eval(a)) => cli::eval::run(a),
        Some(Command::Coordinator(a)) => cli::coordinator::run(*a),
        Some(Command::Worker(a)) => cli::worker::run(a),
        None => {
            let _ = Cli::command().print_help();
            Ok(())
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
