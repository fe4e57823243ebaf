//! `GET /pipeline/status` against the real broker and Postgres: the stored
//! position next to the partition's high watermark, and the lag between.

use std::time::Duration;

use eventpulse_testkit::brokers;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use reqwest::StatusCode;

use crate::support::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_partition_shows_its_position_high_watermark_and_lag() {
    let stack = Stack::new(2).await;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .expect("producer");
    for i in 0..5 {
        let payload = format!("m{i}");
        let record = FutureRecord::to(&stack.topic)
            .partition(0)
            .key("k")
            .payload(&payload);
        producer
            .send(record, Duration::from_secs(30))
            .await
            .expect("record acknowledged");
    }
    sqlx::query(
        "INSERT INTO consumer_offsets (group_id, topic, partition, epoch, next_offset) \
         VALUES ('g', $1, 0, 0, 3), ('g', $1, 1, 1, 0)",
    )
    .bind(&stack.topic)
    .execute(&stack.pool)
    .await
    .expect("offsets");
    let api = stack.start_api(stack.layer()).await;

    let (status, body) = api.get("/pipeline/status").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["kafka"], "ok", "{body}");
    let partitions = body["partitions"].as_array().expect("partitions");
    let shown: Vec<_> = partitions
        .iter()
        .map(|p| {
            (
                p["partition"].as_i64(),
                p["epoch"].as_i64(),
                p["next_offset"].as_i64(),
                p["high_watermark"].as_i64(),
                p["lag"].as_i64(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        vec![
            (Some(0), Some(0), Some(3), Some(5), Some(2)),
            (Some(1), Some(1), Some(0), Some(0), Some(0)),
        ],
        "{body}"
    );
    assert!(
        body["seconds_since_last_commit"]
            .as_f64()
            .is_some_and(|s| s >= 0.0),
        "{body}"
    );
    api.stop().await;
    stack.finish().await;
}
