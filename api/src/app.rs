//! Start-up: connect to Postgres (and, when ingestion is enabled, check the
//! brokers and the topic), bind the HTTP and gRPC listeners, then serve both
//! until shutdown.
//! Each failure is one line naming the setting and the password-free
//! address. Ingestion is enabled by configuring at least one API key;
//! without one the service starts read-only and says so.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use eventpulse_service::startup;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::Settings;
use crate::dashboard;
use crate::db;
use crate::feed::Feed;
use crate::kafka::{Ingestor, ProducerSettings, Watermarks};
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::{grpc, http};

/// How long requests in flight may finish after shutdown began.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub struct Application {
    listener: TcpListener,
    grpc_listener: TcpListener,
    state: AppState,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let pool = db::connect(&settings).await?;
        let ingestor = if settings.api_keys.is_empty() {
            tracing::warn!(
                "no API key configured (--api-keys / EVENTPULSE_API_KEYS): \
                 ingestion is disabled and POST /events answers 503; queries work"
            );
            None
        } else {
            Some(Arc::new(
                Ingestor::connect(ProducerSettings {
                    brokers: &settings.brokers,
                    topic: &settings.topic,
                    produce_timeout: settings.produce_timeout,
                    kafka_properties: &settings.kafka_properties,
                })
                .await?,
            ))
        };
        let listener = startup::bind(settings.api_addr, "api_addr").await?;
        let grpc_listener = startup::bind(settings.grpc_addr, "grpc_addr").await?;
        let metrics = Metrics::new();
        let feed = Feed::start(pool.clone(), settings.live_buffer_events, metrics.clone())
            .await
            .context("starting the live feed (reading the newest stored event)")?;
        let state = AppState {
            pool,
            ingestor,
            api_keys: settings.api_keys.clone(),
            limits: Arc::new(settings.limits.clone()),
            max_batch_events: settings.max_batch_events,
            max_body_bytes: settings.max_body_bytes,
            metrics,
            stats_source: settings.stats_source,
            feed,
            live_streams: Arc::new(Semaphore::new(settings.live_max_streams)),
            live_max_streams: settings.live_max_streams,
            watermarks: Arc::new(Watermarks::new(
                &settings.brokers,
                &settings.kafka_properties,
            )?),
            dashboard_dir: Arc::new(settings.dashboard.path.clone()),
        };
        dashboard::warn_if_missing(&settings.dashboard);
        Ok(Self {
            listener,
            grpc_listener,
            state,
        })
    }

    /// Where the API answers (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        startup::local_addr(&self.listener)
    }

    /// Where gRPC ingestion answers.
    pub fn grpc_addr(&self) -> SocketAddr {
        startup::local_addr(&self.grpc_listener)
    }

    /// Serves until `shutdown` completes, then lets requests in flight
    /// finish (ingestion ones wait for their acknowledgements) and flushes
    /// the producer.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let ingestion = if self.state.ingestor.is_some() {
            "enabled"
        } else {
            "disabled"
        };
        tracing::info!(addr = %self.addr(), grpc_addr = %self.grpc_addr(), ingestion, "API started");
        let (pool, ingestor) = (self.state.pool.clone(), self.state.ingestor.clone());
        let feed = self.state.feed.clone();
        let (stopping, stopped) = tokio::sync::watch::channel(false);
        let shutdown = async move {
            shutdown.await;
            feed.stop();
            let _ = stopping.send(true);
        };
        let when_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        let grpc = grpc::serve(
            self.grpc_listener,
            self.state.clone(),
            when_stopped(stopped.clone()),
        );
        let serve = axum::serve(self.listener, http::router(self.state))
            .with_graceful_shutdown(shutdown)
            .into_future();
        let serve = async {
            let http = async {
                serve
                    .await
                    .map_err(|e| anyhow::anyhow!("HTTP server failed: {e}"))
            };
            tokio::try_join!(http, grpc).map(|_| ())
        };
        // A client that stops reading while keeping its connection open
        // would hold the graceful shutdown forever.
        let overrun = async move {
            when_stopped(stopped).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        let served = tokio::select! {
            served = serve => served,
            () = overrun => {
                tracing::warn!("connections still open {}s after shutdown began; closing them", SHUTDOWN_GRACE.as_secs());
                Ok(())
            }
        };
        if let Some(ingestor) = ingestor {
            tokio::task::block_in_place(|| ingestor.flush());
        }
        pool.close().await;
        served
    }
}
