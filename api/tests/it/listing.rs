//! `GET /events`: keyset pagination over seeded rows, through each query
//! shape (by user, by type, every type) and with time bounds.

use std::collections::HashSet;

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::query::day;
use crate::support::{at, Api, Row, Stack};

/// 25 events of one user, in 5 groups sharing a timestamp (so ties on
/// `occurred_at` are broken by `event_id`), plus others' events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_through_every_event_once_in_order() {
    let stack = Stack::new(1).await;
    let mut rows: Vec<Row> = (0..25)
        .map(|i| {
            let at = at("2026-11-20T10:00:00Z") + Duration::minutes(i / 5);
            let kind = if i % 2 == 0 {
                "page_view"
            } else {
                "button_click"
            };
            Row::new(
                kind,
                "pager",
                at,
                json!({"page": format!("/p/{i}"), "buttonId": "b"}),
            )
        })
        .collect();
    rows.extend(day());
    stack.insert(&rows).await;
    let api = stack.start_api(stack.layer()).await;

    let pager: HashSet<String> = rows[..25].iter().map(|r| r.id.to_string()).collect();
    let pages = collect_pages(&api, "/events?user_id=pager&limit=10").await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 5]);
    let listed: Vec<&Value> = pages.iter().flatten().collect();
    assert_ordered_newest_first(&listed);
    let ids: HashSet<String> = listed
        .iter()
        .map(|e| e["event_id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(ids, pager);

    // Without user_id (one index scan per type, merged), with a type, with `to`.
    let everyone = collect_pages(&api, "/events?limit=7").await;
    assert_eq!(everyone.iter().map(Vec::len).sum::<usize>(), 31);
    assert_ordered_newest_first(&everyone.iter().flatten().collect::<Vec<_>>());
    let clicks = collect_pages(&api, "/events?type=button_click&limit=4").await;
    assert_eq!(clicks.iter().map(Vec::len).sum::<usize>(), 13);
    let early = collect_pages(
        &api,
        "/events?user_id=pager&to=2026-11-20T10:02:00Z&from=2026-11-20T10:01:00Z",
    )
    .await;
    assert_eq!(early.iter().map(Vec::len).sum::<usize>(), 5);

    api.stop().await;
    stack.finish().await;
}

/// Follows `next_cursor` from `first` until the last page; returns every page.
async fn collect_pages(api: &Api, first: &str) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("{first}&cursor={c}"),
            None => first.to_owned(),
        };
        let (status, body) = api.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        pages.push(body["events"].as_array().expect("events").clone());
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return pages,
        }
        assert!(pages.len() < 100, "pagination does not end");
    }
}

fn assert_ordered_newest_first(events: &[&Value]) {
    let keys: Vec<(chrono::DateTime<Utc>, Uuid)> = events
        .iter()
        .map(|e| {
            let id = e["event_id"].as_str().expect("id");
            (
                at(e["occurred_at"].as_str().expect("time")),
                Uuid::parse_str(id).expect("uuid"),
            )
        })
        .collect();
    for pair in keys.windows(2) {
        assert!(pair[0] > pair[1], "not strictly descending: {pair:?}");
    }
}
