//! Making one batch durable, in the order that keeps "nothing lost, nothing
//! twice":
//!
//! 1. drop in-batch copies of an event id;
//! 2. claim the ids in Redis and drop those Redis knows are stored;
//! 3. produce the rejected messages to the dead-letter topic and wait for acks;
//! 4. in one Postgres transaction, insert the events (`ON CONFLICT DO
//!    NOTHING`: the backstop), record the dead letters, advance the offsets;
//! 5. mark the ids stored in Redis (only now: the rows are durable).
//!
//! Offsets are committed to Kafka by the caller, after this returns. Transient
//! failures are retried with backoff until they succeed; a row that Postgres
//! refuses on its own is isolated by bisection and dead-lettered.

use std::time::Instant;

use chrono::Utc;
use eventpulse_events::{RejectReason, Rejection};
use uuid::Uuid;

use crate::batch::{Batch, PendingEvent, RejectedMessage};
use crate::dedup::{Mark, RedisFilter};
use crate::dlq::DeadLetters;
use crate::metrics::{DedupLayer, Dependency, Metrics};
use crate::retry::Backoff;
use crate::store::{Store, StoreError, WriteOutcome};

/// What one flush did, for the per-batch log line.
#[derive(Debug, Default)]
pub struct FlushReport {
    pub messages: usize,
    pub inserted: u64,
    pub duplicates: u64,
    pub dead_lettered: usize,
}

pub struct Flusher {
    pub store: Store,
    pub redis: RedisFilter,
    pub dead_letters: DeadLetters,
    pub metrics: Metrics,
}

impl Flusher {
    pub async fn flush(&mut self, batch: &Batch) -> FlushReport {
        let started = Instant::now();
        let (unique, in_batch) = batch.unique_events();
        self.metrics.duplicates(DedupLayer::InBatch, in_batch);
        let (to_write, in_redis) = self.drop_stored_in_redis(unique).await;
        self.metrics.duplicates(DedupLayer::Redis, in_redis);

        self.dead_letter(&batch.rejects).await;
        let (outcome, written, refused) = self
            .write(to_write, &batch.rejects, &batch.next_offsets())
            .await;

        let ids: Vec<Uuid> = written.iter().map(|e| e.event.event_id).collect();
        self.redis.confirm(&ids).await;
        self.record(&outcome, &written, batch.len(), started);
        FlushReport {
            messages: batch.len(),
            inserted: outcome.inserted,
            duplicates: in_batch + in_redis + outcome.already_stored,
            dead_lettered: batch.rejects.len() + refused,
        }
    }

    async fn drop_stored_in_redis<'a>(
        &mut self,
        events: Vec<&'a PendingEvent>,
    ) -> (Vec<&'a PendingEvent>, u64) {
        let ids: Vec<Uuid> = events.iter().map(|e| e.event.event_id).collect();
        let Some(marks) = self.redis.claim(&ids).await else {
            return (events, 0);
        };
        let before = events.len();
        let kept: Vec<_> = events
            .into_iter()
            .zip(marks)
            .filter(|(_, mark)| *mark != Mark::Stored)
            .map(|(event, _)| event)
            .collect();
        let dropped = (before - kept.len()) as u64;
        (kept, dropped)
    }

    /// Produces to the dead-letter topic until every message is acknowledged.
    async fn dead_letter(&self, rejects: &[RejectedMessage]) {
        if rejects.is_empty() {
            return;
        }
        let mut backoff = Backoff::default();
        while let Err(error) = self.dead_letters.send_all(rejects).await {
            self.metrics
                .retrying(Dependency::DeadLetter, backoff.attempt(), &error);
            backoff.wait().await;
        }
        self.metrics.dlq_produced.inc_by(rejects.len() as u64);
    }

    /// Writes until committed. Returns the outcome, the events now in
    /// Postgres, and how many rows were refused and dead-lettered instead.
    async fn write<'a>(
        &self,
        mut events: Vec<&'a PendingEvent>,
        rejects: &[RejectedMessage],
        next_offsets: &[(i32, i64)],
    ) -> (WriteOutcome, Vec<&'a PendingEvent>, usize) {
        let mut refused: Vec<RejectedMessage> = Vec::new();
        let mut backoff = Backoff::default();
        loop {
            let all_rejects: Vec<&RejectedMessage> = rejects.iter().chain(&refused).collect();
            match self
                .store
                .write_batch(&events, &all_rejects, next_offsets)
                .await
            {
                Ok(outcome) => return (outcome, events, refused.len()),
                Err(StoreError::Rejected(error)) => {
                    tracing::warn!(
                        "Postgres refused the batch, isolating the row: {:#}",
                        anyhow::Error::new(error)
                    );
                    match self.store.find_rejected_rows(&events).await {
                        Ok(bad) if !bad.is_empty() => {
                            let newly = take_refused(&mut events, bad);
                            for refused in &newly {
                                tracing::warn!(
                                    partition = refused.origin.partition,
                                    offset = refused.origin.offset,
                                    "{}",
                                    refused.rejection
                                );
                                self.metrics.rejected(RejectReason::StorageRejected);
                            }
                            self.dead_letter(&newly).await;
                            refused.extend(newly);
                            continue;
                        }
                        Ok(_) => {
                            let error =
                                anyhow::anyhow!("batch refused but no single row is; retrying");
                            self.metrics
                                .retrying(Dependency::Postgres, backoff.attempt(), &error);
                        }
                        Err(e) => self.metrics.retrying(
                            Dependency::Postgres,
                            backoff.attempt(),
                            &anyhow::Error::new(e),
                        ),
                    }
                }
                Err(unavailable) => {
                    self.metrics.retrying(
                        Dependency::Postgres,
                        backoff.attempt(),
                        &anyhow::Error::new(unavailable),
                    );
                }
            }
            backoff.wait().await;
        }
    }

    fn record(
        &self,
        outcome: &WriteOutcome,
        written: &[&PendingEvent],
        messages: usize,
        started: Instant,
    ) {
        for (event_type, count) in &outcome.inserted_by_type {
            self.metrics.stored(*event_type, *count);
        }
        self.metrics
            .duplicates(DedupLayer::Postgres, outcome.already_stored);
        let now = Utc::now();
        for event in written {
            let age = (now - event.event.occurred_at).num_milliseconds().max(0) as f64 / 1000.0;
            self.metrics.store_latency.observe(age);
        }
        self.metrics.batch_size.observe(messages as f64);
        self.metrics
            .flush_duration
            .observe(started.elapsed().as_secs_f64());
        self.metrics.last_store_timestamp.set(now.timestamp());
    }
}

/// Removes the refused rows from `events`, turning each into a dead letter.
fn take_refused(
    events: &mut Vec<&PendingEvent>,
    bad: Vec<(usize, String)>,
) -> Vec<RejectedMessage> {
    let mut refused = Vec::with_capacity(bad.len());
    for (index, error) in bad.into_iter().rev() {
        let event = events.remove(index);
        refused.push(RejectedMessage {
            origin: event.origin,
            key: event.key.clone(),
            value: Some(event.value.clone()),
            rejection: Rejection::new(
                RejectReason::StorageRejected,
                format!("Postgres refused the row: {error}"),
            ),
        });
    }
    refused.reverse();
    refused
}
