//! Lets the live streams keep up with bursts. One committed batch can hold
//! thousands of rows (the consumer's batch size), which the feed reads in a
//! few milliseconds, faster than the streams' tasks get to run on a busy
//! machine: handed out at once, a burst alone would overrun the shared
//! buffer and cut off every stream. So each stream records how far it has
//! read, and after every full page the feed waits while some stream that is
//! making progress is more than half the buffer behind. A stream that makes
//! none (its client stopped reading) is not waited for: it is cut off when
//! the buffer overruns, and never holds up the others.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::time::Instant;

/// How often the feed looks at the streams while it waits, which is also how
/// long one must go without reading to count as stuck.
const STEP: Duration = Duration::from_millis(10);
/// The longest the feed waits after one page, and in all within any one
/// second: a client that reads steadily but slower than the feed can delay
/// the others by at most a fifth of the time, until it falls a whole buffer
/// behind and is cut off.
const LIMIT: Duration = Duration::from_millis(250);
const BUDGET_PER_SECOND: Duration = Duration::from_millis(200);

/// How many rows the feed has handed out, and how many each stream took.
#[derive(Clone, Default)]
pub struct Pacing {
    handed_out: Arc<AtomicU64>,
    streams: Arc<Mutex<Vec<Weak<AtomicU64>>>>,
    /// Since when the feed has waited how long ([`BUDGET_PER_SECOND`]).
    waited: Arc<Mutex<Option<(Instant, Duration)>>>,
}

/// One stream's place in the feed: the count of rows handed out up to the
/// last one it took.
pub struct Reading(Arc<AtomicU64>);

impl Reading {
    pub fn took(&self, seq: u64) {
        self.0.store(seq, Ordering::Relaxed);
    }
}

impl Pacing {
    /// Numbers the next row handed out (from 1).
    pub fn next_seq(&self) -> u64 {
        self.handed_out.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A stream starting now: nothing handed out so far is owed to it.
    pub fn join(&self) -> Reading {
        let reading = Arc::new(AtomicU64::new(self.handed_out.load(Ordering::Relaxed)));
        let mut streams = self.streams.lock().expect("pacing lock");
        streams.retain(|s| s.strong_count() > 0);
        streams.push(Arc::downgrade(&reading));
        Reading(reading)
    }

    /// Waits (at most [`LIMIT`]) while a stream that keeps reading is more
    /// than `allowed` rows behind.
    pub async fn wait_for_readers(&self, allowed: u64) {
        let started = Instant::now();
        let limit = self.budget_left(started);
        self.wait_at_most(allowed, limit).await;
        self.spend(started, started.elapsed());
    }

    async fn wait_at_most(&self, allowed: u64, limit: Duration) {
        let started = Instant::now();
        let mut before = self.positions();
        while started.elapsed() < limit {
            if !before.iter().any(|(_, at)| self.behind(*at) > allowed) {
                return;
            }
            tokio::time::sleep(STEP).await;
            let now = self.positions();
            let catching_up = now.iter().any(|(stream, at)| {
                let was = before.iter().find(|(s, _)| Arc::ptr_eq(s, stream));
                was.is_some_and(|(_, was)| at > was) && self.behind(*at) > allowed
            });
            if !catching_up {
                return;
            }
            before = now;
        }
    }

    /// What may still be waited in the current second, [`LIMIT`] at most.
    fn budget_left(&self, now: Instant) -> Duration {
        let waited = self.waited.lock().expect("pacing lock");
        match *waited {
            Some((since, spent)) if now.duration_since(since) < Duration::from_secs(1) => {
                BUDGET_PER_SECOND.saturating_sub(spent).min(LIMIT)
            }
            _ => BUDGET_PER_SECOND.min(LIMIT),
        }
    }

    fn spend(&self, at: Instant, spent: Duration) {
        let mut waited = self.waited.lock().expect("pacing lock");
        *waited = match *waited {
            Some((since, before)) if at.duration_since(since) < Duration::from_secs(1) => {
                Some((since, before + spent))
            }
            _ => Some((at, spent)),
        };
    }

    fn behind(&self, at: u64) -> u64 {
        self.handed_out.load(Ordering::Relaxed).saturating_sub(at)
    }

    fn positions(&self) -> Vec<(Arc<AtomicU64>, u64)> {
        let streams = self.streams.lock().expect("pacing lock");
        streams
            .iter()
            .filter_map(Weak::upgrade)
            .map(|s| {
                let at = s.load(Ordering::Relaxed);
                (s, at)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hand_out(pacing: &Pacing, rows: u64) -> u64 {
        let mut last = 0;
        for _ in 0..rows {
            last = pacing.next_seq();
        }
        last
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_stream_is_not_waited_for() {
        let pacing = Pacing::default();
        let _stuck = pacing.join();
        hand_out(&pacing, 1000);
        let started = Instant::now();
        pacing.wait_for_readers(500).await;
        assert!(started.elapsed() <= STEP, "waited {:?}", started.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_reading_is_waited_for_until_it_is_close_enough() {
        let pacing = Pacing::default();
        let reading = pacing.join();
        let last = hand_out(&pacing, 1000);
        let reader = tokio::spawn(async move {
            for seq in (100..=last).step_by(100) {
                tokio::time::sleep(Duration::from_millis(5)).await;
                reading.took(seq);
            }
        });
        pacing.wait_for_readers(500).await;
        let behind = pacing.behind(pacing.positions()[0].1);
        assert!(behind <= 500, "still {behind} behind");
        reader.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_costs_the_others_at_most_the_budget_each_second() {
        let pacing = Pacing::default();
        let reading = pacing.join();
        let slow = tokio::spawn(async move {
            // One row every millisecond: far slower than the feed hands out.
            for seq in 1.. {
                tokio::time::sleep(Duration::from_millis(1)).await;
                reading.took(seq);
            }
        });
        let started = Instant::now();
        for _ in 0..20 {
            hand_out(&pacing, 500);
            pacing.wait_for_readers(250).await;
        }
        let waited = started.elapsed();
        assert!(
            waited <= BUDGET_PER_SECOND * 2,
            "20 pages waited {waited:?}, more than the budget allows"
        );
        assert!(waited >= BUDGET_PER_SECOND, "it did wait: {waited:?}");
        slow.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn streams_that_left_are_forgotten() {
        let pacing = Pacing::default();
        drop(pacing.join());
        let kept = pacing.join();
        hand_out(&pacing, 10);
        kept.took(10);
        assert_eq!(pacing.positions().len(), 1);
        let _ = pacing.join();
        assert_eq!(
            pacing.streams.lock().unwrap().len(),
            2,
            "the dead one is pruned on join"
        );
    }
}
