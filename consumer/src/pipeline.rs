//! The consume loop: receive -> admit (partition ownership, stored offsets)
//! -> validate -> batch -> flush on size or linger -> commit to Kafka.
//!
//! One task owns the loop. While one batch is being made durable, the next
//! fills: the flush runs as a future the loop polls alongside `recv()`, and
//! owns the [`Flusher`] until it hands it back, so at most one flush is ever
//! in flight and each partition's offsets are written in order. Receiving
//! pauses when the next batch is full, which bounds memory to two batches
//! plus librdkafka's prefetch, however long Postgres is down.
//!
//! Rebalance callbacks run inside `recv()` on this task: their changes are
//! applied between messages. Unflushed messages of revoked partitions are
//! dropped; a batch already in flight completes (its rows are idempotent and
//! its offsets only move forward), but its offsets are committed to Kafka only
//! for partitions still assigned. On shutdown the loop stops fetching, lets the
//! in-flight flush and a last one finish within the shutdown timeout, and
//! commits synchronously.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use eventpulse_events::{validate, Limits};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::Offset;
use tokio::time::Instant;

use crate::batch::{Batch, Origin, PendingEvent, RejectedMessage};
use crate::flush::{FlushReport, Flusher};
use crate::kafka::{EventConsumer, GroupChange};
use crate::metrics::{Dependency, Metrics};
use crate::partitions::{Admission, Partitions};
use crate::retry::Backoff;
use crate::shutdown::ShutdownFlag;
use crate::store::Store;

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
}

/// A flush in flight; it returns the flusher and the batch it made durable.
type Flushing = Pin<Box<dyn Future<Output = Flushed> + Send>>;

struct Flushed {
    flusher: Flusher,
    batch: Batch,
    report: FlushReport,
}

struct Running {
    consumer: Arc<EventConsumer>,
    store: Store,
    settings: PipelineSettings,
    metrics: Metrics,
    partitions: Partitions,
    batch: Batch,
    deadline: Option<Instant>,
    idle: Option<Flusher>,
    flushing: Option<Flushing>,
}

impl Pipeline {
    pub async fn run(self, shutdown: ShutdownFlag) -> anyhow::Result<()> {
        self.consumer
            .subscribe(&[&self.settings.topic])
            .map_err(|e| anyhow::anyhow!("subscribing to {}: {e}", self.settings.topic))?;
        let mut running = Running {
            store: self.flusher.store.clone(),
            consumer: self.consumer,
            settings: self.settings,
            metrics: self.metrics,
            partitions: Partitions::default(),
            batch: Batch::default(),
            deadline: None,
            idle: Some(self.flusher),
            flushing: None,
        };
        running.consume(&shutdown).await;
        running.finish().await;
        Ok(())
    }
}

/// Completes when the flush in flight does; never, if there is none.
async fn flush_done(flushing: &mut Option<Flushing>) -> Flushed {
    match flushing.as_mut() {
        Some(flush) => flush.await,
        None => std::future::pending().await,
    }
}

impl Running {
    async fn consume(&mut self, shutdown: &ShutdownFlag) {
        loop {
            let consumer = Arc::clone(&self.consumer);
            let deadline = self.deadline;
            let linger = async move {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let room = self.batch.len() < self.settings.batch_size;
            let idle = self.idle.is_some();
            tokio::select! {
                biased;
                _ = shutdown.requested() => return,
                flushed = flush_done(&mut self.flushing) => self.flushed(flushed),
                _ = linger, if idle => self.start_flush(),
                received = consumer.recv(), if room => {
                    self.apply_group_changes();
                    match received {
                        Ok(message) => self.accept(&message).await,
                        Err(e) => self.metrics.failed(Dependency::Kafka, &anyhow::Error::new(e).context("receiving from Kafka")),
                    }
                    self.after_receive();
                }
            }
        }
    }

    fn after_receive(&mut self) {
        if self.batch.is_empty() {
            self.deadline = None;
        } else if self.batch.len() >= self.settings.batch_size {
            self.start_flush();
        } else if self.deadline.is_none() {
            self.deadline = Some(Instant::now() + self.settings.linger);
        }
    }

    /// Starts making the current batch durable, if no flush is in flight.
    fn start_flush(&mut self) {
        if self.batch.is_empty() {
            self.deadline = None;
            return;
        }
        let Some(mut flusher) = self.idle.take() else {
            return;
        };
        let batch = std::mem::take(&mut self.batch);
        self.deadline = None;
        self.flushing = Some(Box::pin(async move {
            let report = flusher.flush(&batch).await;
            Flushed {
                flusher,
                batch,
                report,
            }
        }));
    }

    /// A batch is durable: commit its offsets to Kafka, then flush the next
    /// batch at once if it is already due.
    fn flushed(&mut self, flushed: Flushed) {
        self.flushing = None;
        self.idle = Some(flushed.flusher);
        let report = flushed.report;
        tracing::debug!(
            messages = report.messages,
            inserted = report.inserted,
            duplicates = report.duplicates,
            dead_lettered = report.dead_lettered,
            "batch committed"
        );
        let offsets: Vec<(i32, i64)> = flushed
            .batch
            .next_offsets()
            .into_iter()
            .filter(|(p, _)| self.partitions.is_assigned(*p))
            .collect();
        let context = self.consumer.context();
        context.record_durable(&offsets);
        let list = context.durable_list(Some(&offsets.iter().map(|(p, _)| *p).collect::<Vec<_>>()));
        if list.count() > 0 {
            if let Err(e) = self.consumer.commit(&list, CommitMode::Async) {
                self.metrics.failed(
                    Dependency::Kafka,
                    &anyhow::Error::new(e).context("committing offsets to Kafka"),
                );
            }
        }
        let due = self.deadline.is_some_and(|at| at <= Instant::now());
        if due || self.batch.len() >= self.settings.batch_size {
            self.start_flush();
        }
    }

    /// Lets the flush in flight and a final one finish within the shutdown
    /// timeout, then commits synchronously; the consumer leaves on drop.
    async fn finish(mut self) {
        let grace = tokio::time::sleep(self.settings.shutdown_timeout);
        tokio::pin!(grace);
        self.apply_group_changes();
        loop {
            if self.flushing.is_none() {
                if self.batch.is_empty() {
                    break;
                }
                self.start_flush();
            }
            tokio::select! {
                flushed = flush_done(&mut self.flushing) => self.flushed(flushed),
                _ = &mut grace => {
                    tracing::warn!(unflushed = self.batch.len(), "shutdown timeout reached before every batch was durable; they will be re-read");
                    break;
                }
            }
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
                event: event.into(),
                origin,
                key,
                value: value.to_vec(),
            }),
            Err(rejection) => {
                tracing::debug!(partition = origin.partition, offset = origin.offset, reason = %rejection.reason, "rejected: {}", rejection.detail);
                self.metrics.rejected(rejection.reason);
                let value = message.payload().map(<[u8]>::to_vec);
                self.batch.push_reject(RejectedMessage {
                    origin,
                    key,
                    value,
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
            match self.store.stored_offsets(&wanted).await {
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
}
