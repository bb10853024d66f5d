//! `strom import`: bring a Deeplearning4j network configuration or a DataVec transform process
//! over, as files DL4J's `toJson()` wrote them.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use crate::storage::Location;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  strom import dl4j-model conf.json -o job.toml     then: strom train --config job.toml --train ...
  strom import datavec tp.json -o transform.json    then: data.transform = \"transform.json\"")]
pub struct ImportArgs {
    #[command(subcommand)]
    pub what: ImportWhat,
}

#[derive(Debug, Subcommand)]
pub enum ImportWhat {
    /// A DL4J MultiLayerConfiguration or ComputationGraphConfiguration (toJson()) as a Strom job
    /// file: layers (for a graph: named layers with their inputs, ElementWiseVertex Add as `add`,
    /// MergeVertex as `concat`), activations, loss, updater, learning rate, L2, weight init and
    /// seed. Layers and vertices Strom lacks are listed together in one error.
    #[command(name = "dl4j-model")]
    Dl4jModel {
        /// The configuration JSON (local path or hdfs://)
        #[arg(value_name = "CONF.json")]
        input: String,
        /// Write the job here instead of printing it
        #[arg(short, long, value_name = "JOB.toml")]
        output: Option<String>,
    },
    /// A DataVec TransformProcess (TransformProcess.toJson()) as a Strom transform process
    /// giving the same rows and columns; normalisers keep DataVec's fitted statistics. An
    /// unsupported transform is named with its class.
    Datavec {
        /// The transform process JSON (local path or hdfs://)
        #[arg(value_name = "TP.json")]
        input: String,
        /// Write the process here instead of printing it
        #[arg(short, long, value_name = "PROCESS.json")]
        output: Option<String>,
    },
}

fn read(input: &str) -> Result<String> {
    let bytes = Location::parse(input)?.read().with_context(|| format!("reading {input}"))?;
    String::from_utf8(bytes).with_context(|| format!("{input}: not UTF-8 text"))
}

fn write(output: Option<&str>, text: &str) -> Result<()> {
    match output {
        None => print!("{text}"),
        Some(out) => {
            Location::parse(out)?.write_atomic(text.as_bytes()).with_context(|| format!("writing {out}"))?;
            eprintln!("wrote {out}");
        }
    }
    Ok(())
}

pub fn run(args: ImportArgs) -> Result<()> {
    match args.what {
        ImportWhat::Dl4jModel { input, output } => {
            let imported = crate::import::dl4j::import(&read(&input)?, &input)?;
            let mut text = format!(
                "# Imported from {input} (a Deeplearning4j network configuration) by strom import dl4j-model.\n\
                 # Set [data] to your data; the output layer's width comes from it.\n"
            );
            for note in &imported.notes {
                text.push_str(&format!("# note: {note}\n"));
            }
            text.push_str(&imported.job.to_toml());
            write(output.as_deref(), &text)
        }
        ImportWhat::Datavec { input, output } => {
            let process = crate::import::datavec::import(&read(&input)?, &input)?;
            write(output.as_deref(), &(process.to_json() + "\n"))
        }
    }
}
