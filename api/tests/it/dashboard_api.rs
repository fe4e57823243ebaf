//! What the dashboard reads, against rows seeded straight into Postgres:
//! hourly counts by type, dead letters by reason, committed events per
//! second, the consumers that reported, a stream resumed through the query
//! string, and the pages themselves, `/` and `/docs` (served, or an
//! explanation when not built).

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::live::{Sse, Stream};
use crate::query::day;
use crate::support::{Row, Stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hourly_buckets_count_each_type() {
    let stack = Stack::new(1).await;
    stack.insert(&day()).await;
    let api = stack.start_api(stack.layer()).await;

    let (status, body) = api
        .get("/stats/hourly?from=2026-11-20T10:00:00Z&to=2026-11-20T14:00:00Z")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let by_type: Vec<&Value> = body["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .map(|b| &b["by_type"])
        .collect();
    assert_eq!(
        by_type,
        [
            &json!({"login": 1, "page_view": 2}),
            &json!({}),
            &json!({"page_view": 1, "button_click": 1}),
            &json!({"login": 1}),
        ],
        "{body}"
    );
    api.stop().await;
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_counted_by_reason_within_the_range() {
    let stack = Stack::new(1).await;
    let recorded = [
        ("malformed_json", 0),
        ("malformed_json", 1),
        ("unknown_event_type", 2),
        ("malformed_json", 25), // hours ago: outside the default 24 h
    ];
    for (offset, (reason, hours_ago)) in recorded.iter().enumerate() {
        sqlx::query(
            "INSERT INTO dead_letters (topic, kafka_partition, kafka_offset, reason, detail, recorded_at) \
             VALUES ('t', 0, $1, $2, 'd', now() - make_interval(hours => $3))",
        )
        .bind(offset as i64)
        .bind(reason)
        .bind(hours_ago)
        .execute(&stack.pool)
        .await
        .expect("dead letter row");
    }
    let api = stack.start_api(stack.layer()).await;

    let (status, body) = api.get("/stats/dead-letters").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], 3, "{body}");
    assert_eq!(
        body["reasons"],
        json!([{"reason": "malformed_json", "count": 2}, {"reason": "unknown_event_type", "count": 1}])
    );
    let (status, body) = api.get("/stats/dead-letters?reason=x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    api.stop().await;
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_counts_each_committed_row_once_in_its_second() {
    let stack = Stack::new(1).await;
    let api = stack.start_api(stack.layer()).await;
    let mut stream = Stream::open(&api.base, "", None).await;
    let now = Utc::now();
    let rows: Vec<Row> = (0..7)
        .map(|i| {
            let kind = if i < 4 { "page_view" } else { "login" };
            Row::new(
                kind,
                "rate",
                now,
                json!({"page": "/", "device": "d", "ip": "::1"}),
            )
        })
        .collect();
    stack.insert(&rows).await;
    // Once the stream has every row, the feed has read (and counted) them.
    stream.take(rows.len()).await;

    let (status, body) = api.get("/stats/throughput").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let buckets = body["buckets"].as_array().expect("buckets");
    assert_eq!(buckets.len(), 300, "one bucket per second for 5 minutes");
    let mut totals = std::collections::BTreeMap::<String, i64>::new();
    for bucket in buckets {
        for (kind, n) in bucket["counts"].as_object().expect("counts") {
            *totals.entry(kind.clone()).or_default() += n.as_i64().expect("a count");
        }
    }
    assert_eq!(
        totals,
        [("login".to_owned(), 3), ("page_view".to_owned(), 4)].into(),
        "{body}"
    );
    api.stop().await;
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_lists_the_consumers_that_reported_lately() {
    let stack = Stack::new(1).await;
    let members = [(false, 0), (true, 10), (false, 3600)]; // (degraded, seconds ago)
    for (degraded, ago) in members {
        sqlx::query(
            "INSERT INTO consumer_members (member_id, group_id, host, pid, partitions, redis_degraded, seen_at) \
             VALUES ($1, 'g', 'h', 1, 3, $2, now() - make_interval(secs => $3))",
        )
        .bind(Uuid::new_v4())
        .bind(degraded)
        .bind(f64::from(ago))
        .execute(&stack.pool)
        .await
        .expect("member row");
    }
    let api = stack.start_api(stack.layer()).await;

    let (status, body) = api.get("/pipeline/status").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let consumers = body["consumers"].as_array().expect("consumers");
    assert_eq!(consumers.len(), 2, "the silent one is left out: {body}");
    assert_eq!(body["redis_degraded"], true, "{body}");
    assert!(consumers.iter().all(|c| c["partitions"] == 3), "{body}");
    api.stop().await;
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_resumes_from_the_query_string_and_the_header_wins() {
    let stack = Stack::new(1).await;
    let api = stack.start_api(stack.layer()).await;
    let mut stream = Stream::open(&api.base, "", None).await;
    let first = rows(3, "a");
    stack.insert(&first).await;
    let seen = stream.take(3).await;
    drop(stream);
    let missed = rows(2, "b");
    stack.insert(&missed).await;

    let after_first = seen[0].id.clone().expect("an id");
    let after_last = seen[2].id.clone().expect("an id");
    let query = format!("?last_event_id={after_first}");
    let mut by_query = Stream::open(&api.base, &query, None).await;
    let got: Vec<Uuid> = by_query.take(4).await.iter().map(Sse::event_id).collect();
    let expected: Vec<Uuid> = first[1..].iter().chain(&missed).map(|r| r.id).collect();
    assert_eq!(got, expected);

    let mut both = Stream::open(&api.base, &query, Some(&after_last)).await;
    let got: Vec<Uuid> = both.take(2).await.iter().map(Sse::event_id).collect();
    assert_eq!(got, missed.iter().map(|r| r.id).collect::<Vec<_>>());

    let (status, body) = api.get("/events/live?last_event_id=soon").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["parameter"], "last_event_id");
    api.stop().await;
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filtered_stream_tells_its_position_so_a_resume_skips_what_it_passed() {
    let stack = Stack::new(1).await;
    let api = stack.start_api(stack.layer()).await;
    let mut stream = Stream::open(&api.base, "?type=logout", None).await;
    let logouts = |user: &str| vec![Row::new("logout", user, Utc::now(), json!({"duration": 5}))];
    stack.insert(&logouts("first")).await;
    let first = stream.take(1).await[0].id.clone().expect("an id");
    // Rows this stream filters out, more than a second after its last
    // event: the next one it handles brings a position.
    stack.insert(&rows(3, "early")).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let late = rows(2, "late");
    stack.insert(&late).await;
    let position = loop {
        let sse = stream.next().await.expect("the stream is open");
        if sse.event.as_deref() == Some("position") {
            break sse;
        }
        assert!(sse.event.is_none(), "unexpected {sse:?}");
    };
    assert_eq!(position.data, "{}");
    let id = position.id.expect("a position carries an id");
    let cursor = |id: &str| {
        let (xid, seq) = id.split_once('-').expect("xid-seq");
        (xid.parse::<i64>().unwrap(), seq.parse::<i64>().unwrap())
    };
    assert!(cursor(&id) > cursor(&first), "{id} is past {first}");
    drop(stream);

    // Resumed from the position, as the client would: the rows it passed are
    // not replayed, the next logout comes first.
    let next = logouts("second");
    stack.insert(&next).await;
    let query = format!("?type=logout&last_event_id={id}");
    let mut resumed = Stream::open(&api.base, &query, None).await;
    let got = resumed.take(1).await;
    assert_eq!(got[0].event_id(), next[0].id);
    api.stop().await;
    stack.finish().await;
}

fn rows(n: usize, user: &str) -> Vec<Row> {
    (0..n)
        .map(|i| {
            let at = Utc::now() - Duration::seconds(i as i64);
            Row::new("login", user, at, json!({"device": "d", "ip": "::1"}))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_served_and_unknown_paths_stay_json_404s() {
    let stack = Stack::new(1).await;
    let base = std::env::temp_dir().join(eventpulse_testkit::unique_name("dashboard"));
    let dir = base.join("dist");
    std::fs::create_dir_all(dir.join("assets")).expect("dashboard dir");
    std::fs::write(base.join("secret.txt"), SECRET).expect("a file beside the folder");
    std::fs::write(dir.join("index.html"), "<!doctype html><title>t</title>").expect("page");
    std::fs::write(dir.join("docs.html"), "<!doctype html><title>d</title>").expect("docs page");
    std::fs::write(dir.join("assets/app.js"), "console.log(1)").expect("asset");
    let mut layer = stack.layer();
    layer.dashboard_dir = Some(dir.clone());
    let api = stack.start_api(layer).await;

    let (status, kind, body) = fetch(&api, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(kind.starts_with("text/html"), "{kind}");
    assert_eq!(body, "<!doctype html><title>t</title>");
    for path in ["/docs", "/docs/"] {
        let (status, kind, body) = fetch(&api, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(kind.starts_with("text/html"), "{path}: {kind}");
        assert_eq!(body, "<!doctype html><title>d</title>", "{path}");
    }
    let (status, kind, _) = fetch(&api, "/assets/app.js").await;
    assert_eq!(status, StatusCode::OK);
    assert!(kind.contains("javascript"), "{kind}");
    for path in ["/assets/missing.js", "/nope", "/events/a/b"] {
        let (status, body) = api.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert!(body["error"].is_string(), "{path}: {body}");
    }
    let (status, body) = api.post("/assets/app.js", None, "x").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // Sent as raw bytes: an HTTP client would resolve the dots itself.
    for path in [
        "/../secret.txt",
        "/assets/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/assets/%2e%2e/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
    ] {
        let answer = raw_get(&api.base, path).await;
        assert!(
            !answer.contains(SECRET),
            "{path} escaped the folder: {answer}"
        );
        assert!(answer.starts_with("HTTP/1.1 4"), "{path}: {answer}");
    }
    api.stop().await;

    // Not built: the default folder may be missing, and `/` says what to do.
    let mut layer = stack.layer();
    layer.dashboard_dir = None;
    let mut settings = eventpulse_api::Settings::from_layer(layer).expect("settings");
    settings.dashboard.path = dir.join("not-there");
    let api = crate::support::start(settings).await;
    for path in ["/", "/docs"] {
        let (status, _, body) = fetch(&api, path).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(body.contains("npm --prefix dashboard"), "{path}: {body}");
    }
    api.stop().await;

    // Chosen by hand, it must hold a built page: a one-line error at start-up.
    let mut layer = stack.layer();
    layer.dashboard_dir = Some(dir.join("not-there"));
    let error = eventpulse_api::Settings::from_layer(layer).expect_err("refused");
    assert!(error.to_string().contains("--dashboard-dir"), "{error}");
    std::fs::remove_dir_all(&base).expect("remove dashboard dir");
    stack.finish().await;
}

const SECRET: &str = "not-to-be-served-0451";

/// The whole answer to `GET path`, sent exactly as written.
async fn raw_get(base: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

/// (status, content type, body) of `GET path`.
async fn fetch(api: &crate::support::Api, path: &str) -> (StatusCode, String, String) {
    let response = api
        .client
        .get(format!("{}{path}", api.base))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = response.status();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .unwrap_or_default();
    (status, kind, response.text().await.expect("a body"))
}
