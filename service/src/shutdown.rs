//! Shutdown is passed in as a future (a signal in `main`, anything in tests),
//! so a service's `run_until_stopped(shutdown)` never reads signals itself and
//! tests can stop it at will. [`ShutdownFlag`] turns that future into a flag
//! that any number of places can wait on, any number of times, which a bare
//! future cannot offer once it has completed.

use std::future::Future;

use tokio::sync::watch;

#[derive(Clone)]
pub struct ShutdownFlag {
    receiver: watch::Receiver<bool>,
}

impl ShutdownFlag {
    /// Watches `shutdown` on a task of its own.
    pub fn spawn(shutdown: impl Future<Output = ()> + Send + 'static) -> Self {
        let (sender, receiver) = watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = sender.send(true);
            // Keep the sender alive so receivers never see a closed channel.
            sender.closed().await;
        });
        Self { receiver }
    }

    /// Completes once shutdown was requested (at once if it already was).
    pub async fn requested(&self) {
        let mut receiver = self.receiver.clone();
        let _ = receiver.wait_for(|requested| *requested).await;
    }

    pub fn is_requested(&self) -> bool {
        *self.receiver.borrow()
    }
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_flag_stays_raised_for_every_waiter() {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let flag = ShutdownFlag::spawn(async move {
            let _ = stopped.await;
        });
        assert!(!flag.is_requested());
        stop.send(()).expect("the watcher is waiting");
        flag.requested().await;
        flag.clone().requested().await;
        assert!(flag.is_requested());
    }
}
