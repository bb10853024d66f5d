//! The ETL commands: `strom analyze` and `strom transform` (the local executor).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::data::analysis;
use crate::data::csv::{CsvOptions, CsvSource, Header};
use crate::data::executor;
use crate::data::schema::Schema;
use crate::data::transform::TransformProcess;
use crate::storage::Location;

/// How CSV input is read.
#[derive(Debug, Args, Clone)]
pub struct CsvArgs {
    /// Field delimiter.
    #[arg(long, default_value_t = ',')]
    pub delimiter: char,
    /// Quote character.
    #[arg(long, default_value_t = '"')]
    pub quote: char,
    /// Records to skip at the start of every file, before the header.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub skip_lines: usize,
    /// The files have no header line (columns are named by the schema, or c0, c1, ...).
    /// Without --header or --no-header, the first row is a header when none of its fields is
    /// a number (as in training: data.csv.header = "auto"), and the output says so.
    #[arg(long, conflicts_with = "header")]
    pub no_header: bool,
    /// The first row names the columns, even if it holds numbers.
    #[arg(long)]
    pub header: bool,
}

impl CsvArgs {
    pub fn options(&self) -> CsvOptions {
        CsvOptions {
            header: match (self.header, self.no_header) {
                (true, _) => Header::Yes,
                (_, true) => Header::No,
                _ => Header::Auto,
            },
            delimiter: self.delimiter,
            quote: self.quote,
            skip_lines: self.skip_lines,
        }
    }
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  strom analyze data.csv\n  strom analyze assets/wine/wine_data.csv --skip-lines 1 --no-header \\\n      --schema assets/transforms/wine.json\n  strom analyze data.csv --emit-schema > schema.json"
)]
pub struct AnalyzeArgs {
    /// A CSV file or a directory of them (local, hdfs://, viewfs://; gzip is recognised).
    #[arg(value_name = "LOC")]
    pub location: String,
    /// The schema (JSON), or a transform process whose schema to use [default: inferred].
    #[arg(long, value_name = "FILE")]
    pub schema: Option<String>,
    /// Print the analysis as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print the inferred schema as JSON (to edit into a transform process) and exit.
    #[arg(long)]
    pub emit_schema: bool,
    #[command(flatten)]
    pub csv: CsvArgs,
}

fn read_schema(path: &str) -> Result<Schema> {
    let loc = Location::parse(path)?;
    let text = String::from_utf8(loc.read()?).with_context(|| format!("{path} is not UTF-8"))?;
    if let Ok(p) = serde_json::from_str::<TransformProcess>(&text) {
        return Ok(p.schema);
    }
    serde_json::from_str::<Schema>(&text)
        .with_context(|| format!("{path}: expected a schema ({{\"columns\": [...]}}) or a transform process"))
}

pub fn analyze(args: AnalyzeArgs) -> Result<()> {
    let loc = Location::parse(&args.location)?;
    let source = CsvSource::open(&loc, &args.csv.options())?;
    let schema = args.schema.as_deref().map(read_schema).transpose()?;
    if let Some(note) = source.header_note() {
        // On stderr where stdout is JSON.
        if args.emit_schema || args.json { eprintln!("note: {note}") } else { println!("note: {note}") }
    }
    if args.emit_schema {
        let schema = analysis::schema_of(&source, schema)?;
        println!("{}", serde_json::to_string_pretty(&schema)?);
        return Ok(());
    }
    let a = analysis::analyze(&source, schema).with_context(|| format!("analysing {loc}"))?;
    if a.rows > 0 && a.malformed_rows == a.rows {
        bail!(
            "every one of the {} rows of {loc} is malformed ({}): check --delimiter, --skip-lines and --no-header",
            a.rows,
            a.malformed_examples.first().map(String::as_str).unwrap_or_default()
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&a)?);
    } else {
        print!("{}", a.table());
    }
    Ok(())
}

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  strom transform --process assets/transforms/wine.json --input assets/wine/wine_data.csv \\\n      --skip-lines 1 --no-header --output wine-clean.csv --fitted-out wine.fitted.json"
)]
pub struct TransformArgs {
    /// The transform process (JSON).
    #[arg(long, value_name = "FILE")]
    pub process: String,
    /// Input: a CSV file or a directory of them.
    #[arg(long, value_name = "LOC")]
    pub input: String,
    /// Output CSV file (written under a temporary name, renamed when complete).
    #[arg(long, value_name = "LOC", required_unless_present = "fit_only")]
    pub output: Option<String>,
    /// Only fit the process's statistics (write them with --fitted-out); transform nothing.
    #[arg(long, requires = "fitted_out")]
    pub fit_only: bool,
    /// Transform only part I of N of the input (how `strom submit transform` splits work
    /// between Spark tasks): runs of files of a directory, byte ranges of one file. The process
    /// must be fitted already.
    #[arg(long, value_name = "I/N", value_parser = parse_part)]
    pub partition: Option<(usize, usize)>,
    /// Write the process with its fitted statistics here (to apply them to other data).
    #[arg(long, value_name = "FILE")]
    pub fitted_out: Option<String>,
    /// Worker threads [default: one per core].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Write a JSON report (rows in and out, drops by reason, rows/s, peak memory).
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,
    #[command(flatten)]
    pub csv: CsvArgs,
}

fn parse_part(s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("expected I/N with 0 <= I < N, like 0/4 (got '{s}')");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

pub fn transform(args: TransformArgs) -> Result<()> {
    let mut process = TransformProcess::load(&Location::parse(&args.process)?)?;
    let input = Location::parse(&args.input)?;
    let mut source = CsvSource::open(&input, &args.csv.options())?;
    if let Some(note) = source.header_note() {
        println!("note: {note}");
    }
    if args.fit_only {
        let passes = executor::fit(&source, &mut process).with_context(|| format!("fitting on {input}"))?;
        let f = args.fitted_out.as_deref().unwrap_or_default();
        Location::parse(f)?
            .write_atomic(process.to_json().as_bytes())
            .with_context(|| format!("--fitted-out {f}"))?;
        println!("fitted in {passes} pass(es) over {input}; wrote {f}");
        return Ok(());
    }
    if let Some((i, n)) = args.partition {
        if process.needs_fit() {
            bail!(
                "{}: --partition needs a fitted process (statistics of one part would differ from the whole); run --fit-only --fitted-out first",
                args.process
            );
        }
        source = source.partition(i, n);
    }
    let output = Location::parse(args.output.as_deref().unwrap_or_default())?;
    let mut run = || executor::transform(&source, &mut process, &output);
    let result = match args.threads {
        Some(n) => rayon::ThreadPoolBuilder::new().num_threads(n.max(1)).build()?.install(run),
        None => run(),
    }
    .with_context(|| format!("transforming {input}"))?;
    println!("{}", result.report.line());
    println!(
        "{:.2} s, {:.0} rows/s, {} fitting pass(es), peak memory {:.0} MB; wrote {} columns to {output}",
        result.seconds,
        result.rows_per_sec,
        result.fit_passes,
        result.peak_rss_mb,
        result.columns.len()
    );
    if let Some(f) = &args.fitted_out {
        Location::parse(f)?
            .write_atomic(process.to_json().as_bytes())
            .with_context(|| format!("--fitted-out {f}"))?;
    }
    if let Some(p) = &args.summary_json {
        Location::local(p).write_atomic(serde_json::to_string_pretty(&result)?.as_bytes())?;
    }
    Ok(())
}
