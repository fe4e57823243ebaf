//! The live-feed stage: the API binary serving `GET /events/live` to many
//! clients while the real consumer stores events at a fixed rate. Measures
//! each event's delay from its batch transaction's start (`ingested_at`, a
//! few milliseconds before the commit) to its arrival at a client, and the
//! API's CPU and memory with that many streams open.
//!
//! Most clients use the sampled mode the dashboard uses (at most 20 events
//! a second each); a few take every event, as a consumer of the raw feed
//! would. Where the dashboard is built and Chromium installed
//! (`scripts/dashboard.sh browser`), one more client is the dashboard in a
//! real browser with a sampled stream beside it
//! (`dashboard/bench/feed-delay.mjs`): the delay to a person's screen.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;
use tokio::sync::watch;

use crate::cli::BenchArgs;
use crate::procs::{self, Target};
use crate::report::percentile;
use crate::sse::{self, Received};

const PARTITIONS: i32 = 12;
/// The dashboard's own sampling.
const SAMPLED_PER_SECOND: u32 = 20;

#[derive(Debug, Serialize)]
pub struct LiveFeed {
    pub rate: u64,
    pub seconds: u64,
    pub sampled_clients: usize,
    pub exact_clients: usize,
    pub expected_rows: u64,
    pub stored_rows: u64,
    /// Delay quantiles over every event every exact client received.
    pub exact: Quantiles,
    /// The same over the sampled clients.
    pub sampled: Quantiles,
    /// The same in Chromium, sampled like the dashboard; `None` without the
    /// dashboard's build or the browser.
    pub browser: Option<Quantiles>,
    /// Events the exact clients received per event stored (1.0 = all of them).
    pub exact_completeness: f64,
    pub dropped_clients: usize,
    /// The API's CPU over the producing window, in percent of one core.
    pub api_cpu_percent: f64,
    pub api_peak_rss_mib: f64,
}

#[derive(Debug, Default, Serialize, serde::Deserialize)]
pub struct Quantiles {
    pub events: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Quantiles {
    /// Over every event the `streams` received.
    fn of(streams: &[Received]) -> Self {
        let mut delays: Vec<f64> = streams.iter().flat_map(|r| r.delays_ms.clone()).collect();
        if delays.is_empty() {
            return Self::default();
        }
        delays.sort_by(f64::total_cmp);
        Self {
            events: delays.len(),
            p50_ms: percentile(&delays, 0.5),
            p99_ms: percentile(&delays, 0.99),
        }
    }
}

pub async fn live_feed(args: &BenchArgs) -> anyhow::Result<LiveFeed> {
    let target = Target::create(PARTITIONS).await?;
    let consumer_port = crate::services::free_port()?;
    let mut consumer = target.spawn_consumer(args, consumer_port)?;
    procs::wait_ready(consumer_port).await?;
    let ports = procs::ApiPorts::free()?;
    let api_port = ports.http;
    let mut api = spawn_api(args, &target, ports)?;
    procs::wait_answers(api_port, "/healthz").await?;
    procs::wait_assigned(&[consumer_port], PARTITIONS.into()).await?;

    let exact_clients = args.live_clients / 5;
    let (stop, stopped) = watch::channel(false);
    let clients = open_streams(api_port, args.live_clients, exact_clients, &stopped);
    let browser = spawn_browser(api_port, args.latency_secs() + 4);
    let (cpu_before, started) = (procs::cpu_seconds(api.id())?, Instant::now());
    // Off the runtime's threads: the streams' tasks need both.
    let summary = tokio::task::block_in_place(|| {
        target.produce_paced(&args.bin_dir, args.latency_rate, args.latency_secs())
    })?;
    let api_cpu_percent =
        100.0 * (procs::cpu_seconds(api.id())? - cpu_before) / started.elapsed().as_secs_f64();
    target.wait_drained(summary.acked, Instant::now()).await?;
    // The last rows reach the clients a moment after their commit.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = stop.send(true);
    let mut received = Vec::new();
    for client in clients {
        received.push(client.await?.context("a live stream failed")?);
    }
    let browser = match browser {
        Some(child) => Some(browser_delays(child).await?),
        None => None,
    };
    let api_peak_rss_mib = procs::peak_rss_bytes(api.id())? as f64 / (1024.0 * 1024.0);
    procs::stop(&mut api)?;
    procs::stop(&mut consumer)?;
    let stored = target.stored().await?;
    target.drop_now().await?;
    let (exact, sampled) = received.split_at(exact_clients);
    Ok(LiveFeed {
        rate: args.latency_rate,
        seconds: args.latency_secs(),
        sampled_clients: sampled.len(),
        exact_clients,
        expected_rows: summary.valid_unique,
        stored_rows: stored,
        exact_completeness: completeness(exact, stored),
        exact: Quantiles::of(exact),
        sampled: Quantiles::of(sampled),
        browser,
        dropped_clients: cut_off(&received),
        api_cpu_percent,
        api_peak_rss_mib,
    })
}

/// `clients` streams, the first `exact` of them taking every event.
fn open_streams(
    api_port: u16,
    clients: usize,
    exact: usize,
    stopped: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<anyhow::Result<Received>>> {
    (0..clients)
        .map(|i| {
            let query = if i < exact {
                String::new()
            } else {
                format!("?max_per_second={SAMPLED_PER_SECOND}")
            };
            let url = format!("http://127.0.0.1:{api_port}/events/live{query}");
            tokio::spawn(sse::read(url, stopped.clone()))
        })
        .collect()
}

/// Events an exact stream received per event stored, over all of them.
fn completeness(exact: &[Received], stored: u64) -> f64 {
    let events: usize = exact.iter().map(|r| r.delays_ms.len()).sum();
    events as f64 / (stored as f64 * exact.len() as f64).max(1.0)
}

/// How many streams were cut off, each said with its reason.
fn cut_off(received: &[Received]) -> usize {
    let cut: Vec<_> = received
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.dropped.as_ref().map(|why| (i, why, r.delays_ms.len())))
        .collect();
    for (i, why, events) in &cut {
        eprintln!("bench:   stream {i} was cut off ({why}) after {events} events");
    }
    cut.len()
}

const BROWSER_SCRIPT: &str = "dashboard/bench/feed-delay.mjs";
const CHROMIUM: &str = "/usr/bin/chromium";

/// The dashboard in Chromium for `seconds`, or `None` (said why) when it
/// cannot run here. Run from the checkout's root, as `scripts/bench.sh` does.
fn spawn_browser(api_port: u16, seconds: u64) -> Option<tokio::process::Child> {
    let needs = [
        "dashboard/node_modules",
        "dashboard/dist/index.html",
        BROWSER_SCRIPT,
        CHROMIUM,
    ];
    if let Some(missing) = needs.iter().find(|p| !std::path::Path::new(p).exists()) {
        eprintln!(
            "bench:   no browser client ({missing} is missing): run scripts/dashboard.sh browser"
        );
        return None;
    }
    tokio::process::Command::new("node")
        .arg(BROWSER_SCRIPT)
        .arg(format!("http://127.0.0.1:{api_port}/"))
        .arg(seconds.to_string())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| eprintln!("bench:   no browser client: node: {e}"))
        .ok()
}

async fn browser_delays(child: tokio::process::Child) -> anyhow::Result<Quantiles> {
    let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .context("the browser client did not finish")??;
    anyhow::ensure!(
        output.status.success(),
        "{BROWSER_SCRIPT} failed: {}",
        output.status
    );
    serde_json::from_slice(&output.stdout).context("reading the browser's delays")
}

/// The API binary over the target's database and topic.
fn spawn_api(args: &BenchArgs, target: &Target, ports: procs::ApiPorts) -> anyhow::Result<Child> {
    procs::api_command(&args.bin_dir, &target.db.url, ports)
        .env("EVENTPULSE_BROKERS", &target.services.brokers)
        .env("EVENTPULSE_TOPIC", &target.topic)
        .env(
            "EVENTPULSE_LIVE_MAX_STREAMS",
            (args.live_clients + 10).to_string(),
        )
        .spawn()
        .context("starting eventpulse-api (build it with cargo build --release)")
}
