use std::process::ExitCode;

use clap::Parser;
use eventpulse_harness::cli::BenchArgs;

#[tokio::main]
async fn main() -> ExitCode {
    let args = BenchArgs::parse();
    match eventpulse_harness::scenarios::run_all(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("eventpulse-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
