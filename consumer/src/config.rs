//! Typed settings, layered: command-line flags, then `EVENTPULSE_*` environment
//! variables (clap reads both, flags win), then an optional TOML file, then
//! defaults that work against the local stack (`scripts/stack.sh up`).
//!
//! Every problem is reported as one line naming the flag and the variable, and
//! URLs are only ever shown through [`redact_url`], so passwords never reach a log.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use eventpulse_events::Limits;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Command line of `eventpulse-consumer`.
#[derive(Debug, Parser)]
#[command(
    name = "eventpulse-consumer",
    version,
    about = "Kafka -> Postgres, each valid event stored exactly once"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Optional TOML file with the same keys as the long flags (snake_case).
    #[arg(long, env = "EVENTPULSE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub layer: Layer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Consume until SIGTERM/SIGINT (the default).
    Run,
    /// Apply the database migrations and exit.
    Migrate,
}

/// One layer of optional settings: what the command line, the environment or
/// the file said. `None` means "not said here", so lower layers can fill it.
#[derive(Debug, Default, Clone, clap::Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// Kafka bootstrap servers, comma-separated.
    #[arg(long, env = "EVENTPULSE_BROKERS", global = true)]
    pub brokers: Option<String>,
    /// Topic to consume.
    #[arg(long, env = "EVENTPULSE_TOPIC", global = true)]
    pub topic: Option<String>,
    /// Dead-letter topic for messages that are not valid events.
    #[arg(long, env = "EVENTPULSE_DLQ_TOPIC", global = true)]
    pub dlq_topic: Option<String>,
    /// Consumer group id; also keys this group's offsets in Postgres.
    #[arg(long, env = "EVENTPULSE_GROUP_ID", global = true)]
    pub group_id: Option<String>,
    /// Postgres URL.
    #[arg(long, env = "EVENTPULSE_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Redis URL for the duplicate filter.
    #[arg(long, env = "EVENTPULSE_REDIS_URL", global = true)]
    pub redis_url: Option<String>,
    /// Address for /metrics, /healthz and /readyz (port 0 picks a free port).
    #[arg(long, env = "EVENTPULSE_METRICS_ADDR", global = true)]
    pub metrics_addr: Option<SocketAddr>,
    /// Most events written in one Postgres transaction.
    #[arg(long, env = "EVENTPULSE_BATCH_SIZE", global = true)]
    pub batch_size: Option<usize>,
    /// Longest a batch waits to fill before it is written, in milliseconds.
    #[arg(long, env = "EVENTPULSE_LINGER_MS", global = true)]
    pub linger_ms: Option<u64>,
    /// How long Redis remembers a stored event id, in seconds.
    #[arg(long, env = "EVENTPULSE_DEDUP_TTL_SECS", global = true)]
    pub dedup_ttl_secs: Option<u64>,
    /// How long a not-yet-confirmed Redis mark lives, in milliseconds.
    #[arg(long, env = "EVENTPULSE_PENDING_TTL_MS", global = true)]
    pub pending_ttl_ms: Option<u64>,
    /// Longest one Redis round trip may take before Redis counts as degraded.
    #[arg(long, env = "EVENTPULSE_REDIS_TIMEOUT_MS", global = true)]
    pub redis_timeout_ms: Option<u64>,
    /// Postgres connections in the pool.
    #[arg(long, env = "EVENTPULSE_DB_POOL_SIZE", global = true)]
    pub db_pool_size: Option<u32>,
    /// Largest message accepted, in bytes.
    #[arg(long, env = "EVENTPULSE_MAX_MESSAGE_BYTES", global = true)]
    pub max_message_bytes: Option<usize>,
    /// Longest payload string accepted, in characters.
    #[arg(long, env = "EVENTPULSE_MAX_STRING_CHARS", global = true)]
    pub max_string_chars: Option<usize>,
    /// Most form fields a form_submit event may carry.
    #[arg(long, env = "EVENTPULSE_MAX_FORM_FIELDS", global = true)]
    pub max_form_fields: Option<usize>,
    /// How far in the future a timestamp may be, in seconds.
    #[arg(long, env = "EVENTPULSE_MAX_FUTURE_SKEW_SECS", global = true)]
    pub max_future_skew_secs: Option<i64>,
    /// How old a timestamp may be, in days.
    #[arg(long, env = "EVENTPULSE_MAX_AGE_DAYS", global = true)]
    pub max_age_days: Option<i64>,
    /// Longest graceful shutdown (final flush and commit), in seconds.
    #[arg(long, env = "EVENTPULSE_SHUTDOWN_TIMEOUT_SECS", global = true)]
    pub shutdown_timeout_secs: Option<u64>,
    /// Log format: pretty or json.
    #[arg(long, env = "EVENTPULSE_LOG_FORMAT", global = true)]
    pub log_format: Option<LogFormat>,
    /// Extra librdkafka consumer properties, KEY=VALUE; repeatable. In the
    /// variable they are separated by `;`, since values such as
    /// `debug=broker,topic` contain commas.
    #[arg(
        short = 'X',
        long = "kafka-property",
        env = "EVENTPULSE_KAFKA_PROPERTIES",
        value_delimiter = ';',
        global = true
    )]
    pub kafka_properties: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Resolved, validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub brokers: String,
    pub topic: String,
    pub dlq_topic: String,
    pub group_id: String,
    pub database_url: String,
    pub redis_url: String,
    pub metrics_addr: SocketAddr,
    pub batch_size: usize,
    pub linger: Duration,
    pub dedup_ttl: Duration,
    pub pending_ttl: Duration,
    pub redis_timeout: Duration,
    pub db_pool_size: u32,
    pub limits: Limits,
    pub shutdown_timeout: Duration,
    pub log_format: LogFormat,
    pub kafka_properties: Vec<(String, String)>,
}

/// A setting that could not be used, named the way the user set it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid setting --{flag} (EVENTPULSE_{env}): {problem}")]
    Invalid {
        flag: String,
        env: String,
        problem: String,
    },
    #[error("cannot read config file {path}: {problem}")]
    File { path: String, problem: String },
}

fn invalid(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        flag: key.replace('_', "-"),
        env: key.to_uppercase(),
        problem: problem.into(),
    }
}

impl Settings {
    /// Merges the command line (flags and env) over the optional file.
    pub fn load(cli: &Cli) -> Result<Self, ConfigError> {
        let file = match &cli.config {
            Some(path) => read_file_layer(path)?,
            None => Layer::default(),
        };
        Self::from_layer(merge(file, cli.layer.clone()))
    }

    /// Applies defaults and checks ranges.
    pub fn from_layer(layer: Layer) -> Result<Self, ConfigError> {
        let defaults = Limits::default();
        let limits = Limits {
            max_message_bytes: in_range(
                "max_message_bytes",
                layer.max_message_bytes,
                defaults.max_message_bytes,
                64,
                16 << 20,
            )?,
            max_string_chars: in_range(
                "max_string_chars",
                layer.max_string_chars,
                defaults.max_string_chars,
                1,
                1 << 20,
            )?,
            max_form_fields: in_range(
                "max_form_fields",
                layer.max_form_fields,
                defaults.max_form_fields,
                0,
                10_000,
            )?,
            max_future_skew: chrono::Duration::seconds(in_range(
                "max_future_skew_secs",
                layer.max_future_skew_secs,
                300,
                0,
                86_400 * 365,
            )?),
            max_age: chrono::Duration::days(in_range(
                "max_age_days",
                layer.max_age_days,
                365,
                1,
                365 * 100,
            )?),
        };
        let settings = Self {
            brokers: non_empty("brokers", layer.brokers, "127.0.0.1:9092")?,
            topic: non_empty("topic", layer.topic, "events")?,
            dlq_topic: non_empty("dlq_topic", layer.dlq_topic, "events.dlq")?,
            group_id: non_empty("group_id", layer.group_id, "eventpulse")?,
            database_url: url_with_scheme(
                "database_url",
                layer.database_url,
                "postgres://postgres@127.0.0.1:5432/eventpulse",
                &["postgres", "postgresql"],
            )?,
            redis_url: url_with_scheme(
                "redis_url",
                layer.redis_url,
                "redis://127.0.0.1:6379",
                &["redis", "rediss"],
            )?,
            metrics_addr: layer
                .metrics_addr
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9464))),
            // 10,000 rows x 7 array parameters stays far from Postgres limits.
            batch_size: in_range("batch_size", layer.batch_size, 2000, 1, 10_000)?,
            linger: Duration::from_millis(in_range("linger_ms", layer.linger_ms, 20, 1, 60_000)?),
            dedup_ttl: Duration::from_secs(in_range(
                "dedup_ttl_secs",
                layer.dedup_ttl_secs,
                86_400,
                1,
                86_400 * 30,
            )?),
            pending_ttl: Duration::from_millis(in_range(
                "pending_ttl_ms",
                layer.pending_ttl_ms,
                30_000,
                100,
                3_600_000,
            )?),
            redis_timeout: Duration::from_millis(in_range(
                "redis_timeout_ms",
                layer.redis_timeout_ms,
                500,
                10,
                60_000,
            )?),
            db_pool_size: in_range("db_pool_size", layer.db_pool_size, 4, 1, 100)?,
            limits,
            shutdown_timeout: Duration::from_secs(in_range(
                "shutdown_timeout_secs",
                layer.shutdown_timeout_secs,
                30,
                1,
                3600,
            )?),
            log_format: layer.log_format.unwrap_or(LogFormat::Pretty),
            kafka_properties: parse_properties(layer.kafka_properties.unwrap_or_default())?,
        };
        if settings.topic == settings.dlq_topic {
            return Err(invalid("dlq_topic", "must differ from --topic"));
        }
        Ok(settings)
    }
}

/// Upper layer wins wherever it says something.
fn merge(lower: Layer, upper: Layer) -> Layer {
    let (Value::Object(mut merged), Value::Object(upper)) = (
        serde_json::to_value(lower).expect("layers serialise"),
        serde_json::to_value(upper).expect("layers serialise"),
    ) else {
        unreachable!("a struct serialises to an object")
    };
    for (key, value) in upper {
        if !value.is_null() {
            merged.insert(key, value);
        }
    }
    serde_json::from_value(Value::Object(merged)).expect("merged layers deserialise")
}

fn read_file_layer(path: &PathBuf) -> Result<Layer, ConfigError> {
    let file_error = |problem: String| ConfigError::File {
        path: path.display().to_string(),
        problem,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    toml::from_str(&text).map_err(|e| file_error(e.message().to_owned()))
}

fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    key: &str,
    value: Option<T>,
    default: T,
    min: T,
    max: T,
) -> Result<T, ConfigError> {
    let value = value.unwrap_or(default);
    if value < min || value > max {
        return Err(invalid(
            key,
            format!("must be between {min} and {max}, got {value}"),
        ));
    }
    Ok(value)
}

fn non_empty(key: &str, value: Option<String>, default: &str) -> Result<String, ConfigError> {
    let value = value.unwrap_or_else(|| default.to_owned());
    if value.trim().is_empty() {
        return Err(invalid(key, "must not be empty"));
    }
    Ok(value)
}

fn url_with_scheme(
    key: &str,
    value: Option<String>,
    default: &str,
    schemes: &[&str],
) -> Result<String, ConfigError> {
    let value = value.unwrap_or_else(|| default.to_owned());
    match url::Url::parse(&value) {
        Ok(url) if schemes.contains(&url.scheme()) => Ok(value),
        Ok(url) => Err(invalid(
            key,
            format!("scheme {:?} is not one of {schemes:?}", url.scheme()),
        )),
        // The parse error never echoes the URL, so no password leaks here.
        Err(e) => Err(invalid(key, format!("not a URL: {e}"))),
    }
}

fn parse_properties(raw: Vec<String>) -> Result<Vec<(String, String)>, ConfigError> {
    raw.into_iter()
        .map(|item| match item.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                Ok((key.trim().to_owned(), value.trim().to_owned()))
            }
            _ => Err(ConfigError::Invalid {
                flag: "kafka-property".into(),
                env: "KAFKA_PROPERTIES".into(),
                problem: format!("expected KEY=VALUE, got {item:?}"),
            }),
        })
        .collect()
}

/// The URL with any password replaced by `***`, safe to log or print.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        Ok(url) => url.to_string(),
        Err(_) => "<unparseable URL>".to_owned(),
    }
}

#[cfg(test)]
mod tests;
