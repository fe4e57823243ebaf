//! The Kafka consumer: its configuration, the group callbacks, and the
//! start-up check that the brokers answer and the topics exist.
//!
//! rust-rdkafka runs rebalance callbacks synchronously inside `recv()`, on the
//! pipeline's own task, so the callbacks never race a flush: they only record
//! what changed (for the pipeline to apply before its next message) and, on
//! revoke, commit the durable offsets of the revoked partitions synchronously
//! before librdkafka hands them to another member.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::{ClientConfig, ClientContext, Offset, Statistics, TopicPartitionList};

use crate::config::Settings;
use crate::metrics::{Dependency, Metrics};

pub type EventConsumer = StreamConsumer<GroupContext>;

/// A change of assignment, recorded by a callback for the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupChange {
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
}

/// State shared between the pipeline and the librdkafka callbacks.
pub struct GroupContext {
    topic: String,
    metrics: Metrics,
    changes: Mutex<Vec<GroupChange>>,
    /// Next offset per partition whose batch is durable in Postgres.
    durable: Mutex<HashMap<i32, i64>>,
    /// Partitions currently assigned, for readiness.
    pub assigned: Arc<Mutex<Vec<i32>>>,
}

impl GroupContext {
    pub fn take_changes(&self) -> Vec<GroupChange> {
        std::mem::take(&mut *self.changes.lock().expect("lock not poisoned"))
    }

    pub fn record_durable(&self, offsets: &[(i32, i64)]) {
        let mut durable = self.durable.lock().expect("lock not poisoned");
        for (partition, next) in offsets {
            let entry = durable.entry(*partition).or_insert(*next);
            *entry = (*entry).max(*next);
        }
    }

    /// Durable offsets for `partitions`, as a list librdkafka can commit.
    pub fn durable_list(&self, partitions: Option<&[i32]>) -> TopicPartitionList {
        let durable = self.durable.lock().expect("lock not poisoned");
        let mut list = TopicPartitionList::new();
        for (partition, next) in durable.iter() {
            if partitions.is_none_or(|wanted| wanted.contains(partition)) {
                let _ = list.add_partition_offset(&self.topic, *partition, Offset::Offset(*next));
            }
        }
        list
    }

    fn partitions_of(&self, list: &TopicPartitionList) -> Vec<i32> {
        list.elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect()
    }
}

impl ClientContext for GroupContext {
    /// librdkafka's statistics carry each partition's lag behind its high watermark.
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
        }
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(list) = rebalance else {
            return;
        };
        let revoked = self.partitions_of(list);
        self.metrics.rebalances.with_label_values(&["revoke"]).inc();
        let commit = self.durable_list(Some(&revoked));
        if commit.count() > 0 {
            if let Err(e) = consumer.commit(&commit, rdkafka::consumer::CommitMode::Sync) {
                // Postgres holds these offsets too; the next owner reads them there.
                self.metrics.failed(
                    Dependency::Kafka,
                    &anyhow::Error::new(e).context("committing revoked partitions"),
                );
            }
        }
        for partition in &revoked {
            // A lag we no longer measure must not linger as a frozen value.
            let _ = self
                .metrics
                .consumer_lag
                .remove_label_values(&[&partition.to_string()]);
        }
        let mut durable = self.durable.lock().expect("lock not poisoned");
        durable.retain(|p, _| !revoked.contains(p));
        drop(durable);
        let mut assigned = self.assigned.lock().expect("lock not poisoned");
        assigned.retain(|p| !revoked.contains(p));
        self.metrics.assigned_partitions.set(assigned.len() as i64);
        drop(assigned);
        tracing::info!(?revoked, "partitions revoked");
        self.changes
            .lock()
            .expect("lock not poisoned")
            .push(GroupChange::Revoked(revoked));
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                let added = self.partitions_of(list);
                self.metrics.rebalances.with_label_values(&["assign"]).inc();
                let mut assigned = self.assigned.lock().expect("lock not poisoned");
                for partition in &added {
                    if !assigned.contains(partition) {
                        assigned.push(*partition);
                    }
                }
                self.metrics.assigned_partitions.set(assigned.len() as i64);
                drop(assigned);
                tracing::info!(?added, "partitions assigned");
                self.changes
                    .lock()
                    .expect("lock not poisoned")
                    .push(GroupChange::Assigned(added));
            }
            Rebalance::Error(e) => {
                self.metrics.rebalances.with_label_values(&["error"]).inc();
                tracing::warn!("rebalance error: {e}");
            }
            Rebalance::Revoke(_) => {}
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
        // librdkafka's 500 ms default let a fetch sit idle while events
        // arrived (p99 432 ms at 5k ev/s locally); 100 ms gave p99 133 ms.
        .set("fetch.wait.max.ms", "100")
        .set("fetch.max.bytes", "8388608");
    for (key, value) in &settings.kafka_properties {
        config.set(key, value);
    }
    let context = GroupContext {
        topic: settings.topic.clone(),
        metrics,
        changes: Mutex::default(),
        durable: Mutex::default(),
        assigned: Arc::default(),
    };
    config.create_with_context(context).map_err(|e| {
        anyhow::anyhow!("creating the Kafka consumer (check -X / EVENTPULSE_KAFKA_PROPERTIES): {e}")
    })
}

/// Fails with one line naming the address or topic if the brokers do not
/// answer or a topic is missing (the brokers may not auto-create topics).
pub async fn check_topics(consumer: &EventConsumer, settings: &Settings) -> anyhow::Result<()> {
    for (topic, flag) in [
        (&settings.topic, "--topic / EVENTPULSE_TOPIC"),
        (&settings.dlq_topic, "--dlq-topic / EVENTPULSE_DLQ_TOPIC"),
    ] {
        let metadata = tokio::task::block_in_place(|| {
            consumer.fetch_metadata(Some(topic), Duration::from_secs(10))
        })
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot reach Kafka at {} (--brokers / EVENTPULSE_BROKERS): {e}",
                settings.brokers
            )
        })?;
        let exists = metadata.topics().iter().any(|t| {
            t.name() == topic.as_str() && t.error().is_none() && !t.partitions().is_empty()
        });
        if !exists {
            anyhow::bail!("topic {topic:?} does not exist on {} ({flag}); create it, e.g. with scripts/stack.sh up", settings.brokers);
        }
    }
    Ok(())
}
