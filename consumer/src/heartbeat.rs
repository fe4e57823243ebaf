//! The consumer's status report: every few seconds one row of
//! `consumer_members` says this process is alive, how many partitions it
//! owns and whether Redis is degraded, so the API's `/pipeline/status` (and
//! the dashboard) can show the group without scraping every member's
//! `/metrics`. A report that cannot be written is tried again at the next
//! beat (logged when reports stop and when they resume): it never holds up
//! the pipeline.

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use crate::metrics::Metrics;
use crate::shutdown::ShutdownFlag;

/// How often the row is refreshed. Readers treat a member unseen for
/// several beats as gone (`eventpulse_api::status::MEMBER_SILENCE_SECS`).
pub const BEAT: Duration = Duration::from_secs(5);

const UPSERT: &str = "\
INSERT INTO consumer_members (member_id, group_id, host, pid, partitions, redis_degraded)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (member_id) DO UPDATE
SET partitions = EXCLUDED.partitions, redis_degraded = EXCLUDED.redis_degraded, seen_at = now()";

/// Members silent for longer than this are removed by whichever member
/// beats next, so killed processes do not pile up.
const FORGET_AFTER: &str = "1 hour";

pub struct Heartbeat {
    pool: PgPool,
    metrics: Metrics,
    member_id: Uuid,
    group_id: String,
    host: String,
}

impl Heartbeat {
    pub fn new(pool: PgPool, metrics: Metrics, group_id: &str) -> Self {
        Self {
            pool,
            metrics,
            member_id: Uuid::new_v4(),
            group_id: group_id.to_owned(),
            host: host_name(),
        }
    }

    /// Beats until shutdown, then removes the row.
    pub async fn run(self, shutdown: ShutdownFlag) {
        let mut ticks = tokio::time::interval(BEAT);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                () = shutdown.requested() => break,
                _ = ticks.tick() => {}
            }
            match self.beat().await {
                Err(e) if !failing => {
                    tracing::warn!(
                        "cannot record this consumer in consumer_members ({e}); \
                         /pipeline/status will not list it until this works again"
                    );
                    failing = true;
                }
                Err(_) => {}
                Ok(()) if failing => {
                    tracing::info!("recording this consumer in consumer_members again");
                    failing = false;
                }
                Ok(()) => {}
            }
        }
        let gone = sqlx::query("DELETE FROM consumer_members WHERE member_id = $1")
            .bind(self.member_id)
            .execute(&self.pool)
            .await;
        if let Err(e) = gone {
            tracing::debug!("heartbeat row not removed at shutdown: {e}");
        }
    }

    async fn beat(&self) -> sqlx::Result<()> {
        sqlx::query(UPSERT)
            .bind(self.member_id)
            .bind(&self.group_id)
            .bind(&self.host)
            .bind(i32::try_from(std::process::id()).unwrap_or(i32::MAX))
            .bind(i32::try_from(self.metrics.assigned_partitions.get()).unwrap_or(i32::MAX))
            .bind(self.metrics.redis_degraded.get() != 0)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM consumer_members WHERE seen_at < now() - $1::interval")
            .bind(FORGET_AFTER)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// The kernel's host name (a container's id under Docker), or "unknown".
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}
