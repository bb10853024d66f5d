//! Logging (tracing-subscriber: `RUST_LOG`, pretty or JSON) for every strom process.

use std::sync::OnceLock;

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pretty" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("unknown log format '{other}'; expected pretty or json")),
        }
    }
}

static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// The format chosen at start-up (progress display adapts to it).
pub fn log_format() -> LogFormat {
    FORMAT.get().copied().unwrap_or_default()
}

/// Installs the global subscriber: `RUST_LOG` filters (default `default_level`), logs go to
/// stderr so stdout stays clean for reports.
pub fn init(format: LogFormat, default_level: &str) {
    let _ = FORMAT.set(format);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Pretty => {
            registry.with(fmt::layer().with_writer(std::io::stderr).with_target(false).compact()).try_init()
        }
        LogFormat::Json => registry.with(fmt::layer().json().with_writer(std::io::stderr)).try_init(),
    };
    // A second init (tests, embedded use) keeps the first subscriber.
    let _ = result;
}
