//! Every Prometheus series the API exports, in one registry, served on its
//! own `/metrics`. Names follow `eventpulse_api_<thing>_<unit>_total`; labels
//! are low-cardinality: the route *template* (`/events/{event_id}`, never the
//! id; `unmatched` for unknown paths), the method, the status, the event type
//! and the validation reason code.

use std::time::Duration;

use eventpulse_events::{EventType, RejectReason};
use eventpulse_service::metrics::{counter_vec, preregister, register, registry, render};
use prometheus::{
    exponential_buckets, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Registry,
};

use crate::error::Dependency;

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    grpc_requests: IntCounterVec,
    grpc_duration: HistogramVec,
    ingested: IntCounterVec,
    rejected: IntCounterVec,
    dependency_errors: IntCounterVec,
    /// Live-feed streams open now.
    pub live_clients: IntGauge,
    live_sent: IntCounter,
    live_dropped: IntCounter,
}

impl Metrics {
    pub fn new() -> Self {
        let r = registry();
        // 1 ms .. ~33 s: queries and broker acknowledgements both fit.
        let buckets = exponential_buckets(0.001, 2.0, 16).expect("valid buckets");
        let metrics = Self {
            requests: register(
                &r,
                counter_vec(
                    "eventpulse_api_requests_total",
                    "Requests answered, by route template, method and status",
                    &["route", "method", "status"],
                ),
            ),
            duration: register(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "eventpulse_api_request_duration_seconds",
                        "Time to answer a request, by route template and method",
                    )
                    .buckets(buckets.clone()),
                    &["route", "method"],
                ),
            ),
            grpc_requests: register(
                &r,
                counter_vec(
                    "eventpulse_api_grpc_requests_total",
                    "gRPC calls answered, by method and status code",
                    &["method", "code"],
                ),
            ),
            grpc_duration: register(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "eventpulse_api_grpc_request_duration_seconds",
                        "Time to answer a gRPC call, by method",
                    )
                    .buckets(buckets),
                    &["method"],
                ),
            ),
            ingested: register(
                &r,
                counter_vec(
                    "eventpulse_api_events_ingested_total",
                    "Events acknowledged by Kafka after an ingestion request",
                    &["event_type"],
                ),
            ),
            rejected: register(
                &r,
                counter_vec(
                    "eventpulse_api_ingest_rejected_total",
                    "Events refused by validation at ingestion, by reason",
                    &["reason"],
                ),
            ),
            dependency_errors: register(
                &r,
                counter_vec(
                    "eventpulse_api_dependency_errors_total",
                    "Requests that failed because Postgres or Kafka was unavailable",
                    &["dependency"],
                ),
            ),
            live_clients: register(
                &r,
                IntGauge::new(
                    "eventpulse_api_live_clients",
                    "Live-feed streams (GET /events/live) open now",
                ),
            ),
            live_sent: register(
                &r,
                IntCounter::new(
                    "eventpulse_api_live_events_sent_total",
                    "Events sent on live-feed streams, summed over the streams",
                ),
            ),
            live_dropped: register(
                &r,
                IntCounter::new(
                    "eventpulse_api_live_clients_dropped_total",
                    "Live-feed streams cut off because they fell a whole buffer behind",
                ),
            ),
            registry: r,
        };
        metrics.preregister_labels();
        metrics
    }

    /// Every known label value at zero, so `rate()` works from the start.
    fn preregister_labels(&self) {
        preregister(&self.ingested, EventType::ALL.map(EventType::as_str));
        preregister(&self.rejected, RejectReason::ALL.map(RejectReason::code));
        let dependencies = [Dependency::Postgres, Dependency::Kafka];
        preregister(&self.dependency_errors, dependencies.map(Dependency::label));
    }

    pub fn request(&self, route: &str, method: &str, status: u16, took: Duration) {
        self.requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        self.duration
            .with_label_values(&[route, method])
            .observe(took.as_secs_f64());
    }

    /// A gRPC call under `method` ended with `code` (e.g. `INVALID_ARGUMENT`).
    pub fn grpc_request(&self, method: &str, code: &str, took: Duration) {
        self.grpc_requests.with_label_values(&[method, code]).inc();
        self.grpc_duration
            .with_label_values(&[method])
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

    pub fn live_sent(&self) {
        self.live_sent.inc();
    }

    pub fn live_dropped(&self) {
        self.live_dropped.inc();
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
