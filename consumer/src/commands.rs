//! The one-shot subcommands: `migrate`, `maintain`, `rollups` and
//! `replay`. Each prints what it did on stderr and fails with a one-line error.

use anyhow::Context as _;

use crate::config::{redact_url, Command, DayRange, ReplayArgs, RollupAction, Settings};
use crate::replay::{self, Bound, ReplayRequest};
use crate::retention::Upkeep;
use crate::{rollups, schema, shutdown};

pub async fn run(command: Command, settings: &Settings) -> anyhow::Result<()> {
    let address = redact_url(&settings.database_url);
    let pool = schema::connect(&settings.database_url, 2).await?;
    match command {
        Command::Run => unreachable!("run is the service, not a one-shot command"),
        Command::Migrate => {
            schema::migrate(&pool).await?;
            eprintln!("migrations applied to {address}");
        }
        Command::Maintain => {
            schema::migrate_for_run(&pool, &address).await?;
            let upkeep = Upkeep::new(pool, settings.partition_days, settings.retention_days);
            let report = upkeep.run_once().await.context("partition upkeep")?;
            if report.skipped {
                eprintln!("another consumer is doing the upkeep right now; nothing done");
            }
            for d in &report.dropped {
                eprintln!(
                    "dropped {} ({} to {}, {} ids)",
                    d.name, d.from, d.to, d.ids_removed
                );
            }
            eprintln!("{} partitions", report.partitions);
        }
        Command::Rollups { action } => rollup_command(&pool, action).await?,
        Command::Replay(args) => replay_command(settings, args).await?,
    }
    Ok(())
}

async fn replay_command(settings: &Settings, args: ReplayArgs) -> anyhow::Result<()> {
    let bound = |offset: Option<i64>, time: Option<chrono::DateTime<chrono::Utc>>| {
        offset.map(Bound::Offset).or(time.map(Bound::Time))
    };
    let request = ReplayRequest {
        from: bound(args.from_offset, args.from_time),
        to: bound(args.to_offset, args.to_time),
        partitions: args.partitions,
        group: args.replay_group,
    };
    let summary = replay::run(settings, request, shutdown::signal()).await?;
    for span in summary.spans.iter().filter(|s| s.end > s.start) {
        eprintln!(
            "partition {}: offsets {} to {}",
            span.partition,
            span.start,
            span.end - 1
        );
    }
    let t = summary.totals;
    eprintln!(
        "replay {} as group {} in {:.1} s: {} messages read, {} events stored anew, \
         {} already stored, {} dead-lettered",
        if summary.complete {
            "finished"
        } else {
            "STOPPED before the end"
        },
        summary.group,
        summary.elapsed.as_secs_f64(),
        t.messages,
        t.stored,
        t.duplicates,
        t.dead_lettered
    );
    anyhow::ensure!(
        summary.complete,
        "the replay stopped before the end of its range; running the same command again is safe"
    );
    Ok(())
}

async fn rollup_command(pool: &sqlx::PgPool, action: RollupAction) -> anyhow::Result<()> {
    let (RollupAction::Check(DayRange { from, to }) | RollupAction::Rebuild(DayRange { from, to })) =
        &action;
    let (from, to) = rollups::day_range(pool, *from, *to).await?;
    match action {
        RollupAction::Rebuild(_) => {
            let rows = rollups::rebuild(pool, from, to).await?;
            eprintln!("rollups from {from} to {to} rebuilt: {rows} rows");
        }
        RollupAction::Check(_) => {
            let report = rollups::check(pool, from, to).await?;
            for t in &report.tables {
                eprintln!(
                    "{}: {} rows, {} differ from the events{}",
                    t.table,
                    t.rollup_rows,
                    t.differing,
                    if t.examples.is_empty() {
                        String::new()
                    } else {
                        format!(" (e.g. {})", t.examples.join("; "))
                    }
                );
            }
            anyhow::ensure!(
                report.exact(),
                "the rollups from {from} to {to} differ from the events; \
                 `eventpulse-consumer rollups rebuild` replaces them with a recount"
            );
            eprintln!("rollups from {from} to {to} match the events");
        }
    }
    Ok(())
}
