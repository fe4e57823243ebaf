//! Start-up: connect to every dependency (each failure is one line naming the
//! setting and the password-free address), apply migrations, bind the HTTP
//! listener, then run the pipeline and the HTTP server until shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use eventpulse_service::startup;
use tokio::net::TcpListener;

use crate::config::{redact_url, Settings};
use crate::dedup::{FilterSettings, RedisFilter};
use crate::dlq::DeadLetters;
use crate::event_rows;
use crate::flush::Flusher;
use crate::heartbeat::Heartbeat;
use crate::http::{self, HttpState};
use crate::kafka;
use crate::metrics::Metrics;
use crate::pipeline::{Pipeline, PipelineSettings};
use crate::preflight;
use crate::reader::RecordReader;
use crate::retention::Upkeep;
use crate::schema;
use crate::shutdown::ShutdownFlag;
use crate::store::Store;

pub struct Application {
    pipeline: Pipeline,
    listener: TcpListener,
    http: HttpState,
    heartbeat: Heartbeat,
    upkeep: Upkeep,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let metrics = Metrics::new();
        // Each flush lane holds a connection during its transaction; the
        // upkeep, heartbeat and position reads need room beside them.
        let pool_size = settings.db_pool_size.max(settings.flush_lanes as u32 + 2);
        let pool = schema::connect(&settings.database_url, pool_size).await?;
        schema::migrate_for_run(&pool, &redact_url(&settings.database_url)).await?;
        // Warnings only: a non-durable Postgres or an old Redis weakens the
        // guarantees or the fast path, and the operator must hear of it.
        preflight::check_durability(&pool).await?;
        event_rows::check_method(&pool, settings.write_method).await?;
        let store = Store::new(
            pool.clone(),
            &settings.group_id,
            &settings.topic,
            settings.partition_days,
        )
        .with_write_method(settings.write_method);
        let upkeep = Upkeep::new(
            pool.clone(),
            settings.partition_days,
            settings.retention_days,
        );
        let redis = redis_filter(&settings, &store, &metrics).await?;
        let consumer = Arc::new(kafka::create_consumer(&settings, metrics.clone())?);
        kafka::check_topics(&consumer, &settings)?;
        let dead_letters = Arc::new(DeadLetters::new(
            &settings.brokers,
            &settings.dlq_topic,
            &settings.topic,
            &settings.kafka_properties,
        )?);
        let listener = startup::bind(settings.metrics_addr, "metrics_addr").await?;
        let heartbeat = Heartbeat::new(pool.clone(), metrics.clone(), &settings.group_id);
        let http = HttpState {
            metrics: metrics.clone(),
            pool,
            redis: redis.client(),
            running: Arc::new(AtomicBool::new(false)),
        };
        let pipeline = Pipeline {
            consumer,
            reader: Arc::new(RecordReader::new(&settings)?),
            flushers: Flusher {
                store,
                redis,
                dead_letters,
                metrics: metrics.clone(),
            }
            .for_lanes(settings.flush_lanes),
            settings: PipelineSettings {
                topic: settings.topic.clone(),
                batch_size: settings.batch_size,
                buffer_bytes: settings.buffer_bytes,
                linger: settings.linger,
                limits: settings.limits.clone(),
                shutdown_timeout: settings.shutdown_timeout,
                stop_at: None,
            },
            metrics,
        };
        Ok(Self {
            pipeline,
            listener,
            http,
            heartbeat,
            upkeep,
        })
    }

    /// Makes this a replay: each partition's records from its offset in
    /// `stop_at` on are left alone (see [`crate::replay`]).
    pub fn stop_at(mut self, stop_at: HashMap<i32, i64>) -> Self {
        self.pipeline.settings.stop_at = Some(Arc::new(stop_at));
        self
    }

    pub fn metrics(&self) -> Metrics {
        self.pipeline.metrics.clone()
    }

    /// Where `/metrics`, `/healthz` and `/readyz` answer (useful with port 0).
    pub fn metrics_addr(&self) -> SocketAddr {
        startup::local_addr(&self.listener)
    }

    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let shutdown = ShutdownFlag::spawn(shutdown);
        tokio::spawn(exit_if_shutdown_overruns(
            shutdown.clone(),
            self.pipeline.settings.shutdown_timeout,
        ));
        tracing::info!(metrics = %self.metrics_addr(), "consumer started");
        let running = Arc::clone(&self.http.running);
        let server = tokio::spawn(http::serve(self.listener, self.http, shutdown.clone()));
        let mut heartbeat = tokio::spawn(self.heartbeat.run(shutdown.clone()));
        let upkeep = tokio::spawn(self.upkeep.run(shutdown.clone()));
        running.store(true, Ordering::Relaxed);
        let result = self.pipeline.run(shutdown.clone()).await;
        running.store(false, Ordering::Relaxed);
        if !shutdown.is_requested() {
            server.abort();
        }
        let _ = server.await;
        upkeep.abort();
        // Its last act removes the member's row; with Postgres down that
        // must not hold up the exit.
        if !shutdown.is_requested()
            || tokio::time::timeout(HEARTBEAT_GOODBYE, &mut heartbeat)
                .await
                .is_err()
        {
            heartbeat.abort();
        }
        result
    }
}

/// The Redis fast path, its keys scoped by this database's instance id.
async fn redis_filter(
    settings: &Settings,
    store: &Store,
    metrics: &Metrics,
) -> anyhow::Result<RedisFilter> {
    let instance = store
        .instance_id()
        .await
        .context("reading the database instance id")?;
    let filter_settings = FilterSettings {
        timeout: settings.redis_timeout,
        dedup_ttl: settings.dedup_ttl,
        pending_ttl: settings.pending_ttl,
    };
    let redis = RedisFilter::new(
        &settings.redis_url,
        instance,
        filter_settings,
        metrics.clone(),
    )?;
    preflight::check_redis_version(&redis.client(), settings.redis_timeout).await;
    Ok(redis)
}

/// After the flush deadline the consumer still commits to Kafka and leaves
/// the group; with the broker unreachable librdkafka can wait a session
/// timeout for each. Past the deadline and this much more, the process ends
/// anyway: everything durable is in Postgres, so this is no worse than a
/// `kill -9`, and SIGTERM always ends the process in bounded time.
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// How long the heartbeat may take to remove its row at shutdown.
const HEARTBEAT_GOODBYE: Duration = Duration::from_secs(2);

async fn exit_if_shutdown_overruns(shutdown: ShutdownFlag, timeout: Duration) {
    shutdown.requested().await;
    tokio::time::sleep(timeout + EXIT_GRACE).await;
    tracing::error!(
        "shutdown took longer than --shutdown-timeout-secs ({}s) + {}s (Kafka unreachable?); exiting now, unflushed messages will be re-read",
        timeout.as_secs(),
        EXIT_GRACE.as_secs()
    );
    std::process::exit(1);
}
