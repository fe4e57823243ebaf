//! Where the statistics come from (`--stats-source`): the rollups (the
//! default) or the rows themselves. Both give the same answers for every
//! range (an integration test compares them); the raw statements stay for
//! benchmarks and as the reference the rollups are held to.
//!
//! Only the questions the rollups can answer are dispatched here: grouping
//! by a payload field (`device`, `page`) always reads the rows.

use serde::Deserialize;
use sqlx::PgPool;

use crate::params::TimeRange;
use crate::queries::{self, Group, HourlyCount, TimeBucket, UserCount};
use crate::rollups;

/// `--stats-source` / `EVENTPULSE_STATS_SOURCE`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatsSource {
    /// Whole hours and days from the rollup tables, sub-hour edges from `events`.
    #[default]
    Rollups,
    /// Every event counted from `events`.
    Raw,
}

impl StatsSource {
    /// Events per hour and type (`/stats/hourly`).
    pub async fn hourly(
        self,
        pool: &PgPool,
        types: &[&str],
        range: TimeRange,
    ) -> sqlx::Result<Vec<HourlyCount>> {
        match self {
            Self::Rollups => rollups::hourly(pool, types, range).await,
            Self::Raw => queries::hourly(pool, types, range).await,
        }
    }

    /// The users with the most events (`/stats/top-users`).
    pub async fn top_users(
        self,
        pool: &PgPool,
        types: &[&str],
        range: TimeRange,
        limit: u32,
    ) -> sqlx::Result<Vec<UserCount>> {
        match self {
            Self::Rollups => rollups::top_users(pool, types, range, limit).await,
            Self::Raw => queries::top_users(pool, types, range, limit).await,
        }
    }

    /// (events, unique users) over the range.
    pub async fn totals(
        self,
        pool: &PgPool,
        types: &[&str],
        range: TimeRange,
    ) -> sqlx::Result<(i64, i64)> {
        match self {
            Self::Rollups => rollups::totals(pool, types, range).await,
            Self::Raw => queries::totals(pool, types, range).await,
        }
    }

    /// Events and unique users per hour or day, empty buckets included.
    pub async fn time_groups(
        self,
        pool: &PgPool,
        types: &[&str],
        range: TimeRange,
        bucket: TimeBucket,
    ) -> sqlx::Result<Vec<Group>> {
        match self {
            Self::Rollups => rollups::time_groups(pool, types, range, bucket).await,
            Self::Raw => queries::time_groups(pool, types, range, bucket).await,
        }
    }
}
