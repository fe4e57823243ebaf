use std::process::ExitCode;

use clap::Parser;
use eventpulse_harness::faults::{run_all, FaultArgs};

#[tokio::main]
async fn main() -> ExitCode {
    let args = FaultArgs::parse();
    match run_all(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("eventpulse-faults: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
