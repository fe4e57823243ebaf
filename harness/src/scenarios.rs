//! The benchmark stages, run in order on the same machine in one go, so the
//! ratios compare figures taken under the same conditions.

use std::time::Instant;

use eventpulse_testkit::redis_url;

use eventpulse_consumer::event_rows::WriteMethod;

use crate::ceilings::{self, Rate};
use crate::cli::BenchArgs;
use crate::faults::run::{metric, scrape};
use crate::postgres_ceilings;
use crate::procs::{self, ProducerSummary, Target};
use crate::report::{EndToEnd, Latency, Report, Scaling};

const PARTITIONS: i32 = 12;

/// The ceilings' unpaced producer run; the gRPC stage compares with it.
pub const BROKER_PRODUCE: &str = "broker produce (producer CLI, unpaced)";

pub async fn run_all(args: &BenchArgs) -> anyhow::Result<()> {
    procs::bin_dir_exists(&args.bin_dir)?;
    let mut report = Report::new(args);
    if args.runs("ceilings") {
        measure_ceilings(args, &mut report).await?;
    }
    if args.runs("e2e") {
        eprintln!(
            "bench: end to end, draining {} pre-filled events",
            args.events()
        );
        report.end_to_end = Some(end_to_end(args, args.events()).await?);
    }
    if args.runs("grpc") {
        eprintln!(
            "bench: gRPC ingestion, {} events through the API into Kafka",
            args.grpc_events()
        );
        report.grpc = Some(crate::grpc::grpc_ingest(args, &report).await?);
    }
    if args.runs("latency") {
        eprintln!(
            "bench: latency at {} events/s for {} s",
            args.latency_rate,
            args.latency_secs()
        );
        report.latency = Some(latency(args).await?);
    }
    if args.runs("live") {
        eprintln!(
            "bench: live feed, {} streams, {} events/s for {} s",
            args.live_clients,
            args.latency_rate,
            args.latency_secs()
        );
        report.live = Some(crate::live::live_feed(args).await?);
    }
    for consumers in (1..=3).filter(|_| args.runs("scaling")) {
        eprintln!("bench: scaling, {consumers} consumer(s)");
        report.scaling.push(scaling(args, consumers).await?);
    }
    if args.runs("storage") {
        eprintln!("bench: storage at size (stats from rollups and from rows, retention)");
        report.storage = Some(crate::storage::storage(args).await?);
    }
    if args.runs("sweep") {
        let events = if args.quick { 10_000 } else { 200_000 };
        for size in [250, 500, 1000, 2000, 5000] {
            eprintln!("bench: sweep, batch size {size}");
            let point = BenchArgs {
                batch_size: Some(size),
                ..args.clone()
            };
            report.sweep.push((size, end_to_end(&point, events).await?));
        }
    }
    if args.runs("peer") {
        eprintln!(
            "bench: peer, our consumer then Quix Streams draining the same {} events",
            args.events()
        );
        report.peer = Some(crate::peer::peer(args).await?);
    }
    report.print();
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
        eprintln!("bench: wrote {}", path.display());
    }
    report.check_exact()
}

async fn measure_ceilings(args: &BenchArgs, report: &mut Report) -> anyhow::Result<()> {
    let rows = args.ceiling_rows();
    let batch = args.batch_size.unwrap_or(5000);
    eprintln!("bench: ceilings with {rows} events each");
    let target = Target::create(PARTITIONS).await?;
    let produced = produce_unpaced(args, &target, rows as u64, &[])?;
    report.ceiling(
        BROKER_PRODUCE,
        Rate {
            items: produced.acked,
            seconds: produced.acked as f64 / produced.rate_achieved.max(1.0),
        },
    );
    let topic = target.topic.clone();
    let drained = tokio::task::spawn_blocking(move || {
        ceilings::kafka_drain(&topic, PARTITIONS, produced.acked)
    })
    .await??;
    report.ceiling("broker consume (fetch only)", drained);
    target.drop_now().await?;

    report.ceiling(
        "redis claim+confirm (consumer's pipelines)",
        ceilings::redis_claim_confirm(&redis_url(), rows, batch).await?,
    );
    // As many rows as the end-to-end drain inserts: index upkeep grows with
    // the table, so a smaller table would flatter the ceiling.
    let events = ceilings::synthetic_events(args.events() as usize);
    let server_side = postgres_ceilings::server_side(&events, batch).await?;
    eprintln!(
        "bench:   postgres server-side: {:.0}/s",
        server_side.per_second()
    );
    let copy = postgres_ceilings::copy_binary(&events, batch).await?;
    eprintln!("bench:   postgres binary COPY: {:.0}/s", copy.per_second());
    report.postgres = vec![
        (
            "postgres server-side INSERT ... SELECT (final schema)".into(),
            server_side,
        ),
        (
            "postgres binary COPY, pre-encoded (final schema)".into(),
            copy,
        ),
    ];
    for (name, method) in [
        (
            "consumer's Store::write_batch, binary COPY (default)",
            WriteMethod::Copy,
        ),
        (
            "consumer's Store::write_batch, UNNEST arrays",
            WriteMethod::Unnest,
        ),
    ] {
        let rate = postgres_ceilings::write_batch(&events, batch, method).await?;
        eprintln!("bench:   {name}: {:.0}/s", rate.per_second());
        report.comparisons.push((name.into(), rate));
    }
    let plain = postgres_ceilings::write_batch_unpartitioned(&events, batch).await?;
    eprintln!(
        "bench:   unpartitioned, no rollups: {:.0}/s",
        plain.per_second()
    );
    report.comparisons.push((
        "same batches, unpartitioned table of before, no rollups".into(),
        plain,
    ));
    Ok(())
}

/// A pre-filled topic (2% duplicates, 0.1% invalid) drained from scratch.
pub async fn end_to_end(args: &BenchArgs, events: u64) -> anyhow::Result<EndToEnd> {
    let target = Target::create(PARTITIONS).await?;
    let summary = prefill(args, &target, events)?;
    let e2e = drain(args, &target, &summary).await?;
    target.drop_now().await?;
    Ok(e2e)
}

/// Fills the target's topic with `events` messages at full speed from 10,000
/// users, 2% of them duplicates and 0.1% invalid.
pub fn prefill(args: &BenchArgs, target: &Target, events: u64) -> anyhow::Result<ProducerSummary> {
    let ratios = ["--duplicate-ratio", "0.02", "--invalid-ratio", "0.001"];
    produce_unpaced(args, target, events, &ratios)
}

/// `events` records at full speed from 10,000 users, plus `extra` flags.
pub fn produce_unpaced(
    args: &BenchArgs,
    target: &Target,
    events: u64,
    extra: &[&str],
) -> anyhow::Result<ProducerSummary> {
    let count = events.to_string();
    let mut flags = vec!["--count", &count, "--rate", "0", "--users", "10000"];
    flags.extend_from_slice(extra);
    target.produce(&args.bin_dir, &flags)
}

/// One consumer draining the target's pre-filled topic (`summary` says what
/// is in it) into the target's database; the database is left as it is.
pub async fn drain(
    args: &BenchArgs,
    target: &Target,
    summary: &ProducerSummary,
) -> anyhow::Result<EndToEnd> {
    let started = Instant::now();
    let port = crate::services::free_port()?;
    let mut child = target.spawn_consumer(args, port)?;
    let first_consumed = tokio::spawn(procs::first_consumed(port, started));
    let elapsed = target.wait_drained(summary.acked, started).await?;
    let cpu = procs::cpu_seconds(child.id())?;
    let rss = procs::peak_rss_bytes(child.id())?;
    let metrics = scrape(port)?;
    let batches = metric(&metrics, "eventpulse_batch_size_count").max(1.0);
    let flush_seconds = metric(&metrics, "eventpulse_batch_flush_duration_seconds_sum");
    procs::stop(&mut child)?;
    let stored = target.stored().await?;
    let steady_seconds: f64 = sqlx::query_scalar("SELECT coalesce(extract(epoch FROM max(ingested_at) - min(ingested_at))::float8, 0) FROM events")
        .fetch_one(&target.pool)
        .await?;
    Ok(EndToEnd {
        first_consumed_seconds: first_consumed.await??.as_secs_f64(),
        mean_batch: metric(&metrics, "eventpulse_batch_size_sum") / batches,
        mean_flush_ms: 1000.0 * flush_seconds / batches,
        flush_busy: flush_seconds / steady_seconds.max(1e-3),
        steady_seconds,
        messages: summary.acked,
        expected_rows: summary.valid_unique,
        stored_rows: stored,
        seconds: elapsed.as_secs_f64(),
        cpu_seconds_per_million: cpu * 1e6 / summary.acked as f64,
        peak_rss_mib: rss as f64 / (1024.0 * 1024.0),
        producer_per_second: summary.acked_per_second(),
    })
}

/// Produce-to-row latency at a fixed rate, from the rows themselves.
async fn latency(args: &BenchArgs) -> anyhow::Result<Latency> {
    let target = Target::create(PARTITIONS).await?;
    let port = crate::services::free_port()?;
    let mut child = target.spawn_consumer(args, port)?;
    procs::wait_ready(port).await?;
    procs::wait_assigned(&[port], PARTITIONS.into()).await?;
    let summary = target.produce_paced(&args.bin_dir, args.latency_rate, args.latency_secs())?;
    target.wait_drained(summary.acked, Instant::now()).await?;
    procs::stop(&mut child)?;
    let quantiles: Vec<f64> = sqlx::query_scalar(
        "SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP \
         (ORDER BY extract(epoch FROM ingested_at - occurred_at)) FROM events",
    )
    .fetch_one(&target.pool)
    .await?;
    let stored = target.stored().await?;
    target.drop_now().await?;
    Ok(Latency {
        rate: args.latency_rate,
        seconds: args.latency_secs(),
        expected_rows: summary.valid_unique,
        stored_rows: stored,
        p50_ms: quantiles[0] * 1000.0,
        p95_ms: quantiles[1] * 1000.0,
        p99_ms: quantiles[2] * 1000.0,
    })
}

/// `consumers` instances in one group draining the same pre-filled topic.
async fn scaling(args: &BenchArgs, consumers: usize) -> anyhow::Result<Scaling> {
    let target = Target::create(PARTITIONS).await?;
    let summary = produce_unpaced(args, &target, args.scaling_events(), &[])?;
    let started = Instant::now();
    let mut children = Vec::new();
    for _ in 0..consumers {
        children.push(target.spawn_consumer(args, crate::services::free_port()?)?);
    }
    let elapsed = target.wait_drained(summary.acked, started).await?;
    for child in &mut children {
        procs::stop(child)?;
    }
    let stored = target.stored().await?;
    target.drop_now().await?;
    Ok(Scaling {
        consumers,
        expected_rows: summary.valid_unique,
        stored_rows: stored,
        seconds: elapsed.as_secs_f64(),
    })
}
