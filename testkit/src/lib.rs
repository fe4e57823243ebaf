//! Test support for integration tests that use the real local stack
//! (`scripts/stack.sh up`): each test gets its own topic names and its own
//! Postgres database, so tests run in parallel and leave nothing shared behind.
//!
//! Addresses come from the same variables the services read, with the local
//! stack's defaults: `EVENTPULSE_BROKERS`, `EVENTPULSE_REDIS_URL`, and
//! `EVENTPULSE_TEST_ADMIN_DATABASE_URL` (a database this code may create
//! databases from).

use std::future::Future;
use std::pin::Pin;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::BaseConsumer;
use rdkafka::ClientConfig;
use sqlx::{Connection, Executor, PgConnection};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub fn brokers() -> String {
    std::env::var("EVENTPULSE_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

pub fn redis_url() -> String {
    std::env::var("EVENTPULSE_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub fn admin_database_url() -> String {
    std::env::var("EVENTPULSE_TEST_ADMIN_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A name no other test run uses: `prefix-<random hex>`.
pub fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Creates `name` with `partitions` partitions on the broker and waits until
/// its metadata shows every partition (the local broker does not auto-create).
pub async fn create_topic(name: &str, partitions: i32) -> Result<()> {
    create_topic_on(&brokers(), name, partitions).await
}

/// [`create_topic`] on the brokers at `brokers` (e.g. a private broker).
pub async fn create_topic_on(brokers: &str, name: &str, partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .context("creating Kafka admin client")?;
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics([&topic], &options).await? {
        if let Err((topic, code)) = result {
            bail!("creating topic {topic} on {brokers}: {code}");
        }
    }
    for _ in 0..100 {
        let metadata = admin
            .inner()
            .fetch_metadata(Some(name), Duration::from_secs(5))?;
        let seen = metadata
            .topics()
            .first()
            .map_or(0, |t| t.partitions().len());
        if seen == partitions as usize {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("topic {name} never showed {partitions} partitions in metadata")
}

/// A fresh, empty database for one test; dropped by [`TestDatabase::drop_now`]
/// (tests call it at the end; a failed test leaves its database for inspection).
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    admin_url: String,
}

impl TestDatabase {
    pub async fn create() -> Result<Self> {
        Self::create_on(&admin_database_url()).await
    }

    /// [`TestDatabase::create`] on the server `admin_url` points at.
    pub async fn create_on(admin_url: &str) -> Result<Self> {
        let admin_url = admin_url.to_owned();
        let name = unique_name("eptest").replace('-', "_");
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .with_context(|| format!("connecting to the test admin database {admin_url}"))?;
        admin
            .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
            .await?;
        let url = match admin_url.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => bail!("admin database URL {admin_url} has no database path"),
        };
        Ok(Self {
            name,
            url,
            admin_url,
        })
    }

    pub async fn drop_now(self) -> Result<()> {
        let mut admin = PgConnection::connect(&self.admin_url).await?;
        admin
            .execute(format!(r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#, self.name).as_str())
            .await?;
        Ok(())
    }
}

/// Sum of every sample of `name` (any labels) in a Prometheus text body.
/// `name` may carry labels itself (`eventpulse_duplicates_total{layer="redis"}`)
/// to pick one series exactly.
pub fn metric_value(body: &str, name: &str) -> f64 {
    metric_value_matching(body, name, "")
}

/// Sum of every sample of `name` whose line contains `labels` (such as
/// `status="404"`), in a Prometheus text body.
pub fn metric_value_matching(body: &str, name: &str, labels: &str) -> f64 {
    body.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter(|l| l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// librdkafka consumer properties (`-X` values) for a service under test:
/// a short session, so a rebalance after a consumer stops takes seconds
/// instead of the default 45.
pub fn quick_rebalance_properties() -> Vec<String> {
    vec![
        "session.timeout.ms=6000".into(),
        "heartbeat.interval.ms=500".into(),
    ]
}

/// A consumer for reading back what a test produced: a fresh group of its
/// own (`prefix-<random hex>`), from the earliest offset, committing nothing.
/// Subscribe it, or assign it partitions.
pub fn topic_reader(group_prefix: &str) -> Result<BaseConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", unique_name(group_prefix))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .context("creating Kafka topic reader")
}

/// `redis-server` on 127.0.0.1:`port` that keeps nothing on disk, so a
/// restart on the same port comes back empty: for tests that stop Redis under
/// a running service. Spawn it and wait for the port to answer.
pub fn redis_server(port: u16) -> Command {
    let mut command = Command::new("redis-server");
    command
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null());
    command
}

/// The future a service run by [`Running`] gets as its shutdown signal.
pub type StopSignal = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A service running in-process, on a task of its own, until
/// [`Running::stop`]: what a test needs around `run_until_stopped(shutdown)`.
pub struct Running {
    name: &'static str,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<()>>,
}

impl Running {
    /// Spawns `run`, giving it a signal that completes on [`Running::stop`]
    /// (or when the `Running` is dropped). `name` names it in panics.
    pub fn spawn<F>(name: &'static str, run: impl FnOnce(StopSignal) -> F) -> Self
    where
        F: Future<Output = Result<()>> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run(Box::pin(async move {
            let _ = stopped.await;
        })));
        Self { name, stop, task }
    }

    /// Signals the service to stop and waits for it; panics unless it
    /// returned `Ok`.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("{} exits cleanly: {e:#}", self.name),
            Err(e) => panic!("{} task joins: {e}", self.name),
        }
    }
}
