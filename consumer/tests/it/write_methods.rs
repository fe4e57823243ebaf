//! The two ways rows reach Postgres (`--write-method copy|unnest`) against
//! the real schema: the same rows, the same rollups, the first copy of an id
//! winning, and a row Postgres refuses isolated by bisection, under either.

use chrono::{DateTime, TimeZone, Utc};
use eventpulse_consumer::batch::{EventRow, Origin, PendingEvent};
use eventpulse_consumer::event_rows::{self, WriteMethod};
use eventpulse_consumer::position::{PartitionOffset, Position, StoredPosition};
use eventpulse_consumer::schema;
use eventpulse_consumer::store::{DeadLetterForm, Store, StoreError};
use eventpulse_events::EventType;
use eventpulse_testkit::TestDatabase;
use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::PgPool;
use uuid::Uuid;

fn event(id: u128, user: &str, at: DateTime<Utc>, offset: i64) -> PendingEvent {
    PendingEvent {
        event: EventRow {
            event_id: Uuid::from_u128(id),
            event_type: EventType::ALL[(id % 5) as usize],
            user_id: user.to_owned(),
            occurred_at: at,
            payload: format!(r#"{{"page":"/p/{id}","note":"é\"\\ 😀"}}"#),
        },
        origin: Origin {
            partition: (id % 3) as i32,
            offset,
            epoch: 0,
            timestamp_ms: None,
        },
        key: None,
        value: Vec::new(),
    }
}

/// Rows on both sides of 2000-01-01 (timestamptz's binary zero), with
/// microseconds, on several days and partitions; one id twice, and one
/// user id Postgres cannot store (a NUL byte) at index 7.
fn batch() -> Vec<PendingEvent> {
    let base = Utc.with_ymd_and_hms(1999, 12, 31, 23, 0, 0).unwrap();
    let mut events: Vec<PendingEvent> = (0..20)
        .map(|i| {
            let at = base + chrono::Duration::microseconds(i as i64 * 3_600_000_123);
            event(i, &format!("user-{}", i % 4), at, i as i64)
        })
        .collect();
    events[7].event.user_id = "bad\0user".into();
    let mut again = event(3, "user-3", base + chrono::Duration::days(3), 99);
    again.event.payload = r#"{"copy":2}"#.into();
    events.push(again);
    events
}

const ROWS: &str = "SELECT event_id::text || event_type || user_id || occurred_at::text \
    || payload::text || kafka_partition || ':' || kafka_offset FROM events ORDER BY event_id";
const ROLLUPS: &str = "SELECT 'h' || hour || event_type || shard || '=' || events FROM rollup_hourly \
    UNION ALL SELECT 'uh' || hour || user_id || event_type || shard || '=' || events FROM rollup_user_hourly \
    UNION ALL SELECT 'ud' || day || user_id || event_type || shard || '=' || events FROM rollup_user_daily \
    ORDER BY 1";

/// What one method stores of [`batch`]: rows and rollups as text.
async fn stored_by(method: WriteMethod) -> (Vec<String>, Vec<String>) {
    let db = TestDatabase::create().await.expect("create database");
    let pool = PgPool::connect(&db.url).await.expect("connect");
    schema::migrate(&pool).await.expect("migrate");
    let store = Store::new(pool.clone(), "g", "t", 1).with_write_method(method);
    let events = batch();
    let refs: Vec<&PendingEvent> = events.iter().collect();
    let refused = store.find_rejected_rows(&refs).await.expect("bisection");
    let indexes: Vec<usize> = refused.iter().map(|(i, _)| *i).collect();
    assert_eq!(indexes, [7], "{method:?}: the NUL row alone is refused");
    let good: Vec<&PendingEvent> = refs
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 7)
        .map(|(_, e)| *e)
        .collect();
    let next = StoredPosition {
        at: PartitionOffset {
            partition: 0,
            position: Position {
                epoch: 0,
                offset: 100,
            },
        },
        last_record_ms: None,
    };
    let outcome = store
        .write_batch(&good, &[], DeadLetterForm::Full, &[next])
        .await
        .expect("write");
    assert_eq!(
        (outcome.inserted, outcome.already_stored),
        (19, 1),
        "{method:?}: 19 distinct ids, the second copy of id 3 not stored"
    );
    let rows: Vec<String> = sqlx::query_scalar(ROWS).fetch_all(&pool).await.unwrap();
    let rollups: Vec<String> = sqlx::query_scalar(ROLLUPS).fetch_all(&pool).await.unwrap();
    let copy_two: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE payload ? 'copy'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(copy_two, 0, "{method:?}: the first copy of an id wins");
    pool.close().await;
    db.drop_now().await.unwrap();
    (rows, rollups)
}

#[tokio::test]
async fn copy_and_unnest_store_the_same_rows_and_isolate_the_same_refused_row() {
    let (copy_rows, copy_rollups) = stored_by(WriteMethod::Copy).await;
    let (unnest_rows, unnest_rollups) = stored_by(WriteMethod::Unnest).await;
    assert_eq!(copy_rows.len(), 19);
    assert_eq!(copy_rows, unnest_rows);
    assert!(!copy_rollups.is_empty());
    assert_eq!(copy_rollups, unnest_rollups);
}

#[tokio::test]
async fn copy_is_refused_at_start_for_a_role_without_temp_but_unnest_is_not() {
    let db = TestDatabase::create().await.expect("create database");
    let admin = PgPool::connect(&db.url).await.expect("connect");
    let role = format!("ep_no_temp_{}", Uuid::new_v4().simple());
    for sql in [
        format!("CREATE ROLE {role} LOGIN"),
        format!(r#"REVOKE TEMP ON DATABASE "{}" FROM PUBLIC"#, db.name),
        format!(r#"GRANT CONNECT ON DATABASE "{}" TO {role}"#, db.name),
    ] {
        sqlx::query(&sql).execute(&admin).await.expect(&sql);
    }
    let options = PgConnectOptions::from_str(&db.url).expect("database url");
    let limited = PgPool::connect_with(options.username(&role))
        .await
        .expect("connect as role");
    let refused = event_rows::check_method(&limited, WriteMethod::Copy)
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("--write-method unnest"), "{refused}");
    event_rows::check_method(&limited, WriteMethod::Unnest)
        .await
        .expect("unnest needs no temporary table");
    event_rows::check_method(&admin, WriteMethod::Copy)
        .await
        .expect("the owner may create temporary tables");
    limited.close().await;
    admin.close().await;
    db.drop_now().await.unwrap();
    let cleanup = PgPool::connect(&eventpulse_testkit::admin_database_url())
        .await
        .expect("connect admin");
    sqlx::query(&format!("DROP ROLE {role}"))
        .execute(&cleanup)
        .await
        .expect("drop role");
}

#[tokio::test]
async fn a_malformed_copy_stream_is_retried_not_blamed_on_a_row() {
    let db = TestDatabase::create().await.expect("create database");
    let pool = PgPool::connect(&db.url).await.expect("connect");
    schema::migrate(&pool).await.expect("migrate");
    let mut conn = pool.acquire().await.expect("connection");
    sqlx::query("SELECT eventpulse_prepare_staging()")
        .execute(&mut *conn)
        .await
        .expect("staging table");
    // What a bug in our encoder would send: not the binary COPY signature.
    let mut copy = conn
        .copy_in_raw("COPY pg_temp.eventpulse_staged FROM STDIN (FORMAT binary)")
        .await
        .expect("copy starts");
    copy.send(&b"not a binary copy stream"[..])
        .await
        .expect("send");
    let error = copy.finish().await.unwrap_err();
    assert!(
        matches!(StoreError::from(error), StoreError::Unavailable(_)),
        "a format error must not make bisection dead-letter every row"
    );
    drop(conn);
    pool.close().await;
    db.drop_now().await.unwrap();
}
