//! The Kafka consumer: its configuration, the group callbacks, and the
//! start-up check that the brokers answer and the topics exist.
//!
//! rust-rdkafka runs rebalance callbacks synchronously inside `recv()`, on the
//! pipeline's own task. They hand every change to the commit stage
//! ([`Commits`], the one owner of partition state): an assignment is only
//! recorded there (the partitions are assigned to librdkafka later, with the
//! start offsets read from Postgres, so no seek is ever needed); a revoke
//! commits the revoked partitions' durable offsets synchronously before
//! librdkafka hands them to another member.

use anyhow::Context as _;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientConfig, ClientContext, Statistics, TopicPartitionList};

use crate::commit::Commits;
use crate::config::Settings;
use crate::metrics::{Dependency, Metrics};

pub type EventConsumer = StreamConsumer<GroupContext>;

/// What the librdkafka callbacks share with the pipeline.
pub struct GroupContext {
    topic: String,
    metrics: Metrics,
    pub commits: Commits,
}

impl GroupContext {
    fn partitions_of(&self, list: &TopicPartitionList) -> Vec<i32> {
        list.elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect()
    }
}

impl ClientContext for GroupContext {
    /// librdkafka's statistics carry each partition's lag behind its high
    /// watermark, and show a partition whose offsets went back.
    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.topic) else {
            return;
        };
        for (partition, stats) in &topic.partitions {
            if *partition >= 0 && stats.consumer_lag >= 0 {
                self.metrics
                    .consumer_lag
                    .with_label_values(&[&partition.to_string()])
                    .set(stats.consumer_lag);
            }
            // A fetch position past the end never catches up by itself (the
            // new messages below it would be skipped): decide it again.
            if *partition >= 0
                && stats.fetch_state == "active"
                && stats.hi_offset >= 0
                && stats.next_offset > stats.hi_offset
            {
                self.commits
                    .past_the_end(*partition, stats.next_offset, stats.hi_offset);
            }
        }
    }
}

impl ConsumerContext for GroupContext {
    /// Replaces rust-rdkafka's default, which assigns at once from Kafka's
    /// committed offsets: here the assignment waits for Postgres' positions
    /// (librdkafka lets the application make the assign call later).
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        list: &mut TopicPartitionList,
    ) {
        let partitions = self.partitions_of(list);
        match err {
            // librdkafka hands out an assignment after every revoke, often an
            // empty one, and holds the member (its other partitions paused,
            // the group unable to move on) until it is acknowledged by an
            // assign call: an empty one is acknowledged here and now.
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS if partitions.is_empty() => {
                if let Err(e) = consumer.incremental_assign(list) {
                    self.metrics.failed(
                        Dependency::Kafka,
                        &anyhow::Error::new(e).context("acknowledging an empty assignment"),
                    );
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.commits.assigned(&partitions);
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.commits.revoked(consumer, &partitions);
                // librdkafka refuses the whole call if one partition of it is
                // not assigned (at close the list holds partitions still
                // waiting for their start): unassign only those it has.
                let assigned = consumer.assignment().unwrap_or_default();
                let mut revoke = TopicPartitionList::new();
                for e in list.elements() {
                    if assigned.find_partition(e.topic(), e.partition()).is_some() {
                        revoke.add_partition(e.topic(), e.partition());
                    }
                }
                if let Err(e) = consumer.incremental_unassign(&revoke) {
                    self.metrics.failed(
                        Dependency::Kafka,
                        &anyhow::Error::new(e).context("unassigning revoked partitions"),
                    );
                }
            }
            other => {
                self.metrics.rebalances.with_label_values(&["error"]).inc();
                tracing::warn!("rebalance error: {other:?}");
            }
        }
    }

    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        _offsets: &TopicPartitionList,
    ) {
        if let Err(e) = result {
            self.metrics.failed(
                Dependency::Kafka,
                &anyhow::Error::new(e).context("committing offsets to Kafka"),
            );
        }
    }
}

/// Creates the group consumer. Offsets are stored and committed by the
/// pipeline only (never automatically), after Postgres has the batch.
pub fn create_consumer(settings: &Settings, metrics: Metrics) -> anyhow::Result<EventConsumer> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.brokers)
        .set("group.id", &settings.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("session.timeout.ms", "10000")
        .set("statistics.interval.ms", "5000")
        // Bounds the prefetch buffer, and so memory, whatever the backlog:
        // at 4 MB the 1M-event drain ran as fast as at 16 MB with ~20 MiB
        // less peak RSS. Smaller fetches (-X fetch.max.bytes=4194304
        // -X max.partition.fetch.bytes=524288) save ~15 MiB more but cost
        // ~20% throughput (docs/benchmarks.md).
        .set("queued.max.messages.kbytes", "4096")
        .set("queued.min.messages", "20000")
        // How long the broker may hold a fetch for data. librdkafka's 500 ms
        // let a fetch sit idle while events arrived (p99 432 ms at 5k ev/s);
        // 100 ms gave p99 133-391 ms (a start-up tail: the first second's
        // p50 was 509 ms), 20 ms gave 94 ms with no start-up tail (Step 11).
        // Idle, it costs 50 empty fetches a second.
        .set("fetch.wait.max.ms", "20")
        // A fetch response is held whole (and decompressed) while its
        // messages are read. 300k-event drains, alternating (Step 11):
        // 8 MiB 22.6k/23.8k rows/s at 73/69 MiB peak RSS; 4 MiB 23.1k/24.0k
        // at 70 MiB; 2 MiB 20.7k/21.7k at 51/49 MiB, its batches no longer
        // full. 4 MiB is the fastest; -X fetch.max.bytes=2097152 trades ~9%
        // of the rate for ~20 MiB.
        .set("fetch.max.bytes", "4194304");
    for (key, value) in &settings.kafka_properties {
        // The commit stage assigns partitions incrementally, with their start
        // offsets: the eager protocols replace the whole assignment instead.
        if key == "partition.assignment.strategy" && value != "cooperative-sticky" {
            anyhow::bail!("-X partition.assignment.strategy={value} is not supported: the consumer needs cooperative-sticky (--kafka-property / EVENTPULSE_KAFKA_PROPERTIES)");
        }
        config.set(key, value);
    }
    let context = GroupContext {
        topic: settings.topic.clone(),
        commits: Commits::new(&settings.topic, metrics.clone()),
        metrics,
    };
    config
        .create_with_context(context)
        .context("creating the Kafka consumer (check -X / EVENTPULSE_KAFKA_PROPERTIES)")
}

/// Fails with one line naming the address or topic if the brokers do not
/// answer or a topic is missing.
pub fn check_topics(consumer: &EventConsumer, settings: &Settings) -> anyhow::Result<()> {
    for (topic, flag) in [
        (&settings.topic, "--topic / EVENTPULSE_TOPIC"),
        (&settings.dlq_topic, "--dlq-topic / EVENTPULSE_DLQ_TOPIC"),
    ] {
        eventpulse_service::kafka::check_topic(consumer.client(), &settings.brokers, topic, flag)?;
    }
    Ok(())
}
