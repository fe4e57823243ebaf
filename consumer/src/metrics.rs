//! Every Prometheus series the consumer exports, in one registry.
//!
//! Names follow `eventpulse_<thing>_<unit>_total`; labels are low-cardinality
//! (event type, reason code, dedup layer, dependency, partition). Recording
//! methods that matter for operators also log, so a log line and its counter
//! can never disagree (the pattern of Vector's `internal_events`).

use eventpulse_events::{EventType, RejectReason};
use eventpulse_service::metrics::{counter_vec, preregister, register, registry, render};
use prometheus::{
    exponential_buckets, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};

/// Where a duplicate was caught.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DedupLayer {
    InBatch,
    Redis,
    Postgres,
}

impl DedupLayer {
    fn label(self) -> &'static str {
        match self {
            Self::InBatch => "in_batch",
            Self::Redis => "redis",
            Self::Postgres => "postgres",
        }
    }
}

pub use eventpulse_service::Dependency;

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub messages_consumed: IntCounter,
    pub messages_skipped: IntCounterVec,
    events_stored: IntCounterVec,
    rejected: IntCounterVec,
    duplicates: IntCounterVec,
    pub dlq_produced: IntCounter,
    pub batch_size: Histogram,
    pub flush_duration: Histogram,
    pub store_latency: Histogram,
    pub consumer_lag: IntGaugeVec,
    retries: IntCounterVec,
    errors: IntCounterVec,
    pub redis_degraded: IntGauge,
    pub rebalances: IntCounterVec,
    pub assigned_partitions: IntGauge,
    pub last_store_timestamp: IntGauge,
    partition_anomalies: IntCounterVec,
    pub buffered_bytes: IntGauge,
}

/// What a run did, summed over labels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub messages: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub dead_lettered: u64,
}

fn sum(counters: &IntCounterVec) -> u64 {
    use prometheus::core::Collector as _;
    counters
        .collect()
        .iter()
        .flat_map(|family| family.get_metric())
        .map(|m| m.get_counter().get_value() as u64)
        .sum()
}

fn histogram(name: &str, help: &str, buckets: Vec<f64>) -> prometheus::Result<Histogram> {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
}

impl Metrics {
    pub fn new() -> Self {
        let r = registry();
        let seconds = exponential_buckets(0.001, 2.0, 16).expect("valid buckets");
        let metrics = Self {
            messages_consumed: register(&r, IntCounter::new("eventpulse_messages_consumed_total", "Kafka messages received")),
            messages_skipped: register(&r, counter_vec("eventpulse_messages_skipped_total", "Messages not processed: from a partition no longer (or not yet) assigned", &["reason"])),
            events_stored: register(&r, counter_vec("eventpulse_events_stored_total", "Events inserted into Postgres", &["event_type"])),
            rejected: register(&r, counter_vec("eventpulse_messages_rejected_total", "Messages that were not valid events, by reason", &["reason"])),
            duplicates: register(&r, counter_vec("eventpulse_duplicates_total", "Duplicate events dropped, by the layer that caught them", &["layer"])),
            dlq_produced: register(&r, IntCounter::new("eventpulse_dlq_produced_total", "Messages acknowledged by the dead-letter topic")),
            batch_size: register(&r, histogram("eventpulse_batch_size", "Messages per flushed batch", exponential_buckets(1.0, 2.0, 15).expect("valid buckets"))),
            flush_duration: register(&r, histogram("eventpulse_batch_flush_duration_seconds", "Time to make one batch durable (dedup, DLQ, insert, offsets)", seconds)),
            // 5 ms to ~43 min: a backlog after an outage must still show its true latency.
            store_latency: register(&r, histogram("eventpulse_event_store_latency_seconds", "From the event's timestamp to its row being committed", exponential_buckets(0.005, 2.0, 20).expect("valid buckets"))),
            consumer_lag: register(&r, IntGaugeVec::new(Opts::new("eventpulse_consumer_lag_messages", "Messages behind the partition's high watermark"), &["partition"])),
            retries: register(&r, counter_vec("eventpulse_dependency_retries_total", "Operations retried after a transient failure", &["dependency"])),
            errors: register(&r, counter_vec("eventpulse_dependency_errors_total", "Failed operations against a dependency", &["dependency"])),
            redis_degraded: register(&r, IntGauge::new("eventpulse_redis_degraded", "1 while Redis is unreachable and Postgres is the only dedup layer")),
            rebalances: register(&r, counter_vec("eventpulse_rebalances_total", "Consumer group rebalance callbacks", &["kind"])),
            assigned_partitions: register(&r, IntGauge::new("eventpulse_assigned_partitions", "Partitions currently assigned to this consumer")),
            last_store_timestamp: register(&r, IntGauge::new("eventpulse_last_store_timestamp_seconds", "Unix time of the last batch committed to Postgres")),
            partition_anomalies: register(&r, counter_vec("eventpulse_partition_anomalies_total", "Partitions whose stored position disagreed with Kafka: offsets reused (topic recreated, log truncated, offset reset) or Postgres behind Kafka (lost commits)", &["kind"])),
            buffered_bytes: register(&r, IntGauge::new("eventpulse_buffered_bytes", "Bytes of messages held by the consumer (the batch filling and the one being flushed)")),
            registry: r,
        };
        metrics.preregister_labels();
        metrics
    }

    /// Creates every known label value at zero, so dashboards and alerts see
    /// the series (and `rate()` works) before the first occurrence.
    fn preregister_labels(&self) {
        preregister(&self.events_stored, EventType::ALL.map(EventType::as_str));
        preregister(&self.rejected, RejectReason::ALL.map(RejectReason::code));
        let layers = [DedupLayer::InBatch, DedupLayer::Redis, DedupLayer::Postgres];
        preregister(&self.duplicates, layers.map(DedupLayer::label));
        let dependencies = [
            Dependency::Postgres,
            Dependency::Redis,
            Dependency::Kafka,
            Dependency::DeadLetter,
        ]
        .map(Dependency::label);
        preregister(&self.retries, dependencies);
        preregister(&self.errors, dependencies);
        preregister(&self.rebalances, ["assign", "revoke", "error"]);
        preregister(&self.messages_skipped, ["unassigned"]);
        preregister(
            &self.partition_anomalies,
            ["offsets_reused", "offsets_rewound", "postgres_behind_kafka"],
        );
    }

    /// Totals since start, for a one-shot run's summary.
    pub fn totals(&self) -> Totals {
        Totals {
            messages: self.messages_consumed.get(),
            stored: sum(&self.events_stored),
            duplicates: sum(&self.duplicates),
            dead_lettered: sum(&self.rejected),
        }
    }

    pub fn stored(&self, event_type: EventType, count: u64) {
        self.events_stored
            .with_label_values(&[event_type.as_str()])
            .inc_by(count);
    }

    pub fn rejected(&self, reason: RejectReason) {
        self.rejected.with_label_values(&[reason.code()]).inc();
    }

    pub fn duplicates(&self, layer: DedupLayer, count: u64) {
        if count > 0 {
            tracing::debug!(layer = layer.label(), count, "duplicates dropped");
            self.duplicates
                .with_label_values(&[layer.label()])
                .inc_by(count);
        }
    }

    /// A partition whose offsets cannot be trusted as they are: logged as an
    /// error (it means data upstream or in Postgres changed under us) and counted.
    pub fn partition_anomaly(&self, kind: &'static str, message: std::fmt::Arguments<'_>) {
        tracing::error!(kind, "{message}");
        self.partition_anomalies.with_label_values(&[kind]).inc();
    }

    /// A failed operation that will be retried: logged with its whole cause chain.
    pub fn retrying(&self, dependency: Dependency, attempt: u32, error: &anyhow::Error) {
        tracing::warn!(
            dependency = dependency.label(),
            attempt,
            "retrying after error: {error:#}"
        );
        self.errors.with_label_values(&[dependency.label()]).inc();
        self.retries.with_label_values(&[dependency.label()]).inc();
    }

    /// A failed operation that degrades service but is not retried.
    pub fn failed(&self, dependency: Dependency, error: &anyhow::Error) {
        tracing::warn!(
            dependency = dependency.label(),
            "operation failed: {error:#}"
        );
        self.errors.with_label_values(&[dependency.label()]).inc();
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        render(&self.registry)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
