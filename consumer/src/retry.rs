//! Exponential backoff for transient failures: 100 ms doubling to 5 s. The
//! loops that use it never give up on their own (giving up would mean losing
//! or skipping data); shutdown bounds them by dropping the future.

use std::time::Duration;

const FIRST: Duration = Duration::from_millis(100);
const LONGEST: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// The attempt number of the next wait, starting at 1.
    pub fn attempt(&self) -> u32 {
        self.attempt + 1
    }

    pub fn delay(&self) -> Duration {
        FIRST.saturating_mul(1 << self.attempt.min(10)).min(LONGEST)
    }

    pub async fn wait(&mut self) {
        tokio::time::sleep(self.delay()).await;
        self.attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let mut backoff = Backoff::default();
        let mut delays = Vec::new();
        for _ in 0..8 {
            delays.push(backoff.delay().as_millis());
            backoff.attempt += 1;
        }
        assert_eq!(delays, vec![100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        backoff.attempt = 1_000;
        assert_eq!(backoff.delay(), LONGEST);
    }
}
