//! Each running consumer reports itself in `consumer_members` (for the API's
//! `/pipeline/status`): the partitions it owns and whether Redis is
//! degraded, refreshed while it runs, removed when it stops cleanly.

use crate::support::{valid_events, Harness};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_consumer_reports_its_partitions_and_leaves_at_shutdown() {
    let harness = Harness::new(3).await;
    let mut layer = harness.layer();
    // Nothing answers on this port: the consumer runs degraded, with
    // Postgres as the only dedup layer, and must say so.
    layer.redis_url = Some("redis://127.0.0.1:1".to_owned());
    let consumer = harness.start(layer).await;
    // Degraded is learnt from a failed claim, so give it a batch to claim.
    let (records, ids) = valid_events(10, 3);
    harness.produce(&records).await;
    let stored = harness
        .wait_for_count("SELECT count(*) FROM events", ids.len() as i64)
        .await;
    assert_eq!(stored, ids.len() as i64, "stored with Redis down");

    let reported = harness
        .wait_for_count(
            "SELECT count(*) FROM consumer_members \
             WHERE partitions = 3 AND redis_degraded AND pid > 0 AND host <> ''",
            1,
        )
        .await;
    assert_eq!(reported, 1, "one member owning all 3 partitions, degraded");
    let group: String = sqlx::query_scalar("SELECT group_id FROM consumer_members")
        .fetch_one(&harness.pool)
        .await
        .expect("member row");
    assert_eq!(group, harness.group);

    consumer.stop().await;
    assert_eq!(
        harness.count("SELECT count(*) FROM consumer_members").await,
        0,
        "a clean stop removes the row"
    );
    harness.finish().await;
}
