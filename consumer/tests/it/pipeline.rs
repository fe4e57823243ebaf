//! The pipeline on healthy infrastructure: what is stored, what is
//! dead-lettered, what the metrics say, what is committed on shutdown.

use std::collections::BTreeMap;
use std::time::Duration;

use eventpulse_consumer::schema;
use eventpulse_consumer::{Application, Settings};
use eventpulse_testkit::{brokers, redis_url, unique_name};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::support::*;

/// One message per invalid kind, with the reason code it must be filed under.
fn invalid_messages() -> Vec<(&'static str, Vec<u8>)> {
    let event = |body: &str| body.as_bytes().to_vec();
    let good_id = "6f1c1a3e-7c2b-4e7e-9a53-0b2f1f6e9d10";
    let now = chrono::Utc::now();
    vec![
        ("malformed_json", event("{\"eventId\": ")),
        ("not_utf8", b"{\"eventId\": \"\xff\xfe\"}".to_vec()),
        ("malformed_json", Vec::new()),
        (
            "unknown_event_type",
            event(&format!(
                r#"{{"eventId":"{good_id}","type":"purchase","timestamp":"{}","payload":{{"userId":"u"}}}}"#,
                now.to_rfc3339()
            )),
        ),
        (
            "invalid_event_id",
            event(&format!(
                r#"{{"eventId":"nope","type":"login","timestamp":"{}","payload":{{"userId":"u","ip":"::1","device":"d"}}}}"#,
                now.to_rfc3339()
            )),
        ),
        (
            "invalid_ip",
            event(&format!(
                r#"{{"eventId":"{good_id}","type":"login","timestamp":"{}","payload":{{"userId":"u","ip":"300.1.1.1","device":"d"}}}}"#,
                now.to_rfc3339()
            )),
        ),
        (
            "timestamp_in_future",
            event(&format!(
                r#"{{"eventId":"{good_id}","type":"login","timestamp":"{}","payload":{{"userId":"u","ip":"::1","device":"d"}}}}"#,
                (now + chrono::Duration::days(1)).to_rfc3339()
            )),
        ),
        (
            "missing_field",
            event(&format!(
                r#"{{"eventId":"{good_id}","type":"login","timestamp":"{}","payload":{{"userId":"u","device":"d"}}}}"#,
                now.to_rfc3339()
            )),
        ),
        (
            "nul_character",
            event(&format!(
                r#"{{"eventId":"{good_id}","type":"login","timestamp":"{}","payload":{{"userId":"u","ip":"::1","device":"a\u0000"}}}}"#,
                now.to_rfc3339()
            )),
        ),
        ("too_large", vec![b' '; 70 * 1024]),
        ("not_an_object", event("[1,2,3]")),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_duplicate_and_invalid_mix_is_stored_exactly_once() {
    let harness = Harness::new(4).await;
    let (mut records, expected) = valid_events(1000, 37);
    let duplicates: Vec<_> = records.iter().step_by(10).cloned().collect();
    records.extend(duplicates.iter().cloned());
    let invalid = invalid_messages();
    records.extend(
        invalid
            .iter()
            .map(|(_, bytes)| ("bad-user".to_owned(), bytes.clone())),
    );
    harness.produce(&records).await;

    let consumer = harness.start(harness.layer()).await;
    assert_eq!(
        harness
            .wait_for_count("SELECT count(*) FROM dead_letters", invalid.len() as i64)
            .await,
        invalid.len() as i64
    );
    assert_eq!(
        harness
            .wait_for_count("SELECT count(*) FROM events", 1000)
            .await,
        1000
    );
    let stored_offsets = harness
        .wait_for_count(
            "SELECT coalesce(sum(next_offset), 0)::bigint FROM consumer_offsets",
            records.len() as i64,
        )
        .await;
    assert_eq!(
        stored_offsets,
        records.len() as i64,
        "offsets cover every message"
    );
    assert_eq!(harness.stored_ids().await, expected);

    assert_eq!(
        consumer.metric("eventpulse_duplicates_total").await,
        duplicates.len() as f64
    );
    assert_eq!(
        consumer.metric("eventpulse_messages_rejected_total").await,
        invalid.len() as f64
    );
    assert_eq!(
        consumer.metric("eventpulse_events_stored_total").await,
        1000.0
    );
    assert_eq!(
        consumer.metric("eventpulse_dlq_produced_total").await,
        invalid.len() as f64
    );
    assert_eq!(http_get(consumer.metrics_addr, "/healthz").await.0, 200);
    let (status, body) = http_get(consumer.metrics_addr, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    consumer.stop().await;

    let mut want: BTreeMap<String, usize> = BTreeMap::new();
    for (reason, _) in &invalid {
        *want.entry(reason.to_string()).or_default() += 1;
    }
    let mut got: BTreeMap<String, usize> = BTreeMap::new();
    for (reason, offset, value) in harness.dead_letters(invalid.len()) {
        assert!(offset >= 0, "origin offset header present");
        assert!(
            invalid.iter().any(|(_, bytes)| *bytes == value),
            "original bytes kept"
        );
        *got.entry(reason).or_default() += 1;
    }
    assert_eq!(got, want);
    assert_kafka_committed_everything(&harness, records.len() as i64);
    harness.finish().await;
}

/// Graceful shutdown committed Kafka offsets up to the end of every partition.
fn assert_kafka_committed_everything(harness: &Harness, total: i64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", &harness.group)
        .create()
        .expect("offset reader");
    let mut list = TopicPartitionList::new();
    for partition in 0..4 {
        list.add_partition(&harness.topic, partition);
    }
    let committed = consumer
        .committed_offsets(list, Duration::from_secs(10))
        .expect("committed offsets");
    let sum: i64 = committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            _ => 0,
        })
        .sum();
    assert_eq!(sum, total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_postgres_refuses_is_dead_lettered_alone() {
    let harness = Harness::new(1).await;
    schema::migrate(&harness.pool).await.expect("migrate");
    // A real permanent error caused by exactly one row.
    sqlx::query("ALTER TABLE events ADD CONSTRAINT no_poison CHECK (user_id <> 'poison')")
        .execute(&harness.pool)
        .await
        .expect("add constraint");
    let (mut records, mut expected) = valid_events(60, 60);
    let (poison, poison_ids) = valid_events(1, 1);
    let poison_bytes = String::from_utf8(poison[0].1.clone())
        .unwrap()
        .replace("user-0", "poison");
    records.insert(30, ("poison".into(), poison_bytes.clone().into_bytes()));
    harness.produce(&records).await;

    let consumer = harness.start(harness.layer()).await;
    assert_eq!(
        harness
            .wait_for_count(
                "SELECT count(*) FROM dead_letters WHERE reason = 'storage_rejected'",
                1
            )
            .await,
        1
    );
    assert_eq!(
        harness
            .wait_for_count("SELECT count(*) FROM events", 60)
            .await,
        60
    );
    let body = http_get(consumer.metrics_addr, "/metrics").await.1;
    let counted = "eventpulse_messages_rejected_total{reason=\"storage_rejected\"} 1";
    assert!(body.contains(counted), "a refused row is counted by reason");
    consumer.stop().await;
    expected.retain(|id| !poison_ids.contains(id));
    assert_eq!(harness.stored_ids().await, expected);
    let dead = harness.dead_letters(1);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].0, "storage_rejected");
    assert_eq!(
        dead[0].2,
        poison_bytes.as_bytes(),
        "dead-lettered as it arrived"
    );
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_redis_marks_never_drop_events_and_stored_marks_catch_replays() {
    let harness = Harness::new(2).await;
    schema::migrate(&harness.pool).await.expect("migrate");
    let instance: uuid::Uuid = sqlx::query_scalar("SELECT instance_id FROM eventpulse_instance")
        .fetch_one(&harness.pool)
        .await
        .unwrap();
    let (records, expected) = valid_events(300, 20);
    // Marks left by an attempt that claimed these ids and crashed before commit.
    let client = redis::Client::open(redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    for id in expected.iter().take(100) {
        let key = format!("eventpulse:{}:{}", instance.simple(), id.simple());
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg("p")
            .arg("PX")
            .arg(60_000)
            .query_async(&mut redis)
            .await
            .unwrap();
    }
    harness.produce(&records).await;
    let consumer = harness.start(harness.layer()).await;
    assert_eq!(
        harness
            .wait_for_count("SELECT count(*) FROM events", 300)
            .await,
        300
    );
    assert_eq!(harness.stored_ids().await, expected);

    // Replays after the commit are caught by Redis, before Postgres.
    harness.produce(&records[..50]).await;
    let messages = (records.len() + 50) as i64;
    harness
        .wait_for_count(
            "SELECT coalesce(sum(next_offset), 0)::bigint FROM consumer_offsets",
            messages,
        )
        .await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while consumer
        .metric("eventpulse_duplicates_total{layer=\"redis\"}")
        .await
        < 50.0
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Each replay lands in its original's partition, so in its lane, whose
    // next flush confirms the original before it claims the replay.
    let body = http_get(consumer.metrics_addr, "/metrics").await.1;
    let duplicates: Vec<&str> = body
        .lines()
        .filter(|line| line.starts_with("eventpulse_duplicates_total"))
        .collect();
    assert!(
        body.contains("eventpulse_duplicates_total{layer=\"redis\"} 50"),
        "redis caught the replays: {duplicates:?}"
    );
    consumer.stop().await;
    assert_eq!(harness.count("SELECT count(*) FROM events").await, 300);
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_errors_name_the_setting_and_hide_passwords() {
    let harness = Harness::new(1).await;
    let mut layer = harness.layer();
    layer.database_url = Some("postgres://eventpulse:hunter2@127.0.0.1:1/eventpulse".into());
    let error = Application::build(Settings::from_layer(layer).unwrap())
        .await
        .err()
        .expect("fails")
        .to_string();
    assert!(
        error.contains("EVENTPULSE_DATABASE_URL") && error.contains("127.0.0.1:1"),
        "{error}"
    );
    assert!(!error.contains("hunter2"), "{error}");

    let mut layer = harness.layer();
    layer.topic = Some(unique_name("missing"));
    let error = format!(
        "{:#}",
        Application::build(Settings::from_layer(layer).unwrap())
            .await
            .err()
            .expect("fails")
    );
    assert!(
        error.contains("does not exist") && error.contains("EVENTPULSE_TOPIC"),
        "{error}"
    );
    harness.finish().await;
}
