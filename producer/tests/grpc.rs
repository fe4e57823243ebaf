//! The producer through eventpulse-api's gRPC ingestion (`--via grpc://...`):
//! the real API in-process (its own topic and database, gRPC on a free
//! port) over the real broker of the local stack (`scripts/stack.sh up`).
//!
//! What reached the topic is compared with the records the same seed makes
//! without any sink, validated with the consumer's rules: every valid one,
//! byte for byte and in each user's order, and nothing else; every invalid
//! one counted `refused`, none `failed`.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::Capture;

use anyhow::{ensure, Context, Result};
use chrono::{SecondsFormat, Utc};
use eventpulse_api::config::Layer;
use eventpulse_api::{Application, Settings};
use eventpulse_events::{validate, Limits};
use eventpulse_producer::progress::Progress;
use eventpulse_producer::run::produce;
use eventpulse_producer::{run, Config, ProducerError, StopSignal, Summary};
use eventpulse_testkit::{brokers, create_topic, topic_reader, unique_name, Running, TestDatabase};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::Consumer as _;
use rdkafka::{ClientConfig, Message as _};

const KEY: &str = "producer-grpc-test-key-0123456789";
const PARTITIONS: i32 = 3;

/// A topic and a migrated database of the test's own, and the API over them.
struct Stack {
    topic: String,
    db: TestDatabase,
    api: Running,
    grpc: SocketAddr,
}

impl Stack {
    /// The API with one key and the limits in `tune` over the defaults.
    async fn start(tune: impl FnOnce(&mut Layer)) -> Result<Self> {
        let topic = unique_name("producer-grpc");
        create_topic(&topic, PARTITIONS).await?;
        let db = TestDatabase::create().await?;
        let pool = eventpulse_consumer::schema::connect(&db.url, 1).await?;
        eventpulse_consumer::schema::migrate(&pool).await?;
        pool.close().await;
        let mut layer = Layer {
            brokers: Some(brokers()),
            topic: Some(topic.clone()),
            database_url: Some(db.url.clone()),
            api_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            grpc_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            api_keys: Some(vec![KEY.parse()?]),
            db_pool_size: Some(2),
            ..Layer::default()
        };
        tune(&mut layer);
        let app = Application::build(Settings::from_layer(layer)?).await?;
        let grpc = app.grpc_addr();
        let api = Running::spawn("API", |stop| app.run_until_stopped(stop));
        Ok(Self {
            topic,
            db,
            api,
            grpc,
        })
    }

    async fn finish(self) -> Result<()> {
        self.api.stop().await;
        self.db.drop_now().await?;
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", brokers())
            .create()?;
        for result in admin
            .delete_topics(&[&self.topic], &AdminOptions::new())
            .await?
        {
            result.map_err(|(topic, code)| anyhow::anyhow!("deleting {topic}: {code}"))?;
        }
        Ok(())
    }

    /// Producer flags for this API: seeded, with a pinned clock (a minute
    /// ago, so the records are valid now) so that [`expected`] can make
    /// the same records again.
    fn config(&self, count: u64, key: &str) -> Config {
        let via = format!("grpc://{}", self.grpc);
        let start = (Utc::now() - chrono::Duration::minutes(1))
            .to_rfc3339_opts(SecondsFormat::Micros, true);
        let count = count.to_string();
        Config::from_args([
            "eventpulse-producer",
            "--via",
            &via,
            "--api-key",
            key,
            "--seed",
            "11",
            "--start-time",
            &start,
            "--count",
            &count,
            "--users",
            "100",
            "--duplicate-ratio",
            "0.05",
            "--invalid-ratio",
            "0.1",
            "--connect-timeout",
            "5s",
        ])
        .expect("test flags are valid")
    }
}

/// Runs the producer as its binary does: on a plain thread, outside any
/// runtime. (A `spawn_blocking` thread would carry the test's runtime
/// context, and hide a sink that uses a runtime it does not own.)
async fn run_producer(config: Config) -> Result<Summary> {
    let producer = std::thread::spawn(move || run(&config, &StopSignal::default()));
    let summary = tokio::task::spawn_blocking(move || producer.join()).await?;
    Ok(summary.map_err(|_| anyhow::anyhow!("the producer panicked"))??)
}

/// The records `config` makes that the consumer's validation accepts, by key.
fn expected(config: &Config) -> Result<BTreeMap<String, Vec<Vec<u8>>>> {
    let mut capture = Capture::default();
    produce(
        config,
        &mut capture,
        &StopSignal::default(),
        Progress::hidden(),
    )?;
    let mut valid: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    for (key, payload) in capture.0 {
        if validate(&payload, &Limits::default(), Utc::now()).is_ok() {
            valid.entry(key).or_default().push(payload);
        }
    }
    Ok(valid)
}

/// Everything on `topic`, by key, once `expected` records arrived and no
/// more came for a second (so that extras would show).
fn read_topic(topic: &str, expected: u64) -> Result<BTreeMap<String, Vec<Vec<u8>>>> {
    let consumer = topic_reader("producer-grpc-reader")?;
    consumer.subscribe(&[topic])?;
    let mut read: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    let (mut total, deadline) = (0, Instant::now() + Duration::from_secs(60));
    let mut quiet_since = Instant::now();
    while Instant::now() < deadline {
        if total >= expected && quiet_since.elapsed() > Duration::from_secs(1) {
            break;
        }
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.context("reading back")?;
        let key = String::from_utf8(message.key().unwrap_or_default().to_vec())?;
        let payload = message.payload().unwrap_or_default().to_vec();
        read.entry(key).or_default().push(payload);
        total += 1;
        quiet_since = Instant::now();
    }
    Ok(read)
}

/// Runs `count` records through the API and checks the counts and the topic.
async fn records_reach_the_topic_and_invalid_ones_are_refused(
    stack: &Stack,
    count: u64,
) -> Result<Summary> {
    let config = stack.config(count, KEY);
    let summary = run_producer(config.clone()).await?;
    ensure!(summary.sent_total == count, "{summary:?}");
    ensure!(summary.failed == 0, "{summary:?}");
    ensure!(
        summary.acked + summary.refused == summary.sent_total,
        "{summary:?}"
    );
    ensure!(summary.refused == summary.invalid_total, "{summary:?}");
    ensure!(
        summary.invalid_total > 0 && summary.duplicates > 0,
        "{summary:?}"
    );
    ensure!(
        summary.topic == format!("grpc://{}", stack.grpc),
        "{summary:?}"
    );

    let expected = expected(&config)?;
    let topic = stack.topic.clone();
    let acked = summary.acked;
    let read = tokio::task::spawn_blocking(move || read_topic(&topic, acked)).await??;
    let read_total: usize = read.values().map(Vec::len).sum();
    ensure!(
        read_total as u64 == summary.acked,
        "{read_total} records on the topic"
    );
    ensure!(
        read == expected,
        "the topic's records differ from the valid ones made"
    );
    Ok(summary)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_records_reach_the_topic_in_order_and_invalid_ones_are_refused() -> Result<()> {
    let stack = Stack::start(|_| {}).await?;
    records_reach_the_topic_and_invalid_ones_are_refused(&stack, 5_000).await?;
    stack.finish().await
}

/// With limits far below the sink's batches, every batch is refused as a
/// whole first: too long (INVALID_ARGUMENT without details) or too large
/// (RESOURCE_EXHAUSTED). Halving gets the valid records through, and the
/// oversize invalid ones, too large to send alone, are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_too_large_for_the_api_are_halved_until_they_fit() -> Result<()> {
    let stack = Stack::start(|layer| {
        layer.max_batch_events = Some(7);
        layer.max_body_bytes = Some(16 * 1024);
    })
    .await?;
    let summary = records_reach_the_topic_and_invalid_ones_are_refused(&stack, 1_000).await?;
    ensure!(summary.invalid_by_kind["oversize"] > 0, "{summary:?}");
    stack.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_key_fails_every_record() -> Result<()> {
    let stack = Stack::start(|_| {}).await?;
    let summary = run_producer(stack.config(300, "not-the-key-0123456789")).await?;
    ensure!(
        summary.failed == 300 && summary.acked == 0 && summary.refused == 0,
        "{summary:?}"
    );
    stack.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_that_does_not_ingest_is_named_in_one_line() -> Result<()> {
    let stack = Stack::start(|layer| layer.api_keys = None).await?;
    let error = run_producer(stack.config(10, KEY))
        .await
        .expect_err("the API has no keys");
    let message = error.to_string();
    ensure!(
        matches!(
            error.downcast_ref::<ProducerError>(),
            Some(ProducerError::ApiNotServing { .. })
        ),
        "{message}"
    );
    ensure!(
        message.contains(&stack.grpc.to_string()) && message.contains("--via"),
        "{message}"
    );
    ensure!(message.lines().count() == 1, "{message}");
    stack.finish().await
}

#[test]
fn an_unreachable_api_is_named_in_one_line() {
    // Port 1 on loopback refuses connections; no stack needed.
    let config = Config::from_args([
        "eventpulse-producer",
        "--via",
        "grpc://127.0.0.1:1",
        "--api-key",
        KEY,
        "--connect-timeout",
        "2s",
        "--count",
        "1",
    ])
    .unwrap();
    let started = Instant::now();
    let error = run(&config, &StopSignal::default()).expect_err("nothing listens on port 1");
    assert!(
        matches!(error, ProducerError::ApiUnreachable { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("grpc://127.0.0.1:1") && message.contains("--via"),
        "{message}"
    );
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}
