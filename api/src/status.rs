//! `GET /pipeline/status`: where each consumer group stands, per partition:
//! the position stored in Postgres (with its epoch), the broker's high
//! watermark and the lag between them, and how long ago a batch last
//! committed; the consumers that reported lately (their own rows in
//! `consumer_members`: partitions owned, Redis degraded); also the live
//! feed's head and connected streams. The
//! watermarks come from a Kafka client of the API's own, which never joins a
//! group; when the brokers do not answer, the positions are still shown,
//! with `kafka: "unreachable"` and no lag.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

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

/// A consumer that reported within [`MEMBER_SILENCE_SECS`].
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct MemberStatus {
    member_id: Uuid,
    group_id: String,
    host: String,
    pid: i32,
    partitions: i32,
    redis_degraded: bool,
    started_at: DateTime<Utc>,
    seen_at: DateTime<Utc>,
    seconds_since_seen: f64,
}

/// Consumers report every 5 s; one silent for six reports is gone (killed,
/// or cut off from Postgres, which also stops it from storing anything).
pub const MEMBER_SILENCE_SECS: f64 = 30.0;

const MEMBERS: &str = "\
SELECT member_id, group_id, host, pid, partitions, redis_degraded, started_at, seen_at,
       extract(epoch FROM now() - seen_at)::float8 AS seconds_since_seen
FROM consumer_members
WHERE seen_at > now() - make_interval(secs => $1)
ORDER BY group_id, host, pid";

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
    consumers: Vec<MemberStatus>,
    /// Whether any consumer deduplicates with Postgres alone (Redis down).
    redis_degraded: bool,
    live: LiveStatus,
}

/// A `consumer_offsets` row, then Postgres's clock (the same on every row).
type OffsetRow = (String, String, i32, i32, i64, DateTime<Utc>, DateTime<Utc>);

pub async fn pipeline_status(
    State(state): State<AppState>,
) -> Result<Json<PipelineStatus>, ApiError> {
    let rows: Vec<OffsetRow> = sqlx::query_as(
        "SELECT group_id, topic, partition, epoch, next_offset, updated_at, now() \
         FROM consumer_offsets ORDER BY group_id, topic, partition",
    )
    .fetch_all(&state.pool)
    .await?;
    let consumers: Vec<MemberStatus> = sqlx::query_as(MEMBERS)
        .bind(MEMBER_SILENCE_SECS)
        .fetch_all(&state.pool)
        .await?;
    let last_commit_at = rows.iter().map(|r| r.5).max();
    // Postgres's clock, like the timestamps it is compared with.
    let seconds_since_last_commit = rows
        .first()
        .zip(last_commit_at)
        .map(|(row, at)| (row.6 - at).num_milliseconds() as f64 / 1000.0);
    let wanted: Vec<(String, i32)> = rows.iter().map(|r| (r.1.clone(), r.2)).collect();
    let highs = high_watermarks(&state, wanted).await?;
    let kafka = if highs.iter().all(Option::is_some) {
        "ok"
    } else {
        "unreachable"
    };
    Ok(Json(PipelineStatus {
        partitions: rows.into_iter().zip(highs).map(partition_status).collect(),
        last_commit_at,
        seconds_since_last_commit,
        kafka,
        redis_degraded: consumers.iter().any(|c| c.redis_degraded),
        consumers,
        live: LiveStatus {
            clients: state.metrics.live_clients.get(),
            head: state.feed.head().to_string(),
        },
    }))
}

/// Each partition's high watermark, `None` where it could not be read. After
/// the first failure the brokers are taken as unreachable and the rest are
/// not asked, so an outage costs one timeout, not one per partition.
async fn high_watermarks(
    state: &AppState,
    wanted: Vec<(String, i32)>,
) -> Result<Vec<Option<i64>>, ApiError> {
    let watermarks = Arc::clone(&state.watermarks);
    tokio::task::spawn_blocking(move || {
        let mut reachable = true;
        wanted
            .iter()
            .map(|(topic, partition)| {
                let high = reachable
                    .then(|| watermarks.high(topic, *partition, WATERMARK_TIMEOUT).ok())
                    .flatten();
                reachable = high.is_some();
                high
            })
            .collect()
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("reading watermarks")))
}

fn partition_status(
    ((group_id, topic, partition, epoch, next_offset, updated_at, _), high): (
        OffsetRow,
        Option<i64>,
    ),
) -> PartitionStatus {
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
}
