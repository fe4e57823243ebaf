//! The statistics statements on the rollups: the same answers as the raw
//! statements in [`crate::queries`], for any range, by reading whole hours
//! and whole UTC days from the rollup tables (kept exact by the statement
//! that stores the rows, see the consumer's migration
//! `20261204000001_partitioned_events.sql`) and only the sub-hour edges
//! from `events`.
//!
//! The range is cut by [`RangeSplit`]; the per-user statements bind its six
//! bounds as `$2..$7` (raw, hourly, daily, hourly, raw: each piece
//! `[$i, $i+1)`), `HOURLY` only four (raw, every whole hour, raw), with `$1`
//! the event types, and each adds up its pieces with `UNION ALL`. Rollup rows are one per Kafka partition (`shard`): sums
//! add them up, and unique users are counted over the union, so a user seen
//! in several pieces or shards counts once. `sum(bigint)` is numeric in
//! Postgres, hence the casts back to `bigint`. Plans and timings are in
//! docs/api.md ("Statistics from the rollups").

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::QueryAs;
use sqlx::{FromRow, PgPool, Postgres};

use crate::params::TimeRange;
use crate::queries::{hourly_buckets, Group, HourlyCount, HourlyRow, TimeBucket, UserCount};
use crate::range_split::RangeSplit;

/// Per user, the events of the types `$1` in `[$2, $7)`, as rows
/// `(at, user_id, events)`: `at` is the hour (raw edges, hourly rollup) or
/// the day (daily rollup) they fall in. The raw edges span under two hours,
/// so counting them per hour and user keeps that part small.
macro_rules! user_parts {
    () => {
        "\
WITH parts AS (
    SELECT date_trunc('hour', occurred_at, 'UTC') AS at, user_id, count(*) AS events
    FROM events
    WHERE event_type = ANY($1) AND occurred_at >= $2 AND occurred_at < $3
    GROUP BY 1, 2
    UNION ALL
    SELECT hour, user_id, events FROM rollup_user_hourly
    WHERE event_type = ANY($1) AND hour >= $3 AND hour < $4
    UNION ALL
    SELECT day, user_id, events FROM rollup_user_daily
    WHERE event_type = ANY($1) AND day >= $4 AND day < $5
    UNION ALL
    SELECT hour, user_id, events FROM rollup_user_hourly
    WHERE event_type = ANY($1) AND hour >= $5 AND hour < $6
    UNION ALL
    SELECT date_trunc('hour', occurred_at, 'UTC'), user_id, count(*)
    FROM events
    WHERE event_type = ANY($1) AND occurred_at >= $6 AND occurred_at < $7
    GROUP BY 1, 2
)
"
    };
}

/// `queries::HOURLY` from `rollup_hourly`: whole hours `[$3, $4)` summed
/// over shards, the partial hours at the edges counted from the rows.
const HOURLY: &str = "\
WITH counts AS (
    SELECT bucket, event_type, sum(events)::bigint AS events
    FROM (
        SELECT date_trunc('hour', occurred_at, 'UTC') AS bucket, event_type, count(*) AS events
        FROM events
        WHERE event_type = ANY($1) AND occurred_at >= $2 AND occurred_at < $3
        GROUP BY 1, 2
        UNION ALL
        SELECT hour, event_type, events FROM rollup_hourly
        WHERE event_type = ANY($1) AND hour >= $3 AND hour < $4
        UNION ALL
        SELECT date_trunc('hour', occurred_at, 'UTC'), event_type, count(*)
        FROM events
        WHERE event_type = ANY($1) AND occurred_at >= $4 AND occurred_at < $5
        GROUP BY 1, 2
    ) AS parts
    GROUP BY 1, 2
)
SELECT b.bucket, c.event_type, COALESCE(c.events, 0) AS events
FROM generate_series(date_trunc('hour', $2, 'UTC'), $5 - interval '1 microsecond', interval '1 hour') AS b(bucket)
LEFT JOIN counts c USING (bucket)
ORDER BY b.bucket, c.event_type";

/// Each user's events summed over the pieces first, then ranked.
const TOP_USERS: &str = concat!(
    user_parts!(),
    "\
SELECT user_id, sum(events)::bigint AS events
FROM parts
GROUP BY user_id
ORDER BY events DESC, user_id
LIMIT $8"
);

/// One row per user first, so a user in several pieces counts once (a hash
/// aggregate: over 31 days about twice as fast as `count(DISTINCT)`, which
/// sorts).
const TOTALS: &str = concat!(
    user_parts!(),
    "\
SELECT COALESCE(sum(events), 0)::bigint AS events, count(*) AS users
FROM (SELECT user_id, sum(events) AS events FROM parts GROUP BY user_id) AS per_user"
);

/// `$8` is the `date_trunc` unit. Users are counted once per bucket over
/// all its pieces. Grouping per bucket and user first, then per bucket (as
/// for the totals) spilled to disk and took twice as long over 31 days.
const TIME_GROUPS: &str = concat!(
    user_parts!(),
    "\
, groups AS (
    SELECT date_trunc($8, at, 'UTC') AS bucket, sum(events)::bigint AS events,
           count(DISTINCT user_id) AS users
    FROM parts
    GROUP BY 1
)
SELECT to_char(b.bucket AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS key,
       COALESCE(g.events, 0) AS events, COALESCE(g.users, 0) AS users
FROM generate_series(date_trunc($8, $2, 'UTC'), $7 - interval '1 microsecond', ('1 ' || $8)::interval) AS b(bucket)
LEFT JOIN groups g USING (bucket)
ORDER BY b.bucket"
);

/// As [`crate::queries::hourly`].
pub async fn hourly(
    pool: &PgPool,
    types: &[&str],
    range: TimeRange,
) -> sqlx::Result<Vec<HourlyCount>> {
    let split = RangeSplit::hours_only(range.from, range.to);
    let rows: Vec<HourlyRow> = sqlx::query_as(HOURLY)
        .bind(types)
        .bind(split.from)
        .bind(split.hours_from)
        .bind(split.hours_to)
        .bind(split.to)
        .fetch_all(pool)
        .await?;
    Ok(hourly_buckets(rows))
}

/// As [`crate::queries::top_users`].
pub async fn top_users(
    pool: &PgPool,
    types: &[&str],
    range: TimeRange,
    limit: u32,
) -> sqlx::Result<Vec<UserCount>> {
    let split = RangeSplit::with_days(range.from, range.to);
    over_pieces(TOP_USERS, types, split)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
}

/// As [`crate::queries::totals`]: (events, unique users).
pub async fn totals(pool: &PgPool, types: &[&str], range: TimeRange) -> sqlx::Result<(i64, i64)> {
    let split = RangeSplit::with_days(range.from, range.to);
    over_pieces(TOTALS, types, split).fetch_one(pool).await
}

/// As [`crate::queries::time_groups`]. Hourly buckets take no daily rows;
/// daily ones take whole days from the daily rollup and their partial
/// days from hours and rows.
pub async fn time_groups(
    pool: &PgPool,
    types: &[&str],
    range: TimeRange,
    bucket: TimeBucket,
) -> sqlx::Result<Vec<Group>> {
    let split = match bucket {
        TimeBucket::Hour => RangeSplit::hours_only(range.from, range.to),
        TimeBucket::Day => RangeSplit::with_days(range.from, range.to),
    };
    over_pieces(TIME_GROUPS, types, split)
        .bind(bucket.unit())
        .fetch_all(pool)
        .await
}

/// `sql` with the types as `$1` and the split's six bounds as `$2..$7`.
fn over_pieces<'q, O>(
    sql: &'q str,
    types: &'q [&'q str],
    split: RangeSplit,
) -> QueryAs<'q, Postgres, O, PgArguments>
where
    O: for<'r> FromRow<'r, PgRow>,
{
    let query = sqlx::query_as(sql).bind(types);
    split
        .bounds()
        .into_iter()
        .fold(query, |query, bound| query.bind(bound))
}
