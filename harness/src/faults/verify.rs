//! The exact check after a fault scenario, from first principles: read back
//! every message in the topic, validate it the way the consumer does, and
//! compare with what Postgres, the dead-letter topic and the offsets say,
//! and check that the rollups equal a recount of the stored rows.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use eventpulse_consumer::receive::record_time;
use eventpulse_consumer::rollups;
use eventpulse_events::{validate, Limits};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use uuid::Uuid;

use crate::procs::Target;

/// What was sent, what was stored, and whether the offsets are consistent.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Verdict {
    pub messages: u64,
    pub valid_distinct: u64,
    pub invalid: u64,
    pub stored: u64,
    pub lost: u64,
    pub extra: u64,
    /// Rows beyond the first for an id (the store must make this 0).
    pub duplicate_rows: u64,
    pub dlq_rows: u64,
    pub dlq_records: u64,
    /// The rollups equal a recount of the stored rows.
    pub rollups_exact: bool,
    /// Postgres offsets cover every message of every partition.
    pub offsets_complete: bool,
    /// Kafka's committed offset never exceeds the one stored in Postgres.
    pub kafka_not_ahead: bool,
}

impl Verdict {
    /// Nothing lost, nothing twice, every invalid message dead-lettered once.
    pub fn exact(&self) -> bool {
        self.lost == 0
            && self.extra == 0
            && self.duplicate_rows == 0
            && self.rollups_exact
            && self.stored == self.valid_distinct
            && self.dlq_rows == self.invalid
            && self.dlq_records >= self.invalid
            && self.offsets_complete
            && self.kafka_not_ahead
    }
}

pub async fn verify(target: &Target, partitions: i32) -> anyhow::Result<Verdict> {
    let brokers = target.services.brokers.clone();
    let topic = target.topic.clone();
    let (messages, expected, invalid, ends) =
        tokio::task::spawn_blocking(move || read_topic(&brokers, &topic, partitions)).await??;
    let brokers = target.services.brokers.clone();
    let dlq = format!("{}.dlq", target.topic);
    let dlq_records =
        tokio::task::spawn_blocking(move || read_topic(&brokers, &dlq, 1).map(|r| r.0)).await??;

    let rows: Vec<Uuid> = sqlx::query_scalar("SELECT event_id FROM events")
        .fetch_all(&target.pool)
        .await?;
    let stored: HashSet<Uuid> = rows.iter().copied().collect();
    let (from, to) = rollups::day_range(&target.pool, None, None).await?;
    let rollup_check = rollups::check(&target.pool, from, to).await?;
    if !rollup_check.exact() {
        eprintln!("rollups differ from the rows: {rollup_check:?}");
    }
    let dlq_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letters")
        .fetch_one(&target.pool)
        .await?;
    let stored_offsets: HashMap<i32, i64> = sqlx::query_as::<_, (i32, i64)>(
        "SELECT partition, next_offset FROM consumer_offsets WHERE group_id = $1",
    )
    .bind(&target.group)
    .fetch_all(&target.pool)
    .await?
    .into_iter()
    .collect();
    let offsets_complete = ends
        .iter()
        .all(|(p, end)| *end == 0 || stored_offsets.get(p) == Some(end));
    let kafka_not_ahead = kafka_committed(target, partitions)?
        .into_iter()
        .all(|(p, committed)| committed <= stored_offsets.get(&p).copied().unwrap_or(0));
    Ok(Verdict {
        messages,
        valid_distinct: expected.len() as u64,
        invalid,
        stored: stored.len() as u64,
        lost: expected.difference(&stored).count() as u64,
        duplicate_rows: (rows.len() - stored.len()) as u64,
        rollups_exact: rollup_check.exact(),
        extra: stored.difference(&expected).count() as u64,
        dlq_rows: dlq_rows as u64,
        dlq_records,
        offsets_complete,
        kafka_not_ahead,
    })
}

type TopicContents = (u64, HashSet<Uuid>, u64, HashMap<i32, i64>);

/// Every message of `topic`: count, distinct valid ids, invalid count, and
/// the end offset of each partition.
fn read_topic(brokers: &str, topic: &str, partitions: i32) -> anyhow::Result<TopicContents> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", eventpulse_testkit::unique_name("verify"))
        .set("enable.auto.commit", "false")
        .create()?;
    let mut ends = HashMap::new();
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        let (low, high) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(10))?;
        ends.insert(partition, high);
        if high > low {
            list.add_partition_offset(topic, partition, Offset::Offset(low))?;
        }
    }
    let total: i64 = ends.values().sum();
    consumer.assign(&list)?;
    let (mut messages, mut invalid, mut valid) = (0u64, 0u64, HashSet::new());
    let limits = Limits::default();
    while (messages as i64) < total {
        match consumer.poll(Duration::from_secs(15)) {
            Some(Ok(message)) => {
                messages += 1;
                // Judged as the consumer judges it: against the record's timestamp.
                let at = record_time(&message);
                match validate(message.payload().unwrap_or_default(), &limits, at) {
                    Ok(event) => {
                        valid.insert(event.event_id);
                    }
                    Err(_) => invalid += 1,
                }
            }
            Some(Err(e)) => anyhow::bail!("reading {topic} back: {e}"),
            None => anyhow::bail!("reading {topic} back: stalled after {messages} of {total}"),
        }
    }
    Ok((messages, valid, invalid, ends))
}

fn kafka_committed(target: &Target, partitions: i32) -> anyhow::Result<Vec<(i32, i64)>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &target.services.brokers)
        .set("group.id", &target.group)
        .create()?;
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition(&target.topic, partition);
    }
    let committed = consumer.committed_offsets(list, Duration::from_secs(10))?;
    Ok(committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect())
}
