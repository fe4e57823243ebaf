//! The rollups against the rows: a check that recounts `events` and reports
//! every rollup row that differs, and a rebuild that replaces the rollups of
//! a range of whole UTC days with that recount.
//!
//! The consumer keeps the rollups exact as it writes (the same statement
//! inserts the rows and adds them to the rollups, see the migration); these
//! are for proving it (the fault suite checks after every scenario) and for
//! repairing by hand after rows were changed outside the consumer.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;

/// One rollup table and how its rows are recounted from `events`.
struct Rollup {
    table: &'static str,
    /// The bucket column, also the `date_trunc` unit.
    bucket: &'static str,
    /// Key columns besides the bucket, as stored and as selected from `events`.
    keys: &'static str,
    keys_from_events: &'static str,
}

const ROLLUPS: [Rollup; 3] = [
    Rollup {
        table: "rollup_hourly",
        bucket: "hour",
        keys: "event_type, shard",
        keys_from_events: "event_type, kafka_partition AS shard",
    },
    Rollup {
        table: "rollup_user_hourly",
        bucket: "hour",
        keys: "user_id, event_type, shard",
        keys_from_events: "user_id, event_type, kafka_partition AS shard",
    },
    Rollup {
        table: "rollup_user_daily",
        bucket: "day",
        keys: "user_id, event_type, shard",
        keys_from_events: "user_id, event_type, kafka_partition AS shard",
    },
];

impl Rollup {
    /// `$1`..`$2`: the range. The statements are built from the constants
    /// above only.
    fn recount(&self) -> String {
        let Rollup {
            bucket,
            keys_from_events,
            ..
        } = self;
        format!(
            "SELECT date_trunc('{bucket}', occurred_at, 'UTC') AS {bucket}, {keys_from_events}, \
                    count(*) AS events \
             FROM events WHERE occurred_at >= $1 AND occurred_at < $2 \
             GROUP BY 1, {keys}",
            keys = self.keys
        )
    }

    fn differences(&self) -> String {
        let Rollup {
            table,
            bucket,
            keys,
            ..
        } = self;
        format!(
            "WITH counted AS ({recount}), \
                  kept AS (SELECT {bucket}, {keys}, events FROM {table} \
                           WHERE {bucket} >= $1 AND {bucket} < $2) \
             SELECT (SELECT count(*) FROM kept), \
                    count(*) FILTER (WHERE c.events IS DISTINCT FROM k.events), \
                    (array_agg(format('%s %s: rows %s, rollup %s', {bucket}, ROW({keys}), \
                                      coalesce(c.events, 0), coalesce(k.events, 0))) \
                       FILTER (WHERE c.events IS DISTINCT FROM k.events))[1:5] \
             FROM counted c FULL JOIN kept k USING ({bucket}, {keys})",
            recount = self.recount()
        )
    }
}

/// One table's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCheck {
    pub table: &'static str,
    pub rollup_rows: i64,
    pub differing: i64,
    /// Up to five of the differing rows, described.
    pub examples: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub tables: Vec<TableCheck>,
}

impl CheckReport {
    pub fn exact(&self) -> bool {
        self.tables.iter().all(|t| t.differing == 0)
    }
}

/// Whole UTC days `[from, to]`; `None` ends: the first or last partition's.
pub async fn day_range(
    pool: &PgPool,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> sqlx::Result<(DateTime<Utc>, DateTime<Utc>)> {
    let start_of = |day: NaiveDate| day.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let (first, last): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) =
        sqlx::query_as("SELECT min(from_at), max(to_at) FROM event_partitions")
            .fetch_one(pool)
            .await?;
    let now = Utc::now();
    Ok((
        from.map(start_of).or(first).unwrap_or(now),
        to.map(|d| start_of(d) + chrono::Duration::days(1))
            .or(last)
            .unwrap_or(now),
    ))
}

/// Compares every rollup with a recount, in one snapshot (rows and rollups
/// are written by the same statements, so a snapshot sees both or neither).
pub async fn check(
    pool: &PgPool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> sqlx::Result<CheckReport> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let mut tables = Vec::with_capacity(ROLLUPS.len());
    for rollup in &ROLLUPS {
        let (rollup_rows, differing, examples): (i64, i64, Option<Vec<String>>) =
            sqlx::query_as(&rollup.differences())
                .bind(from)
                .bind(to)
                .fetch_one(&mut *tx)
                .await?;
        tables.push(TableCheck {
            table: rollup.table,
            rollup_rows,
            differing,
            examples: examples.unwrap_or_default(),
        });
    }
    tx.commit().await?;
    Ok(CheckReport { from, to, tables })
}

/// Replaces the rollups of `[from, to)` (whole UTC days) with a recount.
/// Consumers' writes wait while it runs: the lock makes the recount and
/// their increments follow one another instead of interleaving.
pub async fn rebuild(pool: &PgPool, from: DateTime<Utc>, to: DateTime<Utc>) -> sqlx::Result<u64> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "LOCK TABLE rollup_hourly, rollup_user_hourly, rollup_user_daily IN SHARE ROW EXCLUSIVE MODE",
    )
    .execute(&mut *tx)
    .await?;
    let mut written = 0;
    for rollup in &ROLLUPS {
        let Rollup {
            table,
            bucket,
            keys,
            ..
        } = rollup;
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE {bucket} >= $1 AND {bucket} < $2"
        ))
        .bind(from)
        .bind(to)
        .execute(&mut *tx)
        .await?;
        written += sqlx::query(&format!(
            "INSERT INTO {table} ({bucket}, {keys}, events) {}",
            rollup.recount()
        ))
        .bind(from)
        .bind(to)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    tx.commit().await?;
    Ok(written)
}
