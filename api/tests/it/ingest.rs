//! HTTP ingestion against the real broker: what reaches the topic, byte for
//! byte, and what is refused before anything is produced.

use chrono::{Duration, Utc};
use eventpulse_api::config::Layer;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{read_topic, Stack, KEY};

/// A valid page_view in a deliberately non-canonical layout (key order,
/// spacing) so that byte-exact forwarding is visible.
fn page_view(id: Uuid, user: &str) -> String {
    let at = (Utc::now() - Duration::minutes(5)).to_rfc3339();
    format!(
        r#"{{ "type": "page_view",  "eventId":"{id}", "timestamp": "{at}",
  "payload": {{"userId": "{user}", "page": "/x", "device": "Chrome", "extra": 1.50}} }}"#
    )
}

fn ids(body: &Value) -> Vec<String> {
    body["accepted"]
        .as_array()
        .expect("accepted ids")
        .iter()
        .map(|id| id.as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_event_is_accepted_after_the_broker_has_it_unchanged() {
    let stack = Stack::new(1).await;
    let api = stack.start_api(stack.layer()).await;
    let id = Uuid::new_v4();
    let event = page_view(id, "alice");

    let (status, body) = api.post("/events", Some(KEY), event.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body, json!({"accepted": [id.to_string()]}));
    assert_eq!(
        read_topic(&stack.topic, 1),
        [("alice".to_owned(), event.into_bytes())]
    );
    let ingested = "event_type=\"page_view\"";
    assert_eq!(
        api.metric("eventpulse_api_events_ingested_total", ingested)
            .await,
        1.0
    );

    api.stop().await;
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_all_or_nothing() {
    let stack = Stack::new(1).await;
    let api = stack.start_api(stack.layer()).await;

    let no_type = page_view(Uuid::new_v4(), "bob").replace(r#""type": "page_view","#, "");
    let bad_time = page_view(Uuid::new_v4(), "bob")
        .replace("\"timestamp\": \"", "\"timestamp\": \"yesterday ");
    let invalid = format!(
        "[{}, {no_type}, {bad_time}]",
        page_view(Uuid::new_v4(), "bob")
    );
    let (status, body) = api.post("/events/batch", Some(KEY), invalid).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let errors: Vec<(u64, &str)> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["index"].as_u64().expect("index"),
                e["reason"].as_str().expect("reason"),
            )
        })
        .collect();
    assert_eq!(errors, [(1, "missing_field"), (2, "invalid_timestamp")]);
    assert!(body["errors"][0]["detail"]
        .as_str()
        .expect("detail")
        .contains("type"));
    let rejected = "reason=\"missing_field\"";
    assert_eq!(
        api.metric("eventpulse_api_ingest_rejected_total", rejected)
            .await,
        1.0
    );

    let events: Vec<(Uuid, String)> = ["carol", "dave", "carol"]
        .iter()
        .map(|user| {
            let id = Uuid::new_v4();
            (id, page_view(id, user))
        })
        .collect();
    let body = format!(
        "[\n  {}\n]",
        events
            .iter()
            .map(|(_, e)| e.as_str())
            .collect::<Vec<_>>()
            .join(",\n  ")
    );
    let (status, answer) = api.post("/events/batch", Some(KEY), body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let expected_ids: Vec<String> = events.iter().map(|(id, _)| id.to_string()).collect();
    assert_eq!(ids(&answer), expected_ids);

    // Only the valid batch reached the topic: each event's own bytes, in order.
    let expected: Vec<(String, Vec<u8>)> = ["carol", "dave", "carol"]
        .iter()
        .zip(&events)
        .map(|(user, (_, e))| ((*user).to_owned(), e.clone().into_bytes()))
        .collect();
    assert_eq!(read_topic(&stack.topic, 3), expected);

    api.stop().await;
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingestion_needs_a_configured_api_key() {
    let stack = Stack::new(1).await;
    let api = stack.start_api(stack.layer()).await;
    let event = page_view(Uuid::new_v4(), "mallory");
    let almost = &KEY[..KEY.len() - 1];
    for key in [
        None,
        Some(""),
        Some(almost),
        Some("integration-test-key-0123456788"),
    ] {
        for path in ["/events", "/events/batch"] {
            let (status, body) = api.post(path, key, event.clone()).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} {key:?}: {body}");
            assert_eq!(
                body,
                json!({"error": "missing or invalid API key (header X-API-Key)"})
            );
        }
    }
    assert!(read_topic(&stack.topic, 0).is_empty());
    api.stop().await;
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_and_batches_are_bounded() {
    let stack = Stack::new(1).await;
    let layer = Layer {
        max_body_bytes: Some(2048),
        max_batch_events: Some(2),
        ..stack.layer()
    };
    let api = stack.start_api(layer).await;

    let padded = page_view(Uuid::new_v4(), "big").replace("/x", &"/x".repeat(2000));
    for path in ["/events", "/events/batch"] {
        let (status, body) = api.post(path, Some(KEY), padded.clone()).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}: {body}");
        assert_eq!(
            body["error"],
            "request body is larger than the limit of 2048 bytes"
        );
    }

    let three = format!("[{0}, {0}, {0}]", page_view(Uuid::new_v4(), "x"));
    let cases = [
        (
            "/events/batch",
            three.as_str(),
            "the batch has 3 events, the limit is 2",
        ),
        ("/events/batch", "[ ]", "the batch is empty"),
        (
            "/events/batch",
            r#"{"eventId": "x"}"#,
            "the body must be a JSON array of events",
        ),
    ];
    for (path, body, error) in cases {
        let (status, answer) = api.post(path, Some(KEY), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["error"], error);
    }
    let (status, answer) = api.post("/events/batch", Some(KEY), "[{\"a\": ").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(answer["error"]
        .as_str()
        .expect("error")
        .starts_with("the body is not valid JSON"));
    let (status, answer) = api.post("/events", Some(KEY), "not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["errors"][0]["reason"], "malformed_json");

    assert!(read_topic(&stack.topic, 0).is_empty());
    api.stop().await;
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_keys_ingestion_is_disabled_and_queries_work() {
    let stack = Stack::new(1).await;
    let layer = Layer {
        api_keys: None,
        // Not even reachable: a read-only API does not need Kafka.
        brokers: Some("127.0.0.1:1".into()),
        ..stack.layer()
    };
    let api = stack.start_api(layer).await;

    let (status, body) = api
        .post("/events", Some(KEY), page_view(Uuid::new_v4(), "x"))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(
        body["error"],
        "ingestion is disabled: the server has no API key configured"
    );
    let (status, _) = api.get("/stats/hourly").await;
    assert_eq!(status, StatusCode::OK);

    api.stop().await;
    stack.finish().await;
}
