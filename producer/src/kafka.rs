//! The Kafka sink: an idempotent, compressed, batching librdkafka producer.
//!
//! A `ThreadedProducer` rather than a `FutureProducer`: a load generator has
//! no use for a future per record, and counting outcomes in atomics from the
//! delivery callback costs far less than polling futures. When librdkafka's
//! queue is full, `send` waits for room and retries, so nothing is dropped
//! on the client side. At startup, the topic's metadata is fetched with a
//! timeout so that a wrong address or a missing topic fails in one line
//! instead of a stream of librdkafka reconnect logs.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::PurgeConfig;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};

use crate::config::Config;
use crate::sink::{Deliveries, Sent, Sink};
use crate::{ProducerError, StopSignal};

/// How long to wait for the last in-flight records after giving up on them.
const PURGE_GRACE: Duration = Duration::from_secs(5);

/// The producer settings eventpulse relies on; `-X` properties override them.
fn client_config(config: &Config) -> ClientConfig {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.brokers)
        .set("client.id", "eventpulse-producer")
        // Retries cannot reorder or duplicate a user's events: duplicates are
        // only ever the ones injected on purpose and counted in the summary.
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", config.compression.codec())
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        // Ten full batches of headroom. A bigger queue was no faster against a
        // memory-backed broker, and against a slow one it only hides the
        // back-pressure: the run "ends" with a long backlog still to deliver.
        .set("queue.buffering.max.messages", "100000")
        // librdkafka lets producers ask for topics to be created by metadata
        // requests, and the local broker obliges: a typo in --topic would
        // silently create a topic nobody consumes.
        .set("allow.auto.create.topics", "false")
        // Warnings and worse reach the context below, which decides whether to show them.
        .set_log_level(RDKafkaLogLevel::Warning);
    for (key, value) in &config.properties {
        client.set(key, value);
    }
    client
}

/// Counts delivery outcomes; called on librdkafka's threads.
#[derive(Default)]
struct DeliveryCounter {
    acked: AtomicU64,
    failed: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
    /// Until the startup check passes, client errors are the check's to
    /// report (in one line), not librdkafka's to log.
    connected: AtomicBool,
}

impl ClientContext for DeliveryCounter {
    /// Only warnings and worse arrive here (see `set_log_level` above).
    fn log(&self, _level: RDKafkaLogLevel, facility: &str, message: &str) {
        if self.connected.load(Ordering::Relaxed) {
            tracing::warn!(target: "librdkafka", "{facility}: {message}");
        } else {
            tracing::debug!(target: "librdkafka", "{facility}: {message}");
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if self.connected.load(Ordering::Relaxed) {
            tracing::warn!(target: "librdkafka", "{error}: {reason}");
        } else {
            tracing::debug!(target: "librdkafka", "{error}: {reason}");
        }
    }
}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let Err((error, _)) = result else {
            self.acked.fetch_add(1, Ordering::Relaxed);
            return;
        };
        self.count_failure(error, "delivery failed");
    }
}

impl DeliveryCounter {
    /// Counts a failure, and logs the first of each kind (the summary has the total).
    fn count_failure(&self, error: &KafkaError, what: &str) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        let seen = errors.entry(error.to_string()).or_insert(0);
        if *seen == 0 {
            tracing::warn!("{what}: {error} (further ones are counted, not logged)");
        }
        *seen += 1;
    }
}

pub struct KafkaSink {
    producer: ThreadedProducer<DeliveryCounter>,
    topic: String,
    sent: u64,
}

impl KafkaSink {
    /// Creates the producer and checks that the broker answers and the topic
    /// exists, within `config.connect_timeout`.
    pub fn connect(config: &Config) -> Result<Self, ProducerError> {
        let producer: ThreadedProducer<DeliveryCounter> = client_config(config)
            .create_with_context(DeliveryCounter::default())
            .map_err(|e| ProducerError::KafkaConfig(e.to_string()))?;
        check_topic(&producer, config)?;
        producer.context().connected.store(true, Ordering::Relaxed);
        Ok(Self {
            producer,
            topic: config.topic.clone(),
            sent: 0,
        })
    }

    fn counted(&self) -> Deliveries {
        let context = self.producer.context();
        Deliveries {
            acked: context.acked.load(Ordering::Relaxed),
            failed: context.failed.load(Ordering::Relaxed),
            refused: 0,
        }
    }

    /// Counts a record librdkafka refused outright (e.g. larger than
    /// `message.max.bytes`) as failed, like a failed delivery.
    fn refused(&self, error: &KafkaError) {
        self.producer
            .context()
            .count_failure(error, "librdkafka refused a record");
    }

    /// Gives up on the records still queued or in flight; they count as failed.
    fn abandon_rest(&self) -> Deliveries {
        self.producer
            .purge(PurgeConfig::default().queue().inflight());
        let _ = self.producer.flush(PURGE_GRACE);
        let counted = self.counted();
        let lost = self.sent.saturating_sub(counted.settled());
        Deliveries {
            failed: counted.failed + lost,
            ..counted
        }
    }

    /// One line per kind of failure with its count, ahead of the summary.
    fn report_errors(&self) {
        let errors = self
            .producer
            .context()
            .errors
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for (error, count) in errors.iter() {
            tracing::warn!("{count} record(s) failed: {error}");
        }
    }
}

fn check_topic(
    producer: &ThreadedProducer<DeliveryCounter>,
    config: &Config,
) -> Result<(), ProducerError> {
    let metadata = producer
        .client()
        .fetch_metadata(Some(&config.topic), config.connect_timeout)
        .map_err(|e| ProducerError::BrokerUnreachable {
            brokers: config.brokers.clone(),
            topic: config.topic.clone(),
            timeout: config.connect_timeout,
            reason: e.to_string(),
        })?;
    let found = metadata.topics().iter().find(|t| t.name() == config.topic);
    match found {
        Some(topic) if topic.error().is_none() && !topic.partitions().is_empty() => Ok(()),
        _ => Err(ProducerError::TopicMissing {
            brokers: config.brokers.clone(),
            topic: config.topic.clone(),
        }),
    }
}

impl Sink for KafkaSink {
    fn send(
        &mut self,
        key: &str,
        payload: &[u8],
        stop: &StopSignal,
    ) -> Result<Sent, ProducerError> {
        let mut record = BaseRecord::to(&self.topic).key(key).payload(payload);
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    if stop.stopping() {
                        return Ok(Sent::Closed);
                    }
                    record = back;
                    // The polling thread serves delivery reports, which frees room.
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((error, _)) => {
                    self.refused(&error);
                    break;
                }
            }
        }
        self.sent += 1;
        Ok(Sent::Taken)
    }

    fn deliveries(&self) -> Deliveries {
        self.counted()
    }

    fn finish(
        &mut self,
        stop: &StopSignal,
        on_wait: &mut dyn FnMut(Deliveries),
    ) -> Result<Deliveries, ProducerError> {
        loop {
            let counted = self.counted();
            on_wait(counted);
            if counted.settled() >= self.sent {
                self.report_errors();
                return Ok(counted);
            }
            if stop.aborting() {
                let rest = self.abandon_rest();
                self.report_errors();
                return Ok(rest);
            }
            // A timeout here only means "not yet": loop to update progress.
            let _ = self.producer.flush(Duration::from_millis(100));
        }
    }
}
