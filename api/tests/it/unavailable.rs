//! Dependencies that are missing at start-up (one line naming the setting,
//! no password) or that go away while the API runs (503 with a JSON error).

use eventpulse_api::config::Layer;
use eventpulse_api::{Application, Settings};
use eventpulse_testkit::unique_name;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::support::{delete_topics, Stack, KEY};

async fn start_error(layer: Layer) -> String {
    let settings = Settings::from_layer(layer).expect("valid settings");
    match Application::build(settings).await {
        Ok(_) => panic!("the API started"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_away_is_a_503() {
    let stack = Stack::new(1).await;
    let api = stack.start_api(stack.layer()).await;
    let (status, _) = api.get("/stats/hourly").await;
    assert_eq!(status, StatusCode::OK);

    let Stack { db, pool, topic } = stack;
    pool.close().await;
    db.drop_now()
        .await
        .expect("drop the database under the API");
    for path in [
        "/stats/hourly",
        "/stats/top-users",
        &format!("/events/{}", Uuid::new_v4()),
    ] {
        let (status, body) = api.get(path).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
        assert_eq!(
            body,
            json!({"error": "postgres is unavailable, try again later"})
        );
    }
    let answered = api
        .metric("eventpulse_api_requests_total", "status=\"503\"")
        .await;
    assert_eq!(answered, 3.0);
    // Each request counts once; the live feed's own reads, which fail too
    // once the database is gone, may add theirs at any moment.
    let failures = api
        .metric(
            "eventpulse_api_dependency_errors_total",
            "dependency=\"postgres\"",
        )
        .await;
    assert!(failures >= 3.0, "{failures}");
    api.stop().await;
    delete_topics(&[topic]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_not_acknowledging_is_a_503() {
    let stack = Stack::new(1).await;
    let layer = Layer {
        produce_timeout_ms: Some(2000),
        ..stack.layer()
    };
    let api = stack.start_api(layer).await;
    delete_topics(std::slice::from_ref(&stack.topic)).await;

    let event = json!({
        "eventId": Uuid::new_v4(), "type": "login", "timestamp": chrono::Utc::now().to_rfc3339(),
        "payload": {"userId": "u", "ip": "::1", "device": "d"}
    });
    let (status, body) = api.post("/events", Some(KEY), event.to_string()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(
        body,
        json!({"error": "kafka is unavailable, try again later"})
    );
    let failures = api
        .metric(
            "eventpulse_api_dependency_errors_total",
            "dependency=\"kafka\"",
        )
        .await;
    assert_eq!(failures, 1.0);
    api.stop().await;
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_failures_name_the_setting_without_the_password() {
    let stack = Stack::new(1).await;

    let error = start_error(Layer {
        database_url: Some("postgres://eventpulse:hunter2@127.0.0.1:1/events".into()),
        ..stack.layer()
    })
    .await;
    assert!(
        error.contains("(--database-url / EVENTPULSE_DATABASE_URL)"),
        "{error}"
    );
    assert!(
        error.contains("postgres://eventpulse:***@127.0.0.1:1/events"),
        "{error}"
    );
    assert!(!error.contains("hunter2"), "{error}");

    let empty = eventpulse_testkit::TestDatabase::create()
        .await
        .expect("create database");
    let error = start_error(Layer {
        database_url: Some(empty.url.clone()),
        ..stack.layer()
    })
    .await;
    assert!(error.contains("table events does not exist"), "{error}");
    empty.drop_now().await.expect("drop database");

    let error = start_error(Layer {
        brokers: Some("127.0.0.1:1".into()),
        ..stack.layer()
    })
    .await;
    assert!(
        error.starts_with("cannot reach Kafka at 127.0.0.1:1 (--brokers / EVENTPULSE_BROKERS)"),
        "{error}"
    );

    let missing = unique_name("api-missing");
    let error = start_error(Layer {
        topic: Some(missing.clone()),
        ..stack.layer()
    })
    .await;
    assert!(
        error.contains(&format!("topic {missing:?} does not exist")),
        "{error}"
    );
    assert!(error.contains("(--topic / EVENTPULSE_TOPIC)"), "{error}");

    stack.finish().await;
}
