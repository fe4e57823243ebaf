//! The gRPC stage: events per second the producer gets acknowledged through
//! eventpulse-api's gRPC ingestion (`EventService.PushBatch`, acked only once
//! Kafka has every event), beside the same producer straight to Kafka.
//!
//! The producer binary runs unpaced with `--via grpc://...`, valid events
//! only, against the API binary on a fresh topic. The rate is the
//! producer's own (acked over its run, as its summary counts it), so the
//! two figures compare the path, not process start-up. The straight figure
//! is reused when an earlier stage of the same run measured it with the
//! same producer flags (the ceilings' unpaced produce, else the end-to-end
//! pre-fill); otherwise a direct run of the same length is measured here.
//!
//! Only long runs compare fairly. A producer straight to Kafka waits about
//! 0.6 s for its first acknowledgement (measured with the local nisshi: one
//! record 0.60 s, 5,000 in 0.71 s, 50,000 in 1.50 s), a start-up the
//! running API paid before the gRPC run began. At `--quick`'s 5,000 events
//! that start-up is most of the straight run, so the ratio says nothing
//! there; at 200,000 it is a few percent.

use std::process::Child;
use std::time::Instant;

use anyhow::Context as _;
use serde::Serialize;

use crate::cli::BenchArgs;
use crate::procs::{self, ApiPorts, ProducerSummary, Target};
use crate::report::Report;
use crate::scenarios::{self, BROKER_PRODUCE};

const PARTITIONS: i32 = 12;
/// Runs shorter than this mostly time the straight producer's start-up.
const FAIR_EVENTS: u64 = 100_000;
/// The API takes keys of 16 characters or more.
const API_KEY: &str = "eventpulse-bench-key-0123456789";

#[derive(Debug, Serialize)]
pub struct GrpcIngest {
    pub events: u64,
    pub acked: u64,
    /// Acked per second over the producer's run.
    pub per_second: f64,
    /// Acked per second over the producer process's wall time (its start-up
    /// and the API health check included).
    pub wall_per_second: f64,
    pub api_cpu_seconds_per_million: f64,
    pub api_peak_rss_mib: f64,
    pub direct: Direct,
}

/// The producer straight to Kafka, for comparison.
#[derive(Debug, Serialize)]
pub struct Direct {
    pub events: u64,
    pub per_second: f64,
    /// `ceilings`, `e2e` (figures of earlier stages) or `measured`.
    pub source: &'static str,
}

impl GrpcIngest {
    /// The gRPC rate as a share of the straight one (1.0 = as fast).
    pub fn share_of_direct(&self) -> f64 {
        self.per_second / self.direct.per_second.max(1e-3)
    }

    pub fn print(&self, line: &dyn Fn(&str, String, String)) {
        let rate = |per_second: f64| format!("{per_second:.0}/s");
        line(
            &format!(
                "gRPC ingestion: {} events through the API into Kafka, acked/s",
                self.events
            ),
            rate(self.per_second),
            String::new(),
        );
        line(
            "gRPC ingestion: acked/s counting start-up and health check",
            rate(self.wall_per_second),
            String::new(),
        );
        line(
            &format!(
                "straight to Kafka ({}, {} events), acked/s",
                self.direct.source, self.direct.events
            ),
            rate(self.direct.per_second),
            String::new(),
        );
        line(
            "gRPC ingestion / straight to Kafka",
            format!("{:.0}%", 100.0 * self.share_of_direct()),
            String::new(),
        );
        if self.events.min(self.direct.events) < FAIR_EVENTS {
            println!(
                "(gRPC ingestion: runs this short mostly time the straight producer's \
                 start-up; compare full runs)"
            );
        }
        line(
            "gRPC ingestion: API CPU s per million events / peak RSS",
            format!(
                "{:.1} / {:.0} MiB",
                self.api_cpu_seconds_per_million, self.api_peak_rss_mib
            ),
            String::new(),
        );
    }
}

pub async fn grpc_ingest(args: &BenchArgs, report: &Report) -> anyhow::Result<GrpcIngest> {
    let events = args.grpc_events();
    let target = Target::create(PARTITIONS).await?;
    let ports = ApiPorts::free()?;
    let mut api = spawn_api(args, &target, ports)?;
    procs::wait_answers(ports.http, "/healthz").await?;
    let cpu_before = procs::cpu_seconds(api.id())?;
    let via = format!("grpc://127.0.0.1:{}", ports.grpc);
    let started = Instant::now();
    let summary = produce(
        args,
        &target,
        events,
        &["--via", &via, "--api-key", API_KEY],
    );
    let wall = started.elapsed();
    let api_cpu = procs::cpu_seconds(api.id())? - cpu_before;
    let api_rss = procs::peak_rss_bytes(api.id())?;
    procs::stop(&mut api)?;
    let summary = summary?;
    anyhow::ensure!(
        summary.acked == events,
        "the API acked {} of {events} events: {summary:?}",
        summary.acked
    );
    eprintln!("bench:   through gRPC: {:.0}/s", summary.acked_per_second());
    let direct = match earlier_direct(report) {
        Some(direct) => direct,
        None => {
            let direct = produce(args, &target, events, &[])?;
            Direct {
                events,
                per_second: direct.acked_per_second(),
                source: "measured",
            }
        }
    };
    eprintln!("bench:   straight to Kafka: {:.0}/s", direct.per_second);
    target.drop_now().await?;
    Ok(GrpcIngest {
        events,
        acked: summary.acked,
        per_second: summary.acked_per_second(),
        wall_per_second: summary.acked as f64 / wall.as_secs_f64(),
        api_cpu_seconds_per_million: api_cpu * 1e6 / events as f64,
        api_peak_rss_mib: api_rss as f64 / (1024.0 * 1024.0),
        direct,
    })
}

/// The unpaced producer's rate straight to Kafka, if an earlier stage of
/// this run measured it: the ceilings' run uses exactly this stage's flags;
/// the end-to-end pre-fill adds 2% duplicates and 0.1% invalid records.
fn earlier_direct(report: &Report) -> Option<Direct> {
    let ceiling = report
        .ceilings
        .iter()
        .find(|(name, _)| name == BROKER_PRODUCE)
        .map(|(_, rate)| Direct {
            events: rate.items,
            per_second: rate.per_second(),
            source: "ceilings",
        });
    ceiling.or_else(|| {
        report.end_to_end.as_ref().map(|e2e| Direct {
            events: e2e.messages,
            per_second: e2e.producer_per_second,
            source: "e2e",
        })
    })
}

/// `events` valid events, unpaced, from 10,000 users, plus `extra` flags.
fn produce(
    args: &BenchArgs,
    target: &Target,
    events: u64,
    extra: &[&str],
) -> anyhow::Result<ProducerSummary> {
    let mut flags = vec!["--duplicate-ratio", "0", "--invalid-ratio", "0"];
    flags.extend_from_slice(extra);
    scenarios::produce_unpaced(args, target, events, &flags)
}

/// The API binary with ingestion enabled, producing to the target's topic.
fn spawn_api(args: &BenchArgs, target: &Target, ports: ApiPorts) -> anyhow::Result<Child> {
    procs::api_command(&args.bin_dir, &target.db.url, ports)
        .env("EVENTPULSE_BROKERS", &target.services.brokers)
        .env("EVENTPULSE_TOPIC", &target.topic)
        .env("EVENTPULSE_API_KEYS", API_KEY)
        .spawn()
        .context("starting eventpulse-api (build it with cargo build --release)")
}
