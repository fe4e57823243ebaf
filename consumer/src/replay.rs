//! `eventpulse-consumer replay`: re-reads a range of the topic into the same
//! tables through the same pipeline (validation, the Redis and Postgres
//! dedup, dead letters), under a group id of its own, so the running group
//! is not disturbed: its Kafka commits and its rows in `consumer_offsets`
//! are other keys.
//!
//! Each partition's range is resolved to offsets first (`--from-time` and
//! `--to-time` with the broker's time index), and the replay group's
//! position is written to Postgres at the range's start: the pipeline's own
//! start-up logic then starts there. Records at or past a partition's end
//! are left alone, and the run stops once Postgres holds every partition's
//! end (an end that is not a record, such as a transaction marker, is never
//! reached: give `--to-offset` of a record then). Replaying is idempotent: an event already stored is a duplicate
//! (`event_ids`), a dead letter already recorded is the same row (its
//! topic, partition, epoch and offset). The dead-letter topic itself may get
//! a second copy, as after any crash.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::config::{redact_url, Settings};
use crate::metrics::Totals;
use crate::reader::RecordReader;
use crate::{schema, Application};

/// One end of the range; `None` on the command line means the partition's
/// first record (start) or its end when the replay starts (end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Offset(i64),
    Time(DateTime<Utc>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayRequest {
    pub from: Option<Bound>,
    pub to: Option<Bound>,
    /// Empty: every partition.
    pub partitions: Vec<i32>,
    pub group: Option<String>,
}

/// Offsets `[start, end)` of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub partition: i32,
    pub start: i64,
    pub end: i64,
}

#[derive(Debug, Clone)]
pub struct ReplaySummary {
    pub group: String,
    pub spans: Vec<Span>,
    pub complete: bool,
    pub totals: Totals,
    pub elapsed: Duration,
}

const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

pub async fn run(
    settings: &Settings,
    request: ReplayRequest,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<ReplaySummary> {
    let started = Instant::now();
    let pool = schema::connect(&settings.database_url, 2).await?;
    schema::migrate_for_run(&pool, &redact_url(&settings.database_url)).await?;
    let group = replay_group(&pool, settings, request.group.as_deref()).await?;
    let reader = RecordReader::new(settings)?;
    let spans = tokio::task::spawn_blocking(move || plan(&reader, &request)).await??;
    seed_positions(&pool, settings, &group, &spans).await?;

    let mut replay_settings = settings.clone();
    replay_settings.group_id = group.clone();
    replay_settings.metrics_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    let ends = spans.iter().map(|s| (s.partition, s.end)).collect();
    let app = Application::build(replay_settings).await?.stop_at(ends);
    let metrics = app.metrics();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let progress = tokio::spawn(report_progress(
        pool.clone(),
        settings.topic.clone(),
        group.clone(),
        spans.clone(),
        done_tx,
    ));
    let stop = async move {
        tokio::select! {
            () = shutdown => {}
            _ = done_rx => {}
        }
    };
    app.run_until_stopped(stop).await?;
    progress.abort();
    let complete = remaining(&pool, &settings.topic, &group, &spans).await? == 0;
    eprintln!();
    Ok(ReplaySummary {
        group,
        spans,
        complete,
        totals: metrics.totals(),
        elapsed: started.elapsed(),
    })
}

/// The replay's own group: never the running group (its positions would
/// be overwritten and its records past the end skipped), and never one used
/// before (Kafka would hold offsets ahead of the new start, which reads as
/// Postgres having lost commits). The default is unique.
async fn replay_group(
    pool: &PgPool,
    settings: &Settings,
    asked: Option<&str>,
) -> anyhow::Result<String> {
    let group = match asked {
        Some(group) => group.to_owned(),
        None => format!(
            "{}-replay-{}-{}",
            settings.group_id,
            Utc::now().format("%Y%m%dT%H%M%S"),
            &uuid::Uuid::new_v4().simple().to_string()[..6]
        ),
    };
    anyhow::ensure!(
        group != settings.group_id,
        "--replay-group {group} is the running group's id (--group-id): a replay needs a group of its own"
    );
    let used: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM consumer_offsets WHERE group_id = $1)")
            .bind(&group)
            .fetch_one(pool)
            .await?;
    anyhow::ensure!(
        !used,
        "--replay-group {group} was used before: pick a new one, or leave it out for a fresh one"
    );
    Ok(group)
}

/// Each partition's offsets to replay. Blocks (broker round trips).
fn plan(reader: &RecordReader, request: &ReplayRequest) -> anyhow::Result<Vec<Span>> {
    let all = reader.partitions(KAFKA_TIMEOUT)?;
    if let Some(unknown) = request.partitions.iter().find(|p| !all.contains(p)) {
        anyhow::bail!(
            "--partition {unknown}: the topic has partitions 0 to {}",
            all.len() - 1
        );
    }
    let mut spans = Vec::with_capacity(all.len());
    for partition in all {
        let (low, high) = reader
            .watermarks(partition, KAFKA_TIMEOUT)
            .with_context(|| format!("reading the offsets of partition {partition}"))?;
        let resolve = |bound: Option<Bound>, default: i64| -> anyhow::Result<i64> {
            Ok(match bound {
                None => default,
                Some(Bound::Offset(offset)) => offset,
                Some(Bound::Time(at)) => reader
                    .offset_at_time(partition, at.timestamp_millis(), KAFKA_TIMEOUT)?
                    .unwrap_or(high),
            })
        };
        let selected = request.partitions.is_empty() || request.partitions.contains(&partition);
        let (start, end) = if selected {
            let start = resolve(request.from, low)?.clamp(low, high);
            (start, resolve(request.to, high)?.clamp(start, high))
        } else {
            (high, high)
        };
        spans.push(Span {
            partition,
            start,
            end,
        });
    }
    Ok(spans)
}

/// Writes the replay group's positions at the range's start, in the epoch
/// the running group is in (dead letters are keyed by it).
async fn seed_positions(
    pool: &PgPool,
    settings: &Settings,
    group: &str,
    spans: &[Span],
) -> sqlx::Result<()> {
    let partitions: Vec<i32> = spans.iter().map(|s| s.partition).collect();
    let starts: Vec<i64> = spans.iter().map(|s| s.start).collect();
    sqlx::query(
        "INSERT INTO consumer_offsets (group_id, topic, partition, epoch, next_offset) \
         SELECT $1, $2, p, coalesce((SELECT epoch FROM consumer_offsets \
                                     WHERE group_id = $3 AND topic = $2 AND partition = p), 0), o \
         FROM unnest($4::int4[], $5::int8[]) AS t(p, o) \
         ON CONFLICT (group_id, topic, partition) DO UPDATE \
         SET epoch = EXCLUDED.epoch, next_offset = EXCLUDED.next_offset, \
             last_record_ms = NULL, updated_at = now()",
    )
    .bind(group)
    .bind(&settings.topic)
    .bind(&settings.group_id)
    .bind(partitions)
    .bind(starts)
    .execute(pool)
    .await?;
    Ok(())
}

/// Messages of the range not yet covered by the replay group's positions.
async fn remaining(pool: &PgPool, topic: &str, group: &str, spans: &[Span]) -> sqlx::Result<i64> {
    let stored: HashMap<i32, i64> = sqlx::query_as(
        "SELECT partition, next_offset FROM consumer_offsets WHERE group_id = $1 AND topic = $2",
    )
    .bind(group)
    .bind(topic)
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect();
    Ok(spans
        .iter()
        .map(|s| (s.end - stored.get(&s.partition).copied().unwrap_or(s.start)).max(0))
        .sum())
}

/// A progress bar on stderr until the whole range is stored, then `done`.
async fn report_progress(
    pool: PgPool,
    topic: String,
    group: String,
    spans: Vec<Span>,
    done: tokio::sync::oneshot::Sender<()>,
) {
    let total: i64 = spans.iter().map(|s| s.end - s.start).sum();
    let started = Instant::now();
    loop {
        let Ok(left) = remaining(&pool, &topic, &group, &spans).await else {
            tokio::time::sleep(PROGRESS_EVERY).await;
            continue;
        };
        let done_count = total - left;
        let rate = done_count as f64 / started.elapsed().as_secs_f64().max(0.001);
        eprint!("\r{}", progress_line(done_count, total, rate));
        let _ = std::io::stderr().flush();
        if left == 0 {
            let _ = done.send(());
            return;
        }
        tokio::time::sleep(PROGRESS_EVERY).await;
    }
}

/// `[#########-----------]  45% 4,500/10,000 messages, 1,234/s, 4 s left`
pub fn progress_line(done: i64, total: i64, rate: f64) -> String {
    const WIDTH: i64 = 30;
    let filled = if total == 0 {
        WIDTH
    } else {
        done * WIDTH / total
    };
    let percent = if total == 0 { 100 } else { done * 100 / total };
    let left = if rate > 0.0 {
        format!(", {} s left", ((total - done) as f64 / rate).ceil() as i64)
    } else {
        String::new()
    };
    format!(
        "[{}{}] {percent:>3}% {}/{} messages, {}/s{left}",
        "#".repeat(filled as usize),
        "-".repeat((WIDTH - filled) as usize),
        grouped(done),
        grouped(total),
        grouped(rate as i64),
    )
}

fn grouped(n: i64) -> String {
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::progress_line;

    #[test]
    fn the_progress_line_shows_share_count_rate_and_time_left() {
        assert_eq!(
            progress_line(4_500, 10_000, 1_234.5),
            "[#############-----------------]  45% 4,500/10,000 messages, 1,234/s, 5 s left"
        );
        assert_eq!(
            progress_line(0, 0, 0.0),
            "[##############################] 100% 0/0 messages, 0/s"
        );
    }
}
