//! The gRPC sink (`--via grpc://HOST:PORT`): records go to eventpulse-api's
//! `EventService.PushBatch`, which validates them and produces the valid
//! ones to Kafka, so a run exercises the API's ingestion path end to end.
//!
//! The producer's loop is synchronous, so the sink owns a small tokio
//! runtime. [`Sink::send`] copies the record's bytes (sent as `Event.json`,
//! byte for byte) into one of a few lanes' bounded queues and returns; when
//! the queue is full it waits, which is the back-pressure. Each of eight
//! lanes ([`lane`]) batches ([`batch`]: up to 500 records or 512 KiB, 10 ms
//! linger) and has one batch in flight, so memory is bounded by the queues
//! plus one batch per lane (about 12,000 records), and a user's records (a
//! user always maps to one lane) keep their order.
//!
//! The API answers a batch all or nothing ([`verdict`]): the records it
//! names invalid are counted `refused` (the producer made them invalid on
//! purpose, so they are not delivery failures) and the rest is sent again;
//! a batch too large is halved; UNAVAILABLE is retried with backoff for a
//! minute; other refusals count as failed and are logged once per kind
//! ([`counts`]). Kafka's key is the API's choice (`payload.userId`), so the
//! key given to `send` only picks the lane. [`connect`] is the start-up
//! health check.

mod batch;
mod connect;
mod counts;
mod lane;
mod verdict;

use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use eventpulse_events::grpc::v1::event_service_client::EventServiceClient;
use tokio::runtime::Runtime;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::task::JoinHandle;
use tonic::metadata::MetadataValue;

use self::batch::{BatchLimits, Record};
use self::lane::{Lane, Shared};
use crate::config::Config;
use crate::sink::{Deliveries, Sent, Sink};
use crate::via::GrpcEndpoint;
use crate::{ProducerError, StopSignal};

/// Batches in flight at once. Each call waits for the broker's
/// acknowledgement, so few lanes leave the API idle between batches. By
/// measurement (200k records, unpaced, API and in-memory nisshi on this
/// 2-core machine): 4 lanes gave 50-62k records/s, with the API at 40% of a
/// core; 8, 12 and 16 all gave 64-128k/s, too noisy to rank. 8 is the
/// least that gets there, and the fewest small calls at low rates.
const LANES: usize = 8;

/// Records queued per lane: two full batches, so a lane finds its next
/// batch ready when the last one is acknowledged.
const LANE_QUEUE: usize = 1000;

/// How often a blocked `send` or `finish` looks at the stop signal.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// How long abandoned lanes get to wind down (they are cancelled, so only
/// a lane stuck outside tokio could take long).
const ABANDON_GRACE: Duration = Duration::from_secs(5);

pub struct GrpcSink {
    runtime: Runtime,
    /// Closed (emptied) by `finish`, which lets the lanes drain and end.
    queues: Vec<mpsc::Sender<Record>>,
    lanes: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
    sent: u64,
}

impl GrpcSink {
    /// Connects to the API at `endpoint` and checks, within
    /// `config.connect_timeout`, that its EventService is serving.
    pub fn connect(config: &Config, endpoint: &GrpcEndpoint) -> Result<Self, ProducerError> {
        let api_key = config
            .api_key
            .as_ref()
            .ok_or_else(|| ProducerError::ApiKeyMissing {
                endpoint: endpoint.to_string(),
            })?;
        let mut api_key: MetadataValue<_> = api_key
            .expose()
            .parse()
            .expect("ApiKey::parse admits only visible ASCII, which metadata carries");
        // Kept out of HTTP/2's header compression tables.
        api_key.set_sensitive(true);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("eventpulse-grpc")
            .enable_all()
            .build()
            .map_err(ProducerError::GrpcRuntime)?;
        let channel = runtime.block_on(connect::check(endpoint, config.connect_timeout))?;
        let shared = Arc::new(Shared::default());
        let (queues, lanes) = (0..LANES)
            .map(|_| {
                let (queue, receiver) = mpsc::channel(LANE_QUEUE);
                let lane = Lane {
                    client: EventServiceClient::new(channel.clone()),
                    api_key: api_key.clone(),
                    limits: BatchLimits::default(),
                    shared: shared.clone(),
                };
                (queue, runtime.spawn(lane.run(receiver)))
            })
            .unzip();
        Ok(Self {
            runtime,
            queues,
            lanes,
            shared,
            sent: 0,
        })
    }

    /// Waits until every lane has ended, or `limit` passed. Lanes that
    /// ended are removed (a finished task must not be awaited again).
    fn join_lanes(&mut self, limit: Duration) {
        let lanes = &mut self.lanes;
        within(&self.runtime, limit, async {
            while let Some(lane) = lanes.last_mut() {
                // A lane that panicked has its records counted lost below.
                let _ = lane.await;
                lanes.pop();
            }
        });
    }
}

/// Runs `work` on `runtime` from the producer's (synchronous) thread for at
/// most `limit`; `None` if it did not finish. The timer is made inside the
/// runtime: this thread has no runtime of its own to make it in.
fn within<T>(runtime: &Runtime, limit: Duration, work: impl Future<Output = T>) -> Option<T> {
    runtime.block_on(async { tokio::time::timeout(limit, work).await.ok() })
}

/// The lane of a record with `key`: the same for every record of a user.
fn lane_of(key: &str, lanes: usize) -> usize {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    (hasher.finish() % lanes as u64) as usize
}

impl Sink for GrpcSink {
    fn send(
        &mut self,
        key: &str,
        payload: &[u8],
        stop: &StopSignal,
    ) -> Result<Sent, ProducerError> {
        let Some(queue) = self.queues.get(lane_of(key, LANES)) else {
            return Ok(Sent::Closed);
        };
        let mut record = match queue.try_send(payload.to_vec()) {
            Ok(()) => None,
            Err(TrySendError::Full(record)) => Some(record),
            Err(TrySendError::Closed(_)) => return Ok(Sent::Closed),
        };
        // Full: wait for room, as long as nobody asks to stop.
        while let Some(waiting) = record.take() {
            if stop.stopping() {
                return Ok(Sent::Closed);
            }
            match within(&self.runtime, STOP_CHECK, queue.reserve()) {
                Some(Ok(room)) => room.send(waiting),
                Some(Err(_closed)) => return Ok(Sent::Closed),
                None => record = Some(waiting),
            }
        }
        self.sent += 1;
        Ok(Sent::Taken)
    }

    fn deliveries(&self) -> Deliveries {
        self.shared.counts.deliveries()
    }

    /// Closes the queues and waits for the lanes to send what is left. A
    /// first stop request ends retrying (a batch refused as unavailable then
    /// fails at once); a second abandons the batches in flight, which count
    /// as failed.
    fn finish(
        &mut self,
        stop: &StopSignal,
        on_wait: &mut dyn FnMut(Deliveries),
    ) -> Result<Deliveries, ProducerError> {
        self.queues.clear();
        while !self.lanes.is_empty() {
            if stop.stopping() {
                self.shared.stop_retrying();
            }
            on_wait(self.deliveries());
            if stop.aborting() {
                self.lanes.iter().for_each(JoinHandle::abort);
                self.join_lanes(ABANDON_GRACE);
                break;
            }
            self.join_lanes(STOP_CHECK);
        }
        let lost = self.sent.saturating_sub(self.deliveries().settled());
        self.shared.counts.abandoned(lost);
        self.shared.counts.report_failures();
        let done = self.deliveries();
        on_wait(done);
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_keeps_one_lane_and_users_spread_over_all() {
        assert_eq!(lane_of("user-17", LANES), lane_of("user-17", LANES));
        let mut used = [0; LANES];
        for user in 0..1000 {
            used[lane_of(&format!("user-{user}"), LANES)] += 1;
        }
        assert!(used.iter().all(|n| *n > 80), "{used:?}");
    }
}
