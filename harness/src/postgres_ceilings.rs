//! Postgres alone, writing the same synthetic batches into the final schema
//! (time partitions, `event_ids`, rollups), one transaction per batch with
//! the offsets upsert the consumer makes too. Two measures of what Postgres
//! itself can take, with no client work timed:
//! - server-side: the rows already in a table of the database, each batch
//!   moved by `INSERT ... SELECT` into the staging table and stored by the
//!   consumer's SQL function;
//! - binary COPY: each batch pre-encoded (untimed), then streamed and stored
//!   the same way.
//!
//! The higher of the two is the Postgres ceiling the consumer is held to.
//! The consumer's own `Store::write_batch` (encoding included), by either
//! write method, and the batches into the unpartitioned table of before, are
//! measured beside them.

use std::time::Instant;

use eventpulse_consumer::batch::PendingEvent;
use eventpulse_consumer::copy_binary;
use eventpulse_consumer::event_rows::{self, WriteMethod};
use eventpulse_consumer::schema;
use eventpulse_consumer::store::{DeadLetterForm, Store};
use eventpulse_testkit::TestDatabase;
use sqlx::{Acquire, PgConnection, PgPool};

use crate::ceilings::{next_offset, Rate};

/// A fresh database with the current schema, and a pool on it.
async fn fresh() -> anyhow::Result<(TestDatabase, PgPool)> {
    let db = TestDatabase::create().await?;
    let pool = schema::connect(&db.url, 2).await?;
    schema::migrate(&pool).await?;
    Ok((db, pool))
}

async fn finish(db: TestDatabase, pool: PgPool) -> anyhow::Result<()> {
    pool.close().await;
    db.drop_now().await
}

/// `events` as one binary COPY stream, `ord` counting from 0 over all of them.
fn encode(events: &[PendingEvent], first_ord: usize) -> Vec<u8> {
    let size: usize = events.iter().map(copy_binary::row_len).sum();
    let mut buf = Vec::with_capacity(size + 32);
    copy_binary::header(&mut buf);
    for (i, pending) in events.iter().enumerate() {
        copy_binary::row(&mut buf, pending, (first_ord + i) as i32);
    }
    copy_binary::trailer(&mut buf);
    buf
}

/// Stores the `rows` staged (all new: the synthetic events are distinct)
/// and advances the offset: the tail of every measured batch.
async fn store_staged(conn: &mut PgConnection, rows: usize) -> anyhow::Result<()> {
    let inserted: i64 =
        sqlx::query_scalar("SELECT coalesce(sum(events), 0)::int8 FROM eventpulse_store_staged(1)")
            .fetch_one(&mut *conn)
            .await?;
    anyhow::ensure!(inserted as usize == rows, "synthetic events are distinct");
    advance_offset(conn, rows as i64).await
}

/// The offsets upsert every measured batch makes, as the consumer's does.
async fn advance_offset(conn: &mut PgConnection, next: i64) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO consumer_offsets (group_id, topic, partition, epoch, next_offset) \
         VALUES ('bench', 'bench', 0, 0, $1) \
         ON CONFLICT (group_id, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset",
    )
    .bind(next)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Server-side `INSERT ... SELECT`: the rows are loaded into a plain table
/// first (untimed), then moved batch by batch.
pub async fn server_side(events: &[PendingEvent], batch: usize) -> anyhow::Result<Rate> {
    let (db, pool) = fresh().await?;
    let mut conn = pool.acquire().await?;
    sqlx::query(
        "CREATE TABLE bench_source (event_id uuid, event_type text, user_id text, \
         occurred_at timestamptz, payload jsonb, kafka_partition integer, kafka_offset bigint, \
         ord integer PRIMARY KEY)",
    )
    .execute(&mut *conn)
    .await?;
    let statement = format!(
        "COPY bench_source ({}) FROM STDIN (FORMAT binary)",
        copy_binary::COLUMNS
    );
    let mut copy = conn.copy_in_raw(&statement).await?;
    copy.send(encode(events, 0)).await?;
    copy.finish().await?;
    sqlx::query("VACUUM ANALYZE bench_source")
        .execute(&mut *conn)
        .await?;
    let started = Instant::now();
    for (n, chunk) in events.chunks(batch).enumerate() {
        let mut tx = conn.begin().await?;
        event_rows::prepare_staging(&mut tx).await?;
        let from = (n * batch) as i32;
        sqlx::query(
            "INSERT INTO pg_temp.eventpulse_staged SELECT * FROM bench_source \
             WHERE ord >= $1 AND ord < $2",
        )
        .bind(from)
        .bind(from + chunk.len() as i32)
        .execute(&mut *tx)
        .await?;
        store_staged(&mut tx, chunk.len()).await?;
        tx.commit().await?;
    }
    let rate = Rate::since(events.len() as u64, started);
    drop(conn);
    finish(db, pool).await?;
    Ok(rate)
}

/// Binary COPY of pre-encoded batches into the staging table, then stored.
pub async fn copy_binary(events: &[PendingEvent], batch: usize) -> anyhow::Result<Rate> {
    let (db, pool) = fresh().await?;
    let encoded: Vec<Vec<u8>> = events.chunks(batch).map(|c| encode(c, 0)).collect();
    let mut conn = pool.acquire().await?;
    let started = Instant::now();
    for (bytes, chunk) in encoded.iter().zip(events.chunks(batch)) {
        let mut tx = conn.begin().await?;
        event_rows::prepare_staging(&mut tx).await?;
        let mut copy = tx.copy_in_raw(copy_binary::COPY_INTO_STAGING).await?;
        copy.send(bytes.as_slice()).await?;
        copy.finish().await?;
        store_staged(&mut tx, chunk.len()).await?;
        tx.commit().await?;
    }
    let rate = Rate::since(events.len() as u64, started);
    drop(conn);
    finish(db, pool).await?;
    Ok(rate)
}

/// The consumer's own batch transaction (`Store::write_batch`, encoding
/// and all), by `method`.
pub async fn write_batch(
    events: &[PendingEvent],
    batch: usize,
    method: WriteMethod,
) -> anyhow::Result<Rate> {
    let (db, pool) = fresh().await?;
    let store = Store::new(pool.clone(), "bench", "bench", 1).with_write_method(method);
    let started = Instant::now();
    for chunk in events.chunks(batch) {
        let refs: Vec<&PendingEvent> = chunk.iter().collect();
        let last = chunk.last().map_or(0, |e| e.origin.offset + 1);
        store
            .write_batch(&refs, &[], DeadLetterForm::Full, &[next_offset(last)])
            .await
            .map_err(anyhow::Error::new)?;
    }
    let rate = Rate::since(events.len() as u64, started);
    finish(db, pool).await?;
    Ok(rate)
}

/// The same batches written the way every batch was before time partitions
/// and rollups: one `INSERT ... SELECT FROM UNNEST ... ON CONFLICT (event_id)
/// DO NOTHING` into the unpartitioned table (the schema of the migrations
/// before them) plus the offsets, in one transaction. What partitioning and
/// rollups cost on the write side.
pub async fn write_batch_unpartitioned(
    events: &[PendingEvent],
    batch: usize,
) -> anyhow::Result<Rate> {
    let db = TestDatabase::create().await?;
    let pool = schema::connect(&db.url, 2).await?;
    schema::unpartitioned_migrator().run(&pool).await?;
    let started = Instant::now();
    for chunk in events.chunks(batch) {
        let e = |f: fn(&PendingEvent) -> String| chunk.iter().map(f).collect::<Vec<_>>();
        let mut tx = pool.begin().await?;
        let inserted: Vec<String> = sqlx::query_scalar(
            "INSERT INTO events (event_id, event_type, user_id, occurred_at, payload, kafka_partition, kafka_offset) \
             SELECT id, kind, user_id, at, payload::jsonb, part, off \
             FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::int4[], $7::int8[]) \
                  AS batch(id, kind, user_id, at, payload, part, off) \
             ON CONFLICT (event_id) DO NOTHING RETURNING event_type",
        )
        .bind(chunk.iter().map(|p| p.event.event_id).collect::<Vec<_>>())
        .bind(e(|p| p.event.event_type.as_str().to_owned()))
        .bind(e(|p| p.event.user_id.clone()))
        .bind(chunk.iter().map(|p| p.event.occurred_at).collect::<Vec<_>>())
        .bind(e(|p| p.event.payload.clone()))
        .bind(chunk.iter().map(|p| p.origin.partition).collect::<Vec<_>>())
        .bind(chunk.iter().map(|p| p.origin.offset).collect::<Vec<_>>())
        .fetch_all(&mut *tx)
        .await?;
        anyhow::ensure!(
            inserted.len() == chunk.len(),
            "synthetic events are distinct"
        );
        let last = chunk.last().map_or(0, |e| e.origin.offset + 1);
        advance_offset(&mut tx, last).await?;
        tx.commit().await?;
    }
    let rate = Rate::since(events.len() as u64, started);
    finish(db, pool).await?;
    Ok(rate)
}
