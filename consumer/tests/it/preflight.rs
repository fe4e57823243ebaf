//! The start-up checks against the real local Postgres and Redis: a database
//! set to `synchronous_commit = off` is reported, a default one is not, and
//! the local Redis is new enough for the dedup claim.

use std::time::Duration;

use eventpulse_consumer::preflight::{
    check_durability, check_redis_version, Durability, RedisSupport,
};
use eventpulse_testkit::{redis_url, TestDatabase};
use sqlx::{Connection, Executor, PgConnection, PgPool};

const TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_database_with_synchronous_commit_off_is_reported() {
    let db = TestDatabase::create().await.expect("create database");
    // Set on the database from outside, as an operator would: only sessions
    // opened afterwards get it, so the pool below does.
    let mut admin = PgConnection::connect(&db.url).await.expect("connect");
    admin
        .execute(
            format!(
                r#"ALTER DATABASE "{}" SET synchronous_commit = off"#,
                db.name
            )
            .as_str(),
        )
        .await
        .expect("alter database");
    admin.close().await.expect("close");

    let pool = PgPool::connect(&db.url).await.expect("connect");
    assert_eq!(
        check_durability(&pool).await.expect("check"),
        Durability::AsyncCommit
    );
    pool.close().await;
    db.drop_now().await.expect("drop database");
}

#[tokio::test]
async fn a_default_database_is_durable() {
    let db = TestDatabase::create().await.expect("create database");
    let pool = PgPool::connect(&db.url).await.expect("connect");
    assert_eq!(
        check_durability(&pool).await.expect("check"),
        Durability::Durable
    );
    pool.close().await;
    db.drop_now().await.expect("drop database");
}

#[tokio::test]
async fn the_local_redis_supports_the_claim_and_a_closed_port_is_unreachable() {
    let client = redis::Client::open(redis_url()).expect("Redis URL");
    let support = check_redis_version(&client, TIMEOUT).await;
    assert!(
        matches!(support, RedisSupport::Supported { .. }),
        "{support:?}"
    );

    let closed = redis::Client::open("redis://127.0.0.1:1").expect("Redis URL");
    assert_eq!(
        check_redis_version(&closed, TIMEOUT).await,
        RedisSupport::Unreachable
    );
}
