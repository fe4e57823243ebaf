//! The live-feed stage: the API binary serving `GET /events/live` to many
//! clients while the real consumer stores events at a fixed rate. Measures
//! each event's delay from its batch transaction's start (`ingested_at`, a
//! few milliseconds before the commit) to its arrival at a client, and the
//! API's CPU and memory with that many streams open.
//!
//! Most clients use the sampled mode the dashboard uses (at most 20 events
//! a second each); a few take every event, as a consumer of the raw feed
//! would.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;
use tokio::sync::watch;

use crate::cli::BenchArgs;
use crate::procs::{self, Target};
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
    /// Events the exact clients received per event stored (1.0 = all of them).
    pub exact_completeness: f64,
    pub dropped_clients: usize,
    /// The API's CPU over the producing window, in percent of one core.
    pub api_cpu_percent: f64,
    pub api_peak_rss_mib: f64,
}

#[derive(Debug, Default, Serialize)]
pub struct Quantiles {
    pub events: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Quantiles {
    fn of(mut delays: Vec<f64>) -> Self {
        if delays.is_empty() {
            return Self::default();
        }
        delays.sort_by(f64::total_cmp);
        let at = |q: f64| delays[((delays.len() - 1) as f64 * q).round() as usize];
        Self {
            events: delays.len(),
            p50_ms: at(0.5),
            p99_ms: at(0.99),
        }
    }
}

pub async fn live_feed(args: &BenchArgs) -> anyhow::Result<LiveFeed> {
    let target = Target::create(PARTITIONS).await?;
    let consumer_port = crate::services::free_port()?;
    let mut consumer = target.spawn_consumer(args, consumer_port)?;
    procs::wait_ready(consumer_port).await?;
    let api_port = crate::services::free_port()?;
    let mut api = spawn_api(args, &target, api_port)?;
    wait_api(api_port).await?;
    // Let the group assignment settle before the clock starts.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let (stop, stopped) = watch::channel(false);
    let exact_clients = args.live_clients / 5;
    let mut clients = Vec::new();
    for i in 0..args.live_clients {
        let query = if i < exact_clients {
            String::new()
        } else {
            format!("?max_per_second={SAMPLED_PER_SECOND}")
        };
        let url = format!("http://127.0.0.1:{api_port}/events/live{query}");
        clients.push(tokio::spawn(sse::read(url, stopped.clone())));
    }
    let (cpu_before, started) = (procs::cpu_seconds(api.id())?, Instant::now());
    let summary = target.produce_paced(&args.bin_dir, args.latency_rate, args.latency_secs())?;
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
    let api_peak_rss_mib = procs::peak_rss_bytes(api.id())? as f64 / (1024.0 * 1024.0);
    procs::stop(&mut api)?;
    procs::stop(&mut consumer)?;
    let stored = target.stored().await?;
    target.drop_now().await?;

    let (exact, sampled) = received.split_at(exact_clients);
    let delays = |group: &[Received]| group.iter().flat_map(|r| r.delays_ms.clone()).collect();
    let exact_events: usize = exact.iter().map(|r| r.delays_ms.len()).sum();
    Ok(LiveFeed {
        rate: args.latency_rate,
        seconds: args.latency_secs(),
        sampled_clients: sampled.len(),
        exact_clients,
        expected_rows: summary.valid_unique,
        stored_rows: stored,
        exact_completeness: exact_events as f64 / (stored as f64 * exact_clients as f64).max(1.0),
        exact: Quantiles::of(delays(exact)),
        sampled: Quantiles::of(delays(sampled)),
        dropped_clients: received.iter().filter(|r| r.dropped).count(),
        api_cpu_percent,
        api_peak_rss_mib,
    })
}

/// The API binary, read-only (no key), on `port`, over the target's database.
fn spawn_api(args: &BenchArgs, target: &Target, port: u16) -> anyhow::Result<Child> {
    Command::new(args.bin_dir.join("eventpulse-api"))
        .env("EVENTPULSE_API_ADDR", format!("127.0.0.1:{port}"))
        .env("EVENTPULSE_BROKERS", &target.services.brokers)
        .env("EVENTPULSE_TOPIC", &target.topic)
        .env("EVENTPULSE_DATABASE_URL", &target.db.url)
        .env(
            "EVENTPULSE_LIVE_MAX_STREAMS",
            (args.live_clients + 10).to_string(),
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .context("starting eventpulse-api (build it with cargo build --release)")
}

async fn wait_api(port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let url = format!("http://127.0.0.1:{port}/healthz");
    let client = reqwest::Client::builder().no_proxy().build()?;
    while Instant::now() < deadline {
        if client
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the API on port {port} never answered /healthz")
}
