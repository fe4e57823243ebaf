//! How a batch's event rows reach Postgres, inside the caller's transaction.
//! Either way the same SQL stores them (see the migrations): ids first into
//! `event_ids`, rows for the new ids into their time partitions (created on
//! demand), and the rollups from the rows actually inserted.
//!
//! - [`WriteMethod::Copy`] (the default): the rows are streamed in binary
//!   `COPY` into a temporary staging table of the session, then
//!   `eventpulse_store_staged()` moves them. No arrays are built or parsed,
//!   and the rows are encoded straight from the validated events.
//! - [`WriteMethod::Unnest`]: one call of `eventpulse_store_events` with
//!   seven array parameters, the statement of before. It needs no temporary
//!   table, so it is the fallback for a role that may not create one.

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};

use crate::batch::PendingEvent;
use crate::copy_binary;
use crate::store::StoreError;

/// `--write-method`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteMethod {
    #[default]
    Copy,
    Unnest,
}

/// Bytes handed to the connection at a time: the whole batch is never
/// encoded at once, so the encoding adds at most this much memory.
const CHUNK_BYTES: usize = 256 * 1024;

/// Rows inserted, by event type (types with none are left out).
pub type InsertedByType = Vec<(String, i64)>;

/// Stores `events`; returns how many rows of each type were inserted.
pub async fn insert_events(
    conn: &mut PgConnection,
    events: &[&PendingEvent],
    partition_days: i32,
    method: WriteMethod,
) -> Result<InsertedByType, StoreError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    match method {
        WriteMethod::Copy => insert_by_copy(conn, events, partition_days).await,
        WriteMethod::Unnest => insert_by_unnest(conn, events, partition_days).await,
    }
}

async fn insert_by_copy(
    conn: &mut PgConnection,
    events: &[&PendingEvent],
    partition_days: i32,
) -> Result<InsertedByType, StoreError> {
    prepare_staging(conn).await?;
    let mut copy = conn.copy_in_raw(copy_binary::COPY_INTO_STAGING).await?;
    let mut buf = Vec::with_capacity(CHUNK_BYTES + 4096);
    copy_binary::header(&mut buf);
    for (ord, pending) in events.iter().enumerate() {
        if buf.len() + copy_binary::row_len(pending) > CHUNK_BYTES && !buf.is_empty() {
            copy.send(buf.as_slice()).await?;
            buf.clear();
        }
        copy_binary::row(&mut buf, pending, ord as i32);
    }
    copy_binary::trailer(&mut buf);
    copy.send(buf.as_slice()).await?;
    drop(buf);
    copy.finish().await?;
    Ok(sqlx::query_as("SELECT * FROM eventpulse_store_staged($1)")
        .bind(partition_days)
        .fetch_all(&mut *conn)
        .await?)
}

/// Makes sure the session has its staging table (see the migration): made
/// by its first batch and checked by every one, since a pooler may hand over
/// a new session.
pub async fn prepare_staging(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT eventpulse_prepare_staging()")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn insert_by_unnest(
    conn: &mut PgConnection,
    events: &[&PendingEvent],
    partition_days: i32,
) -> Result<InsertedByType, StoreError> {
    let mut ids = Vec::with_capacity(events.len());
    let mut types = Vec::with_capacity(events.len());
    let mut users = Vec::with_capacity(events.len());
    let mut times = Vec::with_capacity(events.len());
    let mut payloads = Vec::with_capacity(events.len());
    let mut partitions = Vec::with_capacity(events.len());
    let mut offsets = Vec::with_capacity(events.len());
    for pending in events {
        let event = &pending.event;
        ids.push(event.event_id);
        types.push(event.event_type.as_str());
        users.push(event.user_id.as_str());
        times.push(event.occurred_at);
        payloads.push(event.payload.as_str());
        partitions.push(pending.origin.partition);
        offsets.push(pending.origin.offset);
    }
    Ok(sqlx::query_as(
        "SELECT t, count(*) FROM eventpulse_store_events($1::uuid[], $2::text[], $3::text[], \
         $4::timestamptz[], $5::text[], $6::int4[], $7::int8[], $8) AS t GROUP BY 1",
    )
    .bind(ids)
    .bind(types)
    .bind(users)
    .bind(times)
    .bind(payloads)
    .bind(partitions)
    .bind(offsets)
    .bind(partition_days)
    .fetch_all(&mut *conn)
    .await?)
}

/// Refuses to start with [`WriteMethod::Copy`] under a role that may not
/// create temporary tables (`REVOKE TEMP ... FROM PUBLIC` on some managed or
/// hardened servers): every batch would fail to stage and be retried forever.
pub async fn check_method(pool: &PgPool, method: WriteMethod) -> anyhow::Result<()> {
    if method != WriteMethod::Copy {
        return Ok(());
    }
    let allowed: bool =
        sqlx::query_scalar("SELECT has_database_privilege(current_database(), 'TEMP')")
            .fetch_one(pool)
            .await
            .context("asking Postgres whether this role may create temporary tables")?;
    anyhow::ensure!(
        allowed,
        "the database role may not create temporary tables, which --write-method copy stages \
         each batch in: GRANT TEMP ON DATABASE to it, or set --write-method unnest \
         (EVENTPULSE_WRITE_METHOD=unnest)"
    );
    Ok(())
}
