//! `GET /pipeline/status`: where each consumer group stands, per partition:
//! the position stored in Postgres (with its epoch), the broker's high
//! watermark and the lag between them, and how long ago a batch last
//! committed; also the live feed's head and connected streams. The
//! watermarks come from a Kafka client of the API's own, which never joins a
//! group; when the brokers do not answer, the positions are still shown,
//! with `kafka: "unreachable"` and no lag.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::ApiError;
use crate::kafka::WATERMARK_TIMEOUT;
use crate::state::AppState;

#[derive(Debug, Serialize)]
pub struct PartitionStatus {
    group_id: String,
    topic: String,
    partition: i32,
    epoch: i32,
    next_offset: i64,
    high_watermark: Option<i64>,
    /// Messages not yet stored: high watermark minus the stored position.
    lag: Option<i64>,
    updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
pub struct LiveStatus {
    clients: i64,
    head: String,
}

#[derive(Debug, Serialize)]
pub struct PipelineStatus {
    partitions: Vec<PartitionStatus>,
    last_commit_at: Option<DateTime<Utc>>,
    seconds_since_last_commit: Option<f64>,
    /// `ok`, or `unreachable` when a watermark could not be read.
    kafka: &'static str,
    live: LiveStatus,
}

type OffsetRow = (String, String, i32, i32, i64, DateTime<Utc>);

pub async fn pipeline_status(
    State(state): State<AppState>,
) -> Result<Json<PipelineStatus>, ApiError> {
    let rows: Vec<OffsetRow> = sqlx::query_as(
        "SELECT group_id, topic, partition, epoch, next_offset, updated_at \
         FROM consumer_offsets ORDER BY group_id, topic, partition",
    )
    .fetch_all(&state.pool)
    .await?;
    let wanted: Vec<(String, i32)> = rows.iter().map(|r| (r.1.clone(), r.2)).collect();
    let watermarks = Arc::clone(&state.watermarks);
    let highs = tokio::task::spawn_blocking(move || {
        wanted
            .iter()
            .map(|(topic, partition)| watermarks.high(topic, *partition, WATERMARK_TIMEOUT).ok())
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("reading watermarks")))?;
    let kafka = if highs.iter().all(Option::is_some) {
        "ok"
    } else {
        "unreachable"
    };
    let last_commit_at = rows.iter().map(|r| r.5).max();
    let partitions = rows
        .into_iter()
        .zip(highs)
        .map(
            |((group_id, topic, partition, epoch, next_offset, updated_at), high)| {
                PartitionStatus {
                    group_id,
                    topic,
                    partition,
                    epoch,
                    next_offset,
                    high_watermark: high,
                    lag: high.map(|h| (h - next_offset).max(0)),
                    updated_at,
                }
            },
        )
        .collect();
    Ok(Json(PipelineStatus {
        partitions,
        last_commit_at,
        seconds_since_last_commit: last_commit_at
            .map(|at| (Utc::now() - at).num_milliseconds() as f64 / 1000.0),
        kafka,
        live: LiveStatus {
            clients: state.metrics.live_clients.get(),
            head: state.feed.head().to_string(),
        },
    }))
}
