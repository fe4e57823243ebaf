//! Breaking things while traffic flows: the consumer killed with SIGKILL,
//! Redis stopped and restarted empty, Postgres connections terminated. Each
//! ends with the exact check: every valid event stored once, none missing.

use std::collections::HashSet;
use std::process::Child;
use std::time::Duration;

use rand::Rng;
use uuid::Uuid;

use crate::support::*;

/// Produces `records` in slices over about `seconds`, so faults land mid-stream.
async fn trickle(harness: &Harness, records: &[(String, Vec<u8>)], seconds: u64) {
    let slices = 20;
    let per_slice = records.len().div_ceil(slices);
    for chunk in records.chunks(per_slice) {
        harness.produce(chunk).await;
        tokio::time::sleep(Duration::from_millis(seconds * 1000 / slices as u64)).await;
    }
}

/// Valid events plus byte-identical re-sends of every 20th (5% duplicates).
fn with_duplicates(n: usize) -> (Vec<(String, Vec<u8>)>, HashSet<Uuid>) {
    let (mut records, ids) = valid_events(n, 50);
    let copies: Vec<_> = records.iter().step_by(20).cloned().collect();
    for (i, copy) in copies.into_iter().enumerate() {
        let at = (i * 37) % records.len();
        records.insert(at, copy);
    }
    (records, ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_killed_with_sigkill_repeatedly_loses_and_duplicates_nothing() {
    let harness = Harness::new(4).await;
    let layer = harness.layer();
    let (records, expected) = with_duplicates(8000);
    let mut child = harness.spawn_process(&layer);
    let producing = trickle(&harness, &records, 6);
    let killing = async {
        let mut kills = 0;
        for _ in 0..3 {
            let pause = rand::rng().random_range(700..2000);
            tokio::time::sleep(Duration::from_millis(pause)).await;
            kill_hard(&mut child);
            kills += 1;
            child = harness.spawn_process(&layer);
        }
        kills
    };
    let ((), kills) = tokio::join!(producing, killing);
    assert_eq!(kills, 3);
    let stored = harness
        .wait_for_count("SELECT count(*) FROM events", expected.len() as i64)
        .await;
    harness
        .wait_for_count(
            "SELECT coalesce(sum(next_offset), 0)::bigint FROM consumer_offsets",
            records.len() as i64,
        )
        .await;
    let status = terminate(&mut child);
    assert!(status.success(), "graceful exit after SIGTERM: {status}");
    assert_eq!(stored, expected.len() as i64);
    assert_eq!(harness.stored_ids().await, expected);
    harness.finish().await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_redis(port: u16) -> Child {
    let mut child = eventpulse_testkit::redis_server(port)
        .spawn()
        .expect("start a private redis-server");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return child;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    kill_hard(&mut child);
    panic!("private redis on port {port} never answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_then_back_empty_degrades_without_loss() {
    let harness = Harness::new(2).await;
    let port = free_port();
    let mut redis = start_redis(port);
    let mut layer = harness.layer();
    layer.redis_url = Some(format!("redis://127.0.0.1:{port}"));
    layer.redis_timeout_ms = Some(200);
    let consumer = harness.start(layer).await;

    let (first, mut expected) = with_duplicates(1000);
    harness.produce(&first).await;
    assert_eq!(
        harness
            .wait_for_count("SELECT count(*) FROM events", 1000)
            .await,
        1000
    );
    assert_eq!(consumer.metric("eventpulse_redis_degraded").await, 0.0);

    kill_hard(&mut redis);
    let (second, ids) = with_duplicates(1000);
    expected.extend(ids);
    harness.produce(&second).await;
    harness.produce(&first[..200]).await;
    assert_eq!(
        harness
            .wait_for_count("SELECT count(*) FROM events", 2000)
            .await,
        2000
    );
    assert_eq!(consumer.metric("eventpulse_redis_degraded").await, 1.0);

    let mut redis = start_redis(port);
    let (third, ids) = with_duplicates(1000);
    expected.extend(ids);
    trickle(&harness, &third, 3).await;
    assert_eq!(
        harness
            .wait_for_count("SELECT count(*) FROM events", 3000)
            .await,
        3000
    );
    let total = (first.len() + second.len() + 200 + third.len()) as i64;
    harness
        .wait_for_count(
            "SELECT coalesce(sum(next_offset), 0)::bigint FROM consumer_offsets",
            total,
        )
        .await;
    assert_eq!(
        consumer.metric("eventpulse_redis_degraded").await,
        0.0,
        "recovered once Redis answered again"
    );
    consumer.stop().await;
    kill_hard(&mut redis);
    assert_eq!(harness.stored_ids().await, expected);
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_terminated_mid_run_lose_nothing() {
    let harness = Harness::new(4).await;
    let consumer = harness.start(harness.layer()).await;
    let (records, expected) = with_duplicates(6000);
    let admin = sqlx::PgPool::connect(&eventpulse_testkit::admin_database_url())
        .await
        .unwrap();
    let terminate_all = async {
        let mut terminated = 0i64;
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let killed: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()) AS t",
            )
            .bind(&harness.db.name)
            .fetch_one(&admin)
            .await
            .unwrap();
            terminated += killed;
        }
        terminated
    };
    let ((), terminated) = tokio::join!(trickle(&harness, &records, 4), terminate_all);
    assert!(terminated > 0, "connections were actually terminated");
    assert_eq!(
        harness
            .wait_for_count("SELECT count(*) FROM events", expected.len() as i64)
            .await,
        expected.len() as i64
    );
    harness
        .wait_for_count(
            "SELECT coalesce(sum(next_offset), 0)::bigint FROM consumer_offsets",
            records.len() as i64,
        )
        .await;
    consumer.stop().await;
    admin.close().await;
    assert_eq!(harness.stored_ids().await, expected);
    harness.finish().await;
}
