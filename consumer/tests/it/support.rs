//! The harness: topics, a database, consumers (in-process or as child
//! processes), a producer of raw records, and checks on what was stored.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use eventpulse_consumer::config::Layer;
use eventpulse_consumer::{Application, Settings};
use eventpulse_events::{Event, EventBody, LoginPayload, PageViewPayload};
use eventpulse_testkit::{
    brokers, create_topic, metric_value, quick_rebalance_properties, redis_url, topic_reader,
    unique_name, Running, TestDatabase,
};
use rdkafka::consumer::Consumer;
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

/// Long enough for any healthy run on a loaded 2-core machine; only bounds a hang.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub struct Harness {
    pub topic: String,
    pub dlq_topic: String,
    pub group: String,
    pub db: TestDatabase,
    pub pool: PgPool,
    producer: FutureProducer,
}

impl Harness {
    pub async fn new(partitions: i32) -> Self {
        let topic = unique_name("it-events");
        let dlq_topic = format!("{topic}.dlq");
        create_topic(&topic, partitions)
            .await
            .expect("create topic");
        create_topic(&dlq_topic, 1).await.expect("create dlq topic");
        let db = TestDatabase::create().await.expect("create database");
        let pool = PgPool::connect(&db.url)
            .await
            .expect("connect to test database");
        let producer = ClientConfig::new()
            .set("bootstrap.servers", brokers())
            .set("enable.idempotence", "true")
            .set("allow.auto.create.topics", "false")
            .set("linger.ms", "5")
            .create()
            .expect("producer");
        Self {
            group: unique_name("it-group"),
            topic,
            dlq_topic,
            db,
            pool,
            producer,
        }
    }

    /// Settings for a consumer of this harness's topic and database.
    pub fn layer(&self) -> Layer {
        Layer {
            brokers: Some(brokers()),
            topic: Some(self.topic.clone()),
            dlq_topic: Some(self.dlq_topic.clone()),
            group_id: Some(self.group.clone()),
            database_url: Some(self.db.url.clone()),
            redis_url: Some(redis_url()),
            metrics_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            batch_size: Some(200),
            linger_ms: Some(20),
            // Not the default (one): two lanes, so every in-process test
            // also runs the lane code; the fault suite runs the default.
            flush_lanes: Some(2),
            kafka_properties: Some(quick_rebalance_properties()),
            ..Layer::default()
        }
    }

    pub async fn start(&self, layer: Layer) -> InProcess {
        let settings = Settings::from_layer(layer).expect("valid settings");
        let app = Application::build(settings).await.expect("consumer starts");
        InProcess {
            metrics_addr: app.metrics_addr(),
            running: Running::spawn("consumer", |stop| app.run_until_stopped(stop)),
        }
    }

    /// The consumer binary as a child process (for kill -9), configured by env.
    pub fn spawn_process(&self, layer: &Layer) -> Child {
        let mut command = Command::new(env!("CARGO_BIN_EXE_eventpulse-consumer"));
        let json = serde_json::to_value(layer).expect("layer serialises");
        for (key, value) in json.as_object().expect("object") {
            let value = match value {
                serde_json::Value::Null => continue,
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().unwrap_or_default().to_owned())
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            command.env(format!("EVENTPULSE_{}", key.to_uppercase()), value);
        }
        command
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn consumer binary")
    }

    pub async fn produce(&self, records: &[(String, Vec<u8>)]) {
        let sends = records.iter().map(|(key, value)| {
            let record = FutureRecord::to(&self.topic)
                .key(key.as_str())
                .payload(value.as_slice());
            self.producer.send(record, Duration::from_secs(30))
        });
        for result in futures::future::join_all(sends).await {
            result.expect("record acknowledged");
        }
    }

    /// The ids of the stored rows; panics if any id has two rows (the
    /// partitioned table has no unique key of its own to refuse them).
    pub async fn stored_ids(&self) -> HashSet<Uuid> {
        let rows = sqlx::query_scalar::<_, Uuid>("SELECT event_id FROM events")
            .fetch_all(&self.pool)
            .await
            .expect("query events");
        let ids: HashSet<Uuid> = rows.iter().copied().collect();
        assert_eq!(ids.len(), rows.len(), "an event id is stored twice");
        ids
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&self.pool)
            .await
            .expect("count query")
    }

    /// Waits until `sql` counts `expected` (or PATIENCE runs out), returning the last count.
    pub async fn wait_for_count(&self, sql: &str, expected: i64) -> i64 {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let seen = self.count(sql).await;
            if seen >= expected || tokio::time::Instant::now() > deadline {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every record on the dead-letter topic: (reason header, origin offset header, value).
    pub fn dead_letters(&self, expected: usize) -> Vec<(String, i64, Vec<u8>)> {
        let consumer = topic_reader("dlq-reader").expect("dlq reader");
        consumer
            .subscribe(&[&self.dlq_topic])
            .expect("subscribe dlq");
        let mut seen = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while seen.len() < expected && std::time::Instant::now() < deadline {
            let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) else {
                continue;
            };
            let header = |name: &str| {
                message
                    .headers()
                    .and_then(|h| h.iter().find(|x| x.key == name))
                    .and_then(|x| x.value)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default()
            };
            seen.push((
                header("eventpulse-reason"),
                header("eventpulse-origin-offset").parse().unwrap_or(-1),
                message.payload().unwrap_or_default().to_vec(),
            ));
        }
        seen
    }

    pub async fn finish(self) {
        self.pool.close().await;
        self.db.drop_now().await.expect("drop test database");
    }
}

pub struct InProcess {
    running: Running,
    pub metrics_addr: SocketAddr,
}

impl InProcess {
    pub async fn stop(self) {
        self.running.stop().await;
    }

    /// Sum of every sample of `name` (any labels) on `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        metric_value(&http_get(self.metrics_addr, "/metrics").await.1, name)
    }
}

/// A minimal HTTP/1.0 GET, returning the status code and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to metrics");
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .expect("send request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("read response");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// `n` distinct valid events from `users` users, as (key, bytes), plus their ids.
pub fn valid_events(n: usize, users: usize) -> (Vec<(String, Vec<u8>)>, HashSet<Uuid>) {
    let mut ids = HashSet::new();
    let records = (0..n)
        .map(|i| {
            let user_id = format!("user-{}", i % users);
            let body = if i % 2 == 0 {
                EventBody::Login(LoginPayload {
                    user_id: user_id.clone(),
                    ip: "10.1.2.3".parse().expect("ip"),
                    device: "Firefox".into(),
                })
            } else {
                EventBody::PageView(PageViewPayload {
                    user_id: user_id.clone(),
                    page: format!("/p/{i}"),
                    referrer: None,
                    device: None,
                })
            };
            let event = Event {
                event_id: Uuid::new_v4(),
                timestamp: Utc::now().fixed_offset(),
                body,
            };
            ids.insert(event.event_id);
            (user_id, event.to_json())
        })
        .collect();
    (records, ids)
}

pub fn kill_hard(child: &mut Child) {
    child.kill().expect("SIGKILL the consumer");
    child.wait().expect("reap the consumer");
}

pub fn terminate(child: &mut Child) -> std::process::ExitStatus {
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("send SIGTERM");
    child.wait().expect("consumer exits")
}
