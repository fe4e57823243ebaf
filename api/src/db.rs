//! The Postgres pool of the read side. Every connection is read-only
//! (`default_transaction_read_only`), runs in UTC (hour and day buckets are
//! UTC), and cancels any statement that runs longer than
//! `--query-timeout-ms`, which the API answers with 503.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::Connection;

use crate::config::{redact_url, Settings};

/// The tables the read side queries, `events` first: a database without
/// the consumer's migrations is named by its first missing table, and one
/// without the latest migration (partitions and rollups) is refused at
/// start-up rather than with a 500 per statistics request.
const TABLES: [&str; 5] = [
    "events",
    "event_ids",
    "rollup_hourly",
    "rollup_user_hourly",
    "rollup_user_daily",
];

/// Opens the pool, checks that the server answers and that the consumer's
/// migrations created the tables the API reads; each failure is one line
/// naming the setting and the password-free address.
pub async fn connect(settings: &Settings) -> anyhow::Result<PgPool> {
    let address = redact_url(&settings.database_url);
    let options = PgConnectOptions::from_str(&settings.database_url)
        .with_context(|| format!("invalid --database-url / EVENTPULSE_DATABASE_URL {address}"))?
        .options([
            ("default_transaction_read_only", "on".to_owned()),
            ("TimeZone", "UTC".to_owned()),
            (
                "statement_timeout",
                settings.query_timeout.as_millis().to_string(),
            ),
        ]);
    let unreachable = |e: sqlx::Error| {
        anyhow::anyhow!(
            "cannot connect to Postgres at {address} (--database-url / EVENTPULSE_DATABASE_URL): {e}"
        )
    };
    // One plain connection first: the pool retries refused connections until
    // its timeout and then reports only that it timed out, not why.
    PgConnection::connect_with(&options)
        .await
        .map_err(unreachable)?
        .close()
        .await
        .map_err(unreachable)?;
    let pool = PgPoolOptions::new()
        .max_connections(settings.db_pool_size)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .map_err(unreachable)?;
    let missing: Option<String> = sqlx::query_scalar(
        "SELECT name FROM unnest($1::text[]) WITH ORDINALITY AS t(name, n) \
         WHERE to_regclass(name) IS NULL ORDER BY n LIMIT 1",
    )
    .bind(TABLES)
    .fetch_optional(&pool)
    .await
    .with_context(|| format!("checking the schema of {address}"))?;
    if let Some(table) = missing {
        anyhow::bail!(
            "table {table} does not exist in {address} (--database-url / EVENTPULSE_DATABASE_URL): \
             apply the migrations first (eventpulse-consumer migrate)"
        );
    }
    Ok(pool)
}
