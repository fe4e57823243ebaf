//! Every Prometheus series the API exports, in one registry, served on its
//! own `/metrics`. Names follow `eventpulse_api_<thing>_<unit>_total`; labels
//! are low-cardinality: the route *template* (`/events/{event_id}`, never the
//! id; `unmatched` for unknown paths), the method, the status, the event type
//! and the validation reason code.

use std::time::Duration;

use eventpulse_events::{EventType, RejectReason};
use prometheus::{
    exponential_buckets, Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry,
    TextEncoder,
};

use crate::error::Dependency;

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    ingested: IntCounterVec,
    rejected: IntCounterVec,
    dependency_errors: IntCounterVec,
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(metric.clone()))
        .expect("metric names are unique");
    metric
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        // 1 ms .. ~33 s: queries and broker acknowledgements both fit.
        let buckets = exponential_buckets(0.001, 2.0, 16).expect("valid buckets");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "eventpulse_api_request_duration_seconds",
                "Time to answer a request, by route template and method",
            )
            .buckets(buckets),
            &["route", "method"],
        )
        .expect("valid metric");
        r.register(Box::new(duration.clone()))
            .expect("metric names are unique");
        let metrics = Self {
            requests: counter_vec(
                &r,
                "eventpulse_api_requests_total",
                "Requests answered, by route template, method and status",
                &["route", "method", "status"],
            ),
            duration,
            ingested: counter_vec(
                &r,
                "eventpulse_api_events_ingested_total",
                "Events acknowledged by Kafka after an ingestion request",
                &["event_type"],
            ),
            rejected: counter_vec(
                &r,
                "eventpulse_api_ingest_rejected_total",
                "Events refused by validation at ingestion, by reason",
                &["reason"],
            ),
            dependency_errors: counter_vec(
                &r,
                "eventpulse_api_dependency_errors_total",
                "Requests that failed because Postgres or Kafka was unavailable",
                &["dependency"],
            ),
            registry: r,
        };
        #[cfg(target_os = "linux")]
        metrics
            .registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("process collector registers once");
        metrics.preregister_labels();
        metrics
    }

    /// Every known label value at zero, so `rate()` works from the start.
    fn preregister_labels(&self) {
        for t in EventType::ALL {
            self.ingested.with_label_values(&[t.as_str()]);
        }
        for reason in RejectReason::ALL {
            self.rejected.with_label_values(&[reason.code()]);
        }
        for dependency in [Dependency::Postgres, Dependency::Kafka] {
            self.dependency_errors
                .with_label_values(&[dependency.label()]);
        }
    }

    pub fn request(&self, route: &str, method: &str, status: u16, took: Duration) {
        self.requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        self.duration
            .with_label_values(&[route, method])
            .observe(took.as_secs_f64());
    }

    pub fn ingested(&self, event_type: EventType) {
        self.ingested
            .with_label_values(&[event_type.as_str()])
            .inc();
    }

    pub fn rejected(&self, reason: RejectReason) {
        self.rejected.with_label_values(&[reason.code()]).inc();
    }

    pub fn dependency_failed(&self, dependency: Dependency) {
        self.dependency_errors
            .with_label_values(&[dependency.label()])
            .inc();
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("text encoding into a Vec cannot fail");
        String::from_utf8(buffer).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
