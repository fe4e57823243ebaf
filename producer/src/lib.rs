//! `eventpulse-producer`: simulated users' events to Kafka, at a chosen rate,
//! with duplicates and invalid records injected on purpose. It is both the
//! traffic simulator users run and the load generator benchmarks use, for
//! the consumer (straight to Kafka) and for eventpulse-api's gRPC ingestion
//! (`--via grpc://...`).
//!
//! How a record is made and sent, in order:
//! - [`config`]: flags and `EVENTPULSE_*` variables, checked while parsing;
//!   [`via`]: the `--via` URL and the API key it needs.
//! - [`pacing`]: when record `i` is due (`start + i / rate`) and when the run ends.
//! - [`clock`]: the simulated clock that stamps events, reproducible when pinned.
//! - [`traffic`]: decides what each record is (valid, duplicate or invalid)
//!   from one seeded RNG, using
//!   - [`simulate`]: users and their sessions, turned into the shared schema's
//!     typed [`eventpulse_events::Event`]s, with field values from [`fake_data`];
//!   - [`duplicates`]: a bounded sample of sent records to re-send byte for byte;
//!   - [`invalid`]: one kind of broken record per way producers get it wrong,
//!     each mapped to the consumer's rejection reason.
//! - [`sink`]: where records go; [`kafka`] is the idempotent librdkafka
//!   producer, [`grpc`] batches records to the API's `PushBatch` (records it
//!   refuses as invalid are counted `refused`, not failed), and
//!   [`sink::WriterSink`] is the JSON-lines output of `--dry-run`.
//! - [`progress`]: the terminal progress bar; [`summary`]: the final counts as
//!   text and as the JSON other steps' checks read.
//! - [`mod@run`]: the loop tying these together. `main.rs` only parses flags,
//!   wires Ctrl-C to a [`StopSignal`] and prints the summary.

pub mod clock;
pub mod config;
pub mod duplicates;
mod error;
pub mod fake_data;
pub mod grpc;
pub mod invalid;
pub mod kafka;
pub mod pacing;
pub mod progress;
pub mod run;
pub mod simulate;
pub mod sink;
pub mod summary;
pub mod traffic;
pub mod via;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

pub use config::Config;
pub use error::ProducerError;
pub use run::run;
pub use summary::Summary;

/// Shared stop requests: the first asks the run to stop producing and wait
/// for outstanding deliveries; the second gives up on those deliveries too.
#[derive(Debug, Clone, Default)]
pub struct StopSignal(Arc<AtomicU8>);

impl StopSignal {
    pub fn request(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    /// Stop producing new records.
    pub fn stopping(&self) -> bool {
        self.0.load(Ordering::SeqCst) >= 1
    }

    /// Stop waiting for deliveries as well.
    pub fn aborting(&self) -> bool {
        self.0.load(Ordering::SeqCst) >= 2
    }
}
