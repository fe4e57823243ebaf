//! Aggregates: `GET /stats/hourly`, `GET /stats/top-users`,
//! `GET /stats/dead-letters` and `GET /events/metrics`. Each covers a time
//! range of at most 31 days (default: the last 24 hours) and, except dead
//! letters, optionally one event type; every response echoes the range and
//! filter it used.
//!
//! Counts by time and by user come from the configured
//! [`StatsSource`](crate::stats_source::StatsSource) (the rollups by default, the same answers as counting the rows);
//! dead letters and the `device`/`page` groups are counted from the rows.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use eventpulse_events::EventType;
use serde::Serialize;

use crate::error::ApiError;
use crate::params::{type_filter, FromQuery, Params, Query, TimeRange};
use crate::queries::{self, Group, HourlyCount, ReasonCount, TimeBucket, UserCount};
use crate::state::AppState;

/// Default and largest `limit` of `/stats/top-users`.
pub const TOP_USERS_DEFAULT: u32 = 10;
pub const TOP_USERS_MAX: u32 = 1000;
/// Most `device`/`page` groups returned by `/events/metrics` (the largest first).
pub const MAX_FIELD_GROUPS: u32 = 1000;

pub struct HourlyParams {
    event_type: Option<EventType>,
    range: TimeRange,
}

impl FromQuery for HourlyParams {
    const NAMES: &'static [&'static str] = &["event_type", "from", "to"];

    fn from_query(query: &mut Query, now: DateTime<Utc>) -> Result<Self, ApiError> {
        Ok(Self {
            event_type: query.event_type("event_type")?,
            range: TimeRange::for_stats(query, now)?,
        })
    }
}

#[derive(Debug, Serialize)]
pub struct HourlyResponse {
    event_type: Option<EventType>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    total: i64,
    buckets: Vec<HourlyCount>,
}

pub async fn hourly(
    State(state): State<AppState>,
    Params(params): Params<HourlyParams>,
) -> Result<Json<HourlyResponse>, ApiError> {
    let types = type_filter(params.event_type);
    let buckets = state
        .stats_source
        .hourly(&state.pool, &types, params.range)
        .await?;
    Ok(Json(HourlyResponse {
        event_type: params.event_type,
        from: params.range.from,
        to: params.range.to,
        total: buckets.iter().map(|b| b.count).sum(),
        buckets,
    }))
}

pub struct TopUsersParams {
    event_type: Option<EventType>,
    limit: u32,
    range: TimeRange,
}

impl FromQuery for TopUsersParams {
    const NAMES: &'static [&'static str] = &["event_type", "limit", "from", "to"];

    fn from_query(query: &mut Query, now: DateTime<Utc>) -> Result<Self, ApiError> {
        Ok(Self {
            event_type: query.event_type("event_type")?,
            limit: query.limit("limit", TOP_USERS_DEFAULT, TOP_USERS_MAX)?,
            range: TimeRange::for_stats(query, now)?,
        })
    }
}

#[derive(Debug, Serialize)]
pub struct TopUsersResponse {
    event_type: Option<EventType>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: u32,
    users: Vec<UserCount>,
}

pub async fn top_users(
    State(state): State<AppState>,
    Params(params): Params<TopUsersParams>,
) -> Result<Json<TopUsersResponse>, ApiError> {
    let types = type_filter(params.event_type);
    let users = state
        .stats_source
        .top_users(&state.pool, &types, params.range, params.limit)
        .await?;
    Ok(Json(TopUsersResponse {
        event_type: params.event_type,
        from: params.range.from,
        to: params.range.to,
        limit: params.limit,
        users,
    }))
}

pub struct DeadLetterParams {
    range: TimeRange,
}

impl FromQuery for DeadLetterParams {
    const NAMES: &'static [&'static str] = &["from", "to"];

    fn from_query(query: &mut Query, now: DateTime<Utc>) -> Result<Self, ApiError> {
        Ok(Self {
            range: TimeRange::for_stats(query, now)?,
        })
    }
}

#[derive(Debug, Serialize)]
pub struct DeadLetterResponse {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    total: i64,
    /// Largest first; only reasons seen in the range.
    reasons: Vec<ReasonCount>,
}

/// Dead-lettered messages by reason, by the time they were recorded.
pub async fn dead_letters(
    State(state): State<AppState>,
    Params(params): Params<DeadLetterParams>,
) -> Result<Json<DeadLetterResponse>, ApiError> {
    let reasons = queries::dead_letters(&state.pool, params.range).await?;
    Ok(Json(DeadLetterResponse {
        from: params.range.from,
        to: params.range.to,
        total: reasons.iter().map(|r| r.count).sum(),
        reasons,
    }))
}

/// How `/events/metrics` groups its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    Hourly,
    Daily,
    Device,
    Page,
}

impl GroupBy {
    const ALL: [GroupBy; 4] = [Self::Hourly, Self::Daily, Self::Device, Self::Page];

    fn name(self) -> &'static str {
        match self {
            Self::Hourly => "hourly",
            Self::Daily => "daily",
            Self::Device => "device",
            Self::Page => "page",
        }
    }

    fn parse(query: &mut Query) -> Result<Self, ApiError> {
        let Some(raw) = query.take("group_by") else {
            return Ok(Self::Hourly);
        };
        Self::ALL
            .into_iter()
            .find(|g| g.name() == raw)
            .ok_or_else(|| {
                ApiError::bad_parameter(
                    "group_by",
                    "group_by must be one of hourly, daily, device, page",
                )
            })
    }
}

pub struct MetricsParams {
    event_type: Option<EventType>,
    range: TimeRange,
    group_by: GroupBy,
}

impl FromQuery for MetricsParams {
    const NAMES: &'static [&'static str] = &["event_type", "from", "to", "group_by"];

    fn from_query(query: &mut Query, now: DateTime<Utc>) -> Result<Self, ApiError> {
        Ok(Self {
            event_type: query.event_type("event_type")?,
            range: TimeRange::for_stats(query, now)?,
            group_by: GroupBy::parse(query)?,
        })
    }
}

#[derive(Debug, Serialize)]
pub struct MetricsResponse {
    event_type: Option<EventType>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    group_by: GroupBy,
    total_events: i64,
    unique_users: i64,
    groups: Vec<Group>,
    /// True when `device`/`page` had more than 1000 values (the rest are left out).
    truncated: bool,
}

pub async fn metrics(
    State(state): State<AppState>,
    Params(params): Params<MetricsParams>,
) -> Result<Json<MetricsResponse>, ApiError> {
    let types = type_filter(params.event_type);
    let (pool, range, source) = (&state.pool, params.range, state.stats_source);
    let groups = async {
        match params.group_by {
            GroupBy::Hourly => {
                source
                    .time_groups(pool, &types, range, TimeBucket::Hour)
                    .await
            }
            GroupBy::Daily => {
                source
                    .time_groups(pool, &types, range, TimeBucket::Day)
                    .await
            }
            GroupBy::Device => {
                queries::field_groups(pool, &types, range, "device", MAX_FIELD_GROUPS + 1).await
            }
            GroupBy::Page => {
                queries::field_groups(pool, &types, range, "page", MAX_FIELD_GROUPS + 1).await
            }
        }
    };
    let ((total_events, unique_users), mut groups) =
        tokio::try_join!(source.totals(pool, &types, range), groups)?;
    let truncated = groups.len() > MAX_FIELD_GROUPS as usize;
    groups.truncate(MAX_FIELD_GROUPS as usize);
    Ok(Json(MetricsResponse {
        event_type: params.event_type,
        from: range.from,
        to: range.to,
        group_by: params.group_by,
        total_events,
        unique_users,
        groups,
        truncated,
    }))
}
