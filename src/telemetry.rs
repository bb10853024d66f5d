//! Logging (tracing-subscriber: `RUST_LOG`, pretty or JSON) for every strom process.

use std::fmt::Write as _;
use std::sync::OnceLock;

use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::{EnvFilter, Layer, fmt, prelude::*};

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

/// `RUST_LOG`, or `default_level`. hdfs-native's own warnings are Debug dumps of errors that
/// Strom reports in words, so only its errors show unless `RUST_LOG` names it.
fn filter(default_level: &str) -> EnvFilter {
    let spec = std::env::var("RUST_LOG").ok().filter(|s| !s.trim().is_empty());
    let spec = spec.unwrap_or_else(|| default_level.to_string());
    let spec = if spec.contains("hdfs_native") { spec } else { format!("{spec},hdfs_native=error") };
    EnvFilter::try_new(&spec).unwrap_or_else(|_| EnvFilter::new(format!("{default_level},hdfs_native=error")))
}

/// For the cockpit: events go to the log tap (the Logs screen) only, never to the terminal
/// the cockpit draws on.
pub fn init_tap_only(default_level: &str) {
    let filter = filter(default_level);
    let _ = tracing_subscriber::registry().with(filter).with(TapLayer).try_init();
}

/// Installs the global subscriber: `RUST_LOG` filters (default `default_level`), logs go to
/// stderr so stdout stays clean for reports.
pub fn init(format: LogFormat, default_level: &str) {
    let _ = FORMAT.set(format);
    let filter = filter(default_level);
    let registry = tracing_subscriber::registry().with(filter).with(TapLayer);
    let result = match format {
        LogFormat::Pretty => registry
            .with(
                fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_target(false)
                    .compact(),
            )
            .try_init(),
        LogFormat::Json => registry.with(fmt::layer().json().with_writer(std::io::stderr)).try_init(),
    };
    // A second init (tests, embedded use) keeps the first subscriber.
    let _ = result;
}

/// A log event as the cockpit and the coordinator's log stream carry it.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEvent {
    /// Seconds since the Unix epoch.
    pub time: f64,
    pub level: String,
    pub target: String,
    pub message: String,
    /// The worker it came from, when forwarded.
    pub worker: Option<u32>,
}

/// Every event that passes the filter, for whoever listens (the coordinator's `WatchLogs`,
/// a worker forwarding its logs). Nothing is formatted while nobody listens.
pub fn log_tap() -> &'static broadcast::Sender<LogEvent> {
    static TAP: OnceLock<broadcast::Sender<LogEvent>> = OnceLock::new();
    TAP.get_or_init(|| broadcast::channel(4096).0)
}

pub fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

struct TapLayer;

struct MessageVisitor(String);

impl Visit for MessageVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for TapLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let tap = log_tap();
        if tap.receiver_count() == 0 {
            return;
        }
        let mut visitor = MessageVisitor(String::new());
        event.record(&mut visitor);
        let meta = event.metadata();
        let _ = tap.send(LogEvent {
            time: unix_now(),
            level: meta.level().to_string(),
            target: meta.target().to_string(),
            message: visitor.0.trim_start().to_string(),
            worker: None,
        });
    }
}
