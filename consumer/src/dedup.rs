//! The Redis fast-path duplicate filter.
//!
//! Protocol, per batch, one pipelined round trip each way:
//! 1. **claim**: `SET key "p" NX GET PX pending_ttl` for every event id. The
//!    reply is the previous mark: none (fresh, now marked pending), `"p"`
//!    (pending: another attempt has it in flight, or crashed with it), or `"s"`
//!    (stored).
//! 2. Only `"s"` drops an event. A pending mark never does, because the insert
//!    it announces may never commit; such events go to Postgres, whose unique
//!    key is the backstop.
//! 3. **confirm**: after the Postgres commit, `SET key "s" EX dedup_ttl` for
//!    every event now in Postgres. `"s"` is therefore only ever written for an
//!    event whose row is durable, so it can never cause a loss.
//!
//! Keys are scoped by the database's random instance id, so one Redis can
//! serve several databases. If Redis is down, slow or flushed, the filter
//! reports "no information" and Postgres alone deduplicates; the degraded
//! gauge says so, and Redis is probed again at most once a second.

use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use uuid::Uuid;

use crate::metrics::{Dependency, Metrics};

fn prefix(instance_id: Uuid) -> String {
    format!("eventpulse:{}:", instance_id.simple())
}

/// What Redis knew about an event id before this batch claimed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Fresh,
    Pending,
    Stored,
}

const PENDING: &str = "p";
const STORED: &str = "s";
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Cloned per flush lane: each clone opens its own connection and keeps its
/// own view of whether Redis answers (with several lanes, the degraded gauge
/// is the last lane's view).
#[derive(Clone)]
pub struct RedisFilter {
    client: redis::Client,
    connection: Option<ConnectionManager>,
    retry_at: Instant,
    prefix: String,
    timeout: Duration,
    dedup_ttl: Duration,
    pending_ttl: Duration,
    metrics: Metrics,
}

pub struct FilterSettings {
    pub timeout: Duration,
    pub dedup_ttl: Duration,
    pub pending_ttl: Duration,
}

impl RedisFilter {
    /// Builds the filter without connecting: Redis being down at start-up
    /// degrades deduplication but must not stop the consumer.
    pub fn new(
        url: &str,
        instance_id: Uuid,
        settings: FilterSettings,
        metrics: Metrics,
    ) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).map_err(|e| {
            anyhow::anyhow!(
                "invalid Redis URL {} (--redis-url / EVENTPULSE_REDIS_URL): {e}",
                crate::config::redact_url(url)
            )
        })?;
        Ok(Self {
            client,
            connection: None,
            retry_at: Instant::now(),
            prefix: prefix(instance_id),
            timeout: settings.timeout,
            dedup_ttl: settings.dedup_ttl,
            pending_ttl: settings.pending_ttl,
            metrics,
        })
    }

    /// Reads marks under a new database identity from now on: every mark
    /// written under the old one is ignored (see `resume.rs`).
    pub fn set_instance(&mut self, instance_id: Uuid) {
        self.prefix = prefix(instance_id);
    }

    fn key(&self, id: &Uuid) -> String {
        format!("{}{}", self.prefix, id.simple())
    }

    /// Claims every id; `None` means Redis could not be asked (degraded).
    pub async fn claim(&mut self, ids: &[Uuid]) -> Option<Vec<Mark>> {
        if ids.is_empty() {
            return Some(Vec::new());
        }
        let mut pipe = redis::pipe();
        let pending_ms = self.pending_ttl.as_millis() as u64;
        for id in ids {
            pipe.cmd("SET")
                .arg(self.key(id))
                .arg(PENDING)
                .arg("NX")
                .arg("GET")
                .arg("PX")
                .arg(pending_ms);
        }
        let replies: Vec<Option<String>> = self.run(pipe).await?;
        Some(
            replies
                .into_iter()
                .map(|reply| match reply.as_deref() {
                    None => Mark::Fresh,
                    Some(STORED) => Mark::Stored,
                    Some(_) => Mark::Pending,
                })
                .collect(),
        )
    }

    /// Marks ids whose rows are committed in Postgres as stored.
    pub async fn confirm(&mut self, ids: &[Uuid]) {
        if ids.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        let ttl = self.dedup_ttl.as_secs();
        for id in ids {
            pipe.cmd("SET")
                .arg(self.key(id))
                .arg(STORED)
                .arg("EX")
                .arg(ttl)
                .ignore();
        }
        let _: Option<()> = self.run(pipe).await;
    }

    /// Whether Redis answers a PING now (for readiness).
    pub async fn ping(client: &redis::Client, timeout: Duration) -> bool {
        let ping = async {
            let mut conn = client.get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await
        };
        matches!(tokio::time::timeout(timeout, ping).await, Ok(Ok(_)))
    }

    pub fn client(&self) -> redis::Client {
        self.client.clone()
    }

    async fn run<T: redis::FromRedisValue>(&mut self, pipe: redis::Pipeline) -> Option<T> {
        let mut connection = self.connection().await?;
        match tokio::time::timeout(self.timeout, pipe.query_async::<T>(&mut connection)).await {
            Ok(Ok(value)) => {
                self.metrics.redis_degraded.set(0);
                Some(value)
            }
            Ok(Err(e)) => self.degrade(anyhow::Error::new(e).context("Redis pipeline failed")),
            Err(_) => self.degrade(anyhow::anyhow!(
                "Redis pipeline timed out after {:?}",
                self.timeout
            )),
        }
    }

    async fn connection(&mut self) -> Option<ConnectionManager> {
        if let Some(connection) = &self.connection {
            if Instant::now() >= self.retry_at {
                return Some(connection.clone());
            }
            return None;
        }
        if Instant::now() < self.retry_at {
            return None;
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(self.timeout)
            .set_response_timeout(self.timeout)
            .set_number_of_retries(1);
        let connect = ConnectionManager::new_with_config(self.client.clone(), config);
        match tokio::time::timeout(self.timeout * 2, connect).await {
            Ok(Ok(connection)) => {
                self.connection = Some(connection.clone());
                Some(connection)
            }
            Ok(Err(e)) => self.degrade(anyhow::Error::new(e).context("connecting to Redis")),
            Err(_) => self.degrade(anyhow::anyhow!("connecting to Redis timed out")),
        }
    }

    /// Records the failure and skips Redis until the next probe.
    fn degrade<T>(&mut self, error: anyhow::Error) -> Option<T> {
        if self.metrics.redis_degraded.get() == 0 {
            tracing::warn!("Redis dedup degraded, Postgres alone deduplicates until it returns");
        }
        self.metrics.redis_degraded.set(1);
        self.metrics.failed(Dependency::Redis, &error);
        self.retry_at = Instant::now() + PROBE_INTERVAL;
        None
    }
}
