//! The consume loop: receive -> admit (partition ownership, stored offsets)
//! -> validate -> batch -> flush on size or linger -> commit to Kafka.
//!
//! One task owns the batch. Rebalance callbacks run inside `recv()` on this
//! same task, so their changes are applied between messages and a flush never
//! overlaps a rebalance. On shutdown the loop stops fetching, flushes what it
//! has (bounded by the shutdown timeout) and commits synchronously.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use eventpulse_events::{validate, Limits};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::Offset;
use tokio::time::Instant;

use crate::batch::{Batch, Origin, PendingEvent, RejectedMessage};
use crate::flush::Flusher;
use crate::kafka::{EventConsumer, GroupChange};
use crate::metrics::{Dependency, Metrics};
use crate::partitions::{Admission, Partitions};
use crate::retry::Backoff;
use crate::shutdown::ShutdownFlag;

pub struct PipelineSettings {
    pub topic: String,
    pub batch_size: usize,
    pub linger: Duration,
    pub limits: Limits,
    pub shutdown_timeout: Duration,
}

pub struct Pipeline {
    pub consumer: Arc<EventConsumer>,
    pub flusher: Flusher,
    pub settings: PipelineSettings,
    pub metrics: Metrics,
    pub partitions: Partitions,
    pub batch: Batch,
}

impl Pipeline {
    pub async fn run(mut self, shutdown: ShutdownFlag) -> anyhow::Result<()> {
        let consumer = Arc::clone(&self.consumer);
        consumer
            .subscribe(&[&self.settings.topic])
            .map_err(|e| anyhow::anyhow!("subscribing to {}: {e}", self.settings.topic))?;
        let mut deadline: Option<Instant> = None;
        loop {
            let linger = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = shutdown.requested() => break,
                _ = linger => {
                    if !self.flush(&shutdown).await {
                        break;
                    }
                    deadline = None;
                }
                received = consumer.recv() => {
                    self.apply_group_changes();
                    match received {
                        Ok(message) => self.accept(&message).await,
                        Err(e) => self.metrics.failed(Dependency::Kafka, &anyhow::Error::new(e).context("receiving from Kafka")),
                    }
                    if self.batch.is_empty() {
                        deadline = None;
                    } else if self.batch.len() >= self.settings.batch_size {
                        if !self.flush(&shutdown).await {
                            break;
                        }
                        deadline = None;
                    } else if deadline.is_none() {
                        deadline = Some(Instant::now() + self.settings.linger);
                    }
                }
            }
        }
        self.finish(&shutdown).await
    }

    /// Final flush and synchronous commit; the consumer leaves the group on drop.
    async fn finish(mut self, shutdown: &ShutdownFlag) -> anyhow::Result<()> {
        self.apply_group_changes();
        if !self.batch.is_empty() {
            self.flush(shutdown).await;
        }
        let durable = self.consumer.context().durable_list(None);
        if durable.count() > 0 {
            if let Err(e) = self.consumer.commit(&durable, CommitMode::Sync) {
                self.metrics.failed(
                    Dependency::Kafka,
                    &anyhow::Error::new(e).context("final Kafka commit"),
                );
            }
        }
        self.consumer.unsubscribe();
        tracing::info!("consumer stopped");
        Ok(())
    }

    fn apply_group_changes(&mut self) {
        for change in self.consumer.context().take_changes() {
            match change {
                GroupChange::Assigned(partitions) => self.partitions.assign(&partitions),
                GroupChange::Revoked(partitions) => {
                    let dropped = self.batch.drop_partitions(&partitions);
                    if dropped > 0 {
                        tracing::info!(dropped, "dropped unflushed messages of revoked partitions; their new owner re-reads them");
                    }
                    self.partitions.revoke(&partitions);
                }
            }
        }
    }

    async fn accept(&mut self, message: &BorrowedMessage<'_>) {
        self.metrics.messages_consumed.inc();
        let origin = Origin {
            partition: message.partition(),
            offset: message.offset(),
        };
        loop {
            match self.partitions.admit(origin.partition, origin.offset) {
                Admission::Process => break,
                Admission::Resolve => self.resolve_stored_offsets().await,
                Admission::SkipAlreadyStored => return self.skip("already_stored"),
                Admission::SkipUnassigned => return self.skip("unassigned"),
                Admission::SeekTo(offset) => return self.seek(origin.partition, offset),
            }
        }
        let value = message.payload().unwrap_or_default();
        let key = message.key().map(<[u8]>::to_vec);
        match validate(value, &self.settings.limits, Utc::now()) {
            Ok(event) => self.batch.push_event(PendingEvent {
                event,
                origin,
                key,
                value: value.to_vec(),
            }),
            Err(rejection) => {
                tracing::debug!(partition = origin.partition, offset = origin.offset, reason = %rejection.reason, "rejected: {}", rejection.detail);
                self.metrics.rejected(rejection.reason);
                self.batch.push_reject(RejectedMessage {
                    origin,
                    key,
                    value: message.payload().map(<[u8]>::to_vec),
                    rejection,
                });
            }
        }
    }

    fn skip(&self, reason: &str) {
        self.metrics
            .messages_skipped
            .with_label_values(&[reason])
            .inc();
    }

    fn seek(&self, partition: i32, offset: i64) {
        tracing::warn!(
            partition,
            offset,
            "Kafka's position is past the offset stored in Postgres; seeking back"
        );
        let topic = &self.settings.topic;
        let sought = tokio::task::block_in_place(|| {
            self.consumer.seek(
                topic,
                partition,
                Offset::Offset(offset),
                Duration::from_secs(10),
            )
        });
        if let Err(e) = sought {
            self.metrics.failed(
                Dependency::Kafka,
                &anyhow::Error::new(e).context("seeking to the stored offset"),
            );
        }
    }

    /// Loads the Postgres offsets of newly assigned partitions, retrying
    /// while Postgres is unavailable (processing them without it could skip).
    async fn resolve_stored_offsets(&mut self) {
        let wanted = self.partitions.unresolved();
        let mut backoff = Backoff::default();
        loop {
            match self.flusher.store.stored_offsets(&wanted).await {
                Ok(stored) => return self.partitions.resolve(&wanted, &stored),
                Err(e) => self.metrics.retrying(
                    Dependency::Postgres,
                    backoff.attempt(),
                    &anyhow::Error::new(e),
                ),
            }
            backoff.wait().await;
        }
    }

    /// Makes the batch durable, then commits its offsets to Kafka. Returns
    /// false if shutdown cut the flush short (nothing is committed then, so
    /// the batch is simply read again by the next owner).
    async fn flush(&mut self, shutdown: &ShutdownFlag) -> bool {
        let batch = std::mem::take(&mut self.batch);
        let grace = self.settings.shutdown_timeout;
        let flush = self.flusher.flush(&batch);
        tokio::pin!(flush);
        let report = tokio::select! {
            report = &mut flush => Some(report),
            _ = shutdown.requested() => tokio::time::timeout(grace, &mut flush).await.ok(),
        };
        let Some(report) = report else {
            tracing::warn!(
                messages = batch.len(),
                "shutdown timeout reached before the batch was durable; it will be re-read"
            );
            return false;
        };
        tracing::debug!(
            messages = report.messages,
            inserted = report.inserted,
            duplicates = report.duplicates,
            dead_lettered = report.dead_lettered,
            "batch committed"
        );
        let offsets = batch.next_offsets();
        let context = self.consumer.context();
        context.record_durable(&offsets);
        let list = context.durable_list(Some(&offsets.iter().map(|(p, _)| *p).collect::<Vec<_>>()));
        if let Err(e) = self.consumer.commit(&list, CommitMode::Async) {
            self.metrics.failed(
                Dependency::Kafka,
                &anyhow::Error::new(e).context("committing offsets to Kafka"),
            );
        }
        true
    }
}
