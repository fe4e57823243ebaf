//! Prometheus plumbing: each service keeps its series in one [`Registry`] of
//! its own (not the process-global default, so tests can build a service
//! twice in one process), registers each metric as it makes it, and serves
//! the text exposition on `/metrics`.

use prometheus::core::Collector;
use prometheus::{Encoder, IntCounterVec, Opts, Registry, TextEncoder};

/// The `Content-Type` of [`render`]'s output (text format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A registry that already holds the process series (CPU, memory, open
/// files), on Linux, where their collector exists.
pub fn registry() -> Registry {
    let registry = Registry::new();
    #[cfg(target_os = "linux")]
    registry
        .register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("process collector registers once");
    registry
}

/// Registers `metric` and hands it back, so a struct of metrics is built in
/// one expression. An invalid definition or a name used twice panics: both
/// are programming errors, caught by the first test that builds the metrics.
pub fn register<M>(registry: &Registry, metric: prometheus::Result<M>) -> M
where
    M: Collector + Clone + 'static,
{
    let metric = metric.expect("metric definition is valid");
    registry
        .register(Box::new(metric.clone()))
        .expect("metric names are unique");
    metric
}

/// A counter with labels, for [`register`].
pub fn counter_vec(name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntCounterVec> {
    IntCounterVec::new(Opts::new(name, help), labels)
}

/// Creates the series of each of `values` (of a one-label counter) at zero,
/// so dashboards and alerts see every known series, and `rate()` works, before
/// the first occurrence.
pub fn preregister<'a>(counter: &IntCounterVec, values: impl IntoIterator<Item = &'a str>) {
    for value in values {
        counter.with_label_values(&[value]);
    }
}

/// The Prometheus text exposition of every series in `registry`.
pub fn render(registry: &Registry) -> String {
    let mut buffer = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut buffer)
        .expect("text encoding into a Vec cannot fail");
    String::from_utf8(buffer).expect("the text format is UTF-8")
}

/// The `/metrics` response: `text` (from [`render`]) with its content type.
pub fn exposition(text: String) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    ([(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_series_are_rendered() {
        let registry = registry();
        let requests = register(
            &registry,
            counter_vec("test_requests_total", "Requests", &["route"]),
        );
        preregister(&requests, ["/a", "/b"]);
        requests.with_label_values(&["/a"]).inc_by(3);
        let text = render(&registry);
        assert!(
            text.contains("test_requests_total{route=\"/b\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("test_requests_total{route=\"/a\"} 3"),
            "{text}"
        );
    }
}
