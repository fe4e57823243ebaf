use std::process::ExitCode;

use clap::Parser;
use eventpulse_consumer::{config, shutdown, store, Application, Cli, Command, Settings};
use eventpulse_service::startup;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Run);
    let settings = Settings::load(&cli);
    startup::run_main(settings, |s| s.log_format, |s| run(command, s)).await
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Migrate => migrate(&settings).await,
        Command::Run => {
            Application::build(settings)
                .await?
                .run_until_stopped(shutdown::signal())
                .await
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
