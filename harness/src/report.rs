//! The results: one table on stdout (each end-to-end figure also as a ratio to
//! the slowest component ceiling) and the same as JSON.

use serde::Serialize;

use crate::ceilings::Rate;
use crate::cli::BenchArgs;
use crate::grpc::GrpcIngest;
use crate::live::LiveFeed;
use crate::peer::Peer;
use crate::storage::StorageBench;

#[derive(Debug, Serialize)]
pub struct EndToEnd {
    pub messages: u64,
    pub expected_rows: u64,
    pub stored_rows: u64,
    /// From the consumer's start to the last offset stored (start-up included).
    pub seconds: f64,
    /// From the consumer's start to its first message received.
    pub first_consumed_seconds: f64,
    /// From the first to the last batch committed: the steady-state window.
    pub steady_seconds: f64,
    pub cpu_seconds_per_million: f64,
    pub peak_rss_mib: f64,
    /// Messages per flushed batch, from the consumer's histogram.
    pub mean_batch: f64,
    /// Time to make one batch durable, from the consumer's histogram.
    pub mean_flush_ms: f64,
    /// Share of the steady window spent inside a flush (1.0 = always flushing).
    pub flush_busy: f64,
    /// The pre-fill: the producer straight to Kafka, records acked per second.
    pub producer_per_second: f64,
}

impl EndToEnd {
    /// Rows per second in the steady-state window (start-up excluded).
    pub fn rows_per_second(&self) -> f64 {
        self.stored_rows as f64 / self.steady_seconds.max(1e-3)
    }

    /// Rows per second from the first message received to the last offset
    /// stored: the peer stage's measure, which a peer can report too.
    pub fn rows_per_second_from_first_consumed(&self) -> f64 {
        self.stored_rows as f64 / (self.seconds - self.first_consumed_seconds).max(1e-3)
    }
}

#[derive(Debug, Serialize)]
pub struct Latency {
    pub rate: u64,
    pub seconds: u64,
    pub expected_rows: u64,
    pub stored_rows: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct Scaling {
    pub consumers: usize,
    pub expected_rows: u64,
    pub stored_rows: u64,
    pub seconds: f64,
}

/// The value at quantile `q` (0..=1) of `sorted`, nearest rank; 0 if empty.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(index).copied().unwrap_or(0.0)
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub mode: &'static str,
    pub batch_size: Option<usize>,
    pub linger_ms: Option<u64>,
    /// Broker and Redis, each alone.
    pub ceilings: Vec<(String, Rate)>,
    /// Postgres alone into the final schema (server-side and binary COPY):
    /// the higher is the Postgres ceiling.
    pub postgres: Vec<(String, Rate)>,
    /// Other write figures of the same run: the consumer's own
    /// `Store::write_batch` by each method, the unpartitioned table of before.
    pub comparisons: Vec<(String, Rate)>,
    pub end_to_end: Option<EndToEnd>,
    /// Events/s through the API's gRPC ingestion into Kafka.
    pub grpc: Option<GrpcIngest>,
    pub latency: Option<Latency>,
    pub live: Option<LiveFeed>,
    pub storage: Option<StorageBench>,
    pub scaling: Vec<Scaling>,
    pub sweep: Vec<(usize, EndToEnd)>,
    /// Our consumer against Quix Streams on the same topic (--peer).
    pub peer: Option<Peer>,
}

impl Report {
    pub fn new(args: &BenchArgs) -> Self {
        Self {
            mode: if args.quick { "quick" } else { "full" },
            batch_size: args.batch_size,
            linger_ms: args.linger_ms,
            ceilings: Vec::new(),
            postgres: Vec::new(),
            comparisons: Vec::new(),
            end_to_end: None,
            grpc: None,
            latency: None,
            live: None,
            storage: None,
            scaling: Vec::new(),
            sweep: Vec::new(),
            peer: None,
        }
    }

    pub fn ceiling(&mut self, name: &str, rate: Rate) {
        eprintln!("bench:   {name}: {:.0}/s", rate.per_second());
        self.ceilings.push((name.to_owned(), rate));
    }

    /// The Postgres ceiling: the higher of its two measures.
    pub fn postgres_ceiling(&self) -> Option<(&str, f64)> {
        self.postgres
            .iter()
            .map(|(name, rate)| (name.as_str(), rate.per_second()))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// What the pipeline is held to: the slowest component, Postgres
    /// counted at its ceiling.
    pub fn slowest(&self) -> Option<(&str, f64)> {
        self.ceilings
            .iter()
            .map(|(name, rate)| (name.as_str(), rate.per_second()))
            .chain(self.postgres_ceiling())
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }

    fn ratio(&self, per_second: f64) -> String {
        self.slowest().map_or("-".into(), |(_, slowest)| {
            format!("{:.0}%", 100.0 * per_second / slowest)
        })
    }

    pub fn print(&self) {
        println!(
            "\neventpulse benchmark ({} mode; 2-core machine, everything on loopback)",
            self.mode
        );
        println!("{:<66} {:>14} {:>10}", "figure", "value", "vs ceiling");
        let line = |name: &str, value: String, ratio: String| {
            println!("{name:<66} {value:>14} {ratio:>10}")
        };
        for (name, rate) in &self.ceilings {
            line(
                &format!("ceiling: {name}"),
                format!("{:.0}/s", rate.per_second()),
                self.ratio(rate.per_second()),
            );
        }
        for (name, rate) in &self.postgres {
            line(
                &format!("ceiling: {name}"),
                format!("{:.0}/s", rate.per_second()),
                self.ratio(rate.per_second()),
            );
        }
        for (name, rate) in &self.comparisons {
            line(
                &format!("comparison: {name}"),
                format!("{:.0}/s", rate.per_second()),
                self.ratio(rate.per_second()),
            );
        }
        if let Some(e2e) = &self.end_to_end {
            self.print_end_to_end(e2e, &line);
        }
        if let Some(grpc) = &self.grpc {
            grpc.print(&line);
        }
        if let Some(l) = &self.latency {
            let name = format!(
                "latency at {}/s for {} s: p50 / p95 / p99",
                l.rate, l.seconds
            );
            line(
                &name,
                format!("{:.0}/{:.0}/{:.0} ms", l.p50_ms, l.p95_ms, l.p99_ms),
                String::new(),
            );
        }
        if let Some(live) = &self.live {
            print_live(live, &line);
        }
        if let Some(storage) = &self.storage {
            storage.print(&line);
        }
        for s in &self.scaling {
            let rate = s.stored_rows as f64 / s.seconds;
            line(
                &format!(
                    "scaling: {} consumer(s), 12 partitions, rows stored/s",
                    s.consumers
                ),
                format!("{rate:.0}/s"),
                self.ratio(rate),
            );
        }
        for (size, e2e) in &self.sweep {
            let name = format!("sweep: batch {size}: rows/s, CPU s/M, peak RSS MiB");
            line(
                &name,
                format!(
                    "{:.0} {:.1} {:.0}",
                    e2e.rows_per_second(),
                    e2e.cpu_seconds_per_million,
                    e2e.peak_rss_mib
                ),
                self.ratio(e2e.rows_per_second()),
            );
        }
        if let Some(peer) = &self.peer {
            peer.print(&line);
        }
        if let Some((name, _)) = self.slowest() {
            println!(
                "(ratios are to the slowest ceiling, Postgres at the higher of its two: {name})"
            );
        }
        crate::goals::print(self);
    }

    fn print_end_to_end(&self, e2e: &EndToEnd, line: &dyn Fn(&str, String, String)) {
        let steady = e2e.rows_per_second();
        let wall = e2e.stored_rows as f64 / e2e.seconds;
        line(
            &format!(
                "end to end: {} messages, rows stored/s (first to last commit)",
                e2e.messages
            ),
            format!("{steady:.0}/s"),
            self.ratio(steady),
        );
        line(
            "end to end: rows stored/s counting start-up",
            format!("{wall:.0}/s"),
            self.ratio(wall),
        );
        line(
            "end to end: consumer CPU seconds per million messages",
            format!("{:.1}", e2e.cpu_seconds_per_million),
            String::new(),
        );
        line(
            "end to end: consumer peak RSS",
            format!("{:.1} MiB", e2e.peak_rss_mib),
            String::new(),
        );
        line(
            "end to end: mean batch / mean flush / time flushing",
            format!(
                "{:.0} / {:.1} ms / {:.0}%",
                e2e.mean_batch,
                e2e.mean_flush_ms,
                100.0 * e2e.flush_busy
            ),
            String::new(),
        );
        line(
            "end to end: rows stored / distinct valid sent",
            format!("{}/{}", e2e.stored_rows, e2e.expected_rows),
            String::new(),
        );
    }

    /// Every scenario stored exactly the distinct valid events it was sent.
    pub fn check_exact(&self) -> anyhow::Result<()> {
        let mut checks: Vec<(String, u64, u64)> = Vec::new();
        if let Some(e) = &self.end_to_end {
            checks.push(("end to end".into(), e.stored_rows, e.expected_rows));
        }
        if let Some(l) = &self.latency {
            checks.push(("latency".into(), l.stored_rows, l.expected_rows));
        }
        if let Some(l) = &self.live {
            checks.push(("live feed".into(), l.stored_rows, l.expected_rows));
        }
        for s in &self.scaling {
            checks.push((
                format!("scaling {}", s.consumers),
                s.stored_rows,
                s.expected_rows,
            ));
        }
        for (size, e) in &self.sweep {
            checks.push((format!("sweep {size}"), e.stored_rows, e.expected_rows));
        }
        if let Some(p) = &self.peer {
            checks.push((
                "peer (ours)".into(),
                p.ours.stored_rows,
                p.ours.expected_rows,
            ));
        }
        let wrong: Vec<_> = checks
            .into_iter()
            .filter(|(_, got, want)| got != want)
            .collect();
        anyhow::ensure!(
            wrong.is_empty(),
            "stored rows differ from distinct valid events sent: {wrong:?}"
        );
        Ok(())
    }
}

fn print_live(live: &LiveFeed, line: &dyn Fn(&str, String, String)) {
    let prefix = format!("live feed at {}/s", live.rate);
    for (kind, clients, q) in [
        ("every event", live.exact_clients, &live.exact),
        ("sampled 20/s", live.sampled_clients, &live.sampled),
    ] {
        line(
            &format!("{prefix}: commit to client p50 / p99, {clients} x {kind}"),
            format!("{:.0}/{:.0} ms", q.p50_ms, q.p99_ms),
            String::new(),
        );
    }
    if let Some(q) = &live.browser {
        line(
            &format!("{prefix}: commit to Chromium p50 / p99, sampled 20/s"),
            format!("{:.0}/{:.0} ms", q.p50_ms, q.p99_ms),
            String::new(),
        );
    }
    line(
        &format!(
            "{prefix}: API CPU / peak RSS, {} streams",
            live.exact_clients + live.sampled_clients
        ),
        format!(
            "{:.0}% / {:.0} MiB",
            live.api_cpu_percent, live.api_peak_rss_mib
        ),
        String::new(),
    );
    line(
        &format!("{prefix}: events per exact stream / stored, streams cut off"),
        format!(
            "{:.1}% / {}",
            100.0 * live.exact_completeness,
            live.dropped_clients
        ),
        String::new(),
    );
}
