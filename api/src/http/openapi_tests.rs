//! Keeps the hand-written `openapi.json` true: every route the router has is
//! documented and nothing else is; each route documents exactly the query
//! parameters its parameter struct accepts (`FromQuery::NAMES`), its path
//! parameters and the headers it reads, and the error statuses it can answer. CI runs this with the
//! other unit tests, so a route or parameter change without its
//! documentation fails the build.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{routes, OPENAPI};
use crate::live::LiveParams;
use crate::lookup::ListParams;
use crate::params::FromQuery;
use crate::stats::{DeadLetterParams, HourlyParams, MetricsParams, TopUsersParams};

fn document() -> Value {
    serde_json::from_str(OPENAPI).expect("openapi.json is JSON")
}

/// Follows a local `$ref` such as `#/components/parameters/EventType`.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.strip_prefix('#').expect("local reference");
            doc.pointer(pointer)
                .unwrap_or_else(|| panic!("dangling reference {reference}"))
        }
        None => value,
    }
}

fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    doc["paths"][path]
        .get(method.to_lowercase())
        .unwrap_or_else(|| panic!("{method} {path} is not documented"))
}

/// (location, name) of every parameter of an operation.
fn parameters(doc: &Value, op: &Value) -> BTreeSet<(String, String)> {
    op.get("parameters")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|p| {
                    let p = resolve(doc, p);
                    (
                        p["in"].as_str().expect("in").to_owned(),
                        p["name"].as_str().expect("name").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn query_names(method: &str, path: &str) -> &'static [&'static str] {
    match (method, path) {
        ("GET", "/stats/hourly") => HourlyParams::NAMES,
        ("GET", "/stats/top-users") => TopUsersParams::NAMES,
        ("GET", "/stats/dead-letters") => DeadLetterParams::NAMES,
        ("GET", "/events/metrics") => MetricsParams::NAMES,
        ("GET", "/events") => ListParams::NAMES,
        ("GET", "/events/live") => LiveParams::NAMES,
        _ => &[],
    }
}

/// Request headers a route reads besides the API key.
fn header_names(method: &str, path: &str) -> &'static [&'static str] {
    match (method, path) {
        ("GET", "/events/live") => &["Last-Event-ID"],
        _ => &[],
    }
}

fn statuses(op: &Value) -> BTreeSet<String> {
    op["responses"]
        .as_object()
        .expect("responses")
        .keys()
        .cloned()
        .collect()
}

#[test]
fn is_openapi_3_1() {
    let doc = document();
    assert!(doc["openapi"]
        .as_str()
        .expect("version")
        .starts_with("3.1."));
}

#[test]
fn documents_exactly_the_routes_the_router_has() {
    let doc = document();
    let served: BTreeSet<(String, String)> = routes()
        .into_iter()
        .map(|(method, path)| (method.as_str().to_lowercase(), path.to_owned()))
        .collect();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            documented.insert((method.clone(), path.clone()));
        }
    }
    assert_eq!(documented, served);
}

#[test]
fn documents_each_routes_parameters() {
    let doc = document();
    for (method, path) in routes() {
        let op = operation(&doc, method.as_str(), path);
        let mut expected: BTreeSet<(String, String)> = query_names(method.as_str(), path)
            .iter()
            .map(|name| ("query".to_owned(), (*name).to_owned()))
            .collect();
        for name in header_names(method.as_str(), path) {
            expected.insert(("header".to_owned(), (*name).to_owned()));
        }
        for segment in path.split('/') {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                expected.insert(("path".to_owned(), name.to_owned()));
            }
        }
        assert_eq!(parameters(&doc, op), expected, "{method} {path}");
    }
}

#[test]
fn documents_the_error_statuses() {
    let doc = document();
    for (method, path) in routes() {
        let op = operation(&doc, method.as_str(), path);
        let statuses = statuses(op);
        let mut expected: Vec<&str> = Vec::new();
        if !query_names(method.as_str(), path).is_empty() || path.contains('{') {
            expected.extend(["400", "503"]);
        }
        if path.contains('{') {
            expected.push("404");
        }
        if method == "POST" {
            expected.extend(["202", "400", "401", "413", "503"]);
            assert_eq!(op["security"][0]["ApiKey"], serde_json::json!([]), "{path}");
        }
        for status in expected {
            assert!(statuses.contains(status), "{method} {path} lacks {status}");
        }
    }
}

#[test]
fn every_reference_resolves() {
    fn walk(doc: &Value, value: &Value) {
        match value {
            Value::Object(map) => {
                resolve(doc, value);
                map.values().for_each(|v| walk(doc, v));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(doc, v)),
            _ => {}
        }
    }
    let doc = document();
    walk(&doc, &doc);
}
