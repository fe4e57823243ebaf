//! `eventpulse-consumer replay`: exactly the range asked for, nothing new
//! the second time, and the running group's position left alone.

use eventpulse_consumer::replay::{self, Bound, ReplayRequest};
use eventpulse_consumer::{rollups, Settings};

use crate::support::*;

async fn replay(harness: &Harness, request: ReplayRequest) -> replay::ReplaySummary {
    let settings = Settings::from_layer(harness.layer()).expect("valid settings");
    let summary = tokio::time::timeout(
        PATIENCE,
        replay::run(&settings, request, std::future::pending()),
    )
    .await
    .expect("the replay ends by itself")
    .expect("replay");
    assert!(summary.complete, "{summary:?}");
    summary
}

fn range(from: Option<i64>, to: Option<i64>, partitions: Vec<i32>) -> ReplayRequest {
    ReplayRequest {
        from: from.map(Bound::Offset),
        to: to.map(Bound::Offset),
        partitions,
        // A fresh group each time: a used one is refused.
        group: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_stores_its_range_once_and_the_group_then_stores_the_rest() {
    let harness = Harness::new(2).await;
    let settings = Settings::from_layer(harness.layer()).expect("valid settings");
    eventpulse_consumer::schema::migrate(&harness.pool)
        .await
        .expect("migrate");
    for taken in [harness.group.clone(), "used-before".to_owned()] {
        sqlx::query("INSERT INTO consumer_offsets (group_id, topic, partition, next_offset) VALUES ('used-before', $1, 0, 0) ON CONFLICT DO NOTHING")
            .bind(&harness.topic)
            .execute(&harness.pool)
            .await
            .unwrap();
        let request = ReplayRequest {
            group: Some(taken),
            ..range(None, None, vec![])
        };
        let refused = replay::run(&settings, request, std::future::pending())
            .await
            .unwrap_err();
        assert!(
            refused.to_string().contains("--replay-group"),
            "{refused:#}"
        );
    }
    let (mut records, expected) = valid_events(400, 40);
    records.extend((0..10).map(|i| ("bad".to_owned(), format!("not json {i}").into_bytes())));
    harness.produce(&records).await;

    // Offsets 10..60 of partition 0 only, before the group ever ran.
    let first = replay(&harness, range(Some(10), Some(60), vec![0])).await;
    assert_eq!(first.spans.iter().map(|s| s.end - s.start).sum::<i64>(), 50);
    let (count, min, max): (i64, Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT count(*), min(kafka_offset), max(kafka_offset) FROM events WHERE kafka_partition = 0",
    )
    .fetch_one(&harness.pool)
    .await
    .unwrap();
    let invalid_in_range: i64 = harness
        .count("SELECT count(*) FROM dead_letters WHERE kafka_partition = 0")
        .await;
    assert_eq!(count + invalid_in_range, 50);
    assert!(min >= Some(10) && max <= Some(59), "{min:?}..{max:?}");
    assert_eq!(
        harness
            .count("SELECT count(*) FROM events WHERE kafka_partition = 1")
            .await,
        0
    );

    // The same range again changes nothing.
    let second = replay(&harness, range(Some(10), Some(60), vec![0])).await;
    assert_eq!(second.totals.stored, 0, "{second:?}");
    assert_eq!(harness.count("SELECT count(*) FROM events").await, count);

    // The group, which never ran, starts from the beginning and stores the rest.
    let consumer = harness.start(harness.layer()).await;
    harness
        .wait_for_count("SELECT count(*) FROM events", 400)
        .await;
    harness
        .wait_for_count("SELECT count(*) FROM dead_letters", 10)
        .await;
    consumer.stop().await;
    assert_eq!(harness.stored_ids().await, expected);

    // A whole replay: every event already stored, every dead letter already there.
    let group_positions = "SELECT sum(next_offset)::int8 FROM consumer_offsets WHERE group_id = ";
    let before = harness
        .count(&format!("{group_positions}'{}'", harness.group))
        .await;
    let whole = replay(&harness, range(None, None, vec![])).await;
    assert_eq!(whole.totals.stored, 0);
    assert_eq!(whole.totals.messages, 410, "{whole:?}");
    assert_eq!(harness.stored_ids().await, expected);
    assert_eq!(harness.count("SELECT count(*) FROM dead_letters").await, 10);
    assert_eq!(
        harness
            .count(&format!("{group_positions}'{}'", harness.group))
            .await,
        before
    );
    let (from, to) = rollups::day_range(&harness.pool, None, None).await.unwrap();
    assert!(rollups::check(&harness.pool, from, to)
        .await
        .unwrap()
        .exact());
    harness.finish().await;
}
