use std::process::ExitCode;

use clap::Parser;
use eventpulse_consumer::{commands, shutdown, Application, Cli, Command, Settings};
use eventpulse_service::startup;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.clone().unwrap_or(Command::Run);
    let settings = Settings::load(&cli);
    startup::run_main(settings, |s| s.log_format, |s| run(command, s)).await
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Run => {
            Application::build(settings)
                .await?
                .run_until_stopped(shutdown::signal())
                .await
        }
        other => commands::run(other, &settings).await,
    }
}
