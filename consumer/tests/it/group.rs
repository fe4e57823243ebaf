//! Several consumers in one group share the partitions; when one leaves, the
//! rest take over its partitions from the offsets stored in Postgres.

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_split_partitions_and_one_takes_over_when_the_other_leaves() {
    let harness = Harness::new(6).await;
    let first = harness.start(harness.layer()).await;
    let second = harness.start(harness.layer()).await;

    let (records, mut expected) = valid_events(3000, 300);
    harness.produce(&records).await;
    assert_eq!(
        harness
            .wait_for_count("SELECT count(*) FROM events", 3000)
            .await,
        3000
    );
    let first_share = first.metric("eventpulse_messages_consumed_total").await;
    let second_share = second.metric("eventpulse_messages_consumed_total").await;
    assert!(
        first_share > 0.0 && second_share > 0.0,
        "both consumed: {first_share} / {second_share}"
    );
    assert_eq!(
        first.metric("eventpulse_assigned_partitions").await
            + second.metric("eventpulse_assigned_partitions").await,
        6.0
    );

    first.stop().await;
    let (more, more_ids) = valid_events(3000, 300);
    harness.produce(&more).await;
    // Replaying the first half too: whoever owns a partition must not store twice.
    harness.produce(&records[..500]).await;
    expected.extend(more_ids);
    assert_eq!(
        harness
            .wait_for_count("SELECT count(*) FROM events", 6000)
            .await,
        6000
    );
    harness
        .wait_for_count(
            "SELECT coalesce(sum(next_offset), 0)::bigint FROM consumer_offsets",
            6500,
        )
        .await;
    assert_eq!(second.metric("eventpulse_assigned_partitions").await, 6.0);
    second.stop().await;
    assert_eq!(harness.stored_ids().await, expected);
    assert_eq!(harness.count("SELECT count(*) FROM events").await, 6000);
    harness.finish().await;
}

/// A member joining a running group makes the owner revoke half its
/// partitions; librdkafka then hands the owner an empty assignment and waits
/// for it to be acknowledged before the group can move on. Unacknowledged,
/// the owner's remaining partitions stay paused and the newcomer never gets
/// any: every partition stalls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_joining_mid_stream_gets_partitions_and_nothing_stalls() {
    let harness = Harness::new(6).await;
    let first = harness.start(harness.layer()).await;
    let (records, mut expected) = valid_events(1000, 100);
    harness.produce(&records).await;
    assert_eq!(
        harness
            .wait_for_count("SELECT count(*) FROM events", 1000)
            .await,
        1000
    );
    assert_eq!(first.metric("eventpulse_assigned_partitions").await, 6.0);

    let second = harness.start(harness.layer()).await;
    // The join completes only if the owner acknowledges the empty assignment
    // that follows its revoke.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let owned = loop {
        let owned = (
            first.metric("eventpulse_assigned_partitions").await,
            second.metric("eventpulse_assigned_partitions").await,
        );
        let shared = owned.0 > 0.0 && owned.1 > 0.0 && owned.0 + owned.1 == 6.0;
        if shared || tokio::time::Instant::now() > deadline {
            break owned;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(
        owned.0 > 0.0 && owned.1 > 0.0 && owned.0 + owned.1 == 6.0,
        "the partitions are shared: {owned:?}"
    );
    let (more, more_ids) = valid_events(2000, 200);
    harness.produce(&more).await;
    expected.extend(more_ids);
    assert_eq!(
        harness
            .wait_for_count("SELECT count(*) FROM events", 3000)
            .await,
        3000,
        "every event stored after the second member joined"
    );
    first.stop().await;
    second.stop().await;
    assert_eq!(harness.stored_ids().await, expected);
    harness.finish().await;
}
