//! The driver: pace, generate, send, count; then wait for deliveries and
//! summarise.

use std::io::IsTerminal;
use std::time::Instant;

use chrono::Utc;
use rand::Rng;

use crate::clock::SimClock;
use crate::config::{Config, Destination};
use crate::grpc::GrpcSink;
use crate::kafka::KafkaSink;
use crate::pacing::{Next, Pacer};
use crate::progress::Progress;
use crate::sink::{Sent, Sink, WriterSink};
use crate::summary::{RunFacts, Summary, Tally};
use crate::traffic::{Traffic, TrafficSettings};
use crate::{ProducerError, StopSignal};

/// Runs the producer as configured until the count or duration is reached or
/// `stop` is requested, and returns the summary. Delivery failures do not make
/// this an error: they are counted in the summary, and the caller decides.
pub fn run(config: &Config, stop: &StopSignal) -> Result<Summary, ProducerError> {
    let progress = Progress::new(std::io::stderr().is_terminal(), config.count);
    match config.destination() {
        Destination::Kafka => {
            let mut sink = KafkaSink::connect(config)?;
            produce(config, &mut sink, stop, progress)
        }
        Destination::Grpc(endpoint) => {
            let mut sink = GrpcSink::connect(config, &endpoint)?;
            produce(config, &mut sink, stop, progress)
        }
        Destination::Stdout => produce(config, &mut WriterSink::stdout(), stop, progress),
        Destination::File(path) => produce(config, &mut WriterSink::create(&path)?, stop, progress),
    }
}

/// The loop behind [`run`], for any sink.
pub fn produce<S: Sink + ?Sized>(
    config: &Config,
    sink: &mut S,
    stop: &StopSignal,
    mut progress: Progress,
) -> Result<Summary, ProducerError> {
    let mut traffic = Traffic::new(TrafficSettings {
        users: config.users,
        duplicate_ratio: config.duplicate_ratio,
        invalid_ratio: config.invalid_ratio,
        seed: config.seed.unwrap_or_else(|| rand::rng().random()),
    });
    let rate = config.paced_rate();
    let pinned_start = config.start_time.map(|at| at.with_timezone(&Utc));
    // Started after the users are built, so that setup does not eat into the schedule.
    let started = Instant::now();
    let clock = SimClock::new(rate, pinned_start, Utc::now());
    let pacer = Pacer::new(started, rate, config.count, config.duration);

    let mut tally = Tally::default();
    let mut sent = 0;
    while pacer.wait_for(sent, stop) == Next::Send {
        let record = traffic.next_record(clock.at(sent));
        if sink.send(&record.key, &record.payload, stop)? == Sent::Closed {
            break;
        }
        tally.record(record.outcome);
        sent += 1;
        progress.update(sent, sink.deliveries());
    }
    let deliveries = sink.finish(stop, &mut |d| progress.draining(sent, d))?;
    progress.finish();

    Ok(Summary::new(
        &tally,
        RunFacts {
            acked: deliveries.acked,
            failed: deliveries.failed,
            refused: deliveries.refused,
            elapsed: started.elapsed(),
            seed: config.seed,
            topic: match config.destination() {
                Destination::Kafka => config.topic.clone(),
                Destination::Grpc(endpoint) => endpoint.to_string(),
                Destination::Stdout => "-".into(),
                Destination::File(path) => path.display().to_string(),
            },
        },
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use chrono::DateTime;
    use eventpulse_events::{validate, Limits};

    use super::*;
    use crate::invalid::InvalidKind;

    const START: &str = "2026-05-01T10:00:00+02:00";

    fn dry_run(args: &[&str]) -> (Summary, Vec<u8>) {
        let argv = ["eventpulse-producer", "--dry-run", "--start-time", START];
        let config = Config::from_args(argv.iter().chain(args)).unwrap();
        let mut sink = WriterSink::new(Vec::new(), "memory");
        let summary = produce(
            &config,
            &mut sink,
            &StopSignal::default(),
            Progress::hidden(),
        )
        .unwrap();
        (summary, sink.into_inner())
    }

    #[test]
    fn seeded_runs_are_identical() {
        let args = [
            "--seed",
            "42",
            "--count",
            "3000",
            "--duplicate-ratio",
            "0.1",
            "--invalid-ratio",
            "0.1",
        ];
        let (first, first_bytes) = dry_run(&args);
        let (second, second_bytes) = dry_run(&args);
        assert_eq!(first_bytes, second_bytes);
        assert_eq!(first.valid_by_type, second.valid_by_type);
        assert_eq!(first.invalid_by_kind, second.invalid_by_kind);
        let (_, other_bytes) = dry_run(&["--seed", "43", "--count", "3000"]);
        assert_ne!(first_bytes, other_bytes);
    }

    /// Re-derives every count from the emitted bytes with the consumer's own
    /// validation, and checks the summary against it.
    #[test]
    fn summary_counts_match_what_was_emitted() {
        let args = [
            "--seed",
            "7",
            "--count",
            "20000",
            "--users",
            "300",
            "--duplicate-ratio",
            "0.05",
            "--invalid-ratio",
            "0.05",
        ];
        let (summary, bytes) = dry_run(&args);
        let now: DateTime<Utc> = START.parse().unwrap();
        let lines: Vec<&[u8]> = bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        let mut ids = HashSet::new();
        let (mut duplicates, mut by_type, mut by_reason) = (0, BTreeMap::new(), BTreeMap::new());
        for line in &lines {
            match validate(
                line,
                &Limits::default(),
                now + chrono::TimeDelta::seconds(2),
            ) {
                Ok(event) if ids.insert(event.event_id) => {
                    *by_type
                        .entry(event.event_type.as_str().to_string())
                        .or_insert(0u64) += 1;
                }
                Ok(_) => duplicates += 1,
                Err(rejection) => *by_reason.entry(rejection.reason).or_insert(0u64) += 1,
            }
        }
        assert_eq!(summary.sent_total, lines.len() as u64);
        assert_eq!(summary.sent_total, 20_000);
        assert_eq!(summary.acked, 20_000);
        assert_eq!(summary.valid_unique, ids.len() as u64);
        assert_eq!(summary.duplicates, duplicates);
        assert_eq!(summary.valid_by_type, by_type);
        let mut expected_reasons = BTreeMap::new();
        for kind in InvalidKind::ALL {
            let n = summary.invalid_by_kind[kind.name()];
            assert!(n > 0, "no {} in 1000 invalid records", kind.name());
            *expected_reasons.entry(kind.expected_reason()).or_insert(0) += n;
        }
        assert_eq!(by_reason, expected_reasons);
        assert_eq!(summary.invalid_total, by_reason.values().sum::<u64>());
        assert!(
            summary.duplicates > 500 && summary.invalid_total > 500,
            "{summary:?}"
        );
    }

    #[test]
    fn duration_bounds_a_paced_run() {
        let (summary, _) = dry_run(&["--rate", "200", "--duration", "300ms"]);
        assert_eq!(summary.sent_total, 60);
        assert!(
            summary.elapsed_secs >= 0.29 && summary.elapsed_secs < 1.0,
            "{summary:?}"
        );
    }
}
