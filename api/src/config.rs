//! Typed settings, layered like the consumer's: command-line flags, then
//! `EVENTPULSE_*` environment variables (clap reads both, flags win), then an
//! optional TOML file, then defaults that work against the local stack.
//!
//! The variables the consumer also reads (`EVENTPULSE_BROKERS`, `_TOPIC`,
//! `_DATABASE_URL`, the validation limits) mean the same here, so one
//! environment configures both services and they validate events alike.
//!
//! Every problem is one line naming the flag and the variable. API keys are
//! [`Secret`]s (their `Debug` prints `***`, `--help` hides their values) and
//! URLs are shown only through [`redact_url`]. The checks, the file layer, the
//! merge and the validation limits are shared with the consumer
//! (`eventpulse_service`); the fields are this service's own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use eventpulse_events::Limits;
use eventpulse_service::common::{brokers, database_url, topic};
use eventpulse_service::settings::{in_range, invalid, over_file, parse_properties, Key};
use eventpulse_service::{layer_over, limits_layer};
use serde::Deserialize;

use crate::keys::{ApiKeys, Secret, MIN_KEY_CHARS};
use crate::stats_source::StatsSource;

pub use eventpulse_service::{redact_url, ConfigError, LogFormat};

/// Command line of `eventpulse-api`.
#[derive(Debug, Parser)]
#[command(
    name = "eventpulse-api",
    version,
    about = "Query API over the stored events, and HTTP ingestion into Kafka"
)]
pub struct Cli {
    /// Optional TOML file with the same keys as the long flags (snake_case).
    #[arg(long, env = "EVENTPULSE_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub layer: Layer,
}

/// One layer of optional settings: what the command line, the environment or
/// the file said. `None` means "not said here", so lower layers can fill it.
#[derive(Debug, Default, Clone, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// Kafka bootstrap servers, comma-separated.
    #[arg(long, env = "EVENTPULSE_BROKERS")]
    pub brokers: Option<String>,
    /// Topic that ingested events are produced to.
    #[arg(long, env = "EVENTPULSE_TOPIC")]
    pub topic: Option<String>,
    /// Postgres URL (read only: the consumer owns the schema).
    #[arg(long, env = "EVENTPULSE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Address the HTTP API listens on (port 0 picks a free port).
    #[arg(long, env = "EVENTPULSE_API_ADDR")]
    pub api_addr: Option<SocketAddr>,
    /// Address gRPC ingestion (`eventpulse.v1.EventService`, health,
    /// reflection) listens on (port 0 picks a free port).
    #[arg(long, env = "EVENTPULSE_GRPC_ADDR")]
    pub grpc_addr: Option<SocketAddr>,
    /// Keys accepted in `X-API-Key` for ingestion, comma-separated, at least
    /// 16 characters each. None: ingestion is disabled (503), queries work.
    #[arg(
        long,
        env = "EVENTPULSE_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_keys: Option<Vec<Secret>>,
    /// Most events accepted by one `POST /events/batch`.
    #[arg(long, env = "EVENTPULSE_MAX_BATCH_EVENTS")]
    pub max_batch_events: Option<usize>,
    /// Largest request body accepted by the ingestion routes, in bytes.
    #[arg(long, env = "EVENTPULSE_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Postgres connections in the pool.
    #[arg(long, env = "EVENTPULSE_API_DB_POOL_SIZE")]
    pub db_pool_size: Option<u32>,
    /// Longest one query may run (Postgres `statement_timeout`), in milliseconds.
    #[arg(long, env = "EVENTPULSE_QUERY_TIMEOUT_MS")]
    pub query_timeout_ms: Option<u64>,
    /// Longest an ingested event waits for the broker's acknowledgement, in milliseconds.
    #[arg(long, env = "EVENTPULSE_PRODUCE_TIMEOUT_MS")]
    pub produce_timeout_ms: Option<u64>,
    /// Largest event accepted, in bytes (as in the consumer).
    #[arg(long, env = "EVENTPULSE_MAX_MESSAGE_BYTES")]
    pub max_message_bytes: Option<usize>,
    /// Longest payload string accepted, in characters (as in the consumer).
    #[arg(long, env = "EVENTPULSE_MAX_STRING_CHARS")]
    pub max_string_chars: Option<usize>,
    /// Most form fields a form_submit event may carry (as in the consumer).
    #[arg(long, env = "EVENTPULSE_MAX_FORM_FIELDS")]
    pub max_form_fields: Option<usize>,
    /// How far in the future a timestamp may be, in seconds (as in the consumer).
    #[arg(long, env = "EVENTPULSE_MAX_FUTURE_SKEW_SECS")]
    pub max_future_skew_secs: Option<i64>,
    /// How old a timestamp may be, in days (as in the consumer).
    #[arg(long, env = "EVENTPULSE_MAX_AGE_DAYS")]
    pub max_age_days: Option<i64>,
    /// Most live-feed streams (GET /events/live) open at once; more get 503.
    #[arg(long, env = "EVENTPULSE_LIVE_MAX_STREAMS")]
    pub live_max_streams: Option<usize>,
    /// Events a live stream may fall behind before it is cut off as too slow
    /// (shared by all streams; at most this many events' bytes are held).
    #[arg(long, env = "EVENTPULSE_LIVE_BUFFER_EVENTS")]
    pub live_buffer_events: Option<usize>,
    /// Folder of the built dashboard (`npm --prefix dashboard run build`),
    /// served at `/`.
    #[arg(long, env = "EVENTPULSE_DASHBOARD_DIR")]
    pub dashboard_dir: Option<PathBuf>,
    /// Where statistics are counted: rollups (whole hours and days from the
    /// rollup tables, the same answers, faster) or raw (every row, for
    /// benchmarks and comparisons).
    #[arg(long, env = "EVENTPULSE_STATS_SOURCE")]
    pub stats_source: Option<StatsSource>,
    /// Log format: pretty or json.
    #[arg(long, env = "EVENTPULSE_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Extra librdkafka producer properties, KEY=VALUE; repeatable.
    #[arg(
        short = 'X',
        long = "kafka-property",
        env = "EVENTPULSE_KAFKA_PROPERTIES",
        value_delimiter = ','
    )]
    pub kafka_properties: Option<Vec<String>>,
}

/// Resolved, validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub brokers: String,
    pub topic: String,
    pub database_url: String,
    pub api_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    pub api_keys: ApiKeys,
    pub max_batch_events: usize,
    pub max_body_bytes: usize,
    pub db_pool_size: u32,
    pub query_timeout: Duration,
    pub produce_timeout: Duration,
    pub limits: Limits,
    pub live_max_streams: usize,
    pub live_buffer_events: usize,
    pub dashboard: DashboardDir,
    pub stats_source: StatsSource,
    pub log_format: LogFormat,
    pub kafka_properties: Vec<(String, String)>,
}

/// The pool size has a variable of its own, so that one environment can
/// size the API's pool and the consumer's (`EVENTPULSE_DB_POOL_SIZE`) apart.
const DB_POOL_SIZE: Key = Key::new("db_pool_size").env("API_DB_POOL_SIZE");

impl Settings {
    /// Merges the command line (flags and env) over the optional file.
    pub fn load(cli: &Cli) -> Result<Self, ConfigError> {
        Self::from_layer(over_file(cli.layer.clone(), cli.config.as_deref())?)
    }

    /// Applies defaults and checks ranges.
    pub fn from_layer(layer: Layer) -> Result<Self, ConfigError> {
        let limits = limits_layer!(layer).resolve()?;
        let millis = |key, value, default| {
            in_range(key, value, default, 100, 300_000).map(Duration::from_millis)
        };
        Ok(Self {
            brokers: brokers(layer.brokers)?,
            topic: topic(layer.topic)?,
            database_url: database_url(layer.database_url)?,
            api_addr: layer
                .api_addr
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            grpc_addr: layer
                .grpc_addr
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 50051))),
            api_keys: api_keys(layer.api_keys.unwrap_or_default())?,
            max_batch_events: in_range("max_batch_events", layer.max_batch_events, 500, 1, 10_000)?,
            max_body_bytes: in_range(
                "max_body_bytes",
                layer.max_body_bytes,
                1 << 20,
                1024,
                64 << 20,
            )?,
            db_pool_size: in_range(DB_POOL_SIZE, layer.db_pool_size, 8, 1, 100)?,
            query_timeout: millis("query_timeout_ms", layer.query_timeout_ms, 10_000)?,
            produce_timeout: millis("produce_timeout_ms", layer.produce_timeout_ms, 10_000)?,
            limits,
            live_max_streams: in_range("live_max_streams", layer.live_max_streams, 100, 1, 10_000)?,
            // At least one page of the feed's reads (500 rows), which arrive
            // at once: a smaller buffer would cut off even fast clients. The
            // default by measurement (scripts/bench.sh --only live, 5k
            // events/s, 50 streams, 2 cores): with 1024, a hiccup of the
            // machine cut off 26 of 50 streams in 60 s; with 4096, none,
            // at 16 MiB peak RSS.
            live_buffer_events: in_range(
                "live_buffer_events",
                layer.live_buffer_events,
                4096,
                1000,
                8192,
            )?,
            dashboard: DashboardDir::resolve(layer.dashboard_dir)?,
            stats_source: layer.stats_source.unwrap_or_default(),
            log_format: layer.log_format.unwrap_or(LogFormat::Pretty),
            kafka_properties: parse_properties(layer.kafka_properties.unwrap_or_default())?,
        })
    }
}

layer_over!(Layer {
    brokers,
    topic,
    database_url,
    api_addr,
    grpc_addr,
    api_keys,
    max_batch_events,
    max_body_bytes,
    db_pool_size,
    query_timeout_ms,
    produce_timeout_ms,
    max_message_bytes,
    max_string_chars,
    max_form_fields,
    max_future_skew_secs,
    max_age_days,
    live_max_streams,
    live_buffer_events,
    dashboard_dir,
    stats_source,
    log_format,
    kafka_properties,
});

/// Where the dashboard's files are, relative to the working directory
/// unless absolute: the checkout's build output by default, so that
/// `cargo run -p eventpulse-api` from the checkout serves it.
pub const DEFAULT_DASHBOARD_DIR: &str = "dashboard/dist";

/// The dashboard folder. The default may be missing (the API then says at
/// start-up, and at `/`, how to build it); a folder set by hand must hold a
/// built dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardDir {
    pub path: PathBuf,
}

impl DashboardDir {
    fn resolve(chosen: Option<PathBuf>) -> Result<Self, ConfigError> {
        let Some(path) = chosen else {
            return Ok(Self {
                path: PathBuf::from(DEFAULT_DASHBOARD_DIR),
            });
        };
        if !path.join("index.html").is_file() {
            return Err(invalid(
                "dashboard_dir",
                format!(
                    "{} has no index.html; build the dashboard with `npm --prefix dashboard ci && npm --prefix dashboard run build`",
                    path.display()
                ),
            ));
        }
        Ok(Self { path })
    }

    pub fn is_built(&self) -> bool {
        self.path.join("index.html").is_file()
    }
}

fn api_keys(keys: Vec<Secret>) -> Result<ApiKeys, ConfigError> {
    // `EVENTPULSE_API_KEYS=` (as a Compose file passes an unset variable)
    // means no key, not one empty key.
    let keys: Vec<Secret> = keys
        .into_iter()
        .filter(|key| !key.expose().trim().is_empty())
        .collect();
    // Position, not the key, names the culprit: the key itself is secret.
    for (position, key) in keys.iter().enumerate() {
        if key.expose().chars().count() < MIN_KEY_CHARS {
            return Err(invalid(
                "api_keys",
                format!(
                    "key #{} is shorter than {MIN_KEY_CHARS} characters",
                    position + 1
                ),
            ));
        }
    }
    Ok(ApiKeys::new(keys))
}

#[cfg(test)]
mod tests;
