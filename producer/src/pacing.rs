//! When each record may be sent, and when the run is over.
//!
//! Record `i` is due at `start + i / rate`. Scheduling against the start,
//! rather than sleeping a fixed gap after each send, keeps the long-run rate
//! exact (time spent sending is not added to the gaps) and spreads records
//! evenly instead of bursting at the top of each second. When the producer
//! falls behind it sends without sleeping until it is back on schedule.

use std::time::{Duration, Instant};

use crate::StopSignal;

/// Longest single sleep, so that a stop request is noticed promptly even at
/// very low rates.
const MAX_SLEEP: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct Pacer {
    start: Instant,
    /// Records per second; `None` when unpaced.
    rate: Option<f64>,
    count: Option<u64>,
    deadline: Option<Instant>,
}

/// What the driver should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Send,
    Done,
}

impl Pacer {
    pub fn new(
        start: Instant,
        rate: Option<f64>,
        count: Option<u64>,
        duration: Option<Duration>,
    ) -> Self {
        Self {
            start,
            rate,
            count,
            deadline: duration.map(|d| start + d),
        }
    }

    /// When record `index` is due; `None` when unpaced.
    pub fn due(&self, index: u64) -> Option<Instant> {
        let rate = self.rate?;
        Some(self.start + Duration::from_secs_f64(index as f64 / rate))
    }

    /// Waits until record `index` is due, or says the run is over: the count
    /// is reached, the next record would fall after the deadline, or a stop
    /// was requested.
    pub fn wait_for(&self, index: u64, stop: &StopSignal) -> Next {
        if self.count.is_some_and(|count| index >= count) {
            return Next::Done;
        }
        let due = self.due(index);
        let deadline_passed = match (due, self.deadline) {
            (Some(due), Some(deadline)) => due >= deadline,
            (None, Some(deadline)) => Instant::now() >= deadline,
            (_, None) => false,
        };
        if deadline_passed {
            return Next::Done;
        }
        loop {
            if stop.stopping() {
                return Next::Done;
            }
            let now = Instant::now();
            match due {
                Some(due) if due > now => std::thread::sleep((due - now).min(MAX_SLEEP)),
                _ => return Next::Send,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_start_plus_index_over_rate() {
        let start = Instant::now();
        let pacer = Pacer::new(start, Some(1000.0), None, None);
        assert_eq!(pacer.due(0), Some(start));
        assert_eq!(pacer.due(2500), Some(start + Duration::from_millis(2500)));
        assert_eq!(Pacer::new(start, None, None, None).due(5), None);
    }

    #[test]
    fn count_and_duration_end_the_run() {
        let stop = StopSignal::default();
        let start = Instant::now();
        let counted = Pacer::new(start, None, Some(3), None);
        assert_eq!(counted.wait_for(2, &stop), Next::Send);
        assert_eq!(counted.wait_for(3, &stop), Next::Done);
        // At 100/s for 1 s, record 99 is due at 0.99 s and record 100 at the deadline.
        let timed = Pacer::new(
            start - Duration::from_secs(5),
            Some(100.0),
            None,
            Some(Duration::from_secs(1)),
        );
        assert_eq!(timed.wait_for(99, &stop), Next::Send);
        assert_eq!(timed.wait_for(100, &stop), Next::Done);
    }

    #[test]
    fn paced_sends_are_spread_evenly() {
        let stop = StopSignal::default();
        let start = Instant::now();
        let pacer = Pacer::new(start, Some(200.0), None, None);
        let mut sent_at = Vec::new();
        for index in 0..40 {
            assert_eq!(pacer.wait_for(index, &stop), Next::Send);
            sent_at.push(start.elapsed());
        }
        // 40 records at 200/s take 195 ms, and none is sent before it is due.
        for (index, at) in sent_at.iter().enumerate() {
            assert!(
                *at >= Duration::from_millis(5 * index as u64),
                "record {index} early at {at:?}"
            );
        }
        assert!(
            sent_at[39] < Duration::from_millis(400),
            "took {:?}",
            sent_at[39]
        );
        assert!(
            sent_at[20] >= Duration::from_millis(100),
            "half way at {:?}",
            sent_at[20]
        );
    }

    #[test]
    fn a_stop_request_ends_a_long_wait() {
        let stop = StopSignal::default();
        stop.request();
        let pacer = Pacer::new(Instant::now(), Some(0.001), None, None);
        assert_eq!(pacer.wait_for(1, &stop), Next::Done);
    }
}
