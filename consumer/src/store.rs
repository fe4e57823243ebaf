//! Postgres: the durable end of the pipeline and the source of truth for
//! offsets. One transaction per batch writes the events (see
//! [`event_rows`](crate::event_rows): binary COPY into a staging table and
//! one SQL function that also creates missing time partitions and updates
//! the rollups), the dead-letter records and the batch's next offsets.
//! Either all of it is durable or none.

use eventpulse_events::{EventType, RejectReason};

use sqlx::postgres::PgPool;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::batch::{PendingEvent, RejectedMessage};
use crate::event_rows::{insert_events, InsertedByType, WriteMethod};
use crate::position::{PartitionOffset, Position, StoredPosition};

/// What went wrong with a write, classified by what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Connection trouble, restarts, timeouts, schema problems: retry the
    /// whole batch later; nothing was written.
    #[error("Postgres is unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// A data error (SQLSTATE class 22 or 23) or a program limit hit by a
    /// row (class 54: a value too large for an index, a jsonb too big):
    /// retrying the same rows cannot succeed, so the culprit must be isolated.
    #[error("Postgres rejected the data")]
    Rejected(#[source] sqlx::Error),
}

/// SQLSTATE classes caused by the data of a row rather than by the server.
const ROW_CAUSED_CLASSES: [&str; 3] = ["22", "23", "54"];

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        let row_caused = match &error {
            // "No partition of relation ... found for row" (23514 like a
            // CHECK violation, but naming no constraint): retention is
            // dropping that day's partition; a later attempt, once the drop
            // is done, creates it again.
            sqlx::Error::Database(db)
                if db.code().as_deref() == Some("23514") && db.constraint().is_none() =>
            {
                false
            }
            // "Invalid binary data" and "bad COPY file format": our binary
            // COPY encoding, or a staging table of another layout, not a
            // row. Bisection would dead-letter every valid event; retrying
            // keeps them (and the logs name the cause).
            sqlx::Error::Database(db)
                if matches!(db.code().as_deref(), Some("22P03" | "22P04")) =>
            {
                false
            }
            sqlx::Error::Database(db) => db
                .code()
                .is_some_and(|code| ROW_CAUSED_CLASSES.iter().any(|c| code.starts_with(c))),
            _ => false,
        };
        if row_caused {
            Self::Rejected(error)
        } else {
            Self::Unavailable(error)
        }
    }
}

/// Rows inserted by a committed batch, by type; the rest were already stored.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WriteOutcome {
    pub inserted_by_type: Vec<(EventType, u64)>,
    pub inserted: u64,
    pub already_stored: u64,
    /// The reason of each dead letter recorded for the first time.
    pub dead_lettered: Vec<RejectReason>,
}

/// How dead letters are recorded. `Plain` (the detail escaped to ASCII, no
/// message bytes) is the fallback for a dead-letter row Postgres refuses, so
/// that even then every message gets its one fate instead of a retry loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterForm {
    Full,
    Plain,
}

#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    group_id: String,
    topic: String,
    /// Width of a new `events` partition.
    partition_days: i32,
    method: WriteMethod,
}

impl Store {
    pub fn new(pool: PgPool, group_id: &str, topic: &str, partition_days: i32) -> Self {
        Self {
            pool,
            group_id: group_id.to_owned(),
            topic: topic.to_owned(),
            partition_days,
            method: WriteMethod::default(),
        }
    }

    /// Writes the event rows by `method` instead of the default.
    pub fn with_write_method(mut self, method: WriteMethod) -> Self {
        self.method = method;
        self
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// This database's random identity (see the migration), for Redis keys.
    pub async fn instance_id(&self) -> Result<Uuid, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT instance_id FROM eventpulse_instance")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// The stored position of each of `partitions` that has one.
    pub async fn stored_offsets(
        &self,
        partitions: &[i32],
    ) -> Result<Vec<StoredPosition>, StoreError> {
        let rows: Vec<(i32, i32, i64, Option<i64>)> = sqlx::query_as(
            "SELECT partition, epoch, next_offset, last_record_ms FROM consumer_offsets \
             WHERE group_id = $1 AND topic = $2 AND partition = ANY($3)",
        )
        .bind(&self.group_id)
        .bind(&self.topic)
        .bind(partitions)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(partition, epoch, offset, last_record_ms)| StoredPosition {
                    at: PartitionOffset {
                        partition,
                        position: Position { epoch, offset },
                    },
                    last_record_ms,
                },
            )
            .collect())
    }

    /// Moves a partition to a new epoch (its offsets are being reused). Like
    /// every offset write it only moves forward, so a zombie cannot undo it.
    pub async fn start_epoch(&self, start: PartitionOffset) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let start = StoredPosition {
            at: start,
            last_record_ms: None,
        };
        self.advance_offsets(&mut tx, &[start]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Gives the database a new random identity, so every Redis mark written
    /// under the old one is ignored from now on (Postgres lost commits that
    /// those marks vouch for). Returns the new identity.
    pub async fn rotate_instance_id(&self) -> Result<Uuid, StoreError> {
        Ok(sqlx::query_scalar(
            "UPDATE eventpulse_instance SET instance_id = gen_random_uuid() RETURNING instance_id",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Writes events, dead-letter records and next offsets in one transaction.
    pub async fn write_batch(
        &self,
        events: &[&PendingEvent],
        rejects: &[&RejectedMessage],
        form: DeadLetterForm,
        next_offsets: &[StoredPosition],
    ) -> Result<WriteOutcome, StoreError> {
        let mut tx = self.pool.begin().await?;
        let inserted_types =
            insert_events(&mut tx, events, self.partition_days, self.method).await?;
        if !inserted_types.is_empty() {
            // Delivered on commit only: the API's live feed then reads the new
            // rows. Skipped while the notification queue is half full (a
            // listener not reading): a full queue would fail the commit, and
            // the feed polls every second anyway.
            sqlx::query("SELECT pg_notify($1, '') WHERE pg_notification_queue_usage() < 0.5")
                .bind(eventpulse_service::feed::CHANNEL)
                .execute(&mut *tx)
                .await?;
        }
        let dead_lettered = self.insert_dead_letters(&mut tx, rejects, form).await?;
        self.advance_offsets(&mut tx, next_offsets).await?;
        tx.commit().await?;
        let mut outcome = outcome(events.len(), inserted_types);
        outcome.dead_lettered = dead_lettered
            .iter()
            .filter_map(|code| RejectReason::ALL.into_iter().find(|r| r.code() == code))
            .collect();
        Ok(outcome)
    }

    /// Finds the rows Postgres refuses on their own, by bisecting inside a
    /// transaction with savepoints that is rolled back at the end: nothing is
    /// stored here, the caller writes the good rows with [`Store::write_batch`].
    pub async fn find_rejected_rows(
        &self,
        events: &[&PendingEvent],
    ) -> Result<Vec<(usize, String)>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut rejected = Vec::new();
        let mut ranges: Vec<std::ops::Range<usize>> = Vec::with_capacity(16);
        ranges.push(0..events.len());
        while let Some(range) = ranges.pop() {
            if range.is_empty() {
                continue;
            }
            sqlx::query("SAVEPOINT isolate").execute(&mut *tx).await?;
            let slice = &events[range.clone()];
            match insert_events(&mut tx, slice, self.partition_days, self.method).await {
                Ok(_) => {
                    sqlx::query("RELEASE SAVEPOINT isolate")
                        .execute(&mut *tx)
                        .await?;
                }
                Err(StoreError::Rejected(error)) => {
                    sqlx::query("ROLLBACK TO SAVEPOINT isolate")
                        .execute(&mut *tx)
                        .await?;
                    if range.len() == 1 {
                        rejected.push((range.start, error.to_string()));
                    } else {
                        let middle = range.start + range.len() / 2;
                        ranges.push(middle..range.end);
                        ranges.push(range.start..middle);
                    }
                }
                Err(unavailable) => return Err(unavailable),
            }
        }
        tx.rollback().await?;
        rejected.sort_unstable_by_key(|(index, _)| *index);
        Ok(rejected)
    }

    /// Returns the reason of each row inserted (a replay inserts none).
    async fn insert_dead_letters(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        rejects: &[&RejectedMessage],
        form: DeadLetterForm,
    ) -> Result<Vec<String>, StoreError> {
        if rejects.is_empty() {
            return Ok(Vec::new());
        }
        let partitions: Vec<i32> = rejects.iter().map(|r| r.origin.partition).collect();
        let epochs: Vec<i32> = rejects.iter().map(|r| r.origin.epoch).collect();
        let offsets: Vec<i64> = rejects.iter().map(|r| r.origin.offset).collect();
        let reasons: Vec<&str> = rejects.iter().map(|r| r.rejection.reason.code()).collect();
        let plain = form == DeadLetterForm::Plain;
        let details: Vec<String> = rejects
            .iter()
            .map(|r| match form {
                DeadLetterForm::Full => r.rejection.detail.clone(),
                DeadLetterForm::Plain => r.rejection.detail.escape_default().to_string(),
            })
            .collect();
        let keys: Vec<Option<&[u8]>> = rejects
            .iter()
            .map(|r| r.key.as_deref().filter(|_| !plain))
            .collect();
        let values: Vec<Option<&[u8]>> = rejects
            .iter()
            .map(|r| r.value.as_deref().filter(|_| !plain))
            .collect();
        let rows: Vec<String> = sqlx::query_scalar(
            "INSERT INTO dead_letters \
               (topic, kafka_partition, epoch, kafka_offset, reason, detail, message_key, message_value) \
             SELECT $1, * FROM UNNEST($2::int4[], $3::int4[], $4::int8[], $5::text[], $6::text[], $7::bytea[], $8::bytea[]) \
             ON CONFLICT DO NOTHING RETURNING reason",
        )
        .bind(&self.topic)
        .bind(partitions)
        .bind(epochs)
        .bind(offsets)
        .bind(reasons)
        .bind(details)
        .bind(keys)
        .bind(values)
        .fetch_all(&mut **tx)
        .await?;
        Ok(rows)
    }

    /// Positions only move forward, by (epoch, offset): a consumer that lost
    /// its partitions while stalled (a zombie) may still commit, and must not
    /// move one back.
    async fn advance_offsets(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        next_offsets: &[StoredPosition],
    ) -> Result<(), StoreError> {
        let partitions: Vec<i32> = next_offsets.iter().map(|o| o.at.partition).collect();
        let epochs: Vec<i32> = next_offsets.iter().map(|o| o.at.position.epoch).collect();
        let offsets: Vec<i64> = next_offsets.iter().map(|o| o.at.position.offset).collect();
        let last: Vec<Option<i64>> = next_offsets.iter().map(|o| o.last_record_ms).collect();
        sqlx::query(
            "INSERT INTO consumer_offsets (group_id, topic, partition, epoch, next_offset, last_record_ms) \
             SELECT $1, $2, * FROM UNNEST($3::int4[], $4::int4[], $5::int8[], $6::int8[]) \
             ON CONFLICT (group_id, topic, partition) DO UPDATE \
             SET epoch = EXCLUDED.epoch, next_offset = EXCLUDED.next_offset, \
                 last_record_ms = EXCLUDED.last_record_ms, updated_at = now() \
             WHERE (consumer_offsets.epoch, consumer_offsets.next_offset) \
                 < (EXCLUDED.epoch, EXCLUDED.next_offset)",
        )
        .bind(&self.group_id)
        .bind(&self.topic)
        .bind(partitions)
        .bind(epochs)
        .bind(offsets)
        .bind(last)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

fn outcome(attempted: usize, inserted_types: InsertedByType) -> WriteOutcome {
    let inserted = inserted_types.iter().map(|(_, n)| *n as u64).sum();
    let inserted_by_type = EventType::ALL
        .into_iter()
        .map(|t| {
            (
                t,
                inserted_types
                    .iter()
                    .filter(|(s, _)| s == t.as_str())
                    .map(|(_, n)| *n as u64)
                    .sum(),
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    WriteOutcome {
        inserted_by_type,
        inserted,
        already_stored: attempted as u64 - inserted,
        dead_lettered: Vec::new(),
    }
}
