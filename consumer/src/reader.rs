//! A consumer outside the group that reads one record by offset: how a
//! starting partition checks that the record before its stored position is
//! still the one it stored (see `resume.rs`). It uses the group consumer's
//! connection settings (`-X` included, so TLS and SASL apply), never joins
//! the group and never commits.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::config::Settings;

pub struct RecordReader {
    consumer: BaseConsumer,
    topic: String,
}

impl RecordReader {
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &settings.brokers);
        for (key, value) in &settings.kafka_properties {
            config.set(key, value);
        }
        config
            .set("group.id", format!("{}.record-reader", settings.group_id))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // It reads one record at a time: a small prefetch keeps it out
            // of the memory budget (a record larger than this still arrives).
            .set("queued.max.messages.kbytes", "1024")
            .set("fetch.max.bytes", "1048576")
            .set("max.partition.fetch.bytes", "1048576");
        let consumer = config
            .create()
            .context("creating the Kafka record reader (check -X / EVENTPULSE_KAFKA_PROPERTIES)")?;
        Ok(Self {
            consumer,
            topic: settings.topic.clone(),
        })
    }

    /// The topic's partitions. Blocks.
    pub fn partitions(&self, timeout: Duration) -> anyhow::Result<Vec<i32>> {
        let metadata = self
            .consumer
            .fetch_metadata(Some(&self.topic), timeout)
            .with_context(|| format!("reading the partitions of {}", self.topic))?;
        let topic = metadata.topics().first();
        let partitions: Vec<i32> = topic
            .map(|t| t.partitions().iter().map(|p| p.id()).collect())
            .unwrap_or_default();
        anyhow::ensure!(
            !partitions.is_empty(),
            "topic {} has no partitions",
            self.topic
        );
        Ok(partitions)
    }

    /// (low, high) watermarks of `partition`. Blocks.
    pub fn watermarks(&self, partition: i32, timeout: Duration) -> KafkaResult<(i64, i64)> {
        self.consumer
            .fetch_watermarks(&self.topic, partition, timeout)
    }

    /// The first offset of `partition` whose timestamp is at or after
    /// `at_ms`, or `None` if every record is older. Blocks.
    pub fn offset_at_time(
        &self,
        partition: i32,
        at_ms: i64,
        timeout: Duration,
    ) -> KafkaResult<Option<i64>> {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&self.topic, partition, Offset::Offset(at_ms))?;
        let found = self.consumer.offsets_for_times(list, timeout)?;
        Ok(found
            .find_partition(&self.topic, partition)
            .and_then(|p| match p.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            }))
    }

    /// The Kafka timestamp of the record at `offset`, or `None` if there is
    /// no record exactly there (compacted away, a transaction marker); an
    /// error if none arrived within `timeout`. Blocks: call it on a blocking
    /// thread.
    pub fn timestamp_at(
        &self,
        partition: i32,
        offset: i64,
        timeout: Duration,
    ) -> KafkaResult<Option<i64>> {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&self.topic, partition, Offset::Offset(offset))?;
        self.consumer.assign(&list)?;
        let deadline = Instant::now() + timeout;
        // Errors queued while the reader sat idle (a broker connection that
        // came and went) are not about this read: keep reading past them.
        let mut last_error = None;
        let found = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.consumer.poll(left) {
                Some(Ok(record)) if record.partition() == partition => {
                    break Ok((record.offset() == offset)
                        .then(|| record.timestamp().to_millis())
                        .flatten());
                }
                Some(Ok(_)) => {}
                Some(Err(e)) if !left.is_zero() => last_error = Some(e),
                // Not knowing is not "no record there": the caller retries.
                Some(Err(_)) | None => {
                    break Err(last_error.unwrap_or(KafkaError::MessageConsumption(
                        RDKafkaErrorCode::OperationTimedOut,
                    )))
                }
            }
        };
        self.consumer.unassign()?;
        found
    }
}
