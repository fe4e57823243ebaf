//! Each component alone, as fast as it goes on this machine. Where the
//! consumer has code for a component, the ceiling runs that same code, so the
//! end-to-end ratio compares like with like.

use std::time::{Duration, Instant};

use chrono::Utc;
use eventpulse_consumer::batch::{Origin, PendingEvent};
use eventpulse_consumer::dedup::{FilterSettings, RedisFilter};
use eventpulse_consumer::metrics::Metrics;
use eventpulse_consumer::position::{PartitionOffset, Position, StoredPosition};
use eventpulse_consumer::schema;
use eventpulse_consumer::store::{DeadLetterForm, Store};
use eventpulse_events::{validate, Event, EventBody, Limits, PageViewPayload};
use eventpulse_testkit::{brokers, TestDatabase};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use uuid::Uuid;

/// Items handled in some time.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Rate {
    pub items: u64,
    pub seconds: f64,
}

impl Rate {
    pub fn since(items: u64, started: Instant) -> Self {
        Self {
            items,
            seconds: started.elapsed().as_secs_f64(),
        }
    }

    pub fn per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.items as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// Reads `expected` messages from every partition of `topic` with no
/// processing at all: the broker's fetch ceiling for these messages.
pub fn kafka_drain(topic: &str, partitions: i32, expected: u64) -> anyhow::Result<Rate> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", format!("{topic}-drain"))
        .set("enable.auto.commit", "false")
        .set("queued.max.messages.kbytes", "16384")
        .set("fetch.max.bytes", "8388608")
        .create()?;
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&list)?;
    let started = Instant::now();
    let mut seen = 0u64;
    while seen < expected {
        match consumer.poll(Duration::from_secs(10)) {
            Some(Ok(_)) => seen += 1,
            Some(Err(e)) => anyhow::bail!("draining {topic}: {e}"),
            None => anyhow::bail!(
                "draining {topic}: nothing for 10 s after {seen} of {expected} messages"
            ),
        }
    }
    Ok(Rate::since(seen, started))
}

/// The consumer's Redis protocol alone: one claim and one confirm pipeline per
/// batch. Items are events (two Redis commands each).
pub async fn redis_claim_confirm(url: &str, rows: usize, batch: usize) -> anyhow::Result<Rate> {
    let settings = FilterSettings {
        timeout: Duration::from_secs(10),
        dedup_ttl: Duration::from_secs(600),
        pending_ttl: Duration::from_secs(30),
    };
    let mut filter = RedisFilter::new(url, Uuid::new_v4(), settings, Metrics::new())?;
    let ids: Vec<Uuid> = (0..rows).map(|_| Uuid::new_v4()).collect();
    let started = Instant::now();
    for chunk in ids.chunks(batch) {
        filter
            .claim(chunk)
            .await
            .ok_or_else(|| anyhow::anyhow!("Redis did not answer the claim"))?;
        filter.confirm(chunk).await;
    }
    Ok(Rate::since(rows as u64, started))
}

/// `rows` realistic page_view events, validated like the consumer does.
pub fn synthetic_events(rows: usize) -> Vec<PendingEvent> {
    (0..rows)
        .map(|i| {
            let user_id = format!("user-{}", i % 5000);
            let event = Event {
                event_id: Uuid::new_v4(),
                timestamp: Utc::now().fixed_offset(),
                body: EventBody::PageView(PageViewPayload {
                    user_id,
                    page: format!("/products/{}/reviews", i % 977),
                    referrer: Some("https://www.example.com/search?q=shoes".into()),
                    device: Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0".into()),
                }),
            };
            let value = event.to_json();
            let valid = validate(&value, &Limits::default(), Utc::now())
                .expect("synthetic events are valid");
            let origin = Origin {
                partition: (i % 12) as i32,
                offset: (i / 12) as i64,
                epoch: 0,
                timestamp_ms: None,
            };
            PendingEvent {
                event: valid.into(),
                origin,
                key: None,
                value,
            }
        })
        .collect()
}

fn next_offset(offset: i64) -> StoredPosition {
    StoredPosition {
        at: PartitionOffset {
            partition: 0,
            position: Position { epoch: 0, offset },
        },
        last_record_ms: None,
    }
}

/// The consumer's own batch transaction (`Store::write_batch`: one UNNEST
/// insert plus the offsets upsert), into a fresh database with the real schema.
pub async fn postgres_write_batch(events: &[PendingEvent], batch: usize) -> anyhow::Result<Rate> {
    let db = TestDatabase::create().await?;
    let pool = schema::connect(&db.url, 2).await?;
    schema::migrate(&pool).await?;
    let store = Store::new(pool.clone(), "bench", "bench", 1);
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
    pool.close().await;
    db.drop_now().await?;
    Ok(rate)
}

/// The same batches as [`postgres_write_batch`], written the way every
/// batch was before time partitions and rollups: one `INSERT ... SELECT FROM
/// UNNEST ... ON CONFLICT (event_id) DO NOTHING` into the unpartitioned
/// table (the schema of the migrations before them) plus the offsets, in one
/// transaction. What partitioning and rollups cost on the write side.
pub async fn postgres_write_batch_unpartitioned(
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
        sqlx::query(
            "INSERT INTO consumer_offsets (group_id, topic, partition, epoch, next_offset) \
             VALUES ('bench', 'bench', 0, 0, $1) \
             ON CONFLICT (group_id, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset",
        )
        .bind(last)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    let rate = Rate::since(events.len() as u64, started);
    pool.close().await;
    db.drop_now().await?;
    Ok(rate)
}

/// COPY straight into `events` (no conflict handling, so not usable for
/// exactly-once as is): the fastest way rows get into that table.
pub async fn postgres_copy(events: &[PendingEvent], batch: usize) -> anyhow::Result<Rate> {
    let db = TestDatabase::create().await?;
    let pool = schema::connect(&db.url, 2).await?;
    schema::migrate(&pool).await?;
    let mut connection = pool.acquire().await?;
    // COPY cannot create the day's partition as the consumer's writes do.
    sqlx::query("SELECT eventpulse_ensure_partitions(ARRAY[now() - interval '1 hour', now()], 1)")
        .execute(&mut *connection)
        .await?;
    let started = Instant::now();
    for chunk in events.chunks(batch) {
        let mut text = String::with_capacity(chunk.len() * 400);
        for pending in chunk {
            let e = &pending.event;
            let payload = e.payload.replace('\\', "\\\\");
            text.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                e.event_id,
                e.event_type,
                e.user_id,
                e.occurred_at.to_rfc3339(),
                payload,
                pending.origin.partition,
                pending.origin.offset
            ));
        }
        let mut copy = connection
            .copy_in_raw("COPY events (event_id, event_type, user_id, occurred_at, payload, kafka_partition, kafka_offset) FROM STDIN")
            .await?;
        copy.send(text.into_bytes()).await?;
        copy.finish().await?;
    }
    let rate = Rate::since(events.len() as u64, started);
    drop(connection);
    pool.close().await;
    db.drop_now().await?;
    Ok(rate)
}
