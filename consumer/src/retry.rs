//! Retrying transient failures: exponential backoff (100 ms doubling to 5 s)
//! and [`until_ok`], the one retry loop of the consumer. Giving up on its own
//! would mean losing or skipping data, so it never does; it ends only when the
//! operation succeeds or shutdown is requested, so no state of the consumer
//! can keep SIGTERM from being seen.

use std::future::Future;
use std::time::Duration;

use crate::metrics::{Dependency, Metrics};
use crate::shutdown::ShutdownFlag;

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

/// Why [`until_ok`] returned without a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("shutdown requested while retrying")]
pub struct Interrupted;

/// Runs `operation` until it succeeds, logging and counting each failure
/// against `dependency` once, with backoff between attempts. An attempt under
/// way is let finish (a healthy write completes during a graceful shutdown);
/// once shutdown is requested no new attempt starts and the wait between
/// attempts ends at once, returning `Err(Interrupted)`.
pub async fn until_ok<T, E, F, Fut>(
    dependency: Dependency,
    metrics: &Metrics,
    shutdown: &ShutdownFlag,
    mut operation: F,
) -> Result<T, Interrupted>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Into<anyhow::Error>,
{
    let mut backoff = Backoff::default();
    loop {
        match operation().await {
            Ok(value) => return Ok(value),
            Err(error) => metrics.retrying(dependency, backoff.attempt(), &error.into()),
        }
        tokio::select! {
            biased;
            _ = shutdown.requested() => return Err(Interrupted),
            _ = backoff.wait() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

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

    #[tokio::test(start_paused = true)]
    async fn retries_until_the_operation_succeeds() {
        let calls = AtomicU32::new(0);
        let shutdown = ShutdownFlag::spawn(std::future::pending());
        let metrics = Metrics::new();
        let result = until_ok(Dependency::Postgres, &metrics, &shutdown, || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0..=2 => Err(anyhow::anyhow!("not yet")),
                n => Ok(n),
            }
        })
        .await;
        assert_eq!(result, Ok(3));
        assert!(metrics
            .render()
            .contains("eventpulse_dependency_retries_total{dependency=\"postgres\"} 3"));
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_ends_a_retry_that_would_never_succeed() {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = ShutdownFlag::spawn(async move {
            let _ = stopped.await;
        });
        let metrics = Metrics::new();
        let retrying = until_ok(Dependency::Postgres, &metrics, &shutdown, || async {
            Err::<(), _>(anyhow::anyhow!("down"))
        });
        tokio::pin!(retrying);
        tokio::select! {
            _ = &mut retrying => panic!("must not finish before shutdown"),
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
        stop.send(()).expect("send stop");
        assert_eq!(retrying.await, Err(Interrupted));
    }
}
