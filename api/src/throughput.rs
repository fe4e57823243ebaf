//! Committed events per second by type, for the last few minutes, counted
//! by the live feed as it reads each new row ([`crate::feed`]): exact for
//! everything committed since the API started, and free, as the feed reads
//! those rows anyway (the `events` table has no index on `ingested_at`, so
//! a query would scan it). A row counts in the second of its `ingested_at`,
//! the time its batch transaction started, a few milliseconds before its
//! commit.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, TimeZone, Utc};
use eventpulse_events::EventType;
use serde::Serialize;

use crate::error::ApiError;
use crate::params::{FromQuery, Params, Query};
use crate::state::AppState;

/// How many seconds are kept (and served by `/stats/throughput`).
pub const WINDOW_SECONDS: i64 = 300;

/// Events of each type committed in one second, in `EventType::ALL` order.
type Counts = [u64; EventType::ALL.len()];

#[derive(Clone, Default)]
pub struct Throughput {
    seconds: Arc<Mutex<Window>>,
}

#[derive(Default)]
struct Window {
    /// (unix second, counts), oldest first, seconds strictly increasing.
    buckets: VecDeque<(i64, Counts)>,
}

/// One second of [`Throughput::last`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Second {
    pub at: DateTime<Utc>,
    /// Per type, only the types seen in that second.
    pub counts: Vec<(EventType, u64)>,
}

impl Throughput {
    /// Counts one committed row. Rows older than the window are ignored.
    pub fn record(&self, event_type: &str, ingested_at: DateTime<Utc>, now: DateTime<Utc>) {
        let Some(index) = EventType::ALL.iter().position(|t| t.as_str() == event_type) else {
            return;
        };
        let second = ingested_at.timestamp();
        let mut window = self.seconds.lock().expect("throughput lock");
        window.forget_before(now.timestamp() - WINDOW_SECONDS + 1);
        if second <= now.timestamp() - WINDOW_SECONDS {
            return;
        }
        window.bucket(second)[index] += 1;
    }

    /// One entry per second for the `WINDOW_SECONDS` seconds ending with
    /// `now`'s, oldest first, seconds with nothing included.
    pub fn last(&self, now: DateTime<Utc>) -> Vec<Second> {
        let end = now.timestamp();
        let start = end - WINDOW_SECONDS + 1;
        let window = self.seconds.lock().expect("throughput lock");
        let mut kept = window.buckets.iter().peekable();
        (start..=end)
            .map(|second| {
                while kept.peek().is_some_and(|(s, _)| *s < second) {
                    kept.next();
                }
                let counts = match kept.peek() {
                    Some((s, counts)) if *s == second => EventType::ALL
                        .iter()
                        .zip(counts)
                        .filter(|(_, n)| **n > 0)
                        .map(|(t, n)| (*t, *n))
                        .collect(),
                    _ => Vec::new(),
                };
                Second {
                    at: Utc
                        .timestamp_opt(second, 0)
                        .single()
                        .expect("a valid second"),
                    counts,
                }
            })
            .collect()
    }
}

/// `GET /stats/throughput` takes no parameters (any is a 400).
pub struct ThroughputParams;

impl FromQuery for ThroughputParams {
    const NAMES: &'static [&'static str] = &[];

    fn from_query(_query: &mut Query, _now: DateTime<Utc>) -> Result<Self, ApiError> {
        Ok(Self)
    }
}

#[derive(Debug, Serialize)]
pub struct ThroughputResponse {
    bucket_seconds: u32,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    buckets: Vec<SecondView>,
}

#[derive(Debug, Serialize)]
struct SecondView {
    at: DateTime<Utc>,
    counts: BTreeMap<&'static str, u64>,
}

/// `GET /stats/throughput`: the last [`WINDOW_SECONDS`], one bucket a second.
pub async fn serve(
    State(state): State<AppState>,
    Params(ThroughputParams): Params<ThroughputParams>,
) -> Json<ThroughputResponse> {
    let now = Utc::now();
    let buckets: Vec<SecondView> = state
        .feed
        .throughput()
        .last(now)
        .into_iter()
        .map(|second| SecondView {
            at: second.at,
            counts: second
                .counts
                .into_iter()
                .map(|(t, n)| (t.as_str(), n))
                .collect(),
        })
        .collect();
    Json(ThroughputResponse {
        bucket_seconds: 1,
        from: buckets.first().map_or(now, |b| b.at),
        to: now,
        buckets,
    })
}

impl Window {
    fn forget_before(&mut self, second: i64) {
        while self.buckets.front().is_some_and(|(s, _)| *s < second) {
            self.buckets.pop_front();
        }
    }

    /// The counts of `second`, created in order (a transaction that started
    /// earlier may commit later, so a row can land before the newest second).
    fn bucket(&mut self, second: i64) -> &mut Counts {
        let at = self.buckets.partition_point(|(s, _)| *s < second);
        if self.buckets.get(at).is_none_or(|(s, _)| *s != second) {
            self.buckets.insert(at, (second, Counts::default()));
        }
        &mut self.buckets[at].1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + second, 0).unwrap()
    }

    #[test]
    fn counts_land_in_their_second_by_type_in_order() {
        let throughput = Throughput::default();
        let now = at(10);
        throughput.record("login", at(9), now);
        throughput.record("page_view", at(7), now);
        throughput.record("page_view", at(9), now);
        throughput.record("login", at(9), now);
        let last = throughput.last(now);
        assert_eq!(last.len(), WINDOW_SECONDS as usize);
        assert_eq!(last.last().unwrap().at, at(10));
        assert!(last.last().unwrap().counts.is_empty());
        let nine = &last[last.len() - 2];
        assert_eq!(nine.at, at(9));
        assert_eq!(
            nine.counts,
            vec![(EventType::Login, 2), (EventType::PageView, 1)]
        );
        assert_eq!(last[last.len() - 4].counts, vec![(EventType::PageView, 1)]);
        let total: u64 = last.iter().flat_map(|s| &s.counts).map(|(_, n)| n).sum();
        assert_eq!(total, 4);
    }

    #[test]
    fn seconds_outside_the_window_and_unknown_types_are_not_counted() {
        let throughput = Throughput::default();
        throughput.record("login", at(0), at(0));
        throughput.record("teleport", at(0), at(0));
        let later = at(WINDOW_SECONDS);
        throughput.record("logout", at(0), later);
        throughput.record("logout", at(1), later);
        let last = throughput.last(later);
        let total: u64 = last.iter().flat_map(|s| &s.counts).map(|(_, n)| n).sum();
        assert_eq!(total, 1, "only the logout at second 1 is inside the window");
        assert_eq!(last[0].at, at(1));
        assert_eq!(last[0].counts, vec![(EventType::Logout, 1)]);
    }
}
