//! Faults of the consumer's dependencies, each on a private instance where it
//! has to be stopped: Redis stopped then back empty, Postgres restarted,
//! Postgres connections terminated, the broker restarted, Postgres locked.

use std::time::{Duration, Instant};

use super::run::Run;
use super::{FaultArgs, Row};
use crate::procs;
use crate::services::{Private, Services};

/// Traffic against `services`; once data flows, `private` is stopped, kept
/// down for the fault gap, started again, and the run is checked.
async fn outage(
    args: &FaultArgs,
    private: &mut Private,
    services: Services,
    scenario: &str,
    what: &str,
) -> anyhow::Result<Row> {
    let mut run = Run::start(args, services, 1, args.events() / args.traffic_secs()).await?;
    run.wait_progress(0, Duration::from_secs(60)).await?;
    private.kill();
    run.fault();
    tokio::time::sleep(args.fault_gap()).await;
    private.start().await?;
    run.note(format!("{what}, down {:?}", args.fault_gap()));
    run.finish(scenario).await
}

pub async fn redis_down_then_flushed(args: &FaultArgs) -> anyhow::Result<Row> {
    let mut redis = Private::redis().await?;
    let services = Services {
        redis_url: redis.url(),
        ..Services::from_env()
    };
    outage(
        args,
        &mut redis,
        services,
        "redis stopped, back flushed",
        "redis SIGKILLed, back empty",
    )
    .await
}

/// Fast shutdown and restart; the harness's own pool reconnects afterwards
/// (sqlx tests connections before use).
pub async fn postgres_restarted(args: &FaultArgs) -> anyhow::Result<Row> {
    let mut postgres = Private::postgres().await?;
    let services = Services {
        admin_url: postgres.url(),
        ..Services::from_env()
    };
    outage(
        args,
        &mut postgres,
        services,
        "postgres restarted",
        "postgres fast shutdown",
    )
    .await
}

pub async fn postgres_connections_killed(args: &FaultArgs) -> anyhow::Result<Row> {
    let mut run = Run::start(
        args,
        Services::from_env(),
        1,
        args.events() / args.traffic_secs(),
    )
    .await?;
    let admin = sqlx::PgPool::connect(&run.target.services.admin_url).await?;
    let mut terminated = 0i64;
    while run.producer_running() {
        tokio::time::sleep(Duration::from_millis(700)).await;
        terminated += sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid() AND application_name = 'eventpulse-consumer') AS t",
        )
        .bind(&run.target.db.name)
        .fetch_one(&admin)
        .await?;
        run.fault();
    }
    admin.close().await;
    run.note(format!("{terminated} backends terminated"));
    run.finish("postgres connections killed").await
}

pub async fn broker_restarted(args: &FaultArgs) -> anyhow::Result<Row> {
    let mut broker = Private::broker().await?;
    let services = Services {
        brokers: broker.url(),
        ..Services::from_env()
    };
    outage(
        args,
        &mut broker,
        services,
        "broker restarted",
        "broker SIGKILLed (sqlite storage)",
    )
    .await
}

/// A lock on `events` stalls every insert while large records arrive: valid
/// 60 KB events and rejects of 1,040,000 bytes (too large to dead-letter
/// whole). Memory must stay bounded in bytes while the backlog grows, and the
/// consumer must catch up after.
pub async fn postgres_slow(args: &FaultArgs) -> anyhow::Result<Row> {
    let mut run = Run::start(
        args,
        Services::from_env(),
        1,
        args.events() / args.traffic_secs(),
    )
    .await?;
    run.wait_progress(0, Duration::from_secs(60)).await?;
    let pid = run.first_pid().expect("a consumer runs");
    let rss_before = procs::peak_rss_bytes(pid)?;
    let mut lock = run.target.pool.begin().await?;
    sqlx::query("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await?;
    let stalled_at = run.progress().await?;
    let held = Instant::now();
    while held.elapsed() < args.fault_gap() * 2 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // 8,000 (480 MB) overran nisshi's sqlite storage ("database is locked")
    // and failed the seeded producer in one full run; 2,000 is 120 MB.
    let big = big_records(if args.short { 500 } else { 2_000 });
    run.produce_raw("big", &big).await?;
    let during = run.progress().await?;
    lock.rollback().await?;
    run.fault();
    let rss_peak = procs::peak_rss_bytes(pid)?;
    run.note(format!(
        "lock held {:?} and more while {} big records went in, progress during it {}, peak RSS {:.1} -> {:.1} MiB",
        held.elapsed(),
        big.len(),
        during - stalled_at,
        rss_before as f64 / 1048576.0,
        rss_peak as f64 / 1048576.0
    ));
    run.finish("postgres slow (table locked)").await
}

/// `valid` form submissions of about 60 KB each, then two records of
/// 1,040,000 bytes: over the consumer's 64 KiB limit and over the dead-letter
/// producer's 1,000,000, so they must be dead-lettered truncated.
fn big_records(valid: usize) -> Vec<Vec<u8>> {
    let text = "x".repeat(2000);
    let fields: serde_json::Map<String, serde_json::Value> = (0..30)
        .map(|i| (format!("f{i}"), serde_json::Value::from(text.as_str())))
        .collect();
    let now = chrono::Utc::now().to_rfc3339();
    let mut records: Vec<Vec<u8>> = (0..valid)
        .map(|i| {
            serde_json::to_vec(&serde_json::json!({
                "eventId": uuid::Uuid::new_v4(),
                "type": "form_submit",
                "timestamp": now,
                "payload": {"userId": format!("big-{}", i % 50), "formId": "essay", "fields": fields},
            }))
            .expect("a JSON value serialises")
        })
        .collect();
    records.extend((0..2).map(|_| vec![b'{'; 1_040_000]));
    records
}
