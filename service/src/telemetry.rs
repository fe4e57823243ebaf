//! Logging: `tracing` to stderr, pretty for people or JSON for log shippers,
//! filtered by `RUST_LOG` (default `info`; e.g. `eventpulse_consumer=debug`
//! adds the consumer's per-batch lines). Stdout stays free for what a command
//! prints as its result.

use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;

/// `--log-format` / `EVENTPULSE_LOG_FORMAT` of every service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Installs the global subscriber. A second call (several services in one
/// test process) keeps the first subscriber instead of failing.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}
