//! Regression tests for issue 11: inputs and broker states that the
//! consumer used to turn into an endless retry, a silent skip or a lost copy.
//! Each test states what the old code (5d0a635) did with the same input.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use eventpulse_events::{Event, EventBody, LoginPayload};
use eventpulse_testkit::{admin_database_url, brokers, create_topic, topic_reader};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use uuid::Uuid;

use crate::support::*;

const EVENTS: &str = "SELECT count(*) FROM events";
const DEAD_LETTERS: &str = "SELECT count(*) FROM dead_letters";
const POSITIONS: &str = "SELECT coalesce(sum(next_offset), 0)::bigint FROM consumer_offsets";

/// Over the consumer's 64 KiB `max_message_bytes` and over the dead-letter
/// producer's 1,000,000-byte `message.max.bytes`, but under the broker's
/// limit (nisshi, like Kafka: 1 MiB + 12 bytes per batch).
const BIG_RECORD_BYTES: usize = 1_040_000;
/// What `dlq::TRUNCATED_VALUE_BYTES` keeps of a value too large to re-produce.
const TRUNCATED_BYTES: usize = 16 * 1024;

/// A producer that sets each record's Kafka timestamp itself when asked, and
/// accepts records up to `max_bytes` (the harness's stops at librdkafka's 1 MB).
fn producer(max_bytes: usize) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("allow.auto.create.topics", "false")
        .set("message.max.bytes", max_bytes.to_string())
        .set("batch.size", max_bytes.to_string())
        .set("linger.ms", "5")
        .create()
        .expect("producer")
}

/// Produces `records` in order; `timestamp` (ms) overrides the record time.
async fn send(
    producer: &FutureProducer,
    topic: &str,
    records: &[(String, Vec<u8>)],
    timestamp: Option<i64>,
) {
    for (key, value) in records {
        let mut record = FutureRecord::to(topic)
            .key(key.as_str())
            .payload(value.as_slice());
        if let Some(ms) = timestamp {
            record = record.timestamp(ms);
        }
        producer
            .send(record, Duration::from_secs(30))
            .await
            .expect("record acknowledged");
    }
}

/// A valid login event with the given id, own timestamp and device.
fn login(event_id: Uuid, at: DateTime<Utc>, device: &str) -> (String, Vec<u8>) {
    let event = Event {
        event_id,
        timestamp: at.fixed_offset(),
        body: EventBody::Login(LoginPayload {
            user_id: "hardening-user".into(),
            ip: "10.9.8.7".parse().expect("ip"),
            device: device.into(),
        }),
    };
    ("hardening-user".into(), event.to_json())
}

/// Stops the consumer, bounded: old code could retry forever instead.
async fn stops_cleanly(consumer: InProcess) -> bool {
    tokio::time::timeout(PATIENCE, consumer.stop())
        .await
        .is_ok()
}

type DeadLetter = (HashMap<String, String>, Vec<u8>);

/// The DLQ's records (every header, the value) and its high watermark, so a
/// test can tell "exactly one" from "one so far" without waiting for more.
fn dlq_records(harness: &Harness, expected: usize) -> (Vec<DeadLetter>, i64) {
    let reader: BaseConsumer = topic_reader("hardening-dlq").expect("dlq reader");
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(&harness.dlq_topic, 0, Offset::Beginning)
        .expect("dlq partition");
    reader.assign(&list).expect("assign dlq");
    let (_, high) = reader
        .fetch_watermarks(&harness.dlq_topic, 0, Duration::from_secs(10))
        .expect("dlq watermarks");
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < expected && std::time::Instant::now() < deadline {
        let Some(Ok(message)) = reader.poll(Duration::from_millis(200)) else {
            continue;
        };
        let headers = message.headers().map_or_else(HashMap::new, |h| {
            h.iter()
                .map(|x| {
                    let value = String::from_utf8_lossy(x.value.unwrap_or_default());
                    (x.key.to_owned(), value.into_owned())
                })
                .collect()
        });
        seen.push((headers, message.payload().unwrap_or_default().to_vec()));
    }
    (seen, high)
}

/// Finding 1. A record the consumer refuses as too large, yet one the broker
/// accepted, used to be re-produced whole to the DLQ; the DLQ producer's own
/// 1 MB limit refused it every time, the batch was retried forever and
/// nothing behind it was ever stored. It must get one truncated dead letter
/// (full bytes kept in Postgres) and the partition must move on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_near_the_broker_limit_is_dead_lettered_once_and_the_rest_stored() {
    let harness = Harness::new(1).await;
    let big = vec![b'x'; BIG_RECORD_BYTES];
    let big_record = [("big-key".to_owned(), big.clone())];
    send(&producer(1_048_576), &harness.topic, &big_record, None).await;
    let (records, expected) = valid_events(500, 50);
    harness.produce(&records).await;

    let consumer = harness.start(harness.layer()).await;
    let stored = harness.wait_for_count(EVENTS, 500).await;
    // Batches commit in offset order: once the events behind the big record
    // are stored, its dead-letter row (same or earlier batch) is too.
    let dead = harness.count(DEAD_LETTERS).await;
    let produced = consumer.metric("eventpulse_dlq_produced_total").await;
    // Not asserted (a transient broker hiccup may cost a retry): shown on
    // failure, where old code has retried the same dead letter all along.
    let retries = consumer
        .metric("eventpulse_dependency_retries_total{dependency=\"dlq\"}")
        .await;
    let stopped = stops_cleanly(consumer).await;
    assert_eq!(
        (stored, dead, produced, stopped),
        (500, 1, 1.0, true),
        "(events stored, dead-letter rows, DLQ records acked, stopped within {PATIENCE:?}); \
         DLQ retries: {retries}"
    );
    assert_eq!(harness.stored_ids().await, expected);

    // The table keeps the whole message even though the topic cannot.
    let kept: (String, i64, Option<i32>) = sqlx::query_as(
        "SELECT reason, kafka_offset, octet_length(message_value) FROM dead_letters",
    )
    .fetch_one(&harness.pool)
    .await
    .expect("dead-letter row");
    assert_eq!(kept, ("too_large".into(), 0, Some(BIG_RECORD_BYTES as i32)));

    assert_one_truncated_dead_letter(&harness, &big).await;
    harness.finish().await;
}

/// The DLQ holds exactly one record for `big`: its first 16 KiB, with the
/// headers that say it was cut and how to recognise the original.
async fn assert_one_truncated_dead_letter(harness: &Harness, big: &[u8]) {
    let (dlq, high) = dlq_records(harness, 1);
    assert_eq!((dlq.len(), high), (1, 1), "exactly one DLQ record");
    let (headers, value) = &dlq[0];
    let digest: String = sqlx::query_scalar("SELECT encode(sha256($1), 'hex')")
        .bind(big)
        .fetch_one(&harness.pool)
        .await
        .expect("sha256");
    let header = |name: &str| headers.get(name).map(String::as_str);
    assert_eq!(header("eventpulse-reason"), Some("too_large"));
    assert_eq!(header("eventpulse-origin-offset"), Some("0"));
    assert_eq!(header("eventpulse-truncated"), Some("true"));
    let original_bytes = BIG_RECORD_BYTES.to_string();
    assert_eq!(
        header("eventpulse-original-bytes"),
        Some(original_bytes.as_str())
    );
    assert_eq!(header("eventpulse-original-sha256"), Some(digest.as_str()));
    assert_eq!(
        value.as_slice(),
        &big[..TRUNCATED_BYTES],
        "a prefix of the value"
    );
}

/// Deletes `topic` and creates it again with one partition: its offsets
/// start from 0 again while Postgres still holds the old position.
async fn recreate_topic(topic: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .expect("admin client");
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin
        .delete_topics(&[topic], &options)
        .await
        .expect("delete topics")
    {
        result.expect("topic deleted");
    }
    // A deletion may take a moment to be visible to topic creation.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while let Err(error) = create_topic(topic, 1).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "recreate {topic}: {error:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Finding 3. `old` events stored, the topic recreated while no consumer
/// runs, `new` events produced to it, a consumer started: the new events
/// reuse offsets below the stored position, and old code skipped them as
/// "already stored". Every new one must be stored.
async fn recreated_topic_is_read_again(old: usize, new: usize) {
    let harness = Harness::new(1).await;
    let (first, _) = valid_events(old, 30);
    harness.produce(&first).await;
    let consumer = harness.start(harness.layer()).await;
    assert_eq!(harness.wait_for_count(EVENTS, old as i64).await, old as i64);
    assert_eq!(
        harness.wait_for_count(POSITIONS, old as i64).await,
        old as i64
    );
    assert!(stops_cleanly(consumer).await, "first consumer stops");

    recreate_topic(&harness.topic).await;
    // A fresh producer: the harness's idempotent one keeps sequence numbers
    // for the deleted partition.
    let (second, second_ids) = valid_events(new, 30);
    send(&producer(1_000_000), &harness.topic, &second, None).await;

    let consumer = harness.start(harness.layer()).await;
    let total = (old + new) as i64;
    let stored = harness.wait_for_count(EVENTS, total).await;
    let reused = consumer
        .metric("eventpulse_partition_anomalies_total{kind=\"offsets_reused\"}")
        .await;
    let consumed = consumer.metric("eventpulse_messages_consumed_total").await;
    let skipped = consumer.metric("eventpulse_messages_skipped_total").await;
    let stopped = stops_cleanly(consumer).await;
    let missing = second_ids.difference(&harness.stored_ids().await).count();
    assert_eq!(
        (stored, missing, stopped),
        (total, 0, true),
        "(events stored, new events missing, stopped) after recreating the topic; \
         the second consumer received {consumed} messages and skipped {skipped}"
    );
    assert_eq!(reused, 1.0, "the reuse is counted once");
    harness.finish().await;
}

/// The new topic is still below the old position: the stored offset is past
/// its high watermark.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_topic_shorter_than_the_stored_position_is_read_from_its_start() {
    recreated_topic_is_read_again(300, 200).await;
}

/// The issue's case: as many new events as old ones, so the new high
/// watermark equals the stored offset and only the record before it can tell
/// the topics apart (its timestamp is not the one stored). Checking the high
/// watermark alone resumed at offset 300 and skipped all 300 new events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_topic_as_long_as_the_stored_position_is_read_from_its_start() {
    recreated_topic_is_read_again(300, 300).await;
}

/// The topic deleted and recreated while the consumer runs: the running
/// member sees the partition's offsets go back (or the partition come back
/// at assignment with the stored offset past its end) and reads the new
/// events as a new epoch, whichever path librdkafka takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_recreated_under_a_running_consumer_is_read_again() {
    let harness = Harness::new(1).await;
    let (first, _) = valid_events(300, 30);
    harness.produce(&first).await;
    let consumer = harness.start(harness.layer()).await;
    assert_eq!(harness.wait_for_count(POSITIONS, 300).await, 300);

    recreate_topic(&harness.topic).await;
    let (second, second_ids) = valid_events(200, 30);
    send(&producer(1_000_000), &harness.topic, &second, None).await;
    let stored = harness.wait_for_count(EVENTS, 500).await;
    let anomalies = consumer
        .metric("eventpulse_partition_anomalies_total")
        .await;
    let stopped = stops_cleanly(consumer).await;
    let missing = second_ids.difference(&harness.stored_ids().await).count();
    assert_eq!(
        (stored, missing, stopped),
        (500, 0, true),
        "(events stored, new events missing, stopped)"
    );
    assert!(anomalies >= 1.0, "the reuse is counted: {anomalies}");
    harness.finish().await;
}

/// Replaces the harness's (empty) database with one of the same name in
/// LATIN1. On the usual UTF-8 database validation leaves nothing for Postgres
/// to refuse: U+0000 is rejected up front, numbers are bounded, and text,
/// jsonb and timestamptz take anything else it lets through. In LATIN1, text
/// and jsonb refuse any character outside Latin-1 (SQLSTATE 22P05), a real
/// data error caused by one row and no schema trick.
async fn use_latin1_database(harness: &mut Harness) {
    harness.pool.close().await;
    let mut admin = PgConnection::connect(&admin_database_url())
        .await
        .expect("admin connection");
    let name = &harness.db.name;
    for sql in [
        format!(r#"DROP DATABASE "{name}" WITH (FORCE)"#),
        format!(
            r#"CREATE DATABASE "{name}" ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"#
        ),
    ] {
        admin
            .execute(sql.as_str())
            .await
            .expect("recreate database");
    }
    harness.pool = PgPool::connect(&harness.db.url)
        .await
        .expect("connect to the LATIN1 database");
}

/// Finding 4. Two copies of one event id in one batch; Postgres refuses the
/// first (its device is an emoji) and would take the second. Old code kept
/// only the first copy per id, dead-lettered it when refused and dropped the
/// second as an in-batch duplicate: the event was lost although a storable
/// copy had arrived. The second copy must be stored in its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_first_copy_lets_the_next_copy_of_its_id_be_stored() {
    let mut harness = Harness::new(1).await;
    use_latin1_database(&mut harness).await;
    let id = Uuid::new_v4();
    let now = Utc::now();
    let (mut records, mut expected) = valid_events(20, 20);
    // Adjacent offsets, produced before the consumer starts: one batch.
    records.insert(10, login(id, now, "Firefox"));
    records.insert(10, login(id, now, "\u{1F98A} Firefox"));
    expected.insert(id);
    harness.produce(&records).await;

    let consumer = harness.start(harness.layer()).await;
    let refused = harness
        .wait_for_count(
            "SELECT count(*) FROM dead_letters WHERE reason = 'storage_rejected'",
            1,
        )
        .await;
    let stored = harness.wait_for_count(EVENTS, 21).await;
    assert!(stops_cleanly(consumer).await, "consumer stops");
    assert_eq!(
        (refused, stored),
        (1, 21),
        "(storage_rejected dead letters, events stored)"
    );
    assert_eq!(harness.stored_ids().await, expected);
    let device: String =
        sqlx::query_scalar("SELECT payload->>'device' FROM events WHERE event_id = $1")
            .bind(id)
            .fetch_one(&harness.pool)
            .await
            .expect("the event's row");
    assert_eq!(device, "Firefox", "the storable copy is the one stored");
    let offset: i64 = sqlx::query_scalar("SELECT kafka_offset FROM dead_letters")
        .fetch_one(&harness.pool)
        .await
        .expect("dead-letter row");
    assert_eq!(offset, 10, "the refused copy is the dead letter");
    harness.finish().await;
}

/// Finding 7. Timestamp limits must be judged against the record's Kafka
/// timestamp. Judged against the consumer's clock (old code), the verdict
/// depended on when the record was read: a record read again after a restart
/// or by a new owner could go from stored to dead-lettered, or back, and end
/// up both. Against the record's own timestamp, every read of a record gets
/// the same verdict, so its fate is a function of the record alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verdict_follows_the_record_timestamp_not_the_consumer_clock() {
    let harness = Harness::new(1).await;
    let mut layer = harness.layer();
    // A one-day max age makes a three-day-old record timestamp beyond it
    // while staying inside the broker's 7-day default retention.
    layer.max_age_days = Some(1);
    let recorded = Utc::now() - chrono::Duration::days(3);
    let (old, ahead, sentinel) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let producer = producer(1_000_000);
    let at_record_time = [
        // Stamped when its record was: fresh for its record, 3 days old now.
        login(old, recorded, "Firefox"),
        // Stamped now in a record 3 days old: 3 days ahead of its record.
        login(ahead, Utc::now(), "Firefox"),
    ];
    let millis = recorded.timestamp_millis();
    send(&producer, &harness.topic, &at_record_time, Some(millis)).await;
    // An ordinary event last, so the test knows when all three were read.
    let last = [login(sentinel, Utc::now(), "Firefox")];
    send(&producer, &harness.topic, &last, None).await;

    let consumer = harness.start(layer).await;
    harness.wait_for_count(EVENTS, 2).await;
    harness.wait_for_count(DEAD_LETTERS, 1).await;
    assert!(stops_cleanly(consumer).await, "consumer stops");
    let dead: Vec<(String, i64)> =
        sqlx::query_as("SELECT reason, kafka_offset FROM dead_letters ORDER BY kafka_offset")
            .fetch_all(&harness.pool)
            .await
            .expect("dead letters");
    assert_eq!(
        (harness.stored_ids().await, dead),
        (
            HashSet::from([old, sentinel]),
            vec![("timestamp_in_future".to_owned(), 1)]
        ),
        "(stored ids, dead letters): offset 0 stored, offset 1 ahead of its record"
    );
    harness.finish().await;
}
