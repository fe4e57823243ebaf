//! Command-line flags and `EVENTPULSE_*` environment variables.
//!
//! Flags shared with the consumer (`--brokers`, `--topic`) read the same
//! variables it does, so one exported environment points both at one stack.
//! Knobs only the producer has read `EVENTPULSE_PRODUCER_*`, so that settings
//! exported for one program never change the other by accident.
//!
//! Every value is checked while parsing, so a bad value fails with clap's
//! one-line error naming the flag, before anything connects. That includes
//! combinations: `--via grpc://...` needs `--api-key`, and refuses the flags
//! that would send records elsewhere (`--dry-run`, `--output`) or that only
//! the Kafka client reads (`-X`).

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, ValueEnum};

use crate::via::{ApiKey, GrpcEndpoint, Via};

/// Simulates users and produces eventpulse events to Kafka, directly or
/// through eventpulse-api's gRPC ingestion (or to stdout).
#[derive(Debug, Clone, Parser)]
#[command(name = "eventpulse-producer", version, about, long_about = None)]
pub struct Config {
    /// Kafka bootstrap servers, comma-separated.
    #[arg(long, env = "EVENTPULSE_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,

    /// Topic to produce to. It must exist: the broker does not auto-create topics.
    #[arg(long, env = "EVENTPULSE_TOPIC", default_value = "events")]
    pub topic: String,

    /// How records reach Kafka: `kafka` (this program's own client, to
    /// --brokers and --topic) or `grpc://HOST:PORT` (eventpulse-api's gRPC
    /// ingestion, which validates each record and produces it to its own
    /// topic; invalid records come back refused).
    #[arg(long, env = "EVENTPULSE_VIA", value_name = "URL", default_value = "kafka",
          value_parser = Via::parse)]
    pub via: Via,

    /// API key for `--via grpc://...`, sent as `x-api-key`.
    #[arg(long, env = "EVENTPULSE_API_KEY", value_name = "KEY", hide_env_values = true,
          value_parser = ApiKey::parse)]
    pub api_key: Option<ApiKey>,

    /// Number of simulated users (each one is a Kafka key).
    #[arg(long, env = "EVENTPULSE_PRODUCER_USERS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub users: u64,

    /// Records per second, paced evenly; 0 means as fast as possible.
    #[arg(long, env = "EVENTPULSE_PRODUCER_RATE", value_name = "EVENTS_PER_SEC",
          default_value_t = 0.0, value_parser = parse_rate, allow_negative_numbers = true)]
    pub rate: f64,

    /// Stop after this many records (duplicates and invalid ones included).
    #[arg(long, env = "EVENTPULSE_PRODUCER_COUNT")]
    pub count: Option<u64>,

    /// Stop after this long, e.g. `60s`, `500ms`, `2m`, `1h` (a bare number is seconds).
    /// Without `--count` or `--duration` the producer runs until Ctrl-C.
    #[arg(long, env = "EVENTPULSE_PRODUCER_DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Share of records that re-send an already sent valid event, byte for byte.
    #[arg(long, env = "EVENTPULSE_PRODUCER_DUPLICATE_RATIO", value_name = "RATIO",
          default_value_t = 0.0, value_parser = parse_ratio, allow_negative_numbers = true)]
    pub duplicate_ratio: f64,

    /// Share of records that are invalid on purpose (malformed JSON, bad UUID, ...).
    #[arg(long, env = "EVENTPULSE_PRODUCER_INVALID_RATIO", value_name = "RATIO",
          default_value_t = 0.0, value_parser = parse_ratio, allow_negative_numbers = true)]
    pub invalid_ratio: f64,

    /// Seed for every random choice, event ids included: the same seed (and the
    /// same `--start-time`, `--users`, ratios and rate) gives the same records.
    #[arg(long, env = "EVENTPULSE_PRODUCER_SEED")]
    pub seed: Option<u64>,

    /// Write the records as JSON lines to stdout instead of Kafka.
    #[arg(long, conflicts_with = "output")]
    pub dry_run: bool,

    /// Write the records as JSON lines to this file (`-` for stdout) instead of Kafka.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Compression codec for produced batches.
    #[arg(long, env = "EVENTPULSE_PRODUCER_COMPRESSION", value_enum, default_value_t = Compression::Lz4)]
    pub compression: Compression,

    /// librdkafka producer property, overriding the built-in settings
    /// (repeatable), e.g. `-X linger.ms=20`.
    ///
    /// No environment variable: values may contain commas (`debug=broker,topic`),
    /// which a list in one variable could not tell apart from separators.
    #[arg(
        short = 'X',
        long = "kafka-property",
        value_name = "KEY=VALUE",
        value_parser = parse_property
    )]
    pub properties: Vec<(String, String)>,

    /// Also write the final summary as JSON to this file.
    #[arg(long, env = "EVENTPULSE_PRODUCER_SUMMARY_JSON", value_name = "FILE")]
    pub summary_json: Option<PathBuf>,

    /// Simulated clock start (RFC 3339); defaults to now. Pin it to make seeded
    /// runs byte-identical. Timestamps must stay near the consumer's clock.
    #[arg(long, value_parser = parse_start_time, hide_short_help = true)]
    pub start_time: Option<DateTime<FixedOffset>>,

    /// How long to wait at startup for the broker's metadata (or, with
    /// `--via grpc://...`, for the API's health check).
    #[arg(long, default_value = "10s", value_parser = parse_duration, hide_short_help = true)]
    pub connect_timeout: Duration,
}

/// Where records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Kafka,
    Grpc(GrpcEndpoint),
    Stdout,
    File(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Compression {
    Lz4,
    Zstd,
    None,
}

impl Compression {
    /// The librdkafka `compression.type` value.
    pub fn codec(self) -> &'static str {
        match self {
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
            Self::None => "none",
        }
    }
}

impl Config {
    /// Parses and checks the flags that only make sense together. Errors are
    /// clap errors, so the binary prints them the way it prints any bad flag.
    pub fn from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let config = Self::try_parse_from(args)?;
        config
            .check()
            .map_err(|message| Self::command().error(ErrorKind::ArgumentConflict, message))?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        if self.duplicate_ratio + self.invalid_ratio > 1.0 {
            return Err(format!(
                "--duplicate-ratio ({}) plus --invalid-ratio ({}) must not exceed 1",
                self.duplicate_ratio, self.invalid_ratio
            ));
        }
        if self.topic.is_empty() {
            return Err("--topic must not be empty".into());
        }
        if let Via::Grpc(endpoint) = &self.via {
            self.check_grpc(endpoint)?;
        }
        Ok(())
    }

    fn check_grpc(&self, endpoint: &GrpcEndpoint) -> Result<(), String> {
        if self.dry_run || self.output.is_some() {
            return Err(format!(
                "--via {endpoint} sends records to the API, --dry-run and --output write \
                 them out instead: use one or the other"
            ));
        }
        if self.api_key.is_none() {
            return Err(format!(
                "--via {endpoint} needs --api-key (or EVENTPULSE_API_KEY): the API refuses \
                 calls without one"
            ));
        }
        if !self.properties.is_empty() {
            return Err(format!(
                "--kafka-property (-X) sets librdkafka properties, which --via {endpoint} \
                 does not use: the API produces to Kafka"
            ));
        }
        Ok(())
    }

    pub fn destination(&self) -> Destination {
        match &self.output {
            _ if self.dry_run => Destination::Stdout,
            Some(path) if path.as_os_str() == "-" => Destination::Stdout,
            Some(path) => Destination::File(path.clone()),
            None => match &self.via {
                Via::Kafka => Destination::Kafka,
                Via::Grpc(endpoint) => Destination::Grpc(endpoint.clone()),
            },
        }
    }

    /// The rate as an option: `None` means unpaced.
    pub fn paced_rate(&self) -> Option<f64> {
        (self.rate > 0.0).then_some(self.rate)
    }
}

fn parse_rate(raw: &str) -> Result<f64, String> {
    let rate: f64 = raw.trim().parse().map_err(|_| "not a number".to_string())?;
    // The lower bound keeps every schedule offset representable (1e9 records
    // at 0.001/s is 31,700 years).
    if !rate.is_finite() || rate < 0.0 || (rate > 0.0 && rate < 0.001) {
        return Err("must be 0 (unpaced) or between 0.001 and 1e9 events per second".into());
    }
    if rate > 1e9 {
        return Err("must be at most 1e9 events per second".into());
    }
    Ok(rate)
}

fn parse_ratio(raw: &str) -> Result<f64, String> {
    let ratio: f64 = raw.trim().parse().map_err(|_| "not a number".to_string())?;
    if !(0.0..=1.0).contains(&ratio) {
        return Err("must be between 0 and 1".into());
    }
    Ok(ratio)
}

/// Parses `500ms`, `1.5s`, `2m`, `1h` or a bare number of seconds.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let split = raw
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{raw:?} is not a duration like 60s, 500ms, 2m or 1h"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown unit {other:?}: use ms, s, m or h")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{raw:?}: {e}"))
}

fn parse_property(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => Err(format!("{raw:?} is not KEY=VALUE (a librdkafka property)")),
    }
}

fn parse_start_time(raw: &str) -> Result<DateTime<FixedOffset>, String> {
    DateTime::parse_from_rfc3339(raw.trim()).map_err(|e| format!("not RFC 3339: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::from_args(std::iter::once("eventpulse-producer").chain(args.iter().copied()))
    }

    fn error_line(args: &[&str]) -> String {
        parse(args)
            .unwrap_err()
            .to_string()
            .lines()
            .next()
            .unwrap()
            .to_string()
    }

    #[test]
    fn defaults_are_kafka_lz4_unpaced() {
        let config = parse(&["--brokers", "b:1", "--topic", "t"]).unwrap();
        assert_eq!(config.destination(), Destination::Kafka);
        assert_eq!(config.compression.codec(), "lz4");
        assert_eq!(config.paced_rate(), None);
        assert_eq!(config.users, 1000);
        assert_eq!(config.connect_timeout, Duration::from_secs(10));
    }

    #[test]
    fn bad_values_name_their_flag() {
        assert!(error_line(&["--rate", "-5"]).contains("--rate"));
        assert!(error_line(&["--duplicate-ratio", "1.5"]).contains("--duplicate-ratio"));
        assert!(error_line(&["--invalid-ratio", "x"]).contains("--invalid-ratio"));
        assert!(error_line(&["--duration", "10 parsecs"]).contains("--duration"));
        assert!(error_line(&["--users", "0"]).contains("--users"));
        assert!(error_line(&["-X", "novalue"]).contains("--kafka-property"));
        let sum = error_line(&["--duplicate-ratio", "0.6", "--invalid-ratio", "0.6"]);
        assert!(sum.contains("--duplicate-ratio") && sum.contains("--invalid-ratio"));
    }

    #[test]
    fn durations_accept_common_units() {
        let secs = |raw| parse_duration(raw).unwrap().as_secs_f64();
        assert_eq!(secs("60s"), 60.0);
        assert_eq!(secs("500ms"), 0.5);
        assert_eq!(secs("2m"), 120.0);
        assert_eq!(secs("1h"), 3600.0);
        assert_eq!(secs("1.5"), 1.5);
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn output_dash_and_dry_run_mean_stdout() {
        assert_eq!(
            parse(&["--dry-run"]).unwrap().destination(),
            Destination::Stdout
        );
        assert_eq!(
            parse(&["--output", "-"]).unwrap().destination(),
            Destination::Stdout
        );
        assert_eq!(
            parse(&["--output", "x.jsonl"]).unwrap().destination(),
            Destination::File("x.jsonl".into())
        );
        assert!(parse(&["--dry-run", "--output", "x.jsonl"]).is_err());
    }

    #[test]
    fn via_grpc_needs_a_key_and_refuses_other_destinations() {
        let config = parse(&[
            "--via",
            "grpc://127.0.0.1:6000",
            "--api-key",
            "k-0123456789abcdef",
        ])
        .unwrap();
        let Destination::Grpc(endpoint) = config.destination() else {
            panic!("{:?}", config.destination());
        };
        assert_eq!(endpoint.to_string(), "grpc://127.0.0.1:6000");
        assert!(!format!("{config:?}").contains("k-0123456789abcdef"));

        assert!(error_line(&["--via", "nats://x"]).contains("--via"));
        assert!(error_line(&["--via", "grpc://x:1"]).contains("--api-key"));
        assert!(error_line(&["--api-key", "a b"]).contains("--api-key"));
        let key = ["--via", "grpc://x:1", "--api-key", "k-0123456789abcdef"];
        for extra in [
            &["--dry-run"][..],
            &["--output", "x.jsonl"],
            &["--output", "-"],
            &["-X", "linger.ms=1"],
        ] {
            let args: Vec<&str> = key.iter().chain(extra).copied().collect();
            let line = error_line(&args);
            assert!(
                line.contains("grpc://x:1") && line.contains(extra[0]),
                "{line}"
            );
        }
        // The default, and `kafka` said out loud, keep the old behaviour.
        assert_eq!(
            parse(&["--via", "kafka", "--dry-run"])
                .unwrap()
                .destination(),
            Destination::Stdout
        );
    }

    #[test]
    fn properties_keep_equals_signs_and_commas_in_values() {
        let config = parse(&["-X", "sasl.password=a=b", "-X", "debug=broker,topic"]).unwrap();
        assert_eq!(
            config.properties,
            vec![
                ("sasl.password".to_string(), "a=b".to_string()),
                ("debug".to_string(), "broker,topic".to_string())
            ]
        );
    }
}
