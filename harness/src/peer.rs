//! The peer stage (`scripts/bench.sh --peer`): our consumer and Quix Streams'
//! `PostgreSQLSink` (`scripts/peer/quix_sink.py`, in the venv bench.sh
//! installs) drain the same pre-filled topic one after the other, each into
//! a database of its own, and the report gives our rows/s over theirs.
//!
//! Both are measured the same way: rows stored over the time from the first
//! message consumed to the last row committed. Ours come from
//! [`scenarios::drain`] (the consumer's received-messages counter, then its
//! stored offsets); the script notes its first record and the end of its
//! last batch transaction itself. The work is not the same, and the report
//! says so: Quix neither validates nor deduplicates, so it stores the
//! duplicates and every invalid event that still parses as JSON.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use eventpulse_testkit::{unique_name, TestDatabase};
use serde::{Deserialize, Serialize};
use sqlx::Connection;

use crate::cli::BenchArgs;
use crate::procs::Target;
use crate::report::EndToEnd;
use crate::scenarios;

const PARTITIONS: i32 = 12;
/// Relative to the checkout's root, where `scripts/bench.sh` runs us.
const QUIX_SCRIPT: &str = "scripts/peer/quix_sink.py";
/// The goal: at least five times the peer's rows/s.
const GOAL: f64 = 5.0;
/// Quix at the ~13.6k rows/s seen before drains 1M messages in ~75 s.
const QUIX_LIMIT: Duration = Duration::from_secs(900);

#[derive(Debug, Serialize)]
pub struct Peer {
    pub messages: u64,
    pub ours: EndToEnd,
    pub quix: QuixRun,
    /// Ours over Quix's rows/s, both from first consumed to last committed.
    pub ratio: f64,
    pub goal: f64,
}

#[derive(Debug, Serialize)]
pub struct QuixRun {
    pub quixstreams_version: String,
    /// Rows in its table: every message that parsed as a JSON object.
    pub stored_rows: u64,
    /// Distinct event ids among those rows.
    pub distinct_event_ids: u64,
    /// From its first record consumed to its last batch committed.
    pub seconds: f64,
    /// From starting the Python process to its exit (start-up included).
    pub wall_seconds: f64,
    pub cpu_seconds_per_million: f64,
    pub peak_rss_mib: f64,
}

impl QuixRun {
    pub fn rows_per_second(&self) -> f64 {
        self.stored_rows as f64 / self.seconds.max(1e-3)
    }
}

/// What `quix_sink.py` prints: times are Unix seconds from its own clock.
#[derive(Debug, Deserialize)]
struct ScriptReport {
    quixstreams_version: String,
    processed: u64,
    first_consumed_at: Option<f64>,
    last_write_at: Option<f64>,
    cpu_seconds: f64,
    peak_rss_kib: f64,
}

pub async fn peer(args: &BenchArgs) -> anyhow::Result<Peer> {
    let python = args.peer_python.clone().context(
        "the peer stage needs Quix Streams: run scripts/bench.sh --peer, which installs it \
         (or pass --peer-python)",
    )?;
    let target = Target::create(PARTITIONS).await?;
    let summary = scenarios::prefill(args, &target, args.events())?;
    eprintln!("bench:   ours: draining {} messages", summary.acked);
    let ours = scenarios::drain(args, &target, &summary).await?;
    eprintln!("bench:   Quix Streams: draining the same topic");
    let quix = quix_drain(&python, &target, summary.acked).await?;
    target.drop_now().await?;
    let ratio = ours.rows_per_second_from_first_consumed() / quix.rows_per_second().max(1e-3);
    Ok(Peer {
        messages: summary.acked,
        ours,
        quix,
        ratio,
        goal: GOAL,
    })
}

/// Quix drains the target's topic under a group of its own into a fresh
/// database, dropped afterwards (kept for a look if anything fails).
async fn quix_drain(python: &Path, target: &Target, messages: u64) -> anyhow::Result<QuixRun> {
    let db = TestDatabase::create_on(&target.services.admin_url).await?;
    let started = Instant::now();
    let report = run_script(python, target, &db.url, messages).await?;
    let wall_seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        report.processed == messages,
        "Quix Streams processed {} of {messages} messages",
        report.processed
    );
    let first = report.first_consumed_at.context("Quix consumed nothing")?;
    let last = report.last_write_at.context("Quix wrote no batch")?;
    let mut conn = sqlx::PgConnection::connect(&db.url).await?;
    let (stored, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT event_id) FROM events")
            .fetch_one(&mut conn)
            .await
            .context("counting the rows Quix stored")?;
    conn.close().await?;
    db.drop_now().await?;
    Ok(QuixRun {
        quixstreams_version: report.quixstreams_version,
        stored_rows: stored as u64,
        distinct_event_ids: distinct as u64,
        seconds: last - first,
        wall_seconds,
        cpu_seconds_per_million: report.cpu_seconds * 1e6 / messages as f64,
        peak_rss_mib: report.peak_rss_kib / 1024.0,
    })
}

/// Runs `quix_sink.py` to its end (it stops after `messages` records).
async fn run_script(
    python: &Path,
    target: &Target,
    database_url: &str,
    messages: u64,
) -> anyhow::Result<ScriptReport> {
    let child = tokio::process::Command::new(python)
        .arg(QUIX_SCRIPT)
        .args(["--brokers", &target.services.brokers])
        .args(["--topic", &target.topic])
        .args(["--group", &unique_name("quix-group")])
        .args(["--database-url", database_url])
        .args(["--messages", &messages.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {} {QUIX_SCRIPT}", python.display()))?;
    let output = tokio::time::timeout(QUIX_LIMIT, child.wait_with_output())
        .await
        .with_context(|| format!("Quix Streams did not finish within {QUIX_LIMIT:?}"))??;
    let stderr = String::from_utf8_lossy(&output.stderr);
    anyhow::ensure!(
        output.status.success(),
        "{QUIX_SCRIPT} failed ({}): {}",
        output.status,
        stderr.trim()
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last_line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last_line)
        .with_context(|| format!("reading {QUIX_SCRIPT}'s report from {last_line:?}"))
}

impl Peer {
    pub fn print(&self, line: &dyn Fn(&str, String, String)) {
        let ours = self.ours.rows_per_second_from_first_consumed();
        let quix = &self.quix;
        line(
            &format!(
                "peer: {} messages, ours rows/s (first consumed to last commit)",
                self.messages
            ),
            format!("{ours:.0}/s"),
            String::new(),
        );
        line(
            &format!(
                "peer: Quix Streams {} PostgreSQLSink rows/s, same window",
                quix.quixstreams_version
            ),
            format!("{:.0}/s", quix.rows_per_second()),
            String::new(),
        );
        let verdict = if self.ratio >= self.goal {
            "met"
        } else {
            "missed"
        };
        line(
            &format!("peer: ours / Quix rows/s (goal >= {:.0}x)", self.goal),
            format!("{:.1}x", self.ratio),
            verdict.into(),
        );
        line(
            "peer: rows stored, ours / Quix",
            format!("{}/{}", self.ours.stored_rows, quix.stored_rows),
            String::new(),
        );
        line(
            "peer: CPU s per million messages, ours / Quix",
            format!(
                "{:.1}/{:.1}",
                self.ours.cpu_seconds_per_million, quix.cpu_seconds_per_million
            ),
            String::new(),
        );
        line(
            "peer: peak RSS MiB, ours / Quix",
            format!("{:.0}/{:.0}", self.ours.peak_rss_mib, quix.peak_rss_mib),
            String::new(),
        );
        println!(
            "(peer: Quix neither validates nor deduplicates: it stored every message that \
             parsed as JSON, {} distinct event ids in {} rows; ours stored {} distinct valid events)",
            quix.distinct_event_ids, quix.stored_rows, self.ours.expected_rows
        );
    }
}
