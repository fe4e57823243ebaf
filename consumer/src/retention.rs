//! Upkeep of `events`' time partitions: the next days' partitions are created
//! ahead of need (a batch creates any other it needs itself, see the
//! migration), and with `--retention-days` whole partitions past the window
//! are dropped, never `DELETE`d row by row from `events`.
//!
//! Every consumer runs the upkeep every few minutes; a session advisory lock
//! lets one at a time do it. Dropping a partition, in steps that can each be
//! repeated after a crash:
//! 0. The partition is marked (`dropping_since`), so a crash in what follows
//!    is finished by the next run; a partition detached by hand is left alone.
//! 1. `DETACH PARTITION ... CONCURRENTLY`: takes no lock that stops inserts
//!    into other partitions or queries (a detach interrupted half-way is
//!    finished with `FINALIZE`). Its catalogue row stays, so a late write for
//!    those days fails ("no partition"), is retried, and lands in a new
//!    partition once the old one is gone.
//! 2. The partition's ids leave `event_ids`, ten thousand per transaction, so
//!    no lock is held long: the one place retention deletes rows, from the
//!    narrow id table.
//! 3. One transaction drops the table, its rollup rows and its catalogue row.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{Executor as _, PgConnection, PgPool};

use crate::shutdown::ShutdownFlag;

/// How often a consumer runs the upkeep.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(600);
/// How many days past today get a partition before any event needs it.
const DAYS_AHEAD: i32 = 2;
/// Ids removed from `event_ids` per transaction while dropping a partition.
const ID_CHUNK: i64 = 10_000;

#[derive(Debug, Clone)]
pub struct Upkeep {
    pool: PgPool,
    partition_days: i32,
    retention_days: Option<i32>,
}

/// A partition that retention dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub name: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub ids_removed: u64,
}

/// What one run did; `skipped` when another consumer held the lock.
#[derive(Debug, Clone, Default)]
pub struct UpkeepReport {
    pub skipped: bool,
    pub partitions: i64,
    pub dropped: Vec<Dropped>,
}

impl Upkeep {
    pub fn new(pool: PgPool, partition_days: i32, retention_days: Option<i32>) -> Self {
        Self {
            pool,
            partition_days,
            retention_days,
        }
    }

    /// Runs at start and then every [`UPKEEP_EVERY`] until shutdown. A failed
    /// run is logged and tried again next time: writes never depend on it.
    pub async fn run(self, shutdown: ShutdownFlag) {
        let mut ticks = tokio::time::interval(UPKEEP_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.requested() => return,
                _ = ticks.tick() => {}
            }
            match self.run_once().await {
                Ok(report) => {
                    for d in &report.dropped {
                        tracing::info!(partition = %d.name, from = %d.from, to = %d.to,
                            ids = d.ids_removed, "retention dropped a partition");
                    }
                }
                Err(e) => tracing::warn!(
                    "partition upkeep failed, retried in {} s: {e:#}",
                    UPKEEP_EVERY.as_secs()
                ),
            }
        }
    }

    pub async fn run_once(&self) -> anyhow::Result<UpkeepReport> {
        let mut conn = self.pool.acquire().await?;
        let locked: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext('eventpulse_upkeep'))")
                .fetch_one(&mut *conn)
                .await?;
        if !locked {
            return Ok(UpkeepReport {
                skipped: true,
                ..UpkeepReport::default()
            });
        }
        let report = self.run_locked(&mut conn).await;
        // A connection that failed mid-way is closed, which releases it too.
        let _ = sqlx::query("SELECT pg_advisory_unlock(hashtext('eventpulse_upkeep'))")
            .execute(&mut *conn)
            .await;
        report
    }

    async fn run_locked(&self, conn: &mut PgConnection) -> anyhow::Result<UpkeepReport> {
        sqlx::query(
            "SELECT eventpulse_ensure_partitions(\
               ARRAY(SELECT now() + make_interval(days => d) FROM generate_series(0, $1) AS d), $2)",
        )
        .bind(DAYS_AHEAD)
        .bind(self.partition_days)
        .execute(&mut *conn)
        .await?;
        let mut dropped = Vec::new();
        let expired = self.to_drop(conn).await?;
        for (name, from, to) in expired {
            let ids_removed = drop_partition(conn, &name, from, to).await?;
            dropped.push(Dropped {
                name,
                from,
                to,
                ids_removed,
            });
        }
        let partitions = sqlx::query_scalar("SELECT count(*) FROM event_partitions")
            .fetch_one(&mut *conn)
            .await?;
        Ok(UpkeepReport {
            skipped: false,
            partitions,
            dropped,
        })
    }

    /// Partitions past the window, and any whose drop began and did not
    /// finish (whatever the setting is now: a half-dropped partition would
    /// fail every late write for its days). A partition detached by hand is
    /// not touched.
    async fn to_drop(&self, conn: &mut PgConnection) -> sqlx::Result<Vec<Expired>> {
        sqlx::query_as(
            "SELECT name, from_at, to_at FROM event_partitions \
             WHERE dropping_since IS NOT NULL \
                OR ($1::int IS NOT NULL AND to_at <= now() - make_interval(days => $1)) \
             ORDER BY from_at",
        )
        .bind(self.retention_days)
        .fetch_all(&mut *conn)
        .await
    }
}

/// A partition to drop: its name and bounds.
type Expired = (String, DateTime<Utc>, DateTime<Utc>);

async fn drop_partition(
    conn: &mut PgConnection,
    name: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let table = quoted_partition(name)?;
    sqlx::query(
        "UPDATE event_partitions SET dropping_since = coalesce(dropping_since, now()) WHERE name = $1",
    )
    .bind(name)
    .execute(&mut *conn)
    .await?;
    detach(conn, name, &table).await?;
    let ids_removed = remove_ids(conn, name, &table).await?;
    let mut tx = sqlx::Acquire::begin(&mut *conn).await?;
    let drop_table = format!("DROP TABLE IF EXISTS {table}");
    tx.execute(drop_table.as_str()).await?;
    sqlx::query(
        "WITH h AS (DELETE FROM rollup_hourly WHERE hour >= $1 AND hour < $2), \
              uh AS (DELETE FROM rollup_user_hourly WHERE hour >= $1 AND hour < $2) \
         DELETE FROM rollup_user_daily WHERE day >= $1 AND day < $2",
    )
    .bind(from)
    .bind(to)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM event_partitions WHERE name = $1")
        .bind(name)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(ids_removed)
}

/// Step 1: detaches the partition without blocking inserts, or finishes a
/// detach that was interrupted; nothing to do if it is detached already.
async fn detach(conn: &mut PgConnection, name: &str, table: &str) -> anyhow::Result<()> {
    let pending: Option<bool> = sqlx::query_scalar(
        "SELECT inhdetachpending FROM pg_inherits \
         WHERE inhrelid = to_regclass($1) AND inhparent = 'events'::regclass",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    let detach = match pending {
        Some(true) => format!("ALTER TABLE events DETACH PARTITION {table} FINALIZE"),
        Some(false) => format!("ALTER TABLE events DETACH PARTITION {table} CONCURRENTLY"),
        None => return Ok(()),
    };
    // A plain string runs as a simple query: DETACH ... CONCURRENTLY must
    // not be inside a transaction block, even an implicit one.
    conn.execute(detach.as_str()).await?;
    Ok(())
}

/// Step 2: the detached partition's ids leave `event_ids`, a chunk per
/// transaction. Rows leave the detached table with their ids, so a repeat
/// after a crash picks up where this stopped.
async fn remove_ids(conn: &mut PgConnection, name: &str, table: &str) -> anyhow::Result<u64> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(name)
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Ok(0);
    }
    let chunk = format!(
        "WITH gone AS (DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} LIMIT $1)) \
                       RETURNING event_id), \
              ids AS (DELETE FROM event_ids i USING gone WHERE i.event_id = gone.event_id) \
         SELECT count(*) FROM gone"
    );
    let mut removed = 0;
    loop {
        let n: i64 = sqlx::query_scalar(&chunk)
            .bind(ID_CHUNK)
            .fetch_one(&mut *conn)
            .await?;
        removed += n as u64;
        if n == 0 {
            return Ok(removed);
        }
    }
}

/// The partition's name as an SQL identifier. Names come from our own
/// catalogue, and only ever have this shape, so nothing else is spliced in.
fn quoted_partition(name: &str) -> anyhow::Result<String> {
    let well_formed = name
        .strip_prefix("events_p")
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()));
    anyhow::ensure!(
        well_formed,
        "unexpected partition name {name:?} in event_partitions"
    );
    Ok(format!("\"{name}\""))
}

#[cfg(test)]
mod tests {
    use super::quoted_partition;

    #[test]
    fn only_catalogue_shaped_names_are_spliced() {
        assert_eq!(
            quoted_partition("events_p20261203").unwrap(),
            "\"events_p20261203\""
        );
        for bad in [
            "events_p",
            "events_p2026; DROP TABLE x",
            "other",
            "events_p1\"",
        ] {
            assert!(quoted_partition(bad).is_err(), "{bad}");
        }
    }
}
