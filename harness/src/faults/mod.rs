//! The fault suite: each scenario breaks one thing while seeded traffic
//! (5% duplicates, 1% invalid) flows, then checks exactly: every distinct
//! valid event stored once, every invalid message dead-lettered once, offsets
//! complete and Kafka never ahead of Postgres ([`verify`]).
//!
//! - [`process`]: the consumer SIGKILLed repeatedly, a rebalance storm, a
//!   zombie (frozen past its session timeout, then thawed), adversarial input.
//! - [`deps`]: Redis down then back flushed, Postgres restarted, its
//!   connections terminated, the broker restarted, Postgres locked (slow).
//! - [`recovery`]: Postgres restored from an earlier dump while Redis keeps
//!   its marks, SIGTERM while Postgres is down.
//! - [`run`]: the shared mechanics of a scenario.

pub mod deps;
pub mod process;
pub mod recovery;
pub mod run;
pub mod verify;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use clap::Parser;

use verify::Verdict;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "eventpulse-faults",
    about = "Break things while traffic flows; prove nothing is lost or stored twice"
)]
pub struct FaultArgs {
    /// Fewer events, fewer kills, shorter outages: the version CI runs.
    #[arg(long)]
    pub short: bool,
    /// Run only the scenarios whose name contains this.
    #[arg(long)]
    pub only: Option<String>,
    /// Events per scenario (default 200,000; short 6,000).
    #[arg(long)]
    pub events: Option<u64>,
    /// SIGKILLs in the kill scenario (default 10; short 3).
    #[arg(long)]
    pub kills: Option<u32>,
    /// Write the table as JSON here too.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Folder holding eventpulse-consumer and eventpulse-producer.
    #[arg(long, default_value = "target/release")]
    pub bin_dir: PathBuf,
}

impl FaultArgs {
    pub fn events(&self) -> u64 {
        self.events
            .unwrap_or(if self.short { 6_000 } else { 200_000 })
    }

    pub fn kills(&self) -> u32 {
        self.kills.unwrap_or(if self.short { 3 } else { 10 })
    }

    /// How long the traffic of most scenarios lasts.
    pub fn traffic_secs(&self) -> u64 {
        if self.short {
            6
        } else {
            30
        }
    }

    /// How long an outage lasts, and the pause between faults.
    pub fn fault_gap(&self) -> Duration {
        Duration::from_secs(if self.short { 2 } else { 4 })
    }
}

#[derive(Debug, serde::Serialize)]
pub struct Row {
    pub scenario: String,
    pub exact: bool,
    pub verdict: Verdict,
    pub recover_secs: f64,
    pub note: String,
}

type Scenario =
    for<'a> fn(&'a FaultArgs) -> Pin<Box<dyn Future<Output = anyhow::Result<Row>> + 'a>>;

const SCENARIOS: [(&str, Scenario); 11] = [
    ("kill", |a| Box::pin(process::kill_nine(a))),
    ("rebalance", |a| Box::pin(process::rebalance_storm(a))),
    ("zombie", |a| Box::pin(process::zombie(a))),
    ("redis", |a| Box::pin(deps::redis_down_then_flushed(a))),
    ("postgres-restart", |a| {
        Box::pin(deps::postgres_restarted(a))
    }),
    ("postgres-connections", |a| {
        Box::pin(deps::postgres_connections_killed(a))
    }),
    ("broker", |a| Box::pin(deps::broker_restarted(a))),
    ("postgres-slow", |a| Box::pin(deps::postgres_slow(a))),
    ("adversarial", |a| Box::pin(process::adversarial(a))),
    ("postgres-restored", |a| {
        Box::pin(recovery::postgres_restored(a))
    }),
    ("sigterm-postgres-down", |a| {
        Box::pin(recovery::sigterm_postgres_down(a))
    }),
];

pub async fn run_all(args: &FaultArgs) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for (name, scenario) in SCENARIOS {
        if args
            .only
            .as_deref()
            .is_some_and(|only| !name.contains(only))
        {
            continue;
        }
        eprintln!("faults: {name} ...");
        let row = scenario(args)
            .await
            .map_err(|e| e.context(format!("scenario {name}")))?;
        eprintln!(
            "faults: {name}: {}",
            if row.exact { "exact" } else { "MISMATCH" }
        );
        rows.push(row);
    }
    print_table(&rows);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&rows)?)?;
    }
    let failed: Vec<_> = rows
        .iter()
        .filter(|r| !r.exact)
        .map(|r| r.scenario.as_str())
        .collect();
    anyhow::ensure!(failed.is_empty(), "not exact: {failed:?}");
    println!("{} passed, 0 failed", rows.len());
    Ok(())
}

fn print_table(rows: &[Row]) {
    println!(
        "\n{:<30} {:>8} {:>8} {:>8} {:>5} {:>5} {:>7} {:>7} {:>8} {:>7} {:>9}  note",
        "scenario",
        "messages",
        "valid",
        "stored",
        "lost",
        "dup",
        "invalid",
        "dlq",
        "offsets",
        "rollups",
        "recover s"
    );
    for row in rows {
        let v = &row.verdict;
        let offsets = if v.offsets_complete && v.kafka_not_ahead {
            "ok"
        } else {
            "WRONG"
        };
        println!(
            "{:<30} {:>8} {:>8} {:>8} {:>5} {:>5} {:>7} {:>7} {:>8} {:>7} {:>9.1}  {}",
            row.scenario,
            v.messages,
            v.valid_distinct,
            v.stored,
            v.lost,
            v.extra + v.duplicate_rows,
            v.invalid,
            v.dlq_rows,
            offsets,
            if v.rollups_exact { "exact" } else { "WRONG" },
            row.recover_secs,
            row.note
        );
    }
}
