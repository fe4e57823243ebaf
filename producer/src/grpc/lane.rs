//! One lane of the gRPC sink: a task that takes records from its bounded
//! queue, groups them into a batch ([`super::batch`]), sends it with
//! `PushBatch`, and acts on the answer ([`super::verdict`]) until every
//! record of the batch is acked, refused or failed; then the next batch.
//!
//! One batch in flight per lane keeps each lane's records in order, retries
//! included; the sink runs a few lanes side by side for throughput and puts
//! each user on one lane, so a user's events reach Kafka in the order they
//! were made, as with the Kafka sink.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use eventpulse_events::grpc::v1::event_service_client::EventServiceClient;
use eventpulse_events::grpc::v1::{Event, EventBatch};
use tokio::sync::mpsc::{self, error::TryRecvError};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;
use tonic::{Request, Status};

use super::batch::{halves, without, BatchBuilder, BatchLimits, Record};
use super::counts::{describe, Counts};
use super::verdict::{judge, Retry, Verdict};

/// The metadata entry the API reads the key from.
const API_KEY_HEADER: &str = "x-api-key";

/// What the lanes share with the sink.
#[derive(Debug, Default)]
pub struct Shared {
    pub counts: Counts,
    /// Set once a stop is requested: refusals are no longer retried.
    stop_retrying: AtomicBool,
    /// Whether a batch was halved yet (logged once).
    halved: AtomicBool,
}

impl Shared {
    pub fn stop_retrying(&self) {
        self.stop_retrying.store(true, Ordering::Relaxed);
    }

    fn stopping(&self) -> bool {
        self.stop_retrying.load(Ordering::Relaxed)
    }
}

pub struct Lane {
    pub client: EventServiceClient<Channel>,
    pub api_key: MetadataValue<Ascii>,
    pub limits: BatchLimits,
    pub shared: Arc<Shared>,
}

impl Lane {
    /// Sends batches until the queue is closed and drained.
    pub async fn run(mut self, mut queue: mpsc::Receiver<Record>) {
        let mut carry = None;
        while let Some(batch) = collect(&mut queue, &mut carry, self.limits).await {
            self.deliver(batch).await;
        }
    }

    /// Sends `records` until each one is acked, refused or failed. Pieces
    /// still to send are kept as a stack, next piece last, so that halves
    /// and the rest of a partly invalid batch go in their original order.
    async fn deliver(&mut self, records: Vec<Record>) {
        let shared = self.shared.clone();
        let counts = &shared.counts;
        let mut pending = vec![records];
        let mut retry: Option<Retry> = None;
        while let Some(batch) = pending.pop() {
            let status = match self.push(&batch).await {
                Ok(()) => {
                    counts.acked(batch.len());
                    // A later outage gets a whole budget of its own.
                    retry = None;
                    continue;
                }
                Err(status) => status,
            };
            match judge(&status, batch.len()) {
                Verdict::RefuseSome(invalid) => {
                    counts.refused(invalid.len());
                    let rest = without(batch, &invalid);
                    if !rest.is_empty() {
                        pending.push(rest);
                    }
                }
                Verdict::Halve => {
                    self.note_halving(batch.len(), &status);
                    let (first, second) = halves(batch);
                    pending.push(second);
                    pending.push(first);
                }
                Verdict::RefuseOne => counts.refused(1),
                Verdict::Retry => {
                    let retry = retry.get_or_insert_with(|| Retry::start(Instant::now()));
                    if self.pause(retry).await {
                        pending.push(batch);
                    } else {
                        counts.failed(batch.len(), &status, "gave up retrying a batch");
                    }
                }
                Verdict::Fail => counts.failed(batch.len(), &status, "the API refused a batch"),
            }
        }
    }

    async fn push(&mut self, batch: &[Record]) -> Result<(), Status> {
        // A copy per try: a refused batch is sent again, in part or whole.
        let events = batch
            .iter()
            .map(|record| Event::json(record.clone()))
            .collect();
        let mut request = Request::new(EventBatch { events });
        request
            .metadata_mut()
            .insert(API_KEY_HEADER, self.api_key.clone());
        self.client.push_batch(request).await.map(|_| ())
    }

    /// Waits before the next try; `false` once the retry budget is spent or
    /// a stop was requested.
    async fn pause(&self, retry: &mut Retry) -> bool {
        if self.shared.stopping() {
            return false;
        }
        let Some(delay) = retry.next_delay(Instant::now()) else {
            return false;
        };
        tokio::time::sleep(delay).await;
        !self.shared.stopping()
    }

    /// Halving is normal for a lone huge record, but on every batch it means
    /// the API's limits are below [`BatchLimits::default`]: worth one line.
    fn note_halving(&self, records: usize, status: &Status) {
        if records > 1 && !self.shared.halved.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "the API refused a batch of {records} records as a whole ({}); sending \
                 halves (further ones are not logged)",
                describe(status)
            );
        }
    }
}

/// The next batch: a first record (waited for), then whatever else arrives
/// within the linger, up to the limits. A record that does not fit is kept
/// in `carry` for the next batch. `None` once the queue is closed and empty.
async fn collect(
    queue: &mut mpsc::Receiver<Record>,
    carry: &mut Option<Record>,
    limits: BatchLimits,
) -> Option<Vec<Record>> {
    let first = match carry.take() {
        Some(record) => record,
        None => queue.recv().await?,
    };
    let mut batch = BatchBuilder::new(limits, first);
    let deadline = tokio::time::Instant::now() + limits.linger;
    while !batch.is_full() {
        // What is queued already needs no timer.
        let next = match queue.try_recv() {
            Ok(record) => Some(record),
            Err(TryRecvError::Empty) => tokio::time::timeout_at(deadline, queue.recv())
                .await
                .ok()
                .flatten(),
            Err(TryRecvError::Disconnected) => None,
        };
        let Some(record) = next else { break };
        if let Err(record) = batch.push(record) {
            *carry = Some(record);
            break;
        }
    }
    Some(batch.into_records())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn queue_of(records: u8) -> mpsc::Receiver<Record> {
        let (sender, queue) = mpsc::channel(16);
        for i in 0..records {
            sender.send(vec![i]).await.unwrap();
        }
        queue
    }

    #[tokio::test(start_paused = true)]
    async fn batches_fill_up_to_the_record_limit() {
        let limits = BatchLimits {
            max_records: 3,
            ..BatchLimits::default()
        };
        let mut queue = queue_of(5).await;
        let mut carry = None;
        let first = collect(&mut queue, &mut carry, limits).await.unwrap();
        assert_eq!(first, vec![vec![0], vec![1], vec![2]]);
        assert_eq!(carry, None);
        let second = collect(&mut queue, &mut carry, limits).await.unwrap();
        assert_eq!(second, vec![vec![3], vec![4]]);
        // The sender is gone with `queue_of`'s scope: closed and drained.
        assert!(collect(&mut queue, &mut carry, limits).await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_record_past_the_byte_limit_is_carried_to_the_next_batch() {
        // One byte plus framing each: two fit in 20 bytes, not three.
        let limits = BatchLimits {
            max_bytes: 20,
            ..BatchLimits::default()
        };
        let mut queue = queue_of(3).await;
        let mut carry = None;
        let first = collect(&mut queue, &mut carry, limits).await.unwrap();
        assert_eq!(first, vec![vec![0], vec![1]]);
        assert_eq!(carry, Some(vec![2]));
        let second = collect(&mut queue, &mut carry, limits).await.unwrap();
        assert_eq!(second, vec![vec![2]]);
        assert!(collect(&mut queue, &mut carry, limits).await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_waits_no_longer_than_the_linger() {
        let limits = BatchLimits {
            linger: Duration::from_millis(10),
            ..BatchLimits::default()
        };
        let (sender, mut queue) = mpsc::channel(16);
        sender.send(vec![1]).await.unwrap();
        let started = tokio::time::Instant::now();
        let batch = collect(&mut queue, &mut None, limits).await.unwrap();
        assert_eq!(batch, vec![vec![1]]);
        assert_eq!(started.elapsed(), Duration::from_millis(10));
        drop(sender);
    }
}
