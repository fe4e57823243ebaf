//! Where a statistics range `[from, to)` can be answered from the rollups:
//! a pure function that cuts it into raw edges (the parts of an hour), whole
//! hours and whole UTC days.
//!
//! ```text
//! from      hours_from    days_from       days_to     hours_to        to
//!  |--- raw ---|-- hourly ---|---- daily ----|-- hourly --|--- raw ---|
//! ```
//!
//! The six bounds never decrease, so each piece is `[bound i, bound i+1)`
//! and together they are the range, each instant once. A piece may be empty.
//! The rollups count by UTC hour and UTC day (`date_trunc(..., 'UTC')`), the
//! same bounds as here.

use chrono::{DateTime, TimeDelta, Utc};

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

/// `[from, to)` cut into five consecutive pieces: raw, hourly, daily,
/// hourly, raw (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeSplit {
    pub from: DateTime<Utc>,
    pub hours_from: DateTime<Utc>,
    pub days_from: DateTime<Utc>,
    pub days_to: DateTime<Utc>,
    pub hours_to: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl RangeSplit {
    /// Whole days from the daily rollup, the whole hours around them from the
    /// hourly one, the rest raw. `from < to` is not required: an empty or
    /// reversed range is all raw, and so is a time Postgres cannot hold.
    pub fn with_days(from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        let hours = Self::hours_only(from, to);
        let (Some(days_from), Some(days_to)) =
            (ceil(hours.hours_from, DAY), floor(hours.hours_to, DAY))
        else {
            return hours;
        };
        if days_from >= days_to {
            return hours;
        }
        Self {
            days_from,
            days_to,
            ..hours
        }
    }

    /// Whole hours from the hourly rollup, the rest raw; no daily piece (for
    /// answers per hour).
    pub fn hours_only(from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        let (Some(from), Some(to)) = (as_stored(from), as_stored(to)) else {
            return Self::all_raw(from, to);
        };
        match (ceil(from, HOUR), floor(to, HOUR)) {
            (Some(hours_from), Some(hours_to)) if hours_from < hours_to => Self {
                from,
                hours_from,
                days_from: hours_from,
                days_to: hours_from,
                hours_to,
                to,
            },
            _ => Self::all_raw(from, to),
        }
    }

    fn all_raw(from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        Self {
            from,
            hours_from: to,
            days_from: to,
            days_to: to,
            hours_to: to,
            to,
        }
    }

    /// The six bounds in order, as the rollup statements bind them (`$2..$7`).
    pub fn bounds(&self) -> [DateTime<Utc>; 6] {
        [
            self.from,
            self.hours_from,
            self.days_from,
            self.days_to,
            self.hours_to,
            self.to,
        ]
    }
}

/// Midnight 2000-01-01 UTC, from which Postgres counts microseconds.
fn postgres_epoch() -> DateTime<Utc> {
    DateTime::from_timestamp(946_684_800, 0).expect("a valid constant")
}

/// `at` as Postgres sees it once bound: whole microseconds since its
/// epoch, rounded toward that epoch, as sqlx encodes a `timestamptz`.
///
/// Why: the raw edges must start and end at the very instants the raw
/// statements compare with. Rounding alone keeps the order of the bounds,
/// but a leap second does not: chrono keeps `10:59:60.5` inside hour 10,
/// while Postgres reads it as `11:00:00.5`, so the hour cut here would
/// count half a second twice. `None` when the time is beyond what a
/// `timestamptz` holds.
fn as_stored(at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let micros = (at - postgres_epoch()).num_microseconds()?;
    postgres_epoch().checked_add_signed(TimeDelta::microseconds(micros))
}

/// The latest multiple of `unit` seconds (since 1970, UTC) at or before `at`.
fn floor(at: DateTime<Utc>, unit: i64) -> Option<DateTime<Utc>> {
    let seconds = at.timestamp();
    DateTime::from_timestamp(seconds - seconds.rem_euclid(unit), 0)
}

/// The earliest multiple of `unit` seconds at or after `at`.
fn ceil(at: DateTime<Utc>, unit: i64) -> Option<DateTime<Utc>> {
    let below = floor(at, unit)?;
    if below == at {
        return Some(below);
    }
    below.checked_add_signed(TimeDelta::seconds(unit))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("valid")
            .with_timezone(&Utc)
    }

    fn texts(split: RangeSplit) -> Vec<String> {
        split
            .bounds()
            .iter()
            .map(|b| b.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            .collect()
    }

    #[test]
    fn a_long_range_has_every_piece() {
        let split = RangeSplit::with_days(
            at("2026-11-20T10:15:30.25Z"),
            at("2026-11-23T05:59:59.999999Z"),
        );
        assert_eq!(
            texts(split),
            [
                "2026-11-20T10:15:30.250Z",
                "2026-11-20T11:00:00Z",
                "2026-11-21T00:00:00Z",
                "2026-11-23T00:00:00Z",
                "2026-11-23T05:00:00Z",
                "2026-11-23T05:59:59.999999Z",
            ]
        );
    }

    #[test]
    fn aligned_bounds_leave_empty_edges() {
        let split = RangeSplit::with_days(at("2026-11-20T00:00:00Z"), at("2026-11-22T00:00:00Z"));
        assert_eq!(split.from, split.hours_from);
        assert_eq!(split.hours_from, split.days_from);
        assert_eq!(split.days_to, split.to);
        let hours = RangeSplit::with_days(at("2026-11-20T10:00:00Z"), at("2026-11-20T11:00:00Z"));
        assert_eq!(
            texts(hours),
            [
                "2026-11-20T10:00:00Z",
                "2026-11-20T10:00:00Z",
                "2026-11-20T10:00:00Z",
                "2026-11-20T10:00:00Z",
                "2026-11-20T11:00:00Z",
                "2026-11-20T11:00:00Z",
            ]
        );
    }

    #[test]
    fn less_than_a_whole_hour_is_all_raw() {
        for (from, to) in [
            ("2026-11-20T10:10:00Z", "2026-11-20T10:50:00Z"),
            // Two partial hours, no whole one between them.
            ("2026-11-20T10:10:00Z", "2026-11-20T11:10:00Z"),
            ("2026-11-20T10:00:00Z", "2026-11-20T10:59:59.999999Z"),
            ("2026-11-20T10:00:00.000001Z", "2026-11-20T11:00:00Z"),
        ] {
            let split = RangeSplit::with_days(at(from), at(to));
            assert_eq!(split.hours_from, split.to, "{from}..{to}");
            assert_eq!(split.hours_to, split.to, "{from}..{to}");
        }
    }

    #[test]
    fn a_day_boundary_without_a_whole_day_uses_hours() {
        let split = RangeSplit::with_days(at("2026-11-20T22:30:00Z"), at("2026-11-21T23:30:00Z"));
        assert_eq!(split.hours_from, at("2026-11-20T23:00:00Z"));
        assert_eq!(split.days_from, split.days_to, "no whole day");
        assert_eq!(split.hours_to, at("2026-11-21T23:00:00Z"));
    }

    #[test]
    fn hours_only_never_uses_days() {
        let split = RangeSplit::hours_only(at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z"));
        assert_eq!(split.days_from, split.days_to);
        assert_eq!(split.hours_from, split.from);
        assert_eq!(split.hours_to, split.to);
    }

    #[test]
    fn nanoseconds_are_cut_as_postgres_rounds_them() {
        // Postgres keeps 10:59:59.999999: the instant is in hour 10.
        let split = RangeSplit::with_days(
            at("2026-11-20T10:59:59.9999999Z"),
            at("2026-11-20T13:00:00.0000009Z"),
        );
        assert_eq!(split.from, at("2026-11-20T10:59:59.999999Z"));
        assert_eq!(split.hours_from, at("2026-11-20T11:00:00Z"));
        assert_eq!(split.to, at("2026-11-20T13:00:00Z"));
        // Before 2000 Postgres rounds toward its epoch, so up.
        let old = RangeSplit::with_days(
            at("1999-12-31T22:59:59.9999999Z"),
            at("2000-01-02T00:00:00Z"),
        );
        assert_eq!(old.from, at("1999-12-31T23:00:00Z"));
        assert_eq!(old.hours_from, old.from);
        assert_eq!(old.days_from, at("2000-01-01T00:00:00Z"));
    }

    #[test]
    fn a_leap_second_is_the_next_day() {
        let split = RangeSplit::with_days(at("2016-12-31T23:59:60.5Z"), at("2017-01-02T00:00:00Z"));
        assert!(split.from >= at("2017-01-01T00:00:00Z"), "{split:?}");
        assert!(split.from <= split.hours_from);
    }

    #[test]
    fn bounds_never_decrease() {
        let base = at("2026-11-20T00:00:00Z");
        let steps = [0, 1, 59, 3599, 3600, 3601, 86_399, 86_400, 90_000, 200_000];
        for from in steps {
            for to in steps {
                let from = base + TimeDelta::seconds(from);
                let to = base + TimeDelta::seconds(to) + TimeDelta::microseconds(7);
                for split in [
                    RangeSplit::with_days(from, to),
                    RangeSplit::hours_only(from, to),
                ] {
                    let b = split.bounds();
                    assert!(
                        b.windows(2).all(|w| w[0] <= w[1]) || from >= to,
                        "{split:?}"
                    );
                    assert_eq!((b[0], b[5]), (from, to));
                }
            }
        }
    }

    fn aligned(at: DateTime<Utc>, unit: i64) -> bool {
        floor(at, unit) == Some(at)
    }

    proptest! {
        /// Any range: the pieces tile it, rollup pieces are whole hours and
        /// days, and nothing a rollup could answer is left raw.
        #[test]
        fn pieces_tile_the_range_and_are_as_coarse_as_they_can_be(
            from_ns in 0i64..10 * 86_400 * 1_000_000_000,
            length_ns in 1i64..40 * 86_400 * 1_000_000_000,
        ) {
            let base = at("2026-11-01T00:00:00Z");
            let from = base + TimeDelta::nanoseconds(from_ns);
            let to = from + TimeDelta::nanoseconds(length_ns);
            let split = RangeSplit::with_days(from, to);
            let b = split.bounds();
            prop_assert!(b.windows(2).all(|w| w[0] <= w[1]), "{:?}", split);
            prop_assert_eq!(b[0], as_stored(from).unwrap());
            prop_assert_eq!(b[5], as_stored(to).unwrap());
            let [from, hours_from, days_from, days_to, hours_to, to] = b;
            if hours_from == to {
                // All raw: no whole hour fits in between.
                prop_assert!(ceil(from, HOUR).unwrap() + TimeDelta::hours(1) > to);
            } else {
                prop_assert!(aligned(hours_from, HOUR) && aligned(hours_to, HOUR));
                prop_assert!(hours_from - from < TimeDelta::hours(1));
                prop_assert!(to - hours_to < TimeDelta::hours(1));
            }
            if days_from < days_to {
                prop_assert!(aligned(days_from, DAY) && aligned(days_to, DAY));
                prop_assert!(days_from - hours_from < TimeDelta::days(1));
                prop_assert!(hours_to - days_to < TimeDelta::days(1));
            } else {
                prop_assert!(ceil(hours_from, DAY).unwrap() >= floor(hours_to, DAY).unwrap());
            }
        }
    }
}
