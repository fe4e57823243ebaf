//! Start-up plumbing: binding a service's listener with an error that says
//! which setting to change, and what every service's `main` does once the
//! command line is parsed.

use std::fmt::Display;
use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;

use tokio::net::TcpListener;

use crate::settings::Key;
use crate::telemetry::{self, LogFormat};

/// The address could not be bound (in use, not local, no permission).
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} (--{flag} / EVENTPULSE_{env}): {problem}")]
pub struct ListenError {
    addr: SocketAddr,
    flag: String,
    env: String,
    problem: std::io::Error,
}

/// Binds `addr`, which the setting `key` gave (port 0 picks a free port).
pub async fn bind<'k>(
    addr: SocketAddr,
    key: impl Into<Key<'k>>,
) -> Result<TcpListener, ListenError> {
    let key = key.into();
    TcpListener::bind(addr)
        .await
        .map_err(|problem| ListenError {
            addr,
            flag: key.flag(),
            env: key.variable(),
            problem,
        })
}

/// The address `listener` answers on: with port 0, the port the OS picked.
pub fn local_addr(listener: &TcpListener) -> SocketAddr {
    listener
        .local_addr()
        .expect("a bound listener has an address")
}

/// The body of a service's `main` once its command line is parsed.
///
/// Settings that cannot be used are a usage error, as clap treats a bad flag:
/// their one-line reason on stderr and exit status 2, before any logging
/// (the settings choose the log format). Otherwise logging is set up as
/// `log_format` reads it from the settings and `run` does the work: exit
/// status 0, or 1 with the whole cause chain on stderr.
pub async fn run_main<S, E, F>(
    settings: Result<S, E>,
    log_format: impl FnOnce(&S) -> LogFormat,
    run: impl FnOnce(S) -> F,
) -> ExitCode
where
    E: Display,
    F: Future<Output = anyhow::Result<()>>,
{
    let settings = match settings {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(log_format(&settings));
    match run(settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_taken_address_names_the_setting() {
        let taken = bind(SocketAddr::from(([127, 0, 0, 1], 0)), "api_addr")
            .await
            .expect("a free port binds");
        let addr = local_addr(&taken);
        let err = bind(addr, "metrics_addr").await.unwrap_err().to_string();
        let expected =
            format!("cannot listen on {addr} (--metrics-addr / EVENTPULSE_METRICS_ADDR): ");
        assert!(err.starts_with(&expected), "{err}");
    }
}
