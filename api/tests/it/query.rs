//! The read side against rows seeded straight into Postgres, so every
//! expected number is known exactly.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{assert_bad_parameter, at, Row, Stack};

/// Six events on 2026-11-20 between 10:00 and 14:00 UTC, hour 11 empty:
/// u1 has 3, u2 has 2, u3 has 1.
pub fn day() -> Vec<Row> {
    vec![
        Row::new(
            "login",
            "u1",
            at("2026-11-20T10:15:00Z"),
            json!({"device": "Chrome", "ip": "10.0.0.1"}),
        ),
        Row::new(
            "page_view",
            "u1",
            at("2026-11-20T10:45:00Z"),
            json!({"page": "/home", "device": "Chrome"}),
        ),
        Row::new(
            "page_view",
            "u2",
            at("2026-11-20T10:59:59.999999Z"),
            json!({"page": "/pricing", "device": "Firefox"}),
        ),
        Row::new(
            "page_view",
            "u1",
            at("2026-11-20T12:05:00Z"),
            json!({"page": "/home"}),
        ),
        Row::new(
            "button_click",
            "u2",
            at("2026-11-20T12:30:00Z"),
            json!({"page": "/pricing", "buttonId": "buy"}),
        ),
        Row::new(
            "login",
            "u3",
            at("2026-11-20T13:59:59Z"),
            json!({"device": "Safari", "ip": "10.0.0.3"}),
        ),
    ]
}

const DAY: &str = "from=2026-11-20T10:00:00Z&to=2026-11-20T14:00:00Z";

fn counts(body: &Value, list: &str, field: &str) -> Vec<i64> {
    body[list]
        .as_array()
        .expect("a list")
        .iter()
        .map(|item| item[field].as_i64().expect("a count"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hourly_counts_include_empty_hours() {
    let stack = Stack::new(1).await;
    stack.insert(&day()).await;
    let api = stack.start_api(stack.layer()).await;

    let (status, body) = api.get(&format!("/stats/hourly?{DAY}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(counts(&body, "buckets", "count"), [3, 0, 2, 1]);
    assert_eq!(body["buckets"][1]["hour"], "2026-11-20T11:00:00Z");
    assert_eq!(body["total"], 6);
    assert_eq!(body["event_type"], Value::Null);

    let (_, body) = api
        .get(&format!("/stats/hourly?event_type=page_view&{DAY}"))
        .await;
    assert_eq!(counts(&body, "buckets", "count"), [2, 0, 1, 0]);
    assert_eq!(body["event_type"], "page_view");

    // Half-open: an event exactly at `to` is out, one at `from` is in.
    let (_, body) = api
        .get("/stats/hourly?from=2026-11-20T10:15:00Z&to=2026-11-20T13:59:59Z")
        .await;
    assert_eq!(counts(&body, "buckets", "count"), [3, 0, 2, 0]);

    api.stop().await;
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_default_to_the_last_24_hours() {
    let stack = Stack::new(1).await;
    let now = Utc::now();
    stack
        .insert(&[
            Row::new(
                "login",
                "recent",
                now - Duration::hours(1),
                json!({"device": "d", "ip": "::1"}),
            ),
            Row::new(
                "login",
                "old",
                now - Duration::hours(25),
                json!({"device": "d", "ip": "::1"}),
            ),
        ])
        .await;
    let api = stack.start_api(stack.layer()).await;

    let (status, body) = api.get("/stats/hourly").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], 1);
    let buckets = body["buckets"].as_array().expect("buckets").len();
    assert!((24..=25).contains(&buckets), "{buckets} buckets");
    let (_, body) = api.get("/stats/top-users").await;
    assert_eq!(body["users"], json!([{"user_id": "recent", "count": 1}]));

    api.stop().await;
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_users_are_ordered_by_count_and_capped() {
    let stack = Stack::new(1).await;
    stack.insert(&day()).await;
    let api = stack.start_api(stack.layer()).await;

    let (status, body) = api.get(&format!("/stats/top-users?{DAY}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["users"],
        json!([{"user_id": "u1", "count": 3}, {"user_id": "u2", "count": 2}, {"user_id": "u3", "count": 1}])
    );
    assert_eq!(body["limit"], 10);

    let (_, body) = api
        .get(&format!(
            "/stats/top-users?limit=1&event_type=page_view&{DAY}"
        ))
        .await;
    assert_eq!(body["users"], json!([{"user_id": "u1", "count": 2}]));

    let (status, body) = api.get(&format!("/stats/top-users?limit=5000&{DAY}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["limit"], 1000, "limits above the cap count as the cap");

    api.stop().await;
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_group_by_time_device_and_page() {
    let stack = Stack::new(1).await;
    stack.insert(&day()).await;
    let api = stack.start_api(stack.layer()).await;

    let (status, body) = api
        .get(&format!("/events/metrics?group_by=hourly&{DAY}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["total_events"].clone(), body["unique_users"].clone()),
        (json!(6), json!(3))
    );
    assert_eq!(counts(&body, "groups", "count"), [3, 0, 2, 1]);
    assert_eq!(counts(&body, "groups", "unique_users"), [2, 0, 2, 1]);
    assert_eq!(body["groups"][0]["key"], "2026-11-20T10:00:00Z");

    let (_, body) = api
        .get(&format!("/events/metrics?group_by=daily&{DAY}"))
        .await;
    assert_eq!(
        body["groups"],
        json!([{"key": "2026-11-20T00:00:00Z", "count": 6, "unique_users": 3}])
    );

    let (_, body) = api
        .get(&format!("/events/metrics?group_by=device&{DAY}"))
        .await;
    assert_eq!(
        body["groups"],
        json!([
            {"key": "Chrome", "count": 2, "unique_users": 1},
            {"key": null, "count": 2, "unique_users": 2},
            {"key": "Firefox", "count": 1, "unique_users": 1},
            {"key": "Safari", "count": 1, "unique_users": 1},
        ])
    );
    assert_eq!(body["truncated"], false);

    let (_, body) = api
        .get(&format!(
            "/events/metrics?group_by=page&event_type=page_view&{DAY}"
        ))
        .await;
    assert_eq!(
        body["groups"],
        json!([{"key": "/home", "count": 2, "unique_users": 1}, {"key": "/pricing", "count": 1, "unique_users": 1}])
    );
    assert_eq!(
        (body["total_events"].clone(), body["unique_users"].clone()),
        (json!(3), json!(2))
    );

    api.stop().await;
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_found_by_id() {
    let stack = Stack::new(1).await;
    let rows = day();
    let wanted = rows[1].id;
    stack.insert(&rows).await;
    let api = stack.start_api(stack.layer()).await;

    let (status, body) = api.get(&format!("/events/{wanted}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["event_id"], wanted.to_string());
    assert_eq!(body["event_type"], "page_view");
    assert_eq!(body["user_id"], "u1");
    assert_eq!(body["occurred_at"], "2026-11-20T10:45:00Z");
    assert_eq!(
        body["payload"],
        json!({"userId": "u1", "page": "/home", "device": "Chrome"})
    );
    assert!(body["ingested_at"].is_string());

    let missing = Uuid::new_v4();
    let (status, body) = api.get(&format!("/events/{missing}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], format!("no event with id {missing}"));

    assert_bad_parameter(&api.get("/events/not-a-uuid").await, "event_id", "bad id");

    api.stop().await;
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_get_a_400_naming_them() {
    let stack = Stack::new(1).await;
    let api = stack.start_api(stack.layer()).await;
    let long_user = "u".repeat(129);
    let cases = [
        ("/stats/hourly?from=yesterday", "from"),
        ("/stats/hourly?to=2026-11-20T10:00:00", "to"),
        ("/stats/hourly?event_type=purchase", "event_type"),
        (
            "/stats/hourly?from=2026-11-20T12:00:00Z&to=2026-11-20T10:00:00Z",
            "from",
        ),
        (
            "/stats/hourly?from=2026-09-01T00:00:00Z&to=2026-11-01T00:00:00Z",
            "from",
        ),
        ("/stats/hourly?evnt_type=login", "evnt_type"),
        (
            "/stats/hourly?to=2026-11-20T10:00:00Z&to=2026-11-21T10:00:00Z",
            "to",
        ),
        ("/stats/top-users?limit=0", "limit"),
        ("/stats/top-users?limit=many", "limit"),
        ("/events/metrics?group_by=weekly", "group_by"),
        ("/events/metrics?event_type=LOGIN", "event_type"),
        ("/events?cursor=not-a-cursor", "cursor"),
        ("/events?type=purchase", "type"),
        ("/events?limit=-5", "limit"),
        ("/events?event_type=login", "event_type"),
        (&format!("/events?user_id={long_user}"), "user_id"),
    ];
    for (path, parameter) in cases {
        assert_bad_parameter(&api.get(path).await, parameter, path);
    }
    api.stop().await;
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_routes_answer() {
    let stack = Stack::new(1).await;
    let api = stack.start_api(stack.layer()).await;

    assert_eq!(api.get("/healthz").await, (StatusCode::OK, json!("ok\n")));
    let (status, served) = api.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let file: Value = serde_json::from_str(include_str!("../../openapi.json")).expect("JSON");
    assert_eq!(served, file);

    let (status, body) = api.get("/no/such/route").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({"error": "no route for GET /no/such/route"}));

    api.get(&format!("/events/{}", Uuid::new_v4())).await;
    let by_template = "route=\"/events/{event_id}\"";
    assert_eq!(
        api.metric("eventpulse_api_requests_total", by_template)
            .await,
        1.0
    );
    assert_eq!(
        api.metric("eventpulse_api_requests_total", "status=\"404\"")
            .await,
        2.0
    );
    assert_eq!(
        api.metric("eventpulse_api_request_duration_seconds_count", by_template)
            .await,
        1.0
    );
    assert_eq!(
        api.metric("eventpulse_api_requests_total", "route=\"unmatched\"")
            .await,
        1.0
    );

    api.stop().await;
    stack.finish().await;
}
