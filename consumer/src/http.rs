//! `/metrics` (Prometheus text), `/healthz` (the process answers) and
//! `/readyz` (Postgres answers and the consumer is in its group: partitions
//! assigned or waiting for an assignment).
//!
//! Redis does not decide readiness: it is only the fast-path duplicate
//! filter, and without it Postgres alone deduplicates (see [`crate::dedup`]).
//! A consumer without Redis still stores every event exactly once, so taking
//! it out of rotation, or having an orchestrator restart it, would only lose
//! throughput. `/readyz` reports `"redis": "degraded"` instead, and the
//! `eventpulse_redis_degraded` gauge is what to alert on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
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

async fn metrics(State(state): State<HttpState>) -> Response {
    eventpulse_service::metrics::exposition(state.metrics.render())
}

async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    let postgres = async {
        let probe = sqlx::query("SELECT 1").execute(&state.pool);
        matches!(tokio::time::timeout(PROBE_TIMEOUT, probe).await, Ok(Ok(_)))
    };
    let (postgres, redis) = tokio::join!(postgres, RedisFilter::ping(&state.redis, PROBE_TIMEOUT));
    let running = state.running.load(Ordering::Relaxed);
    let partitions = state.metrics.assigned_partitions.get();
    let ready = postgres && running;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "ready": ready,
        "postgres": if postgres { "ok" } else { "unavailable" },
        "redis": if redis { "ok" } else { "degraded" },
        "consumer": if running { "running" } else { "stopped" },
        "assigned_partitions": partitions,
    });
    (status, Json(body))
}

#[cfg(test)]
mod tests {
    use eventpulse_testkit::{admin_database_url, redis_url};
    use sqlx::postgres::PgPoolOptions;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Nothing listens on port 1: connections are refused at once.
    const CLOSED: &str = "127.0.0.1:1";

    fn state(database_url: &str, redis_url: &str) -> HttpState {
        HttpState {
            metrics: Metrics::new(),
            pool: PgPoolOptions::new()
                .acquire_timeout(PROBE_TIMEOUT)
                .connect_lazy(database_url)
                .expect("a valid database URL"),
            redis: redis::Client::open(redis_url).expect("a valid Redis URL"),
            running: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Serves `state` on a free port and returns the status and body of
    /// `GET /readyz` (HTTP/1.0, so the server closes the connection).
    async fn readyz(state: HttpState) -> (u16, serde_json::Value) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let server = tokio::spawn(async move { axum::serve(listener, router(state)).await });
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(b"GET /readyz HTTP/1.0\r\nHost: x\r\n\r\n")
            .await
            .expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read");
        server.abort();
        let status = response.split(' ').nth(1).and_then(|s| s.parse().ok());
        let body = response.split_once("\r\n\r\n").map(|(_, body)| body);
        let body = serde_json::from_str(body.unwrap_or_default()).expect("a JSON body");
        (status.expect("a status line"), body)
    }

    #[tokio::test]
    async fn redis_down_is_degraded_not_unready() {
        let down = format!("redis://{CLOSED}");
        let (status, body) = readyz(state(&admin_database_url(), &down)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["ready"], true);
        assert_eq!(body["postgres"], "ok");
        assert_eq!(body["redis"], "degraded");
    }

    #[tokio::test]
    async fn postgres_down_or_pipeline_stopped_is_unready() {
        let redis = redis_url();
        let down = format!("postgres://postgres@{CLOSED}/x");
        let (status, body) = readyz(state(&down, &redis)).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["postgres"], "unavailable");

        let stopped = state(&admin_database_url(), &redis);
        stopped.running.store(false, Ordering::Relaxed);
        let (status, body) = readyz(stopped).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["consumer"], "stopped");
        assert_eq!(body["redis"], "ok");
    }
}
