//! The real binaries as child processes, and what `/proc` says about them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use eventpulse_testkit::{create_topic_on, unique_name, TestDatabase};
use sqlx::PgPool;

use crate::cli::BenchArgs;
use crate::services::Services;

/// The producer's `--summary-json`, the part the benchmark reads.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct ProducerSummary {
    pub sent_total: u64,
    pub valid_unique: u64,
    pub invalid_total: u64,
    pub acked: u64,
    pub failed: u64,
    /// Refused by the API as invalid (`--via grpc://...` only).
    #[serde(default)]
    pub refused: u64,
    /// From the first record made to the last one acknowledged.
    pub elapsed_secs: f64,
    pub rate_achieved: f64,
}

impl ProducerSummary {
    /// Records acknowledged per second, over the producer's own run
    /// (process start-up and connecting excluded, waiting for the last
    /// acknowledgements included).
    pub fn acked_per_second(&self) -> f64 {
        self.acked as f64 / self.elapsed_secs.max(1e-3)
    }
}

/// A topic (with its DLQ), a database and a group for one scenario, on `services`.
pub struct Target {
    pub services: Services,
    pub topic: String,
    pub group: String,
    pub db: TestDatabase,
    pub pool: PgPool,
}

impl Target {
    pub async fn create(partitions: i32) -> anyhow::Result<Self> {
        Self::create_on(Services::from_env(), partitions).await
    }

    pub async fn create_on(services: Services, partitions: i32) -> anyhow::Result<Self> {
        let topic = unique_name("target");
        create_topic_on(&services.brokers, &topic, partitions).await?;
        create_topic_on(&services.brokers, &format!("{topic}.dlq"), 1).await?;
        let db = TestDatabase::create_on(&services.admin_url).await?;
        let pool = eventpulse_consumer::schema::connect(&db.url, 2).await?;
        eventpulse_consumer::schema::migrate(&pool).await?;
        Ok(Self {
            services,
            group: unique_name("target-group"),
            topic,
            db,
            pool,
        })
    }

    pub async fn drop_now(self) -> anyhow::Result<()> {
        self.pool.close().await;
        self.db.drop_now().await
    }

    /// Runs the producer binary to completion with `args`, returning its summary.
    pub fn produce(&self, bin_dir: &Path, args: &[&str]) -> anyhow::Result<ProducerSummary> {
        self.spawn_producer(bin_dir, args)?.finish()
    }

    /// Produces at `rate` events/s for `seconds` from 2,000 simulated users.
    pub fn produce_paced(
        &self,
        bin_dir: &Path,
        rate: u64,
        seconds: u64,
    ) -> anyhow::Result<ProducerSummary> {
        let (rate, duration) = (rate.to_string(), format!("{seconds}s"));
        self.produce(
            bin_dir,
            &["--rate", &rate, "--duration", &duration, "--users", "2000"],
        )
    }

    /// Starts the producer binary with `args`; [`RunningProducer::finish`] waits for it.
    pub fn spawn_producer(&self, bin_dir: &Path, args: &[&str]) -> anyhow::Result<RunningProducer> {
        let summary_path = std::env::temp_dir().join(format!("{}.json", unique_name(&self.topic)));
        let child = Command::new(bin_dir.join("eventpulse-producer"))
            .args([
                "--brokers",
                &self.services.brokers,
                "--topic",
                &self.topic,
                "--summary-json",
            ])
            .arg(&summary_path)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("running eventpulse-producer (build it with cargo build --release)")?;
        Ok(RunningProducer {
            child,
            summary_path,
        })
    }

    /// Starts one consumer of this target; its metrics listen on `metrics_port`.
    pub fn spawn_consumer(&self, args: &BenchArgs, metrics_port: u16) -> anyhow::Result<Child> {
        let mut command = Command::new(args.bin_dir.join("eventpulse-consumer"));
        command
            .env("EVENTPULSE_BROKERS", &self.services.brokers)
            .env("EVENTPULSE_TOPIC", &self.topic)
            .env("EVENTPULSE_DLQ_TOPIC", format!("{}.dlq", self.topic))
            .env("EVENTPULSE_GROUP_ID", &self.group)
            .env("EVENTPULSE_DATABASE_URL", &self.db.url)
            .env("EVENTPULSE_REDIS_URL", &self.services.redis_url)
            .env(
                "EVENTPULSE_METRICS_ADDR",
                format!("127.0.0.1:{metrics_port}"),
            )
            .env("EVENTPULSE_DEDUP_TTL_SECS", "600")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null());
        if let Some(size) = args.batch_size {
            command.env("EVENTPULSE_BATCH_SIZE", size.to_string());
        }
        if let Some(linger) = args.linger_ms {
            command.env("EVENTPULSE_LINGER_MS", linger.to_string());
        }
        if !args.kafka_properties.is_empty() {
            command.env(
                "EVENTPULSE_KAFKA_PROPERTIES",
                args.kafka_properties.join(";"),
            );
        }
        command.spawn().context("starting eventpulse-consumer")
    }

    /// Waits until the stored offsets cover `messages`; returns how long that took.
    pub async fn wait_drained(&self, messages: u64, started: Instant) -> anyhow::Result<Duration> {
        let limit = Duration::from_secs(900);
        loop {
            let covered: i64 = sqlx::query_scalar(
                "SELECT coalesce(sum(next_offset), 0)::bigint FROM consumer_offsets WHERE group_id = $1",
            )
            .bind(&self.group)
            .fetch_one(&self.pool)
            .await?;
            if covered as u64 >= messages {
                return Ok(started.elapsed());
            }
            anyhow::ensure!(
                started.elapsed() < limit,
                "not drained after {limit:?}: {covered} of {messages} messages"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn stored(&self) -> anyhow::Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A producer running in the background.
pub struct RunningProducer {
    child: Child,
    summary_path: PathBuf,
}

impl RunningProducer {
    /// Waits for the producer to exit and reads its summary.
    pub fn finish(mut self) -> anyhow::Result<ProducerSummary> {
        let status = self.child.wait()?;
        anyhow::ensure!(status.success(), "eventpulse-producer failed: {status}");
        let summary = serde_json::from_slice(&std::fs::read(&self.summary_path)?)?;
        let _ = std::fs::remove_file(&self.summary_path);
        Ok(summary)
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// Waits until the consumer answers /readyz with 200.
pub async fn wait_ready(port: u16) -> anyhow::Result<()> {
    wait_answers(port, "/readyz").await
}

/// Waits until the consumers with metrics on `ports` own `partitions`
/// between them (60 s at most): producing before the group has settled
/// would time the group's start-up, not the pipeline.
pub async fn wait_assigned(ports: &[u16], partitions: i64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let owned: f64 = ports
            .iter()
            .filter_map(|port| crate::faults::run::scrape(*port).ok())
            .map(|body| crate::faults::run::metric(&body, "eventpulse_assigned_partitions"))
            .sum();
        if owned as i64 == partitions {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!(
        "the consumers on ports {ports:?} did not own {partitions} partitions within 60 s"
    )
}

/// Waits until `path` on the local `port` answers 200 (60 s at most).
pub async fn wait_answers(port: u16, path: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let url = format!("http://127.0.0.1:{port}{path}");
    while Instant::now() < deadline {
        let ok = Command::new("curl")
            .args(["-fsS", "-o", "/dev/null", &url])
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("nothing on port {port} answered {path} with 200 within 60 s")
}

/// How long after `started` the consumer with metrics on `port` received its
/// first message, by its own counter: where the peer stage's window opens
/// (the peer notes its first record itself). Polled every 5 ms, and only
/// until that first message, so it costs nothing during the drain.
pub async fn first_consumed(port: u16, started: Instant) -> anyhow::Result<Duration> {
    let url = format!("http://127.0.0.1:{port}/metrics");
    let client = reqwest::Client::new();
    while started.elapsed() < Duration::from_secs(120) {
        // The time the request left: the counter it answers was read after it.
        let asked = started.elapsed();
        if let Ok(response) = client.get(&url).send().await {
            let body = response.text().await.unwrap_or_default();
            if eventpulse_testkit::metric_value(&body, "eventpulse_messages_consumed_total") > 0.0 {
                return Ok(asked);
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    anyhow::bail!("the consumer on port {port} received nothing within 120 s")
}

/// User plus system CPU seconds the process has used.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / clock_ticks())
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Peak resident set size (VmHWM) of the process, in bytes.
pub fn peak_rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM in /proc status")?;
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .context("VmHWM value")?
        .parse()?;
    Ok(kib * 1024)
}

/// Where one API instance listens: HTTP and gRPC, both on loopback.
#[derive(Debug, Clone, Copy)]
pub struct ApiPorts {
    pub http: u16,
    pub grpc: u16,
}

impl ApiPorts {
    /// Two free ports. gRPC gets one too even where a stage does not use
    /// it: the API's default (50051) would collide with any other API
    /// running on the machine, and the API would not start.
    pub fn free() -> anyhow::Result<Self> {
        Ok(Self {
            http: free_port()?,
            grpc: free_port()?,
        })
    }
}

/// The API binary from `bin_dir`, read-only (no key), on `ports`, over
/// `database_url`; callers add the settings of their stage and spawn it.
pub fn api_command(bin_dir: &Path, database_url: &str, ports: ApiPorts) -> Command {
    let mut command = Command::new(bin_dir.join("eventpulse-api"));
    command
        .env("EVENTPULSE_API_ADDR", format!("127.0.0.1:{}", ports.http))
        .env("EVENTPULSE_GRPC_ADDR", format!("127.0.0.1:{}", ports.grpc))
        .env("EVENTPULSE_DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    command
}

/// SIGTERM, then wait: the consumer flushes and exits 0.
pub fn stop(child: &mut Child) -> anyhow::Result<()> {
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()?;
    let status = child.wait()?;
    anyhow::ensure!(status.success(), "consumer exited with {status}");
    Ok(())
}

pub fn bin_dir_exists(dir: &Path) -> anyhow::Result<PathBuf> {
    let consumer = dir.join("eventpulse-consumer");
    anyhow::ensure!(
        consumer.exists(),
        "{} not found: build with cargo build --release",
        consumer.display()
    );
    Ok(dir.to_path_buf())
}
