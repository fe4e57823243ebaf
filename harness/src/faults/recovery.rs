//! Recovery faults: Postgres restored from an earlier dump while Redis keeps
//! its "stored" marks and Kafka its committed offsets (lost commits, as after
//! a restore from backup or a failover to a lagging standby), and a consumer
//! told to stop while Postgres is down.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;

use super::run::{self, Run};
use super::{FaultArgs, Row};
use crate::services::{Private, Services};

/// The consumer's default shutdown timeout (`shutdown_timeout_secs` in
/// consumer/src/config.rs); the harness does not override it.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// On top of the timeout: the final Kafka commit, the Redis confirm (at most
/// 1 s) and leaving the group.
const SHUTDOWN_SLACK: Duration = Duration::from_secs(5);

const PROGRESS_LIMIT: Duration = Duration::from_secs(60);

/// Dumps the scenario's database, lets the consumer get well past the dump
/// (so Redis marks and Kafka's committed offsets vouch for rows the dump
/// lacks), stops it, restores the dump in place and starts a new consumer.
/// It must notice Postgres behind Kafka, stop trusting the marks and re-read.
pub async fn postgres_restored(args: &FaultArgs) -> anyhow::Result<Row> {
    let rate = args.events() / args.traffic_secs();
    let mut run = Run::start(args, Services::from_env(), 1, rate).await?;
    anyhow::ensure!(
        run.wait_progress(0, PROGRESS_LIMIT).await?,
        "no progress before the dump"
    );
    let (dumped_at, stopped_at) = lose_commits(&mut run, args).await?;
    // Read back from the restored tables: the dump's exact position.
    let restored_to = run.progress().await?;
    run.fault();
    let fresh = run.add_consumer()?;
    // Progress past the restored position means the new consumer has
    // resolved its assignment, so the anomaly counter is final.
    anyhow::ensure!(
        run.wait_progress(restored_to, PROGRESS_LIMIT).await?,
        "no progress after the restore (stuck at {restored_to})"
    );
    let body = run::scrape(run.metrics_port(fresh))?;
    let behind = eventpulse_testkit::metric_value_matching(
        &body,
        "eventpulse_partition_anomalies_total",
        r#"kind="postgres_behind_kafka""#,
    );
    run.note(format!(
        "progress {dumped_at} before the dump, {restored_to} in it, {stopped_at} at the stop \
         and restore; new consumer: {behind} partitions postgres_behind_kafka"
    ));
    run.finish("postgres restored from a dump").await
}

/// SIGTERM while Postgres is down: the batch in flight cannot be made
/// durable, so the consumer must give up after its shutdown timeout and exit
/// 0 (an orchestrator SIGKILLs what does not), and what it had not stored
/// must be read again by the next consumer.
pub async fn sigterm_postgres_down(args: &FaultArgs) -> anyhow::Result<Row> {
    let mut postgres = Private::postgres().await?;
    let services = Services {
        admin_url: postgres.url(),
        ..Services::from_env()
    };
    let rate = args.events() / args.traffic_secs();
    let mut run = Run::start(args, services, 1, rate).await?;
    anyhow::ensure!(
        run.wait_progress(0, PROGRESS_LIMIT).await?,
        "no progress before the outage"
    );
    postgres.kill();
    run.fault();
    // Long enough for a flush to fail and the consumer to be retrying.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let bound = SHUTDOWN_TIMEOUT + SHUTDOWN_SLACK;
    let took = run.terminate_within(0, bound).await?;
    postgres.start().await?;
    run.fault();
    run.add_consumer()?;
    run.note(format!(
        "SIGTERM 1 s into the outage: exit 0 after {:.1} s (bound {} s)",
        took.as_secs_f64(),
        bound.as_secs()
    ));
    run.finish("sigterm while postgres down").await
}

/// Dumps the database, waits until progress is well past the dump, stops
/// the consumer and restores the dump. Returns the progress just before the
/// dump and at the stop.
async fn lose_commits(run: &mut Run, args: &FaultArgs) -> anyhow::Result<(i64, i64)> {
    let dump = std::env::temp_dir().join(format!(
        "{}.dump",
        eventpulse_testkit::unique_name("restore")
    ));
    // A lower bound: the dump's snapshot is taken a moment later.
    let dumped_at = run.progress().await?;
    let outcome = async {
        pg_dump(&run.target.db.url, &dump)?;
        // A third of what is left: many rows on every partition are lost.
        let beyond = dumped_at + (args.events() as i64 - dumped_at) / 3;
        anyhow::ensure!(
            run.wait_progress(beyond, PROGRESS_LIMIT).await?,
            "progress never passed {beyond} after the dump at {dumped_at}"
        );
        run.terminate(0)?;
        let stopped_at = run.progress().await?;
        pg_restore(&run.target.db.url, &dump)?;
        Ok((dumped_at, stopped_at))
    }
    .await;
    // The dump goes whether or not the restore worked.
    let _ = std::fs::remove_file(&dump);
    outcome
}

/// `pg_dump -Fc` of the database at `url` into `file`.
fn pg_dump(url: &str, file: &Path) -> anyhow::Result<()> {
    let mut command = Command::new("pg_dump");
    command.args(["-Fc", "-f"]).arg(file).args(["-d", url]);
    run_tool(command, "pg_dump")
}

/// Restores `file` over the database at `url`, in place. `--clean` drops
/// each object before recreating it, which only needs the tables' locks: the
/// harness pool's idle connections hold none (the consumer is stopped), so
/// they can stay open, and the database keeps its name and its URL.
fn pg_restore(url: &str, file: &Path) -> anyhow::Result<()> {
    let mut command = Command::new("pg_restore");
    command
        .args(["--clean", "--if-exists", "--no-owner", "--exit-on-error"])
        .args(["-d", url])
        .arg(file);
    run_tool(command, "pg_restore")
}

fn run_tool(mut command: Command, name: &str) -> anyhow::Result<()> {
    let out = command
        .output()
        .with_context(|| format!("running {name} (install the PostgreSQL client)"))?;
    anyhow::ensure!(
        out.status.success(),
        "{name} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}
