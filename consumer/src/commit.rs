//! The commit stage, and the one owner of partition state: which partitions
//! this member owns, under which generation, where each starts and what is
//! durable. Every Kafka commit and every assignment call is made here.
//!
//! It is driven by explicit events: *assigned* and *revoked* from the
//! rebalance callbacks (which rust-rdkafka runs inside `recv()`, on the
//! pipeline's own task), *started* once a partition's position has been read
//! from Postgres, *flushed* after each durable batch, and *finish* at
//! shutdown. The pipeline applies the queued group changes to its batch
//! before any flush starts or completes, and a flush's offsets are committed
//! only for partitions still owned under the generation they were read in, so
//! a revoked partition's Kafka offset can never be moved by this member again.
//!
//! Kafka's commit is handed to librdkafka before Redis is told the batch's
//! events are stored (the lane's next flush confirms them), so a Redis "stored" mark
//! normally lies behind Kafka's committed offset: that is what lets a later
//! owner notice that Postgres lost commits (Kafka ahead of Postgres) before
//! trusting any mark (see `resume.rs`). The async commit may still be in
//! flight when the next flush confirms; closing that window needs the
//! commit's acknowledgement, which rust-rdkafka's stream consumer did not
//! deliver during the run in our tests (only at the final sync commit).

use std::sync::Mutex;

use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaResult;
use rdkafka::{Offset, TopicPartitionList};

use crate::metrics::{Dependency, Metrics};
use crate::partitions::{Admission, Partitions};
use crate::position::{Generation, PartitionOffset};

/// A change of assignment, for the pipeline to apply to its batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupChange {
    /// Newly owned partitions whose position must be read before they start.
    Assigned(Vec<(i32, Generation)>),
    Revoked(Vec<i32>),
    /// A partition read past its end (the topic was recreated or its log
    /// truncated while it was fetched): unassigned and read again from where
    /// its position is decided anew.
    Restarted(i32, Generation),
}

/// Where a starting partition begins to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartAt {
    pub partition: i32,
    pub generation: Generation,
    pub epoch: i32,
    /// `None`: from the earliest message still in the partition.
    pub offset: Option<i64>,
}

#[derive(Default)]
struct State {
    partitions: Partitions,
    changes: Vec<GroupChange>,
}

pub struct Commits {
    topic: String,
    metrics: Metrics,
    state: Mutex<State>,
    /// Wakes the pipeline when a callback queued a change: after one,
    /// `recv()` may stay pending (no partition is fetched yet), so the loop
    /// must not wait for a message to notice.
    changed: tokio::sync::Notify,
}

impl Commits {
    pub fn new(topic: &str, metrics: Metrics) -> Self {
        Self {
            topic: topic.to_owned(),
            metrics,
            state: Mutex::default(),
            changed: tokio::sync::Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("lock not poisoned")
    }

    pub fn owned(&self) -> usize {
        self.state().partitions.owned()
    }

    /// Completes once a change was queued since the last call (a change
    /// queued while nobody waits is remembered).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    pub fn take_changes(&self) -> Vec<GroupChange> {
        std::mem::take(&mut self.state().changes)
    }

    pub fn admit(&self, partition: i32, offset: i64) -> Admission {
        self.state().partitions.admit(partition, offset)
    }

    /// The group handed us `partitions` (rebalance callback). They are not
    /// fetched until [`Commits::start`] assigns them with their positions.
    pub fn assigned(&self, partitions: &[i32]) {
        self.metrics.rebalances.with_label_values(&["assign"]).inc();
        let mut state = self.state();
        let owned = state.partitions.assign(partitions);
        state.changes.push(GroupChange::Assigned(owned));
        self.changed.notify_one();
        self.metrics
            .assigned_partitions
            .set(state.partitions.owned() as i64);
        drop(state);
        tracing::info!(?partitions, "partitions assigned");
    }

    /// The group takes `partitions` away (rebalance callback): their durable
    /// offsets are committed synchronously before another member gets them.
    pub fn revoked<C: ConsumerContext>(&self, consumer: &impl Consumer<C>, partitions: &[i32]) {
        self.metrics.rebalances.with_label_values(&["revoke"]).inc();
        let mut state = self.state();
        let durable = state.partitions.revoke(partitions);
        state
            .changes
            .push(GroupChange::Revoked(partitions.to_vec()));
        self.changed.notify_one();
        self.metrics
            .assigned_partitions
            .set(state.partitions.owned() as i64);
        drop(state);
        // Postgres holds these offsets too; a failure only costs re-reading.
        self.commit(
            consumer,
            &durable,
            CommitMode::Sync,
            "committing revoked partitions",
        );
        for partition in partitions {
            // A lag we no longer measure must not linger as a frozen value.
            let _ = self
                .metrics
                .consumer_lag
                .remove_label_values(&[&partition.to_string()]);
        }
        tracing::info!(?partitions, "partitions revoked");
    }

    /// librdkafka's statistics show `partition` fetching at `next`, past its
    /// high watermark `high`: its offsets were reused under this member.
    pub fn past_the_end(&self, partition: i32, next: i64, high: i64) {
        let mut state = self.state();
        let Some((partition, generation)) = state.partitions.restart(partition) else {
            return;
        };
        state
            .changes
            .push(GroupChange::Restarted(partition, generation));
        self.changed.notify_one();
        drop(state);
        self.metrics.partition_anomaly("offsets_rewound", format_args!(
            "{}/{partition}: fetching at offset {next}, past the high watermark {high}: its offsets \
             are being reused (topic recreated or log truncated); deciding its position again",
            self.topic
        ));
    }

    /// Whether `partition` still waits to start under `generation`.
    pub fn is_starting(&self, partition: i32, generation: Generation) -> bool {
        self.state().partitions.is_starting(partition, generation)
    }

    /// Assigns starting partitions to librdkafka with their start offsets.
    /// Those revoked meanwhile are left out; the call is made even if none
    /// is left, since librdkafka may be waiting for it to end a rebalance.
    pub fn start<C: ConsumerContext>(
        &self,
        consumer: &impl Consumer<C>,
        starts: &[StartAt],
    ) -> KafkaResult<()> {
        let starts: Vec<StartAt> = starts
            .iter()
            .copied()
            .filter(|s| self.is_starting(s.partition, s.generation))
            .collect();
        let mut list = TopicPartitionList::new();
        for start in &starts {
            let offset = start.offset.map_or(Offset::Beginning, Offset::Offset);
            list.add_partition_offset(&self.topic, start.partition, offset)?;
        }
        consumer.incremental_assign(&list)?;
        let mut state = self.state();
        for s in &starts {
            state
                .partitions
                .activate(s.partition, s.generation, s.epoch, s.offset);
        }
        drop(state);
        if !starts.is_empty() {
            tracing::info!(?starts, "partitions started");
        }
        Ok(())
    }

    /// A batch is durable in Postgres: commit its offsets to Kafka (async)
    /// for the partitions still owned under the batch's generations. Returns
    /// whether the commit was handed to librdkafka, after which the batch's
    /// events may be confirmed in Redis (by its lane's next flush).
    pub fn flushed<C: ConsumerContext>(
        &self,
        consumer: &impl Consumer<C>,
        progress: &[(Generation, PartitionOffset)],
    ) -> bool {
        let advanced = self.state().partitions.record_durable(progress);
        !advanced.is_empty()
            && self.commit(
                consumer,
                &advanced,
                CommitMode::Async,
                "committing offsets to Kafka",
            )
    }

    /// Shutdown: commits every durable offset synchronously.
    pub fn finish<C: ConsumerContext>(&self, consumer: &impl Consumer<C>) {
        let durable = self.state().partitions.durable();
        self.commit(consumer, &durable, CommitMode::Sync, "final Kafka commit");
    }

    /// Returns whether the commit was made (async: handed to librdkafka).
    fn commit<C: ConsumerContext>(
        &self,
        consumer: &impl Consumer<C>,
        offsets: &[PartitionOffset],
        mode: CommitMode,
        what: &'static str,
    ) -> bool {
        if offsets.is_empty() {
            return true;
        }
        let mut list = TopicPartitionList::new();
        for o in offsets {
            let _ = list.add_partition_offset(
                &self.topic,
                o.partition,
                Offset::Offset(o.position.offset),
            );
        }
        match consumer.commit(&list, mode) {
            Ok(()) => true,
            Err(e) => {
                self.metrics
                    .failed(Dependency::Kafka, &anyhow::Error::new(e).context(what));
                false
            }
        }
    }
}
