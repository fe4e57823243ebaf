//! Outcomes of the records handed to the gRPC sink, counted by the lanes
//! and read by the sink's caller (progress, summary).
//!
//! Like the Kafka sink's delivery counter: atomics, so reading the counts
//! for the progress bar costs nothing, and failures kept by kind, so the
//! first of each kind is logged once and the totals are reported at the end
//! instead of one log line per failed batch.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tonic::Status;

use crate::sink::Deliveries;

#[derive(Debug, Default)]
pub struct Counts {
    acked: AtomicU64,
    failed: AtomicU64,
    refused: AtomicU64,
    /// Failed records by kind of failure.
    failures: Mutex<BTreeMap<String, u64>>,
}

impl Counts {
    pub fn acked(&self, records: usize) {
        self.acked.fetch_add(records as u64, Ordering::Relaxed);
    }

    pub fn refused(&self, records: usize) {
        self.refused.fetch_add(records as u64, Ordering::Relaxed);
    }

    /// Counts `records` as failed because of `status`; logs the first
    /// failure of each kind (`what` says what was given up on).
    pub fn failed(&self, records: usize, status: &Status, what: &str) {
        self.failed.fetch_add(records as u64, Ordering::Relaxed);
        let kind = format!("{what}: {}", describe(status));
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let seen = failures.entry(kind).or_insert(0);
        if *seen == 0 {
            tracing::warn!(
                "{what}: {} (further ones are counted, not logged)",
                describe(status)
            );
        }
        *seen += records as u64;
    }

    /// Counts `records` that never got an answer (a second stop request
    /// gave up on them) as failed, without a kind to log.
    pub fn abandoned(&self, records: u64) {
        self.failed.fetch_add(records, Ordering::Relaxed);
    }

    pub fn deliveries(&self) -> Deliveries {
        Deliveries {
            acked: self.acked.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }

    /// One line per kind of failure with its count, ahead of the summary.
    pub fn report_failures(&self) {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        for (kind, records) in failures.iter() {
            tracing::warn!("{records} record(s) failed: {kind}");
        }
    }
}

/// `Unavailable: the broker did not acknowledge in time`: the code and the
/// message, on one line (a `Status`'s own `Display` adds its metadata).
pub fn describe(status: &Status) -> String {
    let message = status.message().trim();
    if message.is_empty() {
        format!("{:?}", status.code())
    } else {
        format!("{:?}: {}", status.code(), message.replace('\n', " "))
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn failures_are_counted_by_kind() {
        let counts = Counts::default();
        counts.acked(500);
        counts.refused(3);
        let denied = Status::new(Code::Unauthenticated, "unknown API key");
        counts.failed(500, &denied, "the API refused the batch");
        counts.failed(200, &denied, "the API refused the batch");
        counts.abandoned(7);
        assert_eq!(
            counts.deliveries(),
            Deliveries {
                acked: 500,
                failed: 707,
                refused: 3
            }
        );
        let failures = counts.failures.lock().unwrap();
        assert_eq!(
            failures.get("the API refused the batch: Unauthenticated: unknown API key"),
            Some(&700)
        );
    }
}
