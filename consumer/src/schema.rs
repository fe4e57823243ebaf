//! The database: connecting, applying the migrations, and refusing a layout
//! this version cannot run on.
//!
//! A consumer applies pending migrations when it starts, except the one that
//! moves the rows of an unpartitioned `events` table (a database from before
//! partitioning) into partitions: that rewrites every row, so it waits for an
//! operator to stop the consumers and run `eventpulse-consumer migrate`.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::config::redact_url;

/// A database the consumer will not start on, and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error(
        "table events in {0} holds rows in the unpartitioned layout of an older eventpulse: \
         stop every consumer and run `eventpulse-consumer migrate` to move them into time partitions"
    )]
    Unpartitioned(String),
    #[error(
        "table events in {0} was not created by eventpulse (no _sqlx_migrations table): \
         point --database-url / EVENTPULSE_DATABASE_URL at an empty or eventpulse database"
    )]
    Foreign(String),
}

/// Opens the pool and checks the server answers; the error names the
/// (password-free) address and the setting.
pub async fn connect(url: &str, pool_size: u32) -> anyhow::Result<PgPool> {
    let unavailable = || {
        format!(
            "cannot connect to Postgres at {} (--database-url / EVENTPULSE_DATABASE_URL)",
            redact_url(url)
        )
    };
    // Named, so operators can tell the consumer's sessions apart in pg_stat_activity.
    let options = PgConnectOptions::from_str(url)
        .with_context(unavailable)?
        .application_name("eventpulse-consumer");
    PgPoolOptions::new()
        .max_connections(pool_size)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .with_context(unavailable)
}

/// Applies every pending migration, moving rows if the old layout has any.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::migrate!("./migrations")
        .run(pool)
        .await
        .context("applying database migrations")
}

/// The first migration of the partitioned layout.
pub const PARTITIONED_SINCE: i64 = 20261204000001;

/// Only the migrations before partitioning: the layout `migrate` upgrades
/// from, which the upgrade test and the benchmark's comparison build.
pub fn unpartitioned_migrator() -> sqlx::migrate::Migrator {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.migrations = std::borrow::Cow::Owned(
        migrator
            .migrations
            .iter()
            .filter(|m| m.version < PARTITIONED_SINCE)
            .cloned()
            .collect(),
    );
    migrator
}

/// What a starting consumer does: migrate, unless that means moving rows or
/// the database is not an eventpulse one. `address` is for the message.
pub async fn migrate_for_run(pool: &PgPool, address: &str) -> anyhow::Result<()> {
    let layout = Layout::read(pool)
        .await
        .context("reading the database schema")?;
    match layout {
        Layout::Foreign => Err(SchemaError::Foreign(address.to_owned()).into()),
        Layout::UnpartitionedWithRows => Err(SchemaError::Unpartitioned(address.to_owned()).into()),
        Layout::Fresh | Layout::Current => migrate(pool).await,
    }
}

/// What the database holds before migrations run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// No `events` table yet, or an unpartitioned one with no rows.
    Fresh,
    /// `events` is partitioned: migrations (if any) are cheap.
    Current,
    UnpartitionedWithRows,
    /// `events` exists but no migration history: someone else's table.
    Foreign,
}

impl Layout {
    pub async fn read(pool: &PgPool) -> sqlx::Result<Self> {
        let (kind, has_history): (Option<String>, bool) = sqlx::query_as(
            "SELECT (SELECT relkind::text FROM pg_class WHERE oid = to_regclass('events')), \
                    to_regclass('_sqlx_migrations') IS NOT NULL",
        )
        .fetch_one(pool)
        .await?;
        Ok(match kind.as_deref() {
            None => Self::Fresh,
            Some(_) if !has_history => Self::Foreign,
            Some("p") => Self::Current,
            Some(_) => {
                let has_rows: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events)")
                    .fetch_one(pool)
                    .await?;
                if has_rows {
                    Self::UnpartitionedWithRows
                } else {
                    Self::Fresh
                }
            }
        })
    }
}
