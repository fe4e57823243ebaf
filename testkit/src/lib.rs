//! Test support for integration tests that use the real local stack
//! (`scripts/stack.sh up`): each test gets its own topic names and its own
//! Postgres database, so tests run in parallel and leave nothing shared behind.
//!
//! Addresses come from the same variables the services read, with the local
//! stack's defaults: `EVENTPULSE_BROKERS`, `EVENTPULSE_REDIS_URL`, and
//! `EVENTPULSE_TEST_ADMIN_DATABASE_URL` (a database this code may create
//! databases from).

use std::time::Duration;

use anyhow::{bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use sqlx::{Connection, Executor, PgConnection};

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
