use std::process::ExitCode;

use clap::Parser;
use eventpulse_consumer::{
    config, shutdown, store, telemetry, Application, Cli, Command, Settings,
};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(&cli) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(settings.log_format);
    let result = match cli.command.unwrap_or(Command::Run) {
        Command::Migrate => migrate(&settings).await,
        Command::Run => run(settings).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let pool = store::connect(&settings.database_url, 1).await?;
    store::migrate(&pool).await?;
    eprintln!(
        "migrations applied to {}",
        config::redact_url(&settings.database_url)
    );
    Ok(())
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    Application::build(settings)
        .await?
        .run_until_stopped(shutdown::signal())
        .await
}
