use std::process::ExitCode;

use clap::Parser;
use eventpulse_api::{Application, Cli, Settings};
use eventpulse_service::{shutdown, startup};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    startup::run_main(Settings::load(&cli), |s| s.log_format, serve).await
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    Application::build(settings)
        .await?
        .run_until_stopped(shutdown::signal())
        .await
}
