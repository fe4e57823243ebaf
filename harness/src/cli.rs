//! Command line of `eventpulse-bench`.

use std::path::PathBuf;

use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "eventpulse-bench",
    about = "eventpulse throughput, latency and memory against the machine's ceilings"
)]
pub struct BenchArgs {
    /// A few seconds per stage: proves the benchmark works (used in CI).
    #[arg(long)]
    pub quick: bool,
    /// Also run the batch-size sweep used to choose the consumer's defaults.
    #[arg(long)]
    pub sweep: bool,
    /// Also run the peer comparison: Quix Streams' PostgreSQLSink against our
    /// consumer on the same topic (needs --peer-python; scripts/bench.sh --peer
    /// installs Quix Streams and passes it).
    #[arg(long)]
    pub peer: bool,
    /// The Python that has Quix Streams installed, for the peer stage.
    #[arg(long)]
    pub peer_python: Option<PathBuf>,
    /// Run only these stages (comma-separated: ceilings, e2e, grpc, latency, live, scaling, storage, sweep, peer).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Write the results as JSON here too.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Events pre-filled for the end-to-end drain and the peer stage (default 1,000,000; quick 20,000).
    #[arg(long)]
    pub events: Option<u64>,
    /// Producer rate for the latency run, events/s.
    #[arg(long, default_value_t = 5000)]
    pub latency_rate: u64,
    /// Length of the latency run, seconds (default 60; quick 5).
    #[arg(long)]
    pub latency_secs: Option<u64>,
    /// Live-feed streams open during the live stage (a fifth take every
    /// event, the rest are sampled like the dashboard's).
    #[arg(long, default_value_t = 50)]
    pub live_clients: usize,
    /// Consumer batch size (default: the consumer's own default).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Consumer linger, milliseconds (default: the consumer's own default).
    #[arg(long)]
    pub linger_ms: Option<u64>,
    /// Extra librdkafka properties for the consumer, KEY=VALUE (e.g. fetch settings).
    #[arg(short = 'X')]
    pub kafka_properties: Vec<String>,
    /// Folder holding eventpulse-consumer, -producer and -api (release builds).
    #[arg(long, default_value = "target/release")]
    pub bin_dir: PathBuf,
}

impl BenchArgs {
    /// Whether `stage` runs: every stage by default, but the sweep only with
    /// --sweep and the peer only with --peer (it installs Quix Streams, which
    /// CI's quick run must not).
    pub fn runs(&self, stage: &str) -> bool {
        if stage == "peer" && self.peer {
            return true;
        }
        if self.only.is_empty() {
            match stage {
                "sweep" => self.sweep,
                "peer" => false,
                _ => true,
            }
        } else {
            self.only.iter().any(|s| s == stage)
        }
    }

    pub fn events(&self) -> u64 {
        self.events
            .unwrap_or(if self.quick { 20_000 } else { 1_000_000 })
    }

    pub fn latency_secs(&self) -> u64 {
        self.latency_secs.unwrap_or(if self.quick { 5 } else { 60 })
    }

    /// Events per consumer-count step of the scaling run.
    pub fn scaling_events(&self) -> u64 {
        if self.quick {
            20_000
        } else {
            300_000
        }
    }

    /// Events the producer sends through the API's gRPC ingestion.
    pub fn grpc_events(&self) -> u64 {
        if self.quick {
            5_000
        } else {
            200_000
        }
    }

    /// Rows for each component ceiling.
    pub fn ceiling_rows(&self) -> usize {
        if self.quick {
            20_000
        } else {
            200_000
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> BenchArgs {
        BenchArgs::parse_from(std::iter::once("eventpulse-bench").chain(args.iter().copied()))
    }

    #[test]
    fn the_peer_runs_only_when_asked_for() {
        assert!(!parse(&[]).runs("peer"));
        assert!(!parse(&["--quick"]).runs("peer"));
        assert!(parse(&[]).runs("e2e"));
        assert!(parse(&["--peer"]).runs("peer"));
        assert!(parse(&["--peer"]).runs("e2e"));
        let alone = parse(&["--only", "peer"]);
        assert!(alone.runs("peer") && !alone.runs("e2e"));
        assert!(parse(&["--only", "e2e", "--peer"]).runs("peer"));
    }

    #[test]
    fn grpc_runs_by_default_and_alone() {
        assert!(parse(&[]).runs("grpc"));
        assert!(parse(&["--quick"]).runs("grpc"));
        let alone = parse(&["--quick", "--only", "grpc"]);
        assert!(alone.runs("grpc") && !alone.runs("e2e") && !alone.runs("ceilings"));
        assert_eq!(alone.grpc_events(), 5_000);
        assert_eq!(parse(&[]).grpc_events(), 200_000);
    }
}
