//! Making one batch durable, in the order that keeps "nothing lost, nothing
//! twice":
//!
//! 1. confirm in Redis the lane's previous batches whose Kafka commit was made;
//! 2. keep the first copy of each event id in the batch;
//! 3. claim the ids in Redis and drop those Redis knows are stored;
//! 4. produce the rejected messages to the dead-letter topic and wait for acks;
//! 5. in one Postgres transaction, insert the events (`ON CONFLICT DO
//!    NOTHING`: the backstop), record the dead letters, advance the offsets.
//!
//! Offsets are committed to Kafka by the commit stage after this returns, and
//! only then are the batch's ids confirmed in Redis (by its lane's next flush).
//! Transient failures are retried until they succeed or shutdown is
//! requested; a row that Postgres refuses on its own is isolated by
//! bisection and dead-lettered, and the next copy of its id, if the batch has
//! one, gets its own chance.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::Utc;
use eventpulse_events::{RejectReason, Rejection};
use uuid::Uuid;

use crate::batch::{Batch, PendingEvent, RejectedMessage};
use crate::dedup::{Mark, RedisFilter};
use crate::dlq::DeadLetters;
use crate::metrics::{DedupLayer, Dependency, Metrics};
use crate::retry::{self, Interrupted};
use crate::shutdown::ShutdownFlag;
use crate::store::{DeadLetterForm, Store, StoreError, WriteOutcome};

/// What one flush did.
#[derive(Debug, Default)]
pub struct FlushReport {
    pub messages: usize,
    pub inserted: u64,
    pub duplicates: u64,
    pub dead_lettered: usize,
    /// The ids now in Postgres, to confirm in Redis once Kafka has the offsets.
    pub stored_ids: Vec<Uuid>,
}

pub struct Flusher {
    pub store: Store,
    pub redis: RedisFilter,
    /// Shared by every lane's flusher: one producer for the dead letters.
    pub dead_letters: Arc<DeadLetters>,
    pub metrics: Metrics,
}

impl Flusher {
    /// One flusher per lane: the same store, Redis and dead-letter producer
    /// (each lane's transaction takes its own pooled connection).
    pub fn for_lanes(self, lanes: usize) -> Vec<Flusher> {
        let mut flushers: Vec<Flusher> = (1..lanes.max(1))
            .map(|_| Flusher {
                store: self.store.clone(),
                redis: self.redis.clone(),
                dead_letters: Arc::clone(&self.dead_letters),
                metrics: self.metrics.clone(),
            })
            .collect();
        flushers.insert(0, self);
        flushers
    }
}

/// The rows of one batch still to be written, changed by each refusal.
struct WriteSet<'a> {
    events: Vec<&'a PendingEvent>,
    /// Later copies of ids in `events`, in batch order.
    copies: Vec<&'a PendingEvent>,
    refused: Vec<RejectedMessage>,
    form: DeadLetterForm,
}

impl Flusher {
    /// Makes `batch` durable; `Err` only when shutdown interrupted it, in
    /// which case nothing of it may be taken as durable.
    pub async fn flush(
        &mut self,
        batch: &Batch,
        confirm: &[Uuid],
        shutdown: &ShutdownFlag,
    ) -> Result<FlushReport, Interrupted> {
        let started = Instant::now();
        self.redis.confirm(confirm).await;
        let (unique, copies) = batch.unique_events();
        let (to_write, in_redis) = self.drop_stored_in_redis(unique).await;
        self.metrics.duplicates(DedupLayer::Redis, in_redis);
        let rejects: Vec<&RejectedMessage> = batch.rejects.iter().collect();
        self.dead_letter(&rejects, shutdown).await?;
        let set = WriteSet {
            events: to_write,
            copies,
            refused: Vec::new(),
            form: DeadLetterForm::Full,
        };
        let (outcome, set) = self.write(set, &batch.rejects, batch, shutdown).await?;
        // Copies never promoted by a refusal are this batch's duplicates.
        let in_batch = set.copies.len() as u64;
        self.metrics.duplicates(DedupLayer::InBatch, in_batch);
        self.record(&outcome, &set.events, batch.len(), started);
        Ok(FlushReport {
            messages: batch.len(),
            inserted: outcome.inserted,
            duplicates: in_batch + in_redis + outcome.already_stored,
            dead_lettered: batch.rejects.len() + set.refused.len(),
            stored_ids: set.events.iter().map(|e| e.event.event_id).collect(),
        })
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

    /// Produces to the dead-letter topic until every message is acknowledged;
    /// a retry re-sends only the messages not acknowledged yet.
    async fn dead_letter(
        &self,
        rejects: &[&RejectedMessage],
        shutdown: &ShutdownFlag,
    ) -> Result<(), Interrupted> {
        if rejects.is_empty() {
            return Ok(());
        }
        let remaining = Mutex::new(rejects.to_vec());
        retry::until_ok(Dependency::DeadLetter, &self.metrics, shutdown, || async {
            let todo = remaining.lock().expect("lock not poisoned").clone();
            match self.dead_letters.send_all(&todo).await {
                Ok(()) => Ok(()),
                Err((failed, error)) => {
                    *remaining.lock().expect("lock not poisoned") = failed;
                    Err(error)
                }
            }
        })
        .await?;
        self.metrics.dlq_produced.inc_by(rejects.len() as u64);
        Ok(())
    }

    /// Writes until committed. Returns the outcome and the final write set:
    /// the events now in Postgres and the rows refused and dead-lettered.
    async fn write<'a>(
        &self,
        set: WriteSet<'a>,
        rejects: &[RejectedMessage],
        batch: &Batch,
        shutdown: &ShutdownFlag,
    ) -> Result<(WriteOutcome, WriteSet<'a>), Interrupted> {
        let set = Mutex::new(set);
        let next_offsets = batch.next_offsets();
        let outcome = retry::until_ok(Dependency::Postgres, &self.metrics, shutdown, || async {
            let (events, refused, form) = {
                let set = set.lock().expect("lock not poisoned");
                (set.events.clone(), set.refused.clone(), set.form)
            };
            let all_rejects: Vec<&RejectedMessage> = rejects.iter().chain(&refused).collect();
            match self
                .store
                .write_batch(&events, &all_rejects, form, &next_offsets)
                .await
            {
                Err(StoreError::Rejected(error)) => {
                    tracing::warn!(
                        "Postgres refused the batch, isolating the row: {:#}",
                        anyhow::Error::new(error)
                    );
                    self.isolate(&set, shutdown).await
                }
                other => other.map_err(anyhow::Error::new),
            }
        })
        .await?;
        Ok((outcome, set.into_inner().expect("lock not poisoned")))
    }

    /// Finds the rows Postgres refuses on their own and moves them from the
    /// write set to the dead letters. Always an `Err`: the batch must be
    /// written again, now without them.
    async fn isolate(
        &self,
        set: &Mutex<WriteSet<'_>>,
        shutdown: &ShutdownFlag,
    ) -> anyhow::Result<WriteOutcome> {
        let events = set.lock().expect("lock not poisoned").events.clone();
        let bad = self.store.find_rejected_rows(&events).await?;
        if bad.is_empty() {
            // No event row is refused on its own: a dead-letter row is.
            set.lock().expect("lock not poisoned").form = DeadLetterForm::Plain;
            anyhow::bail!(
                "batch refused but no event row is; recording its dead letters in plain form"
            );
        }
        let newly = set.lock().expect("lock not poisoned").refuse(bad);
        for refused in &newly {
            tracing::warn!(
                partition = refused.origin.partition,
                offset = refused.origin.offset,
                "{}",
                refused.rejection
            );
        }
        let newly_refs: Vec<&RejectedMessage> = newly.iter().collect();
        self.dead_letter(&newly_refs, shutdown).await?;
        let count = newly.len();
        set.lock().expect("lock not poisoned").refused.extend(newly);
        anyhow::bail!("{count} row(s) refused by Postgres dead-lettered; writing the rest")
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
        // Counted once the dead letter is durable, and only the first time:
        // a message read again after a crash is not counted again.
        for reason in &outcome.dead_lettered {
            self.metrics.rejected(*reason);
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

impl<'a> WriteSet<'a> {
    /// Removes the refused rows (indexes into `events`), turning each into a
    /// dead letter, and promotes the next copy of each refused id, if any.
    fn refuse(&mut self, bad: Vec<(usize, String)>) -> Vec<RejectedMessage> {
        let mut refused = Vec::with_capacity(bad.len());
        for (index, error) in bad.into_iter().rev() {
            let event = self.events.remove(index);
            let id = event.event.event_id;
            if let Some(at) = self.copies.iter().position(|c| c.event.event_id == id) {
                self.events.push(self.copies.remove(at));
            }
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
}
