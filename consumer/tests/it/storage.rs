//! The partitioned store, straight against Postgres: partitions made on
//! demand (late and future days included), one row per id whatever its
//! timestamp, retention by dropping partitions, the move from the
//! unpartitioned layout, and the rollups' check and rebuild.

use chrono::{DateTime, Duration, DurationRound, Utc};
use eventpulse_consumer::retention::Upkeep;
use eventpulse_consumer::rollups;
use eventpulse_consumer::schema::{self, Layout};
use eventpulse_consumer::store::StoreError;
use eventpulse_testkit::TestDatabase;
use sqlx::PgPool;
use uuid::Uuid;

struct Row {
    id: Uuid,
    kind: &'static str,
    user: String,
    at: DateTime<Utc>,
    partition: i32,
}

fn row(at: DateTime<Utc>, user: &str, partition: i32) -> Row {
    Row {
        id: Uuid::new_v4(),
        kind: "page_view",
        user: user.to_owned(),
        at,
        partition,
    }
}

/// One call of the consumer's statement, in its own transaction; returns
/// how many rows it inserted.
async fn store(pool: &PgPool, rows: &[Row]) -> usize {
    let inserted: Vec<String> = sqlx::query_scalar(
        "SELECT * FROM eventpulse_store_events($1::uuid[], $2::text[], $3::text[], \
         $4::timestamptz[], $5::text[], $6::int4[], $7::int8[])",
    )
    .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.kind).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.user.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.at).collect::<Vec<_>>())
    .bind(rows.iter().map(|_| "{}").collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.partition).collect::<Vec<_>>())
    .bind((0..rows.len() as i64).collect::<Vec<_>>())
    .fetch_all(pool)
    .await
    .expect("store events");
    inserted.len()
}

async fn migrated() -> (TestDatabase, PgPool) {
    let db = TestDatabase::create().await.expect("create database");
    let pool = PgPool::connect(&db.url).await.expect("connect");
    schema::migrate(&pool).await.expect("migrate");
    (db, pool)
}

async fn scalar(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.expect(sql)
}

async fn assert_rollups_exact(pool: &PgPool) {
    let (from, to) = rollups::day_range(pool, None, None).await.unwrap();
    let report = rollups::check(pool, from, to).await.unwrap();
    assert!(report.exact(), "{report:?}");
}

#[tokio::test]
async fn late_and_future_days_get_partitions_and_an_id_is_stored_once() {
    let (db, pool) = migrated().await;
    let now = Utc::now();
    let late = now - Duration::days(200);
    let mut batch = vec![
        row(now, "u1", 0),
        row(late, "u2", 1),
        row(now + Duration::minutes(4), "u3", 2),
    ];
    assert_eq!(store(&pool, &batch).await, 3);
    assert!(scalar(&pool, "SELECT count(*) FROM event_partitions").await >= 2);
    let late_partition: String =
        sqlx::query_scalar("SELECT tableoid::regclass::text FROM events WHERE user_id = 'u2'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(late_partition, format!("events_p{}", late.format("%Y%m%d")));

    // The same ids again, with other timestamps (other days, other
    // partitions) and other Kafka partitions, in later batches.
    for (i, copy) in batch.iter_mut().enumerate() {
        copy.at = now - Duration::days(3 + i as i64);
        copy.partition = 7;
    }
    assert_eq!(store(&pool, &batch).await, 0, "no copy is stored again");
    batch[0].at = late;
    assert_eq!(store(&pool, &batch[..1]).await, 0);
    // Two copies of a new id in one batch: the first wins.
    let fresh = row(now - Duration::days(1), "u4", 0);
    let copy = Row {
        at: now,
        ..row(now, "u4", 3)
    };
    let copy = Row {
        id: fresh.id,
        ..copy
    };
    assert_eq!(store(&pool, &[fresh, copy]).await, 1);
    assert_eq!(scalar(&pool, "SELECT count(*) FROM events").await, 4);
    assert_eq!(
        scalar(&pool, "SELECT count(DISTINCT event_id) FROM events").await,
        4
    );
    assert_eq!(scalar(&pool, "SELECT count(*) FROM event_ids").await, 4);
    assert_eq!(
        scalar(&pool, "SELECT sum(events)::int8 FROM rollup_hourly").await,
        4
    );
    assert_rollups_exact(&pool).await;
    pool.close().await;
    db.drop_now().await.unwrap();
}

#[tokio::test]
async fn retention_drops_whole_partitions_with_their_ids_and_rollups() {
    let (db, pool) = migrated().await;
    let now = Utc::now();
    // Within one UTC day, so exactly one partition is past the window.
    let old_day = (now - Duration::days(40))
        .duration_trunc(Duration::days(1))
        .unwrap();
    let old: Vec<Row> = (0..50)
        .map(|i| row(old_day + Duration::minutes(60 + i), "old", 0))
        .collect();
    let older_id = old[0].id;
    let recent: Vec<Row> = (0..30)
        .map(|i| row(now - Duration::days(2) + Duration::minutes(i), "new", 1))
        .collect();
    store(&pool, &old).await;
    store(&pool, &recent).await;

    let report = Upkeep::new(pool.clone(), 1, Some(30))
        .run_once()
        .await
        .unwrap();
    assert!(!report.skipped);
    assert_eq!(report.dropped.len(), 1, "{report:?}");
    assert_eq!(report.dropped[0].ids_removed, 50);
    assert_eq!(scalar(&pool, "SELECT count(*) FROM events").await, 30);
    assert_eq!(scalar(&pool, "SELECT count(*) FROM event_ids").await, 30);
    assert_eq!(
        scalar(
            &pool,
            "SELECT count(*) FROM rollup_user_daily WHERE user_id = 'old'"
        )
        .await,
        0
    );
    assert_rollups_exact(&pool).await;
    // Upcoming days exist before any event needs them.
    let ahead: i64 =
        sqlx::query_scalar("SELECT count(*) FROM event_partitions WHERE from_at > now()")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(ahead >= 2, "{ahead} partitions ahead");
    // Nothing else past the window: a second run drops nothing.
    let again = Upkeep::new(pool.clone(), 1, Some(30))
        .run_once()
        .await
        .unwrap();
    assert!(again.dropped.is_empty());
    // A late write for the dropped day makes a partition again.
    let late = Row {
        id: older_id,
        ..row(old_day + Duration::hours(2), "old", 0)
    };
    assert_eq!(store(&pool, &[late]).await, 1);
    pool.close().await;
    db.drop_now().await.unwrap();
}

#[tokio::test]
async fn a_drop_interrupted_after_the_detach_is_finished_but_a_hand_detached_partition_is_kept() {
    let (db, pool) = migrated().await;
    let today = Utc::now().duration_trunc(Duration::days(1)).unwrap();
    let (dropping, archived) = (today - Duration::days(10), today - Duration::days(11));
    store(
        &pool,
        &[
            row(dropping + Duration::hours(1), "a", 0),
            row(archived + Duration::hours(1), "b", 0),
        ],
    )
    .await;
    let name = |day: DateTime<Utc>| format!("events_p{}", day.format("%Y%m%d"));
    // A drop that marked its partition and detached it, then crashed.
    sqlx::query("UPDATE event_partitions SET dropping_since = now() WHERE name = $1")
        .bind(name(dropping))
        .execute(&pool)
        .await
        .unwrap();
    for day in [dropping, archived] {
        sqlx::query(&format!(
            "ALTER TABLE events DETACH PARTITION {}",
            name(day)
        ))
        .execute(&pool)
        .await
        .unwrap();
    }
    // Retention is off now: the marked drop is finished, the archive kept.
    let report = Upkeep::new(pool.clone(), 1, None).run_once().await.unwrap();
    let dropped: Vec<&str> = report.dropped.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(dropped, [name(dropping).as_str()]);
    assert_eq!(scalar(&pool, "SELECT count(*) FROM event_ids").await, 1);
    for (day, kept) in [(dropping, false), (archived, true)] {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(name(day))
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(exists, kept, "{}", name(day));
    }
    pool.close().await;
    db.drop_now().await.unwrap();
}

#[tokio::test]
async fn the_check_finds_a_wrong_rollup_and_the_rebuild_mends_it() {
    let (db, pool) = migrated().await;
    let now = Utc::now();
    let rows: Vec<Row> = (0..200)
        .map(|i| {
            row(
                now - Duration::minutes(i * 37),
                &format!("u{}", i % 9),
                (i % 3) as i32,
            )
        })
        .collect();
    store(&pool, &rows).await;
    assert_rollups_exact(&pool).await;
    sqlx::query("UPDATE rollup_user_daily SET events = events + 1 WHERE ctid = (SELECT min(ctid) FROM rollup_user_daily)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM rollup_hourly WHERE ctid = (SELECT min(ctid) FROM rollup_hourly)")
        .execute(&pool)
        .await
        .unwrap();
    let (from, to) = rollups::day_range(&pool, None, None).await.unwrap();
    let report = rollups::check(&pool, from, to).await.unwrap();
    let differing: Vec<(&str, i64)> = report
        .tables
        .iter()
        .map(|t| (t.table, t.differing))
        .collect();
    assert_eq!(
        differing,
        [
            ("rollup_hourly", 1),
            ("rollup_user_hourly", 0),
            ("rollup_user_daily", 1)
        ]
    );
    assert!(!report.tables[0].examples.is_empty());
    rollups::rebuild(&pool, from, to).await.unwrap();
    assert_rollups_exact(&pool).await;
    pool.close().await;
    db.drop_now().await.unwrap();
}

#[tokio::test]
async fn an_unpartitioned_database_is_refused_then_moved_by_migrate() {
    let db = TestDatabase::create().await.expect("create database");
    let pool = PgPool::connect(&db.url).await.expect("connect");
    // The layout before partitioning: every migration before it.
    schema::unpartitioned_migrator()
        .run(&pool)
        .await
        .expect("old migrations");
    let hour = Utc::now().duration_trunc(Duration::hours(1)).unwrap();
    sqlx::query(
        "INSERT INTO events (event_id, event_type, user_id, occurred_at, payload, kafka_partition, kafka_offset) \
         SELECT gen_random_uuid(), (ARRAY['login','page_view'])[1 + i % 2], 'user-' || i % 13, \
                $1 - i * interval '7 minutes', '{\"page\": \"/\"}', i % 4, i FROM generate_series(1, 1000) AS i",
    )
    .bind(hour)
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(
        Layout::read(&pool).await.unwrap(),
        Layout::UnpartitionedWithRows
    );
    let refused = schema::migrate_for_run(&pool, "the-db")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("eventpulse-consumer migrate") && refused.contains("the-db"),
        "{refused}"
    );

    schema::migrate(&pool)
        .await
        .expect("migrate moves the rows");
    assert_eq!(Layout::read(&pool).await.unwrap(), Layout::Current);
    assert_eq!(scalar(&pool, "SELECT count(*) FROM events").await, 1000);
    assert_eq!(scalar(&pool, "SELECT count(*) FROM event_ids").await, 1000);
    // 1000 rows 7 minutes apart span 5 days: one partition each.
    assert!(scalar(&pool, "SELECT count(*) FROM event_partitions").await >= 5);
    assert_eq!(
        scalar(&pool, "SELECT sum(events)::int8 FROM rollup_user_daily").await,
        1000
    );
    assert_rollups_exact(&pool).await;
    schema::migrate_for_run(&pool, "the-db")
        .await
        .expect("now it runs");
    pool.close().await;
    db.drop_now().await.unwrap();
}

#[tokio::test]
async fn a_foreign_events_table_is_refused() {
    let db = TestDatabase::create().await.expect("create database");
    let pool = PgPool::connect(&db.url).await.expect("connect");
    sqlx::query("CREATE TABLE events (id int)")
        .execute(&pool)
        .await
        .unwrap();
    let refused = schema::migrate_for_run(&pool, "x")
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("not created by eventpulse"), "{refused}");
    pool.close().await;
    db.drop_now().await.unwrap();
}

#[tokio::test]
async fn a_missing_partition_is_retried_but_a_row_postgres_refuses_is_isolated() {
    let (db, pool) = migrated().await;
    let insert = |at: &str, kind: &str| {
        format!(
            "INSERT INTO events (event_id, event_type, user_id, occurred_at, payload, kafka_partition, kafka_offset) \
             VALUES (gen_random_uuid(), '{kind}', 'u', '{at}', '{{}}', 0, 0)"
        )
    };
    // What a write meets while retention drops that day's partition.
    let no_partition = sqlx::query(&insert("2001-01-01T00:00:00Z", "login"))
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(matches!(
        StoreError::from(no_partition),
        StoreError::Unavailable(_)
    ));
    // Same SQLSTATE (23514), but a constraint the row breaks.
    let today = Utc::now().to_rfc3339();
    store(&pool, &[row(Utc::now(), "u", 0)]).await;
    let refused = sqlx::query(&insert(&today, "purchase"))
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(matches!(StoreError::from(refused), StoreError::Rejected(_)));
    pool.close().await;
    db.drop_now().await.unwrap();
}
