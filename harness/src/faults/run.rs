//! One fault scenario's moving parts: consumers as child processes, the
//! producer in the background, and the bookkeeping of when the last fault
//! happened, then the drain, a graceful stop and the exact check.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use clap::Parser;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

use super::verify::{verify, Verdict};
use super::{FaultArgs, Row};
use crate::cli::BenchArgs;
use crate::procs::{self, RunningProducer, Target};
use crate::services::{free_port, Services};

pub const PARTITIONS: i32 = 6;

pub struct Run {
    pub target: Target,
    consumer_args: BenchArgs,
    consumers: Vec<(Option<Child>, u16)>,
    producer: Option<RunningProducer>,
    pub last_fault: Instant,
    restarted: bool,
    /// Whether [`Run::produce_raw`] added records to the seeded traffic.
    raw_produced: bool,
    notes: Vec<String>,
}

impl Run {
    /// A fresh topic and database on `services`, `consumers` consumers, and
    /// the seeded traffic (5% duplicates, 1% invalid) at `rate` events/s.
    pub async fn start(
        args: &FaultArgs,
        services: Services,
        consumers: usize,
        rate: u64,
    ) -> anyhow::Result<Self> {
        let target = Target::create_on(services, PARTITIONS).await?;
        let bin_dir = args.bin_dir.to_string_lossy().into_owned();
        // Short sessions so a killed member's partitions move on quickly.
        let consumer_args = BenchArgs::parse_from([
            "faults",
            "--bin-dir",
            &bin_dir,
            "-X",
            "session.timeout.ms=6000",
            "-X",
            "heartbeat.interval.ms=500",
        ]);
        let mut run = Self {
            target,
            consumer_args,
            consumers: Vec::new(),
            producer: None,
            last_fault: Instant::now(),
            restarted: false,
            raw_produced: false,
            notes: Vec::new(),
        };
        for _ in 0..consumers {
            run.add_consumer()?;
        }
        let (count, rate) = (args.events().to_string(), rate.to_string());
        let traffic = [
            "--seed",
            "42",
            "--count",
            &count,
            "--rate",
            &rate,
            "--users",
            "2000",
            "--duplicate-ratio",
            "0.05",
            "--invalid-ratio",
            "0.01",
        ];
        run.producer = Some(run.target.spawn_producer(&args.bin_dir, &traffic)?);
        Ok(run)
    }

    pub fn add_consumer(&mut self) -> anyhow::Result<usize> {
        let port = free_port()?;
        let child = self.target.spawn_consumer(&self.consumer_args, port)?;
        self.consumers.push((Some(child), port));
        Ok(self.consumers.len() - 1)
    }

    /// SIGKILL consumer `index`.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.consumers[index].0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.restarted = true;
        self.fault();
    }

    /// SIGKILL consumer `index` and start a new one in its place.
    pub fn replace(&mut self, index: usize) -> anyhow::Result<()> {
        self.kill(index);
        let port = free_port()?;
        self.consumers[index] = (
            Some(self.target.spawn_consumer(&self.consumer_args, port)?),
            port,
        );
        Ok(())
    }

    /// Produces raw records (keyed `{key_prefix}-{i % 7}`) to the scenario's
    /// topic, next to the seeded traffic. The producer accepts records up to
    /// 1,048,576 bytes, what a Java client may write to a default broker.
    pub async fn produce_raw(
        &mut self,
        key_prefix: &str,
        values: &[Vec<u8>],
    ) -> anyhow::Result<()> {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &self.target.services.brokers)
            .set("message.max.bytes", "1048576")
            .create()?;
        for (i, value) in values.iter().enumerate() {
            let key = format!("{key_prefix}-{}", i % 7);
            // nisshi's sqlite storage refuses a produce now and then under
            // heavy load ("database is locked"): try again. A retried record
            // may be there twice; the drain counts what the topic holds.
            let mut attempt = 0;
            loop {
                let record = FutureRecord::to(&self.target.topic)
                    .key(&key)
                    .payload(value.as_slice());
                match producer.send(record, Duration::from_secs(30)).await {
                    Ok(_) => break,
                    Err((e, _)) if attempt < 5 => {
                        attempt += 1;
                        eprintln!("faults: producing {key_prefix} record {i} failed ({e}); again");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    Err((e, _)) => anyhow::bail!("producing {key_prefix} records: {e}"),
                }
            }
        }
        self.raw_produced = true;
        Ok(())
    }

    /// Sends `signal` (a `kill -s` name) to consumer `index`.
    pub fn signal(&mut self, index: usize, signal: &str) -> anyhow::Result<()> {
        let Some(child) = self.consumers[index].0.as_ref() else {
            anyhow::bail!("consumer #{index} is not running");
        };
        let status = Command::new("kill")
            .args(["-s", signal, &child.id().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -s {signal} failed");
        // Its counters no longer cover what the group did.
        self.restarted = true;
        self.fault();
        Ok(())
    }

    /// SIGTERM consumer `index`; it must flush, commit and exit 0.
    pub fn terminate(&mut self, index: usize) -> anyhow::Result<()> {
        if let Some(mut child) = self.consumers[index].0.take() {
            procs::stop(&mut child)?;
        }
        self.restarted = true;
        self.fault();
        Ok(())
    }

    /// SIGTERM consumer `index` and give it at most `limit` to exit 0, as an
    /// orchestrator would before its SIGKILL; past that it is SIGKILLed and
    /// the scenario fails. Returns how long the exit took.
    pub async fn terminate_within(
        &mut self,
        index: usize,
        limit: Duration,
    ) -> anyhow::Result<Duration> {
        let Some(mut child) = self.consumers[index].0.take() else {
            anyhow::bail!("consumer #{index} is not running");
        };
        self.restarted = true;
        let sent = Instant::now();
        Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()?;
        // Polled, not waited on, so a consumer that hangs cannot hang the suite.
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if sent.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                anyhow::bail!("consumer #{index} still running {limit:?} after SIGTERM; SIGKILLed");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let took = sent.elapsed();
        self.fault();
        anyhow::ensure!(
            status.success(),
            "consumer #{index} exited with {status} {took:?} after SIGTERM"
        );
        Ok(took)
    }

    /// Where consumer `index` serves its metrics.
    pub fn metrics_port(&self, index: usize) -> u16 {
        self.consumers[index].1
    }

    pub fn fault(&mut self) {
        self.last_fault = Instant::now();
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    pub fn first_pid(&self) -> Option<u32> {
        self.consumers
            .iter()
            .find_map(|(c, _)| c.as_ref().map(Child::id))
    }

    /// Messages covered by the offsets stored in Postgres.
    pub async fn progress(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar("SELECT coalesce(sum(next_offset), 0)::bigint FROM consumer_offsets WHERE group_id = $1")
            .bind(&self.target.group)
            .fetch_one(&self.target.pool)
            .await?)
    }

    /// Waits (up to `limit`) until the stored offsets move past `beyond`.
    pub async fn wait_progress(&self, beyond: i64, limit: Duration) -> anyhow::Result<bool> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.progress().await? > beyond {
                return Ok(true);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(false)
    }

    pub fn producer_running(&mut self) -> bool {
        self.producer
            .as_mut()
            .is_some_and(RunningProducer::is_running)
    }

    /// Waits for the producer and the drain, stops every consumer gracefully,
    /// then checks the outcome exactly.
    pub async fn finish(mut self, scenario: &str) -> anyhow::Result<Row> {
        let summary = self.producer.take().expect("traffic started").finish()?;
        // With raw records (some possibly written twice) the topic itself
        // says how many messages there are to drain.
        let messages = if self.raw_produced {
            topic_messages(&self.target)?
        } else {
            summary.acked
        };
        self.target.wait_drained(messages, Instant::now()).await?;
        let recover_secs = self.last_fault.elapsed().as_secs_f64();
        if !self.restarted {
            self.check_metrics().await?;
        }
        for (child, _) in &mut self.consumers {
            if let Some(child) = child.as_mut() {
                procs::stop(child)?;
            }
        }
        let verdict = verify(&self.target, PARTITIONS).await?;
        let notes = self.notes.join("; ");
        self.target.drop_now().await?;
        Ok(Row::new(scenario, verdict, recover_secs, notes))
    }

    /// With one uninterrupted consumer, its counters must match the rows.
    async fn check_metrics(&mut self) -> anyhow::Result<()> {
        let Some(port) = self
            .consumers
            .iter()
            .find(|(c, _)| c.is_some())
            .map(|(_, p)| *p)
        else {
            return Ok(());
        };
        let body = scrape(port)?;
        let stored = metric(&body, "eventpulse_events_stored_total");
        let rejected = metric(&body, "eventpulse_messages_rejected_total");
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.target.pool)
            .await?;
        let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letters")
            .fetch_one(&self.target.pool)
            .await?;
        let agree = stored == rows as f64 && rejected == dead as f64;
        self.note(format!(
            "metrics {}: stored {stored}, rejected {rejected}",
            if agree { "agree" } else { "DISAGREE" }
        ));
        anyhow::ensure!(agree, "metrics disagree with Postgres: stored {stored} vs {rows} rows, rejected {rejected} vs {dead}");
        Ok(())
    }
}

/// What the stored offsets must cover: the sum of the partitions' high watermarks.
fn topic_messages(target: &crate::procs::Target) -> anyhow::Result<u64> {
    let consumer: rdkafka::consumer::BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &target.services.brokers)
        .create()?;
    let mut total = 0;
    for partition in 0..PARTITIONS {
        let (_, high) = rdkafka::consumer::Consumer::fetch_watermarks(
            &consumer,
            &target.topic,
            partition,
            Duration::from_secs(10),
        )?;
        total += high as u64; // the stored next offsets sum to this
    }
    Ok(total)
}

pub fn scrape(port: u16) -> anyhow::Result<String> {
    let out = Command::new("curl")
        .args(["-fsS", &format!("http://127.0.0.1:{port}/metrics")])
        .output()?;
    anyhow::ensure!(out.status.success(), "scraping port {port} failed");
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub use eventpulse_testkit::metric_value as metric;

/// A verdict as a table row.
impl Row {
    pub fn new(scenario: &str, verdict: Verdict, recover_secs: f64, note: String) -> Self {
        Self {
            scenario: scenario.to_owned(),
            exact: verdict.exact(),
            verdict,
            recover_secs,
            note,
        }
    }
}
