//! Each component alone, as fast as it goes on this machine. Where the
//! consumer has code for a component, the ceiling runs that same code, so the
//! end-to-end ratio compares like with like.

use std::time::{Duration, Instant};

use chrono::Utc;
use eventpulse_consumer::batch::{Origin, PendingEvent};
use eventpulse_consumer::dedup::{FilterSettings, RedisFilter};
use eventpulse_consumer::metrics::Metrics;
use eventpulse_consumer::position::{PartitionOffset, Position, StoredPosition};
use eventpulse_events::{validate, Event, EventBody, Limits, PageViewPayload};
use eventpulse_testkit::brokers;
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

/// Position of a ceiling's batch ending before `offset`.
pub fn next_offset(offset: i64) -> StoredPosition {
    StoredPosition {
        at: PartitionOffset {
            partition: 0,
            position: Position { epoch: 0, offset },
        },
        last_record_ms: None,
    }
}
