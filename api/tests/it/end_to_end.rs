//! The whole path: events POSTed over HTTP -> Kafka -> the real consumer ->
//! Postgres -> every query endpoint sees them, and the live feed streams each
//! once (the consumer's commit notification wakes it).

use std::collections::HashSet;

use chrono::{DateTime, Duration, DurationRound, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::live::{Sse, Stream};
use crate::support::{Api, Consumer, Stack, KEY, PATIENCE};

struct Planned {
    id: Uuid,
    user: &'static str,
    json: String,
}

fn event(kind: &str, user: &'static str, at: DateTime<Utc>, payload: Value) -> Planned {
    let id = Uuid::new_v4();
    let mut payload = payload;
    payload["userId"] = json!(user);
    let json =
        json!({"eventId": id, "type": kind, "timestamp": at.to_rfc3339(), "payload": payload});
    Planned {
        id,
        user,
        json: json.to_string(),
    }
}

/// Hour A (3 hours ago): alice 3 page views, bob 1 login. Hour B: nothing.
/// Hour C (last hour): alice 2 clicks, carol 4 page views, pager 23 page views.
fn plan(hour_a: DateTime<Utc>) -> Vec<Planned> {
    let hour_c = hour_a + Duration::hours(2);
    let mut events = vec![event(
        "login",
        "bob",
        hour_a + Duration::minutes(1),
        json!({"ip": "10.0.0.2", "device": "Firefox"}),
    )];
    for i in 0..3 {
        events.push(event(
            "page_view",
            "alice",
            hour_a + Duration::minutes(10 + i),
            json!({"page": "/home", "device": "Chrome"}),
        ));
    }
    for i in 0..2 {
        events.push(event(
            "button_click",
            "alice",
            hour_c + Duration::minutes(i),
            json!({"page": "/pricing", "buttonId": "buy"}),
        ));
    }
    for i in 0..4 {
        events.push(event(
            "page_view",
            "carol",
            hour_c + Duration::minutes(5 + i),
            json!({"page": "/pricing", "device": "Safari"}),
        ));
    }
    for i in 0..23 {
        events.push(event(
            "page_view",
            "pager",
            hour_c + Duration::seconds(600 + i),
            json!({"page": "/docs", "device": "Edge"}),
        ));
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_posted_over_http_are_served_by_every_query() {
    let stack = Stack::new(3).await;
    let consumer = Consumer::start(&stack).await;
    let api = stack.start_api(stack.layer()).await;
    let this_hour = Utc::now()
        .duration_trunc(Duration::hours(1))
        .expect("truncates");
    let hour_a = this_hour - Duration::hours(3);
    let events = plan(hour_a);
    let mut live = Stream::open(&api.base, "", None).await;

    let (status, body) = api.post("/events", Some(KEY), events[0].json.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let batch = format!(
        "[{}]",
        events[1..]
            .iter()
            .map(|e| e.json.as_str())
            .collect::<Vec<_>>()
            .join(",")
    );
    let (status, body) = api.post("/events/batch", Some(KEY), batch).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["accepted"].as_array().expect("ids").len(), 32);

    let range =
        format!("from={}&to={}", hour_a.to_rfc3339(), this_hour.to_rfc3339()).replace('+', "%2B");
    wait_until_stored(&api, &range, 33).await;

    let (_, hourly) = api.get(&format!("/stats/hourly?{range}")).await;
    let counts: Vec<i64> = hourly["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .map(|b| b["count"].as_i64().expect("n"))
        .collect();
    assert_eq!(counts, [4, 0, 29], "{hourly}");

    let (_, top) = api.get(&format!("/stats/top-users?{range}")).await;
    assert_eq!(
        top["users"],
        json!([{"user_id": "pager", "count": 23}, {"user_id": "alice", "count": 5}, {"user_id": "carol", "count": 4}, {"user_id": "bob", "count": 1}])
    );

    check_metrics(&api, &range).await;
    check_lookups(&api, &events).await;
    let streamed: Vec<Uuid> = live.take(33).await.iter().map(Sse::event_id).collect();
    let unique: HashSet<Uuid> = streamed.iter().copied().collect();
    let planned: HashSet<Uuid> = events.iter().map(|e| e.id).collect();
    assert_eq!(
        (unique, streamed.len()),
        (planned, 33),
        "each event streamed once"
    );
    drop(live);

    api.stop().await;
    consumer.stop().await;
    stack.finish().await;
}

async fn wait_until_stored(api: &Api, range: &str, expected: i64) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (status, body) = api.get(&format!("/events/metrics?{range}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let stored = body["total_events"].as_i64().expect("total");
        if stored >= expected {
            assert_eq!(stored, expected);
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {stored} of {expected} stored"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

async fn check_metrics(api: &Api, range: &str) {
    let groups = |body: &Value| -> Vec<(Value, i64, i64)> {
        body["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .map(|g| {
                (
                    g["key"].clone(),
                    g["count"].as_i64().expect("n"),
                    g["unique_users"].as_i64().expect("u"),
                )
            })
            .collect()
    };
    let (_, body) = api
        .get(&format!("/events/metrics?group_by=device&{range}"))
        .await;
    assert_eq!(
        (body["total_events"].as_i64(), body["unique_users"].as_i64()),
        (Some(33), Some(4))
    );
    assert_eq!(
        groups(&body),
        [
            (json!("Edge"), 23, 1),
            (json!("Safari"), 4, 1),
            (json!("Chrome"), 3, 1),
            (Value::Null, 2, 1),
            (json!("Firefox"), 1, 1)
        ]
    );
    let (_, body) = api
        .get(&format!("/events/metrics?group_by=page&{range}"))
        .await;
    assert_eq!(
        groups(&body),
        [
            (json!("/docs"), 23, 1),
            (json!("/pricing"), 6, 2),
            (json!("/home"), 3, 1),
            (Value::Null, 1, 1)
        ]
    );
    let (_, body) = api
        .get(&format!(
            "/events/metrics?group_by=hourly&event_type=page_view&{range}"
        ))
        .await;
    let hourly: Vec<(i64, i64)> = groups(&body).into_iter().map(|(_, n, u)| (n, u)).collect();
    assert_eq!(hourly, [(3, 1), (0, 0), (27, 2)]);
    let (_, body) = api
        .get(&format!("/events/metrics?group_by=daily&{range}"))
        .await;
    let daily = groups(&body);
    assert!((1..=2).contains(&daily.len()), "{body}");
    assert_eq!(daily.iter().map(|(_, n, _)| n).sum::<i64>(), 33);
}

async fn check_lookups(api: &Api, events: &[Planned]) {
    let bob = &events[0];
    let (status, body) = api.get(&format!("/events/{}", bob.id)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["user_id"].as_str(), body["event_type"].as_str()),
        (Some(bob.user), Some("login"))
    );
    assert_eq!(
        body["payload"],
        json!({"userId": "bob", "ip": "10.0.0.2", "device": "Firefox"})
    );

    let pager: HashSet<String> = events
        .iter()
        .filter(|e| e.user == "pager")
        .map(|e| e.id.to_string())
        .collect();
    let mut seen = Vec::new();
    let mut path = "/events?user_id=pager&limit=10".to_owned();
    let mut pages = 0;
    loop {
        let (status, body) = api.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        pages += 1;
        seen.extend(
            body["events"]
                .as_array()
                .expect("events")
                .iter()
                .map(|e| e["event_id"].as_str().expect("id").to_owned()),
        );
        match body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/events?user_id=pager&limit=10&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 23, "no event twice");
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), pager);
    // Newest first: the pager's events were planned oldest first.
    let planned: Vec<String> = events
        .iter()
        .filter(|e| e.user == "pager")
        .rev()
        .map(|e| e.id.to_string())
        .collect();
    assert_eq!(seen, planned);
}
