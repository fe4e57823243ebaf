//! The storage stage: the statistics endpoints over HTTP at size, answered
//! from the rollups and from the rows in the same run, and what retention's
//! partition drop does to concurrent writes.
//!
//! Rows are generated inside Postgres (30 days, 1,000 users, five types,
//! twelve Kafka partitions with each user on one) through the consumer's own
//! statement, `eventpulse_store_events`, so partitions and rollups are what
//! the consumer would have written. The table is measured at a tenth of its
//! size and again at full size, to show whether answers stay flat.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use eventpulse_consumer::retention::Upkeep;
use serde::Serialize;
use sqlx::PgPool;
use std::process::Child;

use crate::cli::BenchArgs;
use crate::procs;
use crate::report::percentile;
use eventpulse_testkit::TestDatabase;

const DAYS: i64 = 30;
const FILL_CHUNK: u64 = 100_000;

#[derive(Debug, Clone, Serialize)]
pub struct QueryTiming {
    pub rows: u64,
    pub query: String,
    pub range: &'static str,
    pub source: &'static str,
    pub samples: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RetentionStall {
    pub rows: u64,
    pub partitions_dropped: usize,
    pub ids_removed: u64,
    pub drop_ms: f64,
    pub inserts_during: usize,
    pub insert_p99_before_ms: f64,
    pub insert_max_before_ms: f64,
    pub insert_max_during_ms: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StorageBench {
    pub fill_rows_per_second: f64,
    pub timings: Vec<QueryTiming>,
    pub retention: Option<RetentionStall>,
}

impl StorageBench {
    /// Rollups against rows for each question, then the retention figures.
    pub fn print(&self, line: &dyn Fn(&str, String, String)) {
        let rows_of = |t: &QueryTiming| format!("{:.0}M", t.rows as f64 / 1e6);
        for t in self.timings.iter().filter(|t| t.source == "rollups") {
            let raw = self.timings.iter().find(|r| {
                r.source == "raw" && r.rows == t.rows && r.query == t.query && r.range == t.range
            });
            line(
                &format!(
                    "stats {} rows {} {}: p50/p99 ms",
                    rows_of(t),
                    t.query,
                    t.range
                ),
                format!("{:.1}/{:.1}", t.p50_ms, t.p99_ms),
                raw.map_or(String::new(), |r| {
                    format!("raw {:.0}/{:.0}", r.p50_ms, r.p99_ms)
                }),
            );
        }
        if let Some(r) = &self.retention {
            line(
                &format!(
                    "retention drop at {:.0}M rows: ms, ids removed",
                    r.rows as f64 / 1e6
                ),
                format!("{:.0} {}", r.drop_ms, r.ids_removed),
                String::new(),
            );
            line(
                "  insert max during drop vs before (ms)",
                format!(
                    "{:.1} / {:.1}",
                    r.insert_max_during_ms, r.insert_max_before_ms
                ),
                String::new(),
            );
        }
    }
}

pub async fn storage(args: &BenchArgs) -> anyhow::Result<StorageBench> {
    let full = if args.quick { 200_000 } else { 20_000_000 };
    let db = TestDatabase::create().await?;
    let pool = eventpulse_consumer::schema::connect(&db.url, 4).await?;
    eventpulse_consumer::schema::migrate(&pool).await?;
    let now = Utc::now();
    let mut bench = StorageBench::default();
    let mut stored = 0;
    let fill_started = Instant::now();
    for size in [full / 10, full] {
        eprintln!("bench:   filling to {size} rows");
        stored = fill(&pool, stored, size, now).await?;
        sqlx::query("VACUUM (ANALYZE) events")
            .execute(&pool)
            .await?;
        bench.fill_rows_per_second = stored as f64 / fill_started.elapsed().as_secs_f64();
        bench
            .timings
            .extend(time_queries(args, &db.url, stored, now).await?);
    }
    bench.retention = Some(retention_stall(&pool, stored).await?);
    pool.close().await;
    db.drop_now().await?;
    Ok(bench)
}

/// Adds rows `from..to` (their numbers), spread evenly over the 30 days
/// before `now` in time order, as a consumer writes them (rollup rows of
/// one hour then sit together, as they do in production).
async fn fill(pool: &PgPool, from: u64, to: u64, now: DateTime<Utc>) -> anyhow::Result<u64> {
    let mut next = from;
    while next < to {
        let end = (next + FILL_CHUNK).min(to);
        sqlx::query(
            "WITH g AS MATERIALIZED ( \
               SELECT gen_random_uuid() AS id, \
                      (ARRAY['page_view','page_view','page_view','button_click','button_click', \
                             'login','logout','form_submit'])[1 + floor(random() * 8)::int] AS kind, \
                      floor(random() * 1000)::int AS u, \
                      $3::timestamptz - make_interval(days => $4) \
                        + ((i - $5 + random()) / ($6 - $5)) * make_interval(days => $4) AS at, i \
               FROM generate_series($1::int8, $2::int8 - 1) AS i) \
             SELECT count(*) FROM eventpulse_store_events( \
               (SELECT array_agg(id) FROM g), (SELECT array_agg(kind) FROM g), \
               (SELECT array_agg('user-' || u) FROM g), (SELECT array_agg(at) FROM g), \
               (SELECT array_agg('{\"page\": \"/p/' || u % 50 || '\"}') FROM g), \
               (SELECT array_agg(u % 12) FROM g), (SELECT array_agg(i) FROM g))",
        )
        .bind(next as i64)
        .bind(end as i64)
        .bind(now)
        .bind(DAYS as i32)
        .bind(from as f64)
        .bind(to as f64)
        .execute(pool)
        .await
        .context("generating rows")?;
        next = end;
    }
    Ok(to)
}

/// Every stats question, for each range, from each source.
async fn time_queries(
    args: &BenchArgs,
    db_url: &str,
    rows: u64,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<QueryTiming>> {
    let mut timings = Vec::new();
    for source in ["rollups", "raw"] {
        let ports = procs::ApiPorts::free()?;
        let port = ports.http;
        let mut api = spawn_api(args, db_url, ports, source)?;
        procs::wait_answers(port, "/healthz").await?;
        let client = reqwest::Client::new();
        for (range, span) in [
            ("1 h", chrono::Duration::hours(1)),
            ("24 h", chrono::Duration::hours(24)),
            ("30 d", chrono::Duration::days(DAYS)),
        ] {
            for query in [
                "/stats/hourly",
                "/stats/top-users",
                "/events/metrics?group_by=daily",
            ] {
                let samples = match (source, range) {
                    ("raw", "30 d") => 3,
                    ("raw", _) => 10,
                    _ => 40,
                };
                let mut took = Vec::with_capacity(samples);
                for i in 0..samples {
                    // Edges that move, as a dashboard's do: never hour-aligned.
                    let to = now - chrono::Duration::seconds(37 * i as i64 + 11);
                    let from = to - span;
                    let sep = if query.contains('?') { '&' } else { '?' };
                    let url = format!(
                        "http://127.0.0.1:{port}{query}{sep}from={}&to={}",
                        from.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                        to.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                    );
                    let started = Instant::now();
                    let response = client.get(&url).send().await?;
                    anyhow::ensure!(
                        response.status().is_success(),
                        "{url}: {}",
                        response.status()
                    );
                    response.bytes().await?;
                    took.push(started.elapsed().as_secs_f64() * 1000.0);
                }
                took.sort_by(f64::total_cmp);
                let timing = QueryTiming {
                    rows,
                    query: query.to_owned(),
                    range,
                    source,
                    samples,
                    p50_ms: percentile(&took, 0.50),
                    p99_ms: percentile(&took, 0.99),
                };
                eprintln!(
                    "bench:   {rows} rows, {query} over {range} from {source}: p50 {:.1} ms, p99 {:.1} ms",
                    timing.p50_ms, timing.p99_ms
                );
                timings.push(timing);
            }
        }
        procs::stop(&mut api)?;
    }
    Ok(timings)
}

fn spawn_api(
    args: &BenchArgs,
    db_url: &str,
    ports: procs::ApiPorts,
    source: &str,
) -> anyhow::Result<Child> {
    procs::api_command(&args.bin_dir, db_url, ports)
        .env("EVENTPULSE_STATS_SOURCE", source)
        // Raw 30-day answers at 20M rows take seconds: let them finish.
        .env("EVENTPULSE_QUERY_TIMEOUT_MS", "300000")
        .spawn()
        .context("starting eventpulse-api (build it with cargo build --release)")
}

/// Small batches written continuously (as a consumer at a few thousand
/// events/s would), while retention drops the oldest day: the longest write
/// during the drop against the longest before it.
async fn retention_stall(pool: &PgPool, rows: u64) -> anyhow::Result<RetentionStall> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = tokio::spawn(write_steadily(pool.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let split = Instant::now();
    // The data spans 30 days back from the fill: 29 days drops the oldest.
    let report = Upkeep::new(pool.clone(), 1, Some(DAYS as i32 - 1))
        .run_once()
        .await?;
    let drop_ms = split.elapsed().as_secs_f64() * 1000.0;
    let done = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let writes = writer.await??;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut earlier: Vec<f64> = writes
        .iter()
        .filter(|(at, _)| *at < split)
        .map(|(_, took)| ms(*took))
        .collect();
    earlier.sort_by(f64::total_cmp);
    let during: Vec<f64> = writes
        .iter()
        .filter(|(at, took)| *at + *took > split && *at < done)
        .map(|(_, took)| ms(*took))
        .collect();
    let stall = RetentionStall {
        rows,
        partitions_dropped: report.dropped.len(),
        ids_removed: report.dropped.iter().map(|d| d.ids_removed).sum(),
        drop_ms,
        inserts_during: during.len(),
        insert_p99_before_ms: percentile(&earlier, 0.99),
        insert_max_before_ms: earlier.last().copied().unwrap_or(0.0),
        insert_max_during_ms: during.iter().copied().fold(0.0, f64::max),
    };
    eprintln!("bench:   retention at {rows} rows: {stall:?}");
    Ok(stall)
}

/// 100-row batches of current events until `stop`: (start, duration) of each.
async fn write_steadily(
    pool: PgPool,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<Vec<(Instant, Duration)>> {
    let mut writes = Vec::new();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let started = Instant::now();
        sqlx::query(
            "WITH g AS MATERIALIZED (SELECT gen_random_uuid() AS id, i FROM generate_series(1, 100) AS i) \
             SELECT count(*) FROM eventpulse_store_events( \
               (SELECT array_agg(id) FROM g), (SELECT array_agg('login'::text) FROM g), \
               (SELECT array_agg('user-' || i) FROM g), (SELECT array_agg(now()) FROM g), \
               (SELECT array_agg('{}'::text) FROM g), (SELECT array_agg(i % 12) FROM g), \
               (SELECT array_agg(i::int8) FROM g))",
        )
        .execute(&pool)
        .await?;
        writes.push((started, started.elapsed()));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(writes)
}
