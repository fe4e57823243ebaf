//! The harness: a topic and a migrated database of the test's own, the API
//! in-process on a free port, an HTTP client, rows seeded straight into
//! Postgres, and a reader of what reached the topic.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use eventpulse_api::config::Layer;
use eventpulse_api::{Application, Settings};
use eventpulse_testkit::{
    brokers, create_topic, metric_value_matching, quick_rebalance_properties, topic_reader,
    unique_name, Running, TestDatabase,
};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::Consumer as _;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// Long enough for any healthy run on a loaded 2-core machine; only bounds a hang.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The API key the harness configures.
pub const KEY: &str = "integration-test-key-0123456789";

pub struct Stack {
    pub topic: String,
    pub db: TestDatabase,
    pub pool: PgPool,
}

impl Stack {
    /// A fresh topic with `partitions` partitions and a fresh database with
    /// the consumer's migrations applied.
    pub async fn new(partitions: i32) -> Self {
        let topic = unique_name("api-events");
        create_topic(&topic, partitions)
            .await
            .expect("create topic");
        let db = TestDatabase::create().await.expect("create database");
        let pool = PgPool::connect(&db.url)
            .await
            .expect("connect to test database");
        eventpulse_consumer::schema::migrate(&pool)
            .await
            .expect("migrate test database");
        Self { topic, db, pool }
    }

    /// API settings for this stack's topic and database, with one key.
    pub fn layer(&self) -> Layer {
        Layer {
            brokers: Some(brokers()),
            topic: Some(self.topic.clone()),
            database_url: Some(self.db.url.clone()),
            api_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            grpc_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            api_keys: Some(vec![KEY.parse().expect("infallible")]),
            db_pool_size: Some(4),
            ..Layer::default()
        }
    }

    pub async fn start_api(&self, layer: Layer) -> Api {
        start(Settings::from_layer(layer).expect("valid settings")).await
    }

    /// Stores rows as the consumer would: through `eventpulse_store_events`,
    /// which makes their partitions and keeps the rollups exact. One row per
    /// statement and transaction, so rows commit (and reach the live feed)
    /// in the order given.
    pub async fn insert(&self, rows: &[Row]) {
        for (offset, row) in rows.iter().enumerate() {
            row.store(0, offset as i64, &self.pool).await;
        }
    }

    /// Drops the database and deletes the topics this stack made.
    pub async fn finish(self) {
        self.pool.close().await;
        self.db.drop_now().await.expect("drop test database");
        delete_topics(&[self.topic.clone(), format!("{}.dlq", self.topic)]).await;
    }
}

/// The API in-process with `settings`, on the port they name.
pub async fn start(settings: Settings) -> Api {
    let app = Application::build(settings).await.expect("API starts");
    let base = format!("http://{}", app.addr());
    let grpc = format!("http://{}", app.grpc_addr());
    let running = Running::spawn("API", |stop| app.run_until_stopped(stop));
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(PATIENCE)
        .build()
        .expect("HTTP client");
    Api {
        base,
        grpc,
        client,
        running,
    }
}

/// Deletes `names`, ignoring those already gone (or never made).
pub async fn delete_topics(names: &[String]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .expect("admin client");
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    admin
        .delete_topics(&names, &options)
        .await
        .expect("delete topics request");
}

/// One stored event for [`Stack::insert`].
pub struct Row {
    pub id: Uuid,
    pub kind: &'static str,
    pub user: String,
    pub at: DateTime<Utc>,
    pub payload: Value,
}

impl Row {
    pub fn new(kind: &'static str, user: &str, at: DateTime<Utc>, extra: Value) -> Self {
        let mut payload = serde_json::json!({ "userId": user });
        if let (Some(payload), Value::Object(extra)) = (payload.as_object_mut(), extra) {
            payload.extend(extra);
        }
        Self {
            id: Uuid::new_v4(),
            kind,
            user: user.to_owned(),
            at,
            payload,
        }
    }
}

/// Stores a batch of events in one statement, as the consumer does:
/// arrays of the columns, one element per event. Returns how many were
/// stored (an id already stored, whatever its time, is not stored again).
pub const STORE_EVENTS: &str = "SELECT count(*) FROM eventpulse_store_events(\
    $1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::int4[], $7::int8[])";

impl Row {
    /// Stores this row alone, from Kafka partition `partition` at `offset`.
    pub async fn store<'e>(
        &self,
        partition: i32,
        offset: i64,
        executor: impl sqlx::PgExecutor<'e>,
    ) -> i64 {
        sqlx::query_scalar(STORE_EVENTS)
            .bind([self.id])
            .bind([self.kind])
            .bind([&self.user])
            .bind([self.at])
            .bind([self.payload.to_string()])
            .bind([partition])
            .bind([offset])
            .fetch_one(executor)
            .await
            .expect("store event row")
    }
}

pub fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("valid time")
        .with_timezone(&Utc)
}

pub struct Api {
    pub base: String,
    /// The gRPC endpoint, `http://127.0.0.1:<port>`.
    pub grpc: String,
    pub client: reqwest::Client,
    running: Running,
}

/// Status and body; the body as JSON when it is JSON, else as a string.
pub type Answer = (StatusCode, Value);

impl Api {
    pub async fn get(&self, path_and_query: &str) -> Answer {
        let response = self
            .client
            .get(format!("{}{path_and_query}", self.base))
            .send()
            .await
            .expect("GET answered");
        answer(response).await
    }

    /// POSTs `body` with `key` (if any) in `X-API-Key`.
    pub async fn post(&self, path: &str, key: Option<&str>, body: impl Into<Vec<u8>>) -> Answer {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.into());
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        answer(request.send().await.expect("POST answered")).await
    }

    /// Sum of every sample of `name` whose labels contain `labels`.
    pub async fn metric(&self, name: &str, labels: &str) -> f64 {
        let (_, body) = self.get("/metrics").await;
        metric_value_matching(body.as_str().expect("metrics are text"), name, labels)
    }

    pub async fn stop(self) {
        self.running.stop().await;
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let bytes = response.bytes().await.expect("response body");
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, body)
}

/// Asserts a 400 whose JSON names `parameter`.
pub fn assert_bad_parameter(answer: &Answer, parameter: &str, context: &str) {
    assert_eq!(answer.0, StatusCode::BAD_REQUEST, "{context}: {}", answer.1);
    assert_eq!(answer.1["parameter"], parameter, "{context}: {}", answer.1);
    assert!(answer.1["error"].is_string(), "{context}: {}", answer.1);
}

/// Every record on partition 0 of `topic` from the start: (key, value).
/// Reads until `expected` arrived, then a short while longer to catch extras.
pub fn read_topic(topic: &str, expected: usize) -> Vec<(String, Vec<u8>)> {
    let consumer = topic_reader("api-reader").expect("topic reader");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .expect("partition 0");
    consumer.assign(&assignment).expect("assign partition 0");
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut quiet_until = None;
    loop {
        let now = std::time::Instant::now();
        if now > deadline || quiet_until.is_some_and(|q| now > q) {
            return seen;
        }
        if seen.len() >= expected && quiet_until.is_none() {
            quiet_until = Some(now + Duration::from_millis(500));
        }
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        seen.push((
            String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
            message.payload().unwrap_or_default().to_vec(),
        ));
    }
}

/// The real consumer, in-process, reading `stack.topic` into `stack.db`.
pub struct Consumer {
    running: Running,
}

impl Consumer {
    pub async fn start(stack: &Stack) -> Self {
        use eventpulse_consumer::config::Layer as ConsumerLayer;
        let dlq_topic = format!("{}.dlq", stack.topic);
        create_topic(&dlq_topic, 1).await.expect("create dlq topic");
        let layer = ConsumerLayer {
            brokers: Some(brokers()),
            topic: Some(stack.topic.clone()),
            dlq_topic: Some(dlq_topic),
            group_id: Some(unique_name("api-e2e")),
            database_url: Some(stack.db.url.clone()),
            redis_url: Some(eventpulse_testkit::redis_url()),
            metrics_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            batch_size: Some(200),
            linger_ms: Some(20),
            kafka_properties: Some(quick_rebalance_properties()),
            ..ConsumerLayer::default()
        };
        let settings = eventpulse_consumer::Settings::from_layer(layer).expect("valid settings");
        let app = eventpulse_consumer::Application::build(settings)
            .await
            .expect("consumer starts");
        Self {
            running: Running::spawn("consumer", |stop| app.run_until_stopped(stop)),
        }
    }

    pub async fn stop(self) {
        self.running.stop().await;
    }
}
