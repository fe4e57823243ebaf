//! The producer against a real broker (the local stack: `scripts/stack.sh up`).
//! Each test makes its own topic. The records read back are compared with the
//! records the same seed produces without Kafka, so the check covers count,
//! keys, bytes and per-user order at once.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{Capture, Records};

use anyhow::{ensure, Context, Result};
use eventpulse_producer::progress::Progress;
use eventpulse_producer::run::produce;
use eventpulse_producer::{run, Config, ProducerError, StopSignal};
use eventpulse_testkit::{brokers, create_topic, unique_name};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

const PARTITIONS: i32 = 4;
const COUNT: usize = 5_000;

fn config(topic: &str, extra: &[&str]) -> Config {
    let brokers = brokers();
    let count = COUNT.to_string();
    let mut args = vec![
        "eventpulse-producer",
        "--brokers",
        &brokers,
        "--topic",
        topic,
        "--seed",
        "99",
        "--start-time",
        "2026-05-01T10:00:00Z",
        "--count",
        &count,
        "--users",
        "200",
        "--duplicate-ratio",
        "0.05",
        "--invalid-ratio",
        "0.02",
    ];
    args.extend_from_slice(extra);
    Config::from_args(args).expect("test flags are valid")
}

/// Reads every record of `topic` until `expected` have arrived, by partition.
fn consume_all(topic: &str, expected: usize) -> Result<BTreeMap<i32, Records>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", unique_name("producer-test"))
        .set("enable.auto.commit", "false")
        .create()
        .context("creating the test consumer")?;
    let mut partitions = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        partitions.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&partitions)?;
    let mut read: BTreeMap<i32, Records> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut total = 0;
    while total < expected && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = message.context("reading back")?;
        let key = String::from_utf8(message.key().unwrap_or_default().to_vec())?;
        let payload = message.payload().unwrap_or_default().to_vec();
        read.entry(message.partition())
            .or_default()
            .push((key, payload));
        total += 1;
    }
    // Anything past `expected` would be a surplus (say, an unwanted retry duplicate).
    if let Some(Ok(extra)) = consumer.poll(Duration::from_secs(2)) {
        anyhow::bail!("more records than sent, e.g. at offset {}", extra.offset());
    }
    Ok(read)
}

/// Removes a test's topic (testkit creates topics but has no delete yet).
async fn delete_topic(topic: &str) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()?;
    for result in admin.delete_topics(&[topic], &AdminOptions::new()).await? {
        result.map_err(|(topic, code)| anyhow::anyhow!("deleting {topic}: {code}"))?;
    }
    Ok(())
}

/// Each key's payloads in order.
fn by_key<'a>(
    records: impl IntoIterator<Item = &'a (String, Vec<u8>)>,
) -> BTreeMap<&'a str, Vec<&'a [u8]>> {
    let mut keyed: BTreeMap<&str, Vec<&[u8]>> = BTreeMap::new();
    for (key, payload) in records {
        keyed.entry(key).or_default().push(payload);
    }
    keyed
}

#[tokio::test(flavor = "multi_thread")]
async fn produced_records_read_back_with_keys_in_order() -> Result<()> {
    let topic = unique_name("producer-test");
    create_topic(&topic, PARTITIONS).await?;

    let kafka_config = config(&topic, &[]);
    let summary =
        tokio::task::spawn_blocking(move || run(&kafka_config, &StopSignal::default())).await??;
    ensure!(
        summary.sent_total == COUNT as u64 && summary.acked == COUNT as u64,
        "{summary:?}"
    );
    ensure!(
        summary.failed == 0 && summary.duplicates > 0 && summary.invalid_total > 0,
        "{summary:?}"
    );

    let mut expected = Capture::default();
    produce(
        &config(&topic, &[]),
        &mut expected,
        &StopSignal::default(),
        Progress::hidden(),
    )?;
    let read = tokio::task::spawn_blocking({
        let topic = topic.clone();
        move || consume_all(&topic, COUNT)
    })
    .await??;

    let total: usize = read.values().map(Vec::len).sum();
    assert_eq!(total, COUNT, "records read back");
    // Each user's records sit in one partition, in the order they were produced.
    let mut partition_of: BTreeMap<&str, i32> = BTreeMap::new();
    let mut read_by_key = BTreeMap::new();
    for (partition, records) in &read {
        for (key, records) in by_key(records) {
            let first = partition_of.insert(key, *partition);
            assert!(first.is_none(), "user {key} is in two partitions");
            read_by_key.insert(key, records);
        }
    }
    assert_eq!(read_by_key, by_key(&expected.0));
    let keys: BTreeSet<&str> = read_by_key.keys().copied().collect();
    assert!(keys.len() > 150, "only {} users", keys.len());
    delete_topic(&topic).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_topic_is_named_in_one_line() {
    let topic = unique_name("producer-missing");
    let config = config(&topic, &["--connect-timeout", "5s"]);
    let error = tokio::task::spawn_blocking(move || run(&config, &StopSignal::default()))
        .await
        .unwrap()
        .expect_err("the topic does not exist");
    assert!(
        matches!(error, ProducerError::TopicMissing { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&topic) && message.contains("scripts/stack.sh up"),
        "{message}"
    );
    assert_eq!(message.lines().count(), 1);
}

#[test]
fn an_unreachable_broker_is_named_in_one_line() {
    // Port 1 on loopback refuses connections; no broker needed.
    let config = Config::from_args([
        "eventpulse-producer",
        "--brokers",
        "127.0.0.1:1",
        "--topic",
        "events",
        "--connect-timeout",
        "2s",
        "--count",
        "1",
    ])
    .unwrap();
    let started = Instant::now();
    let error = run(&config, &StopSignal::default()).expect_err("nothing listens on port 1");
    assert!(
        matches!(error, ProducerError::BrokerUnreachable { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("127.0.0.1:1") && message.contains("events"),
        "{message}"
    );
    assert_eq!(message.lines().count(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}
