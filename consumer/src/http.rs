//! `/metrics` (Prometheus text), `/healthz` (the process answers) and
//! `/readyz` (Postgres and Redis answer, and the consumer is in its group:
//! partitions assigned or waiting for an assignment).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use sqlx::PgPool;
use tokio::net::TcpListener;

use crate::dedup::RedisFilter;
use crate::metrics::Metrics;
use crate::shutdown::ShutdownFlag;

const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct HttpState {
    pub metrics: Metrics,
    pub pool: PgPool,
    pub redis: redis::Client,
    pub assigned: Arc<Mutex<Vec<i32>>>,
    /// True while the pipeline runs (subscribed to its topic).
    pub running: Arc<AtomicBool>,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

pub async fn serve(
    listener: TcpListener,
    state: HttpState,
    shutdown: ShutdownFlag,
) -> anyhow::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.requested().await })
        .await
        .map_err(|e| anyhow::anyhow!("HTTP server failed: {e}"))
}

async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            eventpulse_service::metrics::CONTENT_TYPE,
        )],
        state.metrics.render(),
    )
}

async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    let postgres = async {
        let probe = sqlx::query("SELECT 1").execute(&state.pool);
        matches!(tokio::time::timeout(PROBE_TIMEOUT, probe).await, Ok(Ok(_)))
    };
    let (postgres, redis) = tokio::join!(postgres, RedisFilter::ping(&state.redis, PROBE_TIMEOUT));
    let running = state.running.load(Ordering::Relaxed);
    let partitions = state.assigned.lock().expect("lock not poisoned").len();
    let ready = postgres && redis && running;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let body = json!({
        "ready": ready,
        "postgres": word(postgres),
        "redis": word(redis),
        "consumer": if running { "running" } else { "stopped" },
        "assigned_partitions": partitions,
    });
    (status, Json(body))
}
