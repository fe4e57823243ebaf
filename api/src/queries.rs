//! Every SQL statement the read side runs on the rows themselves, each a
//! constant with bound parameters only (the statistics that the rollups
//! answer are in [`crate::rollups`]; these raw ones answer the same
//! questions with `--stats-source raw`). All of them filter with
//! `event_type = ANY($types)` (one type, or all five) and a half-open
//! `occurred_at` range, which the `(event_type, occurred_at)` index of
//! each daily partition serves as one range scan per type: the plans are
//! in docs/api.md ("Query plans").
//!
//! `payload` is read as text and parsed here (the workspace's sqlx has no
//! JSON feature, and adding one would rebuild every crate that uses sqlx).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use eventpulse_events::RejectReason;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::cursor::Cursor;
use crate::params::{type_filter, TimeRange};

/// Events per hour and type over the range, empty hours included (one row
/// with a NULL type). Counting needs only the index (an index-only scan
/// once the table is vacuumed), which also hands each row its type.
const HOURLY: &str = "\
WITH counts AS (
    SELECT date_trunc('hour', occurred_at, 'UTC') AS bucket, event_type, count(*) AS events
    FROM events
    WHERE event_type = ANY($1) AND occurred_at >= $2 AND occurred_at < $3
    GROUP BY 1, 2
)
SELECT b.bucket, c.event_type, COALESCE(c.events, 0) AS events
FROM generate_series(date_trunc('hour', $2, 'UTC'), $3 - interval '1 microsecond', interval '1 hour') AS b(bucket)
LEFT JOIN counts c USING (bucket)
ORDER BY b.bucket, c.event_type";

const TOP_USERS: &str = "\
SELECT user_id, count(*) AS events
FROM events
WHERE event_type = ANY($1) AND occurred_at >= $2 AND occurred_at < $3
GROUP BY user_id
ORDER BY events DESC, user_id
LIMIT $4";

/// Dead letters by reason over a range of the time they were recorded.
/// Naming every reason (`$1`) turns the `(reason, recorded_at)` index into
/// one range scan per reason, as `event_type = ANY` does for events;
/// without it Postgres would read the whole table.
const DEAD_LETTERS: &str = "\
SELECT reason, count(*) AS messages
FROM dead_letters
WHERE reason = ANY($1) AND recorded_at >= $2 AND recorded_at < $3
GROUP BY reason
ORDER BY messages DESC, reason";

const TOTALS: &str = "\
SELECT count(*) AS events, count(DISTINCT user_id) AS users
FROM events
WHERE event_type = ANY($1) AND occurred_at >= $2 AND occurred_at < $3";

/// Groups per time bucket; `$4` is the `date_trunc` unit ([`TimeBucket`]).
const TIME_GROUPS: &str = "\
WITH groups AS (
    SELECT date_trunc($4, occurred_at, 'UTC') AS bucket, count(*) AS events,
           count(DISTINCT user_id) AS users
    FROM events
    WHERE event_type = ANY($1) AND occurred_at >= $2 AND occurred_at < $3
    GROUP BY 1
)
SELECT to_char(b.bucket AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS key,
       COALESCE(g.events, 0) AS events, COALESCE(g.users, 0) AS users
FROM generate_series(date_trunc($4, $2, 'UTC'), $3 - interval '1 microsecond', ('1 ' || $4)::interval) AS b(bucket)
LEFT JOIN groups g USING (bucket)
ORDER BY b.bucket";

/// Groups per value of a payload field; `$4` is the field name. Events
/// without the field form one group whose key is null.
const FIELD_GROUPS: &str = "\
SELECT payload ->> $4 AS key, count(*) AS events, count(DISTINCT user_id) AS users
FROM events
WHERE event_type = ANY($1) AND occurred_at >= $2 AND occurred_at < $3
GROUP BY 1
ORDER BY events DESC, key NULLS LAST
LIMIT $5";

/// `events` has no index on `event_id` (a partitioned table's unique keys
/// must hold `occurred_at`): `event_ids` tells the id's time, and naming every
/// type (`$2`) with that time lets the `(event_type, occurred_at)` index of
/// the one partition holding it find the row.
const BY_ID: &str = "\
SELECT e.event_id, e.event_type, e.user_id, e.occurred_at, e.payload::text AS payload, e.ingested_at
FROM event_ids AS i
JOIN events AS e ON e.occurred_at = i.occurred_at AND e.event_id = i.event_id
WHERE i.event_id = $1 AND e.event_type = ANY($2)";

/// One user's events below the cursor `($4, $5)`, newest first. The
/// `occurred_at <= $4` conjunct lets the `(user_id, occurred_at)` index
/// bound the scan; the row comparison then breaks ties on `event_id`.
const LIST_BY_USER: &str = "\
SELECT event_id, event_type, user_id, occurred_at, payload::text AS payload, ingested_at
FROM events
WHERE user_id = $1 AND event_type = ANY($2) AND occurred_at >= $3
  AND occurred_at <= $4 AND (occurred_at, event_id) < ($4, $5)
ORDER BY occurred_at DESC, event_id DESC
LIMIT $6";

/// Every user's events below the cursor, newest first: the newest `$5` of
/// each type (a backward scan of the `(event_type, occurred_at)` index
/// each), merged. Postgres 15 cannot return an `= ANY` index scan in order,
/// so without this a page would sort the whole time range.
const LIST_BY_TYPES: &str = "\
SELECT e.event_id, e.event_type, e.user_id, e.occurred_at, e.payload::text AS payload, e.ingested_at
FROM unnest($1::text[]) AS t(kind)
CROSS JOIN LATERAL (
    SELECT event_id, event_type, user_id, occurred_at, payload, ingested_at
    FROM events
    WHERE event_type = t.kind AND occurred_at >= $2
      AND occurred_at <= $3 AND (occurred_at, event_id) < ($3, $4)
    ORDER BY occurred_at DESC, event_id DESC
    LIMIT $5
) AS e
ORDER BY e.occurred_at DESC, e.event_id DESC
LIMIT $5";

/// One hour of `/stats/hourly`: its events, in all and by type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HourlyCount {
    pub hour: DateTime<Utc>,
    pub count: i64,
    /// Only the types with events in that hour.
    pub by_type: BTreeMap<String, i64>,
}

/// One row of `HOURLY` (and of its rollup twin).
#[derive(sqlx::FromRow)]
pub(crate) struct HourlyRow {
    bucket: DateTime<Utc>,
    event_type: Option<String>,
    events: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct UserCount {
    pub user_id: String,
    #[sqlx(rename = "events")]
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ReasonCount {
    pub reason: String,
    #[sqlx(rename = "messages")]
    pub count: i64,
}

/// One row of `/events/metrics`: a bucket start or a field value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Group {
    pub key: Option<String>,
    #[sqlx(rename = "events")]
    pub count: i64,
    #[sqlx(rename = "users")]
    pub unique_users: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredRow {
    pub event_id: Uuid,
    pub event_type: String,
    pub user_id: String,
    pub occurred_at: DateTime<Utc>,
    pub payload: String,
    pub ingested_at: DateTime<Utc>,
}

impl StoredRow {
    pub fn position(&self) -> Cursor {
        Cursor {
            occurred_at: self.occurred_at,
            event_id: self.event_id,
        }
    }
}

pub async fn hourly(
    pool: &PgPool,
    types: &[&str],
    range: TimeRange,
) -> sqlx::Result<Vec<HourlyCount>> {
    let rows: Vec<HourlyRow> = sqlx::query_as(HOURLY)
        .bind(types)
        .bind(range.from)
        .bind(range.to)
        .fetch_all(pool)
        .await?;
    Ok(hourly_buckets(rows))
}

/// Rows ordered by hour, then type (NULL for an empty hour), into buckets.
pub(crate) fn hourly_buckets(rows: Vec<HourlyRow>) -> Vec<HourlyCount> {
    let mut hours: Vec<HourlyCount> = Vec::new();
    for row in rows {
        if hours.last().is_none_or(|h| h.hour != row.bucket) {
            hours.push(HourlyCount {
                hour: row.bucket,
                count: 0,
                by_type: BTreeMap::new(),
            });
        }
        let hour = hours.last_mut().expect("pushed above");
        if let Some(event_type) = row.event_type {
            hour.count += row.events;
            hour.by_type.insert(event_type, row.events);
        }
    }
    hours
}

pub async fn top_users(
    pool: &PgPool,
    types: &[&str],
    range: TimeRange,
    limit: u32,
) -> sqlx::Result<Vec<UserCount>> {
    sqlx::query_as(TOP_USERS)
        .bind(types)
        .bind(range.from)
        .bind(range.to)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
}

pub async fn dead_letters(pool: &PgPool, range: TimeRange) -> sqlx::Result<Vec<ReasonCount>> {
    let reasons: Vec<&str> = RejectReason::ALL.iter().map(|r| r.code()).collect();
    sqlx::query_as(DEAD_LETTERS)
        .bind(reasons)
        .bind(range.from)
        .bind(range.to)
        .fetch_all(pool)
        .await
}

/// (events, unique users) over the range.
pub async fn totals(pool: &PgPool, types: &[&str], range: TimeRange) -> sqlx::Result<(i64, i64)> {
    sqlx::query_as(TOTALS)
        .bind(types)
        .bind(range.from)
        .bind(range.to)
        .fetch_one(pool)
        .await
}

/// The buckets of `/events/metrics?group_by=hourly|daily` (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeBucket {
    Hour,
    Day,
}

impl TimeBucket {
    /// The `date_trunc` unit: a constant, bound anyway.
    pub fn unit(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }
}

pub async fn time_groups(
    pool: &PgPool,
    types: &[&str],
    range: TimeRange,
    bucket: TimeBucket,
) -> sqlx::Result<Vec<Group>> {
    sqlx::query_as(TIME_GROUPS)
        .bind(types)
        .bind(range.from)
        .bind(range.to)
        .bind(bucket.unit())
        .fetch_all(pool)
        .await
}

/// `field` is a payload key such as `device` or `page`.
pub async fn field_groups(
    pool: &PgPool,
    types: &[&str],
    range: TimeRange,
    field: &'static str,
    limit: u32,
) -> sqlx::Result<Vec<Group>> {
    sqlx::query_as(FIELD_GROUPS)
        .bind(types)
        .bind(range.from)
        .bind(range.to)
        .bind(field)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
}

pub async fn by_id(pool: &PgPool, event_id: Uuid) -> sqlx::Result<Option<StoredRow>> {
    sqlx::query_as(BY_ID)
        .bind(event_id)
        .bind(type_filter(None))
        .fetch_optional(pool)
        .await
}

/// A page of events strictly below `below`, newest first, at or after `from`.
pub struct Listing<'a> {
    pub user_id: Option<&'a str>,
    pub types: &'a [&'a str],
    pub from: DateTime<Utc>,
    pub below: Cursor,
    pub limit: u32,
}

pub async fn list(pool: &PgPool, listing: &Listing<'_>) -> sqlx::Result<Vec<StoredRow>> {
    let limit = i64::from(listing.limit);
    let Listing { below, from, .. } = listing;
    match listing.user_id {
        Some(user_id) => {
            sqlx::query_as(LIST_BY_USER)
                .bind(user_id)
                .bind(listing.types)
                .bind(from)
                .bind(below.occurred_at)
                .bind(below.event_id)
                .bind(limit)
                .fetch_all(pool)
                .await
        }
        None => {
            sqlx::query_as(LIST_BY_TYPES)
                .bind(listing.types)
                .bind(from)
                .bind(below.occurred_at)
                .bind(below.event_id)
                .bind(limit)
                .fetch_all(pool)
                .await
        }
    }
}
