//! The `eventpulse-producer` binary: parse flags, run, report. Everything
//! else lives in the library (see its `//!` map in `lib.rs`).

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use eventpulse_producer::{run, Config, StopSignal};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let config = Config::from_args(std::env::args_os()).unwrap_or_else(|e| e.exit());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .init();
    let stop = StopSignal::default();
    if let Err(e) = watch_ctrl_c(stop.clone()) {
        eprintln!("eventpulse-producer: {e:#}");
        return ExitCode::FAILURE;
    }
    let summary = match run(&config, &stop) {
        Ok(summary) => summary,
        Err(e) => {
            eprintln!("eventpulse-producer: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("{summary}");
    if let Some(path) = &config.summary_json {
        if let Err(e) = summary.write_json(path) {
            eprintln!(
                "eventpulse-producer: writing the summary to {}: {e}",
                path.display()
            );
            return ExitCode::FAILURE;
        }
    }
    if summary.failed > 0 {
        eprintln!(
            "eventpulse-producer: {} record(s) were not delivered",
            summary.failed
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Ctrl-C once stops producing and waits for deliveries; twice gives up on
/// them. The producer loop is synchronous, so signals are watched from a
/// small runtime on their own thread.
fn watch_ctrl_c(stop: StopSignal) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal-watching runtime")?;
    std::thread::Builder::new()
        .name("ctrl-c".into())
        .spawn(move || {
            runtime.block_on(async {
                while tokio::signal::ctrl_c().await.is_ok() {
                    if stop.stopping() {
                        eprintln!("eventpulse-producer: giving up on outstanding deliveries");
                    } else {
                        eprintln!("eventpulse-producer: stopping; Ctrl-C again to stop waiting for deliveries");
                    }
                    stop.request();
                }
            })
        })
        .context("starting the signal-watching thread")?;
    Ok(())
}
