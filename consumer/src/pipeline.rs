//! The consume loop: receive -> validate -> batch -> flush (dedup, dead
//! letters, store) on size, bytes or linger -> commit.
//!
//! One task owns the loop. While one batch is being made durable, the next
//! fills: the flush runs as a future the loop polls alongside `recv()`, and
//! owns the [`Flusher`] until it hands it back, so at most one flush is ever
//! in flight and each partition's offsets are written in order. Memory is
//! bounded in bytes: a batch closes at half the buffer budget, and receiving
//! pauses while the next batch is full, whatever the message sizes and however
//! long Postgres is down (librdkafka's own prefetch is capped separately).
//!
//! Rebalance callbacks run inside `recv()` and queue their changes in the
//! commit stage; whatever branch of the loop wakes up, those changes are
//! applied first, before a flush starts or its result is committed. Newly
//! assigned partitions start only once their position is known
//! ([`resolve`](crate::resolve)), read while the loop keeps running. On
//! shutdown the loop stops fetching, lets the flush in flight and a last one
//! finish within the shutdown timeout, and commits synchronously.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use eventpulse_events::Limits;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Message as _};
use tokio::time::Instant;
use uuid::Uuid;

use anyhow::Context as _;

use crate::batch::Batch;
use crate::commit::{Commits, GroupChange};
use crate::flush::{FlushReport, Flusher};
use crate::kafka::EventConsumer;
use crate::metrics::{Dependency, Metrics};
use crate::position::{Generation, PartitionOffset};
use crate::reader::RecordReader;
use crate::receive::{receive, Entry};
use crate::resolve::{Resolved, Resolver};
use crate::retry::Interrupted;
use crate::shutdown::ShutdownFlag;
use crate::store::Store;

pub struct PipelineSettings {
    pub topic: String,
    pub batch_size: usize,
    /// Most bytes of messages held, the filling and the flushing batch together.
    pub buffer_bytes: usize,
    pub linger: Duration,
    pub limits: Limits,
    pub shutdown_timeout: Duration,
    /// A replay's end: per partition, the first offset not to process
    /// (records there and beyond are left alone). `None`: no end.
    pub stop_at: Option<Arc<HashMap<i32, i64>>>,
}

pub struct Pipeline {
    pub consumer: Arc<EventConsumer>,
    pub reader: Arc<RecordReader>,
    pub flusher: Flusher,
    pub settings: PipelineSettings,
    pub metrics: Metrics,
}

type Flushing = Pin<Box<dyn Future<Output = (Flusher, Result<FlushReport, Interrupted>)> + Send>>;
type Resolving = Pin<Box<dyn Future<Output = Result<Resolved, Interrupted>> + Send>>;

/// A batch being made durable, and what it will let the commit stage advance.
struct InFlight {
    future: Flushing,
    progress: Vec<(Generation, PartitionOffset)>,
    bytes: usize,
}

enum FlushStage {
    Idle(Box<Flusher>),
    Busy(InFlight),
}

/// What woke the loop up.
enum Step<'m> {
    Stop,
    GroupChanged,
    Flushed(Box<Flusher>, Result<FlushReport, Interrupted>),
    Resolved(Result<Resolved, Interrupted>),
    Linger,
    Received(KafkaResult<BorrowedMessage<'m>>),
}

struct Running {
    consumer: Arc<EventConsumer>,
    reader: Arc<RecordReader>,
    store: Store,
    settings: PipelineSettings,
    metrics: Metrics,
    shutdown: ShutdownFlag,
    batch: Batch,
    deadline: Option<Instant>,
    /// `None` only while a flush is being handed its flusher.
    flush: Option<FlushStage>,
    /// Partitions waiting for their position to be read, and the read under way.
    waiting: Vec<(i32, Generation)>,
    resolving: Option<Resolving>,
    /// A new database identity for Redis marks, applied when the flusher is idle.
    new_instance: Option<Uuid>,
}

impl Pipeline {
    pub async fn run(self, shutdown: ShutdownFlag) -> anyhow::Result<()> {
        let topic = self.settings.topic.clone();
        self.consumer
            .subscribe(&[&topic])
            .with_context(|| format!("subscribing to {topic}"))?;
        let mut running = Running {
            store: self.flusher.store.clone(),
            consumer: self.consumer,
            reader: self.reader,
            settings: self.settings,
            metrics: self.metrics,
            shutdown,
            batch: Batch::default(),
            deadline: None,
            flush: Some(FlushStage::Idle(Box::new(self.flusher))),
            waiting: Vec::new(),
            resolving: None,
            new_instance: None,
        };
        running.consume().await;
        running.finish().await;
        Ok(())
    }
}

/// Completes when `future` does; never, if there is none.
async fn when_some<T>(future: Option<&mut Pin<Box<dyn Future<Output = T> + Send>>>) -> T {
    match future {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}

impl Running {
    fn commits(&self) -> &Commits {
        &self.consumer.context().commits
    }

    fn is_idle(&self) -> bool {
        matches!(self.flush, Some(FlushStage::Idle(_)))
    }

    fn in_flight_bytes(&self) -> usize {
        match &self.flush {
            Some(FlushStage::Busy(in_flight)) => in_flight.bytes,
            _ => 0,
        }
    }

    fn has_room(&self) -> bool {
        self.batch.len() < self.settings.batch_size
            && self.batch.bytes() < self.settings.buffer_bytes / 2
    }

    async fn consume(&mut self) {
        loop {
            let consumer = Arc::clone(&self.consumer);
            let deadline = self.deadline;
            let linger = async move {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let (idle, room) = (self.is_idle(), self.has_room());
            let flushing = match &mut self.flush {
                Some(FlushStage::Busy(in_flight)) => Some(&mut in_flight.future),
                _ => None,
            };
            let step = tokio::select! {
                biased;
                _ = self.shutdown.requested() => Step::Stop,
                _ = consumer.context().commits.changed() => Step::GroupChanged,
                (flusher, report) = when_some(flushing) => Step::Flushed(Box::new(flusher), report),
                resolved = when_some(self.resolving.as_mut()) => Step::Resolved(resolved),
                _ = linger, if idle => Step::Linger,
                received = consumer.recv(), if room => Step::Received(received),
            };
            // Whatever woke us, the group's changes come first.
            self.apply_group_changes();
            match step {
                Step::Stop => return,
                Step::GroupChanged => {}
                Step::Flushed(flusher, report) => self.flushed(flusher, report),
                Step::Resolved(Ok(resolved)) => self.start_partitions(resolved),
                Step::Resolved(Err(Interrupted)) => return,
                Step::Linger => self.start_flush(),
                Step::Received(Ok(message)) => self.accept(&message),
                Step::Received(Err(e)) => self.metrics.failed(
                    Dependency::Kafka,
                    &anyhow::Error::new(e).context("receiving from Kafka"),
                ),
            }
            self.after_step();
        }
    }

    fn accept(&mut self, message: &BorrowedMessage<'_>) {
        if let Some(stop_at) = &self.settings.stop_at {
            let end = stop_at.get(&message.partition()).copied().unwrap_or(0);
            if message.offset() >= end {
                return;
            }
        }
        let commits = &self.consumer.context().commits;
        let Some((entry, stamp)) = receive(message, commits, &self.settings.limits, &self.metrics)
        else {
            return;
        };
        match entry {
            Entry::Event(event) => self.batch.push_event(event, stamp),
            Entry::Reject(reject) => self.batch.push_reject(reject, stamp),
        }
    }

    fn after_step(&mut self) {
        if self.batch.is_empty() {
            self.deadline = None;
        } else if !self.has_room() {
            self.start_flush();
        } else if self.deadline.is_none() {
            self.deadline = Some(Instant::now() + self.settings.linger);
        }
        if self.resolving.is_none() && !self.waiting.is_empty() {
            self.resolve_waiting();
        }
        let buffered = self.batch.bytes() + self.in_flight_bytes();
        self.metrics.buffered_bytes.set(buffered as i64);
    }

    fn apply_group_changes(&mut self) {
        for change in self.commits().take_changes() {
            match change {
                GroupChange::Assigned(partitions) => self.waiting.extend(partitions),
                GroupChange::Restarted(partition, generation) => {
                    self.unassign(partition);
                    self.waiting.retain(|(p, _)| *p != partition);
                    self.batch.drop_partitions(&[partition]);
                    self.waiting.push((partition, generation));
                }
                GroupChange::Revoked(partitions) => {
                    self.waiting.retain(|(p, _)| !partitions.contains(p));
                    let dropped = self.batch.drop_partitions(&partitions);
                    if dropped > 0 {
                        tracing::info!(dropped, "dropped unflushed messages of revoked partitions; their new owner re-reads them");
                    }
                }
            }
        }
    }

    /// Stops fetching `partition` until its position is decided again.
    fn unassign(&self, partition: i32) {
        let mut list = rdkafka::TopicPartitionList::new();
        list.add_partition(&self.settings.topic, partition);
        if let Err(e) = self.consumer.incremental_unassign(&list) {
            self.metrics.failed(
                Dependency::Kafka,
                &anyhow::Error::new(e).context("unassigning a partition read past its end"),
            );
        }
    }

    /// Reads where the waiting partitions start, while the loop runs on.
    fn resolve_waiting(&mut self) {
        let partitions = std::mem::take(&mut self.waiting);
        let resolver = Resolver {
            store: self.store.clone(),
            consumer: Arc::clone(&self.consumer),
            reader: Arc::clone(&self.reader),
            topic: self.settings.topic.clone(),
            metrics: self.metrics.clone(),
            shutdown: self.shutdown.clone(),
        };
        self.resolving = Some(Box::pin(resolver.resolve(partitions)));
    }

    fn start_partitions(&mut self, resolved: Resolved) {
        self.resolving = None;
        if let Some(instance) = resolved.instance {
            self.new_instance = Some(instance);
            self.apply_new_instance();
        }
        if let Err(e) = self
            .commits()
            .start(self.consumer.as_ref(), &resolved.starts)
        {
            self.metrics.failed(
                Dependency::Kafka,
                &anyhow::Error::new(e).context("assigning partitions"),
            );
            let retry = resolved
                .starts
                .iter()
                .filter(|s| self.commits().is_starting(s.partition, s.generation));
            let retry: Vec<_> = retry.map(|s| (s.partition, s.generation)).collect();
            self.waiting.extend(retry);
        }
    }

    fn apply_new_instance(&mut self) {
        if let (Some(instance), Some(FlushStage::Idle(flusher))) =
            (self.new_instance, &mut self.flush)
        {
            flusher.redis.set_instance(instance);
            self.new_instance = None;
        }
    }

    /// Starts making the current batch durable, if no flush is in flight.
    fn start_flush(&mut self) {
        self.apply_new_instance();
        if self.batch.is_empty() || !self.is_idle() {
            return;
        }
        let Some(FlushStage::Idle(mut flusher)) = self.flush.take() else {
            unreachable!("checked idle above");
        };
        let batch = std::mem::take(&mut self.batch);
        self.deadline = None;
        let confirm = self.commits().take_confirmable();
        let shutdown = self.shutdown.clone();
        let (progress, bytes) = (batch.progress(), batch.bytes());
        let future = Box::pin(async move {
            let report = flusher.flush(&batch, &confirm, &shutdown).await;
            (*flusher, report)
        });
        self.flush = Some(FlushStage::Busy(InFlight {
            future,
            progress,
            bytes,
        }));
    }

    /// A flush ended: if the batch is durable, commit its offsets.
    fn flushed(&mut self, flusher: Box<Flusher>, report: Result<FlushReport, Interrupted>) {
        let Some(FlushStage::Busy(in_flight)) = self.flush.replace(FlushStage::Idle(flusher))
        else {
            unreachable!("a flush ended while none was in flight");
        };
        let Ok(report) = report else {
            return; // shutdown: nothing of it is taken as durable
        };
        tracing::debug!(
            messages = report.messages,
            inserted = report.inserted,
            duplicates = report.duplicates,
            dead_lettered = report.dead_lettered,
            "batch committed"
        );
        let commits = &self.consumer.context().commits;
        commits.flushed(
            self.consumer.as_ref(),
            &in_flight.progress,
            report.stored_ids,
        );
        let due = self.deadline.is_some_and(|at| at <= Instant::now());
        if due || !self.has_room() {
            self.start_flush();
        }
    }

    /// Lets the flush in flight and a final one finish within the shutdown
    /// timeout, then commits synchronously; the consumer leaves on drop.
    async fn finish(mut self) {
        let grace = tokio::time::sleep(self.settings.shutdown_timeout);
        tokio::pin!(grace);
        self.resolving = None;
        self.apply_group_changes();
        loop {
            if self.is_idle() {
                if self.batch.is_empty() {
                    break;
                }
                self.start_flush();
            }
            let Some(FlushStage::Busy(in_flight)) = &mut self.flush else {
                break;
            };
            let done = tokio::select! {
                done = &mut in_flight.future => Some(done),
                _ = &mut grace => None,
            };
            let Some((flusher, report)) = done else {
                tracing::warn!(
                    unflushed = self.batch.len(),
                    "shutdown timeout reached before every batch was durable; they will be re-read"
                );
                break;
            };
            self.flushed(Box::new(flusher), report);
        }
        let confirm = self.commits().finish(self.consumer.as_ref());
        if let Some(FlushStage::Idle(flusher)) = &mut self.flush {
            let _ = tokio::time::timeout_at(
                Instant::now() + Duration::from_secs(1),
                flusher.redis.confirm(&confirm),
            )
            .await;
        }
        self.consumer.unsubscribe();
        tracing::info!("consumer stopped");
    }
}
