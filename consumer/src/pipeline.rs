//! The consume loop: receive -> validate -> batch -> flush (dedup, dead
//! letters, store) on size, bytes or linger -> commit.
//!
//! One task owns the loop. Messages go to the [`lanes`](crate::lanes) of
//! their partitions; while a lane's batch is being made durable, its next
//! fills: each flush runs as a future the loop polls alongside `recv()`, and
//! owns its lane's [`Flusher`] until it hands it back, so a lane has at most
//! one flush in flight and each partition's offsets are written in order.
//! Memory is bounded in bytes: a lane's batch closes at its share of the
//! buffer budget (half of it over the lanes), and receiving pauses while any
//! lane's next batch is full, whatever the message sizes and however long
//! Postgres is down (librdkafka's own prefetch is capped separately).
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

use anyhow::Context as _;

use crate::commit::{Commits, GroupChange};
use crate::flush::{FlushReport, Flusher};
use crate::kafka::EventConsumer;
use crate::lanes::{self, Lane};
use crate::metrics::{Dependency, Metrics};
use crate::position::Generation;
use crate::reader::RecordReader;
use crate::receive::{receive, Entry};
use crate::resolve::{Resolved, Resolver};
use crate::retry::Interrupted;
use crate::shutdown::ShutdownFlag;
use crate::store::Store;

pub struct PipelineSettings {
    pub topic: String,
    pub batch_size: usize,
    /// Most bytes of messages held, the filling and the flushing batches of
    /// every lane together.
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
    /// One per lane (see [`lanes`](crate::lanes)); at least one.
    pub flushers: Vec<Flusher>,
    pub settings: PipelineSettings,
    pub metrics: Metrics,
}

type Resolving = Pin<Box<dyn Future<Output = Result<Resolved, Interrupted>> + Send>>;

/// What woke the loop up.
enum Step<'m> {
    Stop,
    GroupChanged,
    Flushed(usize, Box<Flusher>, Result<FlushReport, Interrupted>),
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
    lanes: Vec<Lane>,
    /// Partitions waiting for their position to be read, and the read under way.
    waiting: Vec<(i32, Generation)>,
    resolving: Option<Resolving>,
}

impl Pipeline {
    pub async fn run(self, shutdown: ShutdownFlag) -> anyhow::Result<()> {
        let topic = self.settings.topic.clone();
        self.consumer
            .subscribe(&[&topic])
            .with_context(|| format!("subscribing to {topic}"))?;
        anyhow::ensure!(!self.flushers.is_empty(), "a pipeline needs a flusher");
        let mut running = Running {
            store: self.flushers[0].store.clone(),
            consumer: self.consumer,
            reader: self.reader,
            settings: self.settings,
            metrics: self.metrics,
            shutdown,
            lanes: self.flushers.into_iter().map(Lane::new).collect(),
            waiting: Vec::new(),
            resolving: None,
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

    /// Whether every lane's filling batch can take another message: the
    /// next one may belong to any of them.
    fn has_room(&self) -> bool {
        self.lanes.iter().all(|lane| self.lane_has_room(lane))
    }

    fn lane_has_room(&self, lane: &Lane) -> bool {
        let share = self.settings.buffer_bytes / (2 * self.lanes.len());
        lane.batch.len() < self.settings.batch_size && lane.batch.bytes() < share
    }

    async fn consume(&mut self) {
        loop {
            let consumer = Arc::clone(&self.consumer);
            let deadline = lanes::next_deadline(&self.lanes);
            let linger = async move {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let room = self.has_room();
            let step = tokio::select! {
                biased;
                _ = self.shutdown.requested() => Step::Stop,
                _ = consumer.context().commits.changed() => Step::GroupChanged,
                (lane, flusher, report) = lanes::any_flushed(&mut self.lanes) => {
                    Step::Flushed(lane, Box::new(flusher), report)
                }
                resolved = when_some(self.resolving.as_mut()) => Step::Resolved(resolved),
                _ = linger => Step::Linger,
                received = consumer.recv(), if room => Step::Received(received),
            };
            // Whatever woke us, the group's changes come first.
            self.apply_group_changes();
            match step {
                Step::Stop => return,
                Step::GroupChanged => {}
                Step::Flushed(lane, flusher, report) => self.flushed(lane, *flusher, report),
                Step::Resolved(Ok(resolved)) => self.start_partitions(resolved),
                Step::Resolved(Err(Interrupted)) => return,
                Step::Linger => self.start_due_flushes(),
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
        let index = lanes::lane_of(message.partition(), self.lanes.len());
        let lane = &mut self.lanes[index];
        match entry {
            Entry::Event(event) => lane.batch.push_event(event, stamp),
            Entry::Reject(reject) => lane.batch.push_reject(reject, stamp),
        }
    }

    fn after_step(&mut self) {
        for index in 0..self.lanes.len() {
            let lane = &self.lanes[index];
            if lane.batch.is_empty() {
                self.lanes[index].deadline = None;
            } else if !self.lane_has_room(lane) {
                self.start_flush(index);
            } else if lane.deadline.is_none() {
                self.lanes[index].deadline = Some(Instant::now() + self.settings.linger);
            }
        }
        if self.resolving.is_none() && !self.waiting.is_empty() {
            self.resolve_waiting();
        }
        let buffered: usize = self.lanes.iter().map(Lane::bytes).sum();
        self.metrics.buffered_bytes.set(buffered as i64);
    }

    fn apply_group_changes(&mut self) {
        for change in self.commits().take_changes() {
            match change {
                GroupChange::Assigned(partitions) => self.waiting.extend(partitions),
                GroupChange::Restarted(partition, generation) => {
                    self.unassign(partition);
                    self.waiting.retain(|(p, _)| *p != partition);
                    self.drop_unflushed(&[partition]);
                    self.waiting.push((partition, generation));
                }
                GroupChange::Revoked(partitions) => {
                    self.waiting.retain(|(p, _)| !partitions.contains(p));
                    let dropped = self.drop_unflushed(&partitions);
                    if dropped > 0 {
                        tracing::info!(dropped, "dropped unflushed messages of revoked partitions; their new owner re-reads them");
                    }
                }
            }
        }
    }

    /// Drops the unflushed messages of `partitions` from every lane.
    fn drop_unflushed(&mut self, partitions: &[i32]) -> usize {
        let lanes = self.lanes.iter_mut();
        lanes
            .map(|lane| lane.batch.drop_partitions(partitions))
            .sum()
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
            for lane in &mut self.lanes {
                lane.set_instance(instance);
            }
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

    /// Starts making `lane`'s batch durable, if it is idle and has messages.
    fn start_flush(&mut self, lane: usize) {
        self.lanes[lane].start_flush(&self.shutdown);
    }

    /// Starts every idle lane whose batch is due by linger.
    fn start_due_flushes(&mut self) {
        let now = Instant::now();
        for index in 0..self.lanes.len() {
            if self.lanes[index].deadline.is_some_and(|at| at <= now) {
                self.start_flush(index);
            }
        }
    }

    /// A lane's flush ended: if its batch is durable, commit its offsets.
    fn flushed(
        &mut self,
        index: usize,
        flusher: Flusher,
        report: Result<FlushReport, Interrupted>,
    ) {
        let in_flight = self.lanes[index].flushed(flusher);
        let Ok(report) = report else {
            return; // shutdown: nothing of it is taken as durable
        };
        tracing::debug!(
            lane = index,
            messages = report.messages,
            inserted = report.inserted,
            duplicates = report.duplicates,
            dead_lettered = report.dead_lettered,
            "batch committed"
        );
        let commits = &self.consumer.context().commits;
        if commits.flushed(self.consumer.as_ref(), &in_flight.progress) {
            self.lanes[index].confirm_later(report.stored_ids);
        }
        let lane = &self.lanes[index];
        let due = lane.deadline.is_some_and(|at| at <= Instant::now());
        if due || !self.lane_has_room(lane) {
            self.start_flush(index);
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
            for index in 0..self.lanes.len() {
                self.start_flush(index);
            }
            if !self.lanes.iter().any(Lane::is_busy) {
                break;
            }
            let done = tokio::select! {
                done = lanes::any_flushed(&mut self.lanes) => Some(done),
                _ = &mut grace => None,
            };
            let Some((index, flusher, report)) = done else {
                let unflushed: usize = self.lanes.iter().map(|lane| lane.batch.len()).sum();
                tracing::warn!(
                    unflushed,
                    "shutdown timeout reached before every batch was durable; they will be re-read"
                );
                break;
            };
            self.flushed(index, flusher, report);
        }
        self.commits().finish(self.consumer.as_ref());
        // Their async commits were made when they became confirmable.
        let confirm: Vec<_> = self
            .lanes
            .iter_mut()
            .flat_map(Lane::take_confirmable)
            .collect();
        if let Some(flusher) = self.lanes.iter_mut().find_map(Lane::idle_flusher) {
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
