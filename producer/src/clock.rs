//! The simulated clock that stamps events.
//!
//! Timestamps come from a start instant plus the record's position, not from
//! reading the wall clock, so that a seeded run with a pinned `--start-time`
//! gives the same bytes every time. With a rate, record `i` is stamped
//! `start + i / rate`, which is also when the pacer sends it, so timestamps
//! track real time without reading it. Unpaced runs read the wall clock (there
//! is no schedule to follow) unless the start is pinned, in which case the
//! clock advances a fixed [`PINNED_UNPACED_STEP`] per record.

use chrono::{DateTime, TimeDelta, Utc};

/// Clock step per record for unpaced runs with a pinned start: as if 10,000
/// records per second, so even a million records span only 100 s and stay
/// inside the consumer's five-minute future-skew window.
pub const PINNED_UNPACED_STEP: TimeDelta = TimeDelta::microseconds(100);

#[derive(Debug, Clone)]
pub enum SimClock {
    /// `start + i * step`.
    Stepped {
        start: DateTime<Utc>,
        step: TimeDelta,
    },
    /// The wall clock, truncated to microseconds.
    Wall,
}

impl SimClock {
    /// The clock for a run: `rate` is `None` when unpaced, `pinned_start` is
    /// `--start-time`, and `now` is the run's start on the wall clock.
    pub fn new(rate: Option<f64>, pinned_start: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Self {
        match (rate, pinned_start) {
            (Some(rate), start) => Self::Stepped {
                start: truncate_to_micros(start.unwrap_or(now)),
                // Nanosecond precision keeps `i * step` from drifting at high rates.
                step: TimeDelta::nanoseconds((1e9 / rate).round().max(1.0) as i64),
            },
            (None, Some(start)) => Self::Stepped {
                start: truncate_to_micros(start),
                step: PINNED_UNPACED_STEP,
            },
            (None, None) => Self::Wall,
        }
    }

    /// The timestamp of record `index` (0-based), at microsecond precision
    /// because that is what Postgres stores.
    pub fn at(&self, index: u64) -> DateTime<Utc> {
        match self {
            Self::Stepped { start, step } => {
                let offset = step.num_nanoseconds().unwrap_or(i64::MAX) as i128 * index as i128;
                let offset = TimeDelta::nanoseconds(offset.min(i64::MAX as i128) as i64);
                truncate_to_micros(*start + offset)
            }
            Self::Wall => truncate_to_micros(Utc::now()),
        }
    }
}

fn truncate_to_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> DateTime<Utc> {
        "2026-03-01T12:00:00.123456789Z".parse().unwrap()
    }

    #[test]
    fn paced_clock_follows_the_schedule() {
        let clock = SimClock::new(Some(1000.0), Some(start()), Utc::now());
        assert_eq!(
            clock.at(0),
            "2026-03-01T12:00:00.123456Z"
                .parse::<DateTime<Utc>>()
                .unwrap()
        );
        assert_eq!(clock.at(1500) - clock.at(0), TimeDelta::milliseconds(1500));
        // 1/3 s is not a whole number of nanoseconds: rounding the step costs
        // under 1 ns per record, so 3 million records drift by at most 3 ms.
        let thirds = SimClock::new(Some(3.0), Some(start()), Utc::now());
        let drift = thirds.at(3_000_000) - thirds.at(0) - TimeDelta::seconds(1_000_000);
        assert!(drift.abs() <= TimeDelta::milliseconds(3), "{drift}");
    }

    #[test]
    fn pinned_unpaced_clock_steps_fixed_amounts() {
        let clock = SimClock::new(None, Some(start()), Utc::now());
        assert_eq!(clock.at(10) - clock.at(0), PINNED_UNPACED_STEP * 10);
    }

    #[test]
    fn unpinned_unpaced_clock_reads_the_wall_clock() {
        let clock = SimClock::new(None, None, Utc::now());
        let before = Utc::now() - TimeDelta::milliseconds(1);
        assert!(clock.at(1_000_000) >= before);
    }
}
