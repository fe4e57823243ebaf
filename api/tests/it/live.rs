//! `GET /events/live` against a real Postgres: only committed rows, in feed
//! order, resumable with `Last-Event-ID`, filtered, capped, sampled, and a
//! client that stops reading is cut off with a final event.

use std::time::Duration;

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{Row, Stack, PATIENCE};

/// One Server-Sent Event as received.
#[derive(Debug, Clone, Default)]
pub struct Sse {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

impl Sse {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).expect("SSE data is JSON")
    }

    pub fn event_id(&self) -> Uuid {
        self.json()["event_id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .expect("an event id")
    }
}

/// An open stream and what has arrived but not yet been taken.
pub struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    pub async fn open(base: &str, query: &str, last_event_id: Option<&str>) -> Self {
        let response = try_open(base, query, last_event_id).await;
        assert_eq!(response.status(), StatusCode::OK, "the stream opens");
        let content_type = response.headers()["content-type"].to_str().unwrap_or("");
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (heartbeat comments skipped); `None` once the server ends the stream.
    pub async fn next(&mut self) -> Option<Sse> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(sse) = parse(&block) {
                    return Some(sse);
                }
                continue;
            }
            let chunk = tokio::time::timeout(PATIENCE, self.response.chunk())
                .await
                .expect("the stream went silent")
                .expect("the stream reads");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk?));
        }
    }

    /// The next `n` events, `position` updates left out (they carry no
    /// event and come on their own timing).
    pub async fn take(&mut self, n: usize) -> Vec<Sse> {
        let mut events = Vec::with_capacity(n);
        while events.len() < n {
            let sse = self.next().await.expect("the stream still open");
            if sse.event.as_deref() != Some("position") {
                events.push(sse);
            }
        }
        events
    }
}

async fn try_open(base: &str, query: &str, last_event_id: Option<&str>) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("HTTP client");
    let mut request = client.get(format!("{base}/events/live{query}"));
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    request.send().await.expect("GET /events/live answered")
}

fn parse(block: &str) -> Option<Sse> {
    let mut sse = Sse::default();
    let mut any = false;
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => sse.id = Some(value.to_owned()),
            "event" => sse.event = Some(value.to_owned()),
            "data" => sse.data.push_str(value),
            _ => continue, // a comment (heartbeat)
        }
        any = true;
    }
    any.then_some(sse)
}

fn rows(n: usize, kind: &'static str, user: &str) -> Vec<Row> {
    (0..n)
        .map(|i| Row::new(kind, user, Utc::now(), json!({ "page": format!("/p{i}") })))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_committed_rows_stream_in_order_of_their_transactions() {
    let stack = Stack::new(1).await;
    let api = stack.start_api(stack.layer()).await;
    let mut stream = Stream::open(&api.base, "", None).await;

    let first = rows(1, "page_view", "alice");
    stack.insert(&first).await;
    // An open transaction holds its row; a later committed row waits behind it.
    let held = rows(1, "page_view", "held");
    // Each open transaction writes as a Kafka partition of its own, as
    // concurrent consumers do: two writers of one partition would wait for
    // each other on that partition's rollup rows.
    let mut open = stack.pool.begin().await.expect("begin");
    insert_in(&mut open, &held[0], 1).await;
    let rolled_back = rows(1, "page_view", "never");
    let mut doomed = stack.pool.begin().await.expect("begin");
    insert_in(&mut doomed, &rolled_back[0], 2).await;
    doomed.rollback().await.expect("rollback");
    let after = rows(1, "page_view", "bob");
    stack.insert(&after).await;
    assert_eq!(
        stream.next().await.expect("an event").event_id(),
        first[0].id
    );
    open.commit().await.expect("commit");

    let got: Vec<Uuid> = stream.take(2).await.iter().map(Sse::event_id).collect();
    assert_eq!(
        got,
        vec![held[0].id, after[0].id],
        "the held row first (its transaction is older), the rolled-back one never"
    );
    // Stopping the server ends the open stream with a last event, so the
    // graceful shutdown does not wait for the client forever.
    api.stop().await;
    let last = stream.next().await.expect("a last event");
    assert_eq!(last.event.as_deref(), Some("dropped"));
    assert_eq!(last.json()["reason"], "server_stopping");
    stack.finish().await;
}

async fn insert_in(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, row: &Row, partition: i32) {
    row.store(partition, 0, &mut **tx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_stream_gets_exactly_what_it_missed() {
    let stack = Stack::new(1).await;
    let api = stack.start_api(stack.layer()).await;
    let mut stream = Stream::open(&api.base, "?type=login", None).await;
    let seen = rows(3, "login", "alice");
    stack.insert(&seen).await;
    let first = stream.take(3).await;
    let last_id = first[2].id.clone().expect("events carry an id");
    drop(stream);

    let missed = rows(4, "login", "bob");
    stack.insert(&missed).await;
    stack.insert(&rows(2, "logout", "bob")).await; // filtered out
    let mut resumed = Stream::open(&api.base, "?type=login", Some(&last_id)).await;
    let later = rows(1, "login", "carol");
    stack.insert(&later).await;
    let got: Vec<Uuid> = resumed.take(5).await.iter().map(Sse::event_id).collect();
    let expected: Vec<Uuid> = missed.iter().chain(&later).map(|r| r.id).collect();
    assert_eq!(
        got, expected,
        "the missed logins, then the live one, once each"
    );

    let (status, body) = api.get("/events/live?type=nope").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["parameter"], "type");
    api.stop().await;
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_filter_and_the_stream_cap() {
    let stack = Stack::new(1).await;
    let mut layer = stack.layer();
    layer.live_max_streams = Some(1);
    let api = stack.start_api(layer).await;
    let mut stream = Stream::open(&api.base, "?user_id=carol", None).await;
    let refused = try_open(&api.base, "", None).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value =
        serde_json::from_slice(&refused.bytes().await.expect("a body")).expect("a JSON error");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("--live-max-streams")),
        "{body}"
    );
    stack.insert(&rows(3, "page_view", "dave")).await;
    let carol = rows(1, "page_view", "carol");
    stack.insert(&carol).await;
    assert_eq!(stream.take(1).await[0].event_id(), carol[0].id);
    assert_eq!(api.metric("eventpulse_api_live_clients", "").await, 1.0);
    drop(stream);
    api.stop().await;
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sampled_mode_counts_what_it_leaves_out() {
    let stack = Stack::new(1).await;
    let api = stack.start_api(stack.layer()).await;
    let mut stream = Stream::open(&api.base, "?max_per_second=5", None).await;
    // One transaction: the feed reads all 100 at once, within one second.
    bulk_insert(&stack, 100, 10).await;
    let sent = stream.take(5).await;
    assert!(sent.iter().all(|e| e.event.is_none()), "five events first");
    // The next second's first event brings the count of those left out.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let last = rows(1, "page_view", "bob");
    stack.insert(&last).await;
    let mut skipped = 0;
    loop {
        let sse = stream.next().await.expect("the stream still open");
        match sse.event.as_deref() {
            Some("skipped") => skipped += sse.json()["count"].as_u64().expect("a count"),
            Some(other) => panic!("unexpected {other} event"),
            None if sse.event_id() == last[0].id => break,
            None => panic!("a sixth event within the first second"),
        }
    }
    assert_eq!(skipped, 95, "100 rows, 5 sent in the first second");
    api.stop().await;
    stack.finish().await;
}

/// `n` page views in one transaction, each payload padded to `pad` bytes.
async fn bulk_insert(stack: &Stack, n: i64, pad: i32) {
    sqlx::query(
        "SELECT count(*) FROM ( \
             SELECT array_agg(gen_random_uuid() ORDER BY n) AS ids, \
                    array_agg('page_view'::text ORDER BY n) AS kinds, \
                    array_agg('bulk'::text ORDER BY n) AS users, \
                    array_agg(now() ORDER BY n) AS times, \
                    array_agg(jsonb_build_object('userId', 'bulk', 'page', repeat('x', $2))::text ORDER BY n) AS payloads, \
                    array_agg(0 ORDER BY n) AS partitions, \
                    array_agg(n::int8 ORDER BY n) AS offsets \
             FROM generate_series(1, $1) AS n \
         ) AS batch, \
         LATERAL eventpulse_store_events(ids, kinds, users, times, payloads, partitions, offsets)",
    )
    .bind(n)
    .bind(pad)
    .execute(&stack.pool)
    .await
    .expect("bulk insert");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_cut_off_with_a_final_event() {
    let stack = Stack::new(1).await;
    let mut layer = stack.layer();
    layer.live_buffer_events = Some(1000);
    let api = stack.start_api(layer).await;
    let mut slow = Stream::open(&api.base, "", None).await;
    // ~48 MB of events while nobody reads: far more than the 1,000-event
    // buffer (16 MB) and the socket buffers hold together.
    bulk_insert(&stack, 3000, 16_000).await;
    // Only once the feed has handed out every row does the client read:
    // then it is certain to have fallen behind, however fast it reads.
    wait_until_the_feed_has_the_newest_row(&stack, &api).await;
    let mut received = 0;
    let last = loop {
        match slow.next().await {
            Some(sse) if sse.event.is_none() => received += 1,
            Some(sse) => break sse,
            None => panic!("the stream ended without a final event after {received}"),
        }
    };
    assert_eq!(last.event.as_deref(), Some("dropped"));
    assert_eq!(last.json()["reason"], "slow_client");
    assert!(received < 3000, "cut off before the end: {received}");
    assert!(slow.next().await.is_none(), "the stream is closed");
    assert_eq!(
        api.metric("eventpulse_api_live_clients_dropped_total", "")
            .await,
        1.0
    );
    api.stop().await;
    stack.finish().await;
}

async fn wait_until_the_feed_has_the_newest_row(stack: &Stack, api: &crate::support::Api) {
    let newest: String = sqlx::query_scalar(
        "SELECT feed_xid::text || '-' || feed_seq FROM events ORDER BY feed_xid DESC, feed_seq DESC LIMIT 1",
    )
    .fetch_one(&stack.pool)
    .await
    .expect("the newest row");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (_, status) = api.get("/pipeline/status").await;
        if status["live"]["head"] == newest.as_str() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the feed never reached {newest}: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
