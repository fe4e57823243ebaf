//! Typed settings, layered: command-line flags, then `EVENTPULSE_*` environment
//! variables (clap reads both, flags win), then an optional TOML file, then
//! defaults that work against the local stack (`scripts/stack.sh up`).
//!
//! Every problem is reported as one line naming the flag and the variable, and
//! URLs are only ever shown through [`redact_url`], so passwords never reach a log.
//! The checks, the file layer, the merge, and the settings the API reads alike
//! (brokers, topic, database URL, validation limits) are shared with it
//! (`eventpulse_service`); the fields are this service's own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use eventpulse_events::Limits;
use eventpulse_service::common::{brokers, database_url, topic};
use eventpulse_service::settings::{
    in_range, invalid, non_empty, over_file, parse_properties, url_with_scheme,
};
use eventpulse_service::{layer_over, limits_layer};
use serde::{Deserialize, Serialize};

use crate::event_rows::WriteMethod;

pub use eventpulse_service::{redact_url, ConfigError, LogFormat};

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

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Consume until SIGTERM/SIGINT (the default).
    Run,
    /// Apply the database migrations and exit. Moves the rows of an
    /// unpartitioned `events` table (an older layout) into time partitions:
    /// stop every consumer first.
    Migrate,
    /// Create the coming days' partitions and apply --retention-days once
    /// (every running consumer also does this every 10 minutes).
    Maintain,
    /// Check or rebuild the rollups against the stored rows.
    Rollups {
        #[command(subcommand)]
        action: RollupAction,
    },
    /// Re-read a range of the topic into the same tables (validated,
    /// deduplicated and dead-lettered as always) under a group id of its own;
    /// replaying twice changes nothing.
    Replay(ReplayArgs),
}

#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ReplayArgs {
    /// First offset of each partition to re-read (default: its first record).
    #[arg(long, conflicts_with = "from_time")]
    pub from_offset: Option<i64>,
    /// Re-read from the first record at or after this time (RFC 3339).
    #[arg(long)]
    pub from_time: Option<chrono::DateTime<chrono::Utc>>,
    /// Stop before this offset of each partition (default: its end now).
    #[arg(long, conflicts_with = "to_time")]
    pub to_offset: Option<i64>,
    /// Stop before the first record at or after this time (RFC 3339).
    #[arg(long)]
    pub to_time: Option<chrono::DateTime<chrono::Utc>>,
    /// Only this partition; repeatable (default: all).
    #[arg(long = "partition")]
    pub partitions: Vec<i32>,
    /// The replay's group id, new and not the running group's (default:
    /// `<group-id>-replay-<time>-<random>`).
    #[arg(long)]
    pub replay_group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum RollupAction {
    /// Recount the rows and report every rollup row that differs; exits 1 if any.
    Check(DayRange),
    /// Replace the rollups of whole UTC days with a recount of the rows.
    Rebuild(DayRange),
}

/// UTC days, both ends included; default: every day that has rows.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct DayRange {
    /// First day (YYYY-MM-DD).
    #[arg(long)]
    pub from: Option<chrono::NaiveDate>,
    /// Last day (YYYY-MM-DD).
    #[arg(long)]
    pub to: Option<chrono::NaiveDate>,
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
    /// Most bytes of messages the consumer holds in memory (the batch filling
    /// and the one being written together); a batch closes at half of it and
    /// receiving pauses while the next one is full.
    #[arg(long, env = "EVENTPULSE_BUFFER_BYTES", global = true)]
    pub buffer_bytes: Option<usize>,
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
    /// Width of each new `events` partition, in days.
    #[arg(long, env = "EVENTPULSE_PARTITION_DAYS", global = true)]
    pub partition_days: Option<i32>,
    /// Batches made durable at once, each on its own Postgres connection
    /// for its own share of the partitions (partition % lanes). The default,
    /// 1, flushes one batch at a time.
    #[arg(long, env = "EVENTPULSE_FLUSH_LANES", global = true)]
    pub flush_lanes: Option<usize>,
    /// How event rows reach Postgres: copy (binary COPY into a staging
    /// table, the fastest) or unnest (array parameters, the method of before).
    #[arg(long, env = "EVENTPULSE_WRITE_METHOD", global = true)]
    pub write_method: Option<WriteMethod>,
    /// Drop `events` partitions (whole days) older than this many days; 0
    /// keeps everything. Events older than this are dead-lettered as
    /// `timestamp_too_old`.
    #[arg(long, env = "EVENTPULSE_RETENTION_DAYS", global = true)]
    pub retention_days: Option<i32>,
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
    pub buffer_bytes: usize,
    pub linger: Duration,
    pub dedup_ttl: Duration,
    pub pending_ttl: Duration,
    pub redis_timeout: Duration,
    pub db_pool_size: u32,
    pub limits: Limits,
    pub partition_days: i32,
    pub write_method: WriteMethod,
    pub flush_lanes: usize,
    /// `None`: keep everything.
    pub retention_days: Option<i32>,
    pub shutdown_timeout: Duration,
    pub log_format: LogFormat,
    pub kafka_properties: Vec<(String, String)>,
}

layer_over!(Layer {
    brokers,
    topic,
    dlq_topic,
    group_id,
    database_url,
    redis_url,
    metrics_addr,
    batch_size,
    buffer_bytes,
    linger_ms,
    dedup_ttl_secs,
    pending_ttl_ms,
    redis_timeout_ms,
    db_pool_size,
    max_message_bytes,
    max_string_chars,
    max_form_fields,
    max_future_skew_secs,
    max_age_days,
    partition_days,
    write_method,
    flush_lanes,
    retention_days,
    shutdown_timeout_secs,
    log_format,
    kafka_properties,
});

impl Settings {
    /// Merges the command line (flags and env) over the optional file.
    pub fn load(cli: &Cli) -> Result<Self, ConfigError> {
        Self::from_layer(over_file(cli.layer.clone(), cli.config.as_deref())?)
    }

    /// Applies defaults and checks ranges.
    pub fn from_layer(layer: Layer) -> Result<Self, ConfigError> {
        let mut limits = limits_layer!(layer).resolve()?;
        let retention_days = match in_range("retention_days", layer.retention_days, 0, 0, 36_500)? {
            0 => None,
            days => Some(days),
        };
        // An event older than the window would only be stored to be dropped.
        if let Some(days) = retention_days {
            limits.max_age = limits.max_age.min(chrono::Duration::days(i64::from(days)));
        }
        let settings = Self {
            brokers: brokers(layer.brokers)?,
            topic: topic(layer.topic)?,
            dlq_topic: non_empty("dlq_topic", layer.dlq_topic, "events.dlq")?,
            group_id: non_empty("group_id", layer.group_id, "eventpulse")?,
            database_url: database_url(layer.database_url)?,
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
            batch_size: in_range("batch_size", layer.batch_size, 5000, 1, 10_000)?,
            // 32 MiB kept peak RSS under 128 MiB with 60 KB events while
            // Postgres stalled (consumer/tests/it/hardening.rs).
            buffer_bytes: in_range(
                "buffer_bytes",
                layer.buffer_bytes,
                32 << 20,
                1 << 20,
                16 << 30,
            )?,
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
            partition_days: in_range("partition_days", layer.partition_days, 1, 1, 366)?,
            write_method: layer.write_method.unwrap_or_default(),
            // Two lanes stored no faster than one on the 2-core machine with
            // everything co-located (20.4k vs 19.9k rows/s, Step 11): the
            // cores were saturated. More lanes are for a Postgres with cores
            // of its own.
            flush_lanes: in_range("flush_lanes", layer.flush_lanes, 1, 1, 16)?,
            retention_days,
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

#[cfg(test)]
mod tests;
