//! What a run sent, for humans (stderr) and for scripts (`--summary-json`).
//!
//! The JSON keys are an interface: the end-to-end checks read them to know
//! what the consumer should have stored (`valid_unique`, `valid_by_type`) and
//! dead-lettered (`invalid_total`, `invalid_by_kind`). Every event type and
//! invalid kind is always present, with 0 if none was sent, so scripts can
//! index without defaults. `refused` is what eventpulse-api turned away
//! (`--via grpc://...`): the invalid records never reach Kafka then, so a
//! check expects them refused rather than dead-lettered.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use eventpulse_events::EventType;
use serde::{Deserialize, Serialize};

use crate::invalid::InvalidKind;
use crate::traffic::Outcome;

/// Counts of records handed to the sink, by what they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    valid_by_type: [u64; EventType::ALL.len()],
    invalid_by_kind: [u64; InvalidKind::ALL.len()],
    duplicates: u64,
}

impl Tally {
    pub fn record(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Valid(kind) => self.valid_by_type[type_index(kind)] += 1,
            Outcome::Duplicate => self.duplicates += 1,
            Outcome::Invalid(kind) => self.invalid_by_kind[kind_index(kind)] += 1,
        }
    }

    pub fn valid_unique(&self) -> u64 {
        self.valid_by_type.iter().sum()
    }

    pub fn invalid_total(&self) -> u64 {
        self.invalid_by_kind.iter().sum()
    }

    pub fn sent_total(&self) -> u64 {
        self.valid_unique() + self.duplicates + self.invalid_total()
    }
}

fn type_index(kind: EventType) -> usize {
    EventType::ALL
        .iter()
        .position(|t| *t == kind)
        .expect("ALL lists every type")
}

fn kind_index(kind: InvalidKind) -> usize {
    InvalidKind::ALL
        .iter()
        .position(|k| *k == kind)
        .expect("ALL lists every kind")
}

/// The final report. Field order is the JSON key order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub sent_total: u64,
    /// Distinct valid events: the rows the consumer must store.
    pub valid_unique: u64,
    pub duplicates: u64,
    /// Records the consumer must dead-letter.
    pub invalid_total: u64,
    pub invalid_by_kind: BTreeMap<String, u64>,
    pub valid_by_type: BTreeMap<String, u64>,
    pub acked: u64,
    pub failed: u64,
    /// Refused by the API as invalid or too large; 0 unless `--via grpc://...`
    /// (absent from summaries written before gRPC, hence the default).
    #[serde(default)]
    pub refused: u64,
    pub elapsed_secs: f64,
    pub rate_achieved: f64,
    pub seed: Option<u64>,
    /// The topic; `-` for stdout, the file path, or the API's `grpc://` URL
    /// when not producing to Kafka.
    pub topic: String,
}

/// The parts of a [`Summary`] that are not counted from the records.
#[derive(Debug, Clone)]
pub struct RunFacts {
    pub acked: u64,
    pub failed: u64,
    pub refused: u64,
    pub elapsed: Duration,
    pub seed: Option<u64>,
    pub topic: String,
}

impl Summary {
    pub fn new(tally: &Tally, facts: RunFacts) -> Self {
        let sent_total = tally.sent_total();
        let elapsed_secs = facts.elapsed.as_secs_f64();
        let rate_achieved = if elapsed_secs > 0.0 {
            sent_total as f64 / elapsed_secs
        } else {
            0.0
        };
        Self {
            sent_total,
            valid_unique: tally.valid_unique(),
            duplicates: tally.duplicates,
            invalid_total: tally.invalid_total(),
            invalid_by_kind: InvalidKind::ALL
                .iter()
                .map(|k| (k.name().to_string(), tally.invalid_by_kind[kind_index(*k)]))
                .collect(),
            valid_by_type: EventType::ALL
                .iter()
                .map(|t| (t.as_str().to_string(), tally.valid_by_type[type_index(*t)]))
                .collect(),
            acked: facts.acked,
            failed: facts.failed,
            refused: facts.refused,
            elapsed_secs,
            rate_achieved,
            seed: facts.seed,
            topic: facts.topic,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("summaries always serialise")
    }

    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.to_json() + "\n")
    }
}

/// `a 1, b 2` for the non-zero entries, `none` if all are zero.
fn breakdown(counts: &BTreeMap<String, u64>) -> String {
    let parts: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "sent {} records to {} in {:.2} s ({:.0} records/s)",
            self.sent_total, self.topic, self.elapsed_secs, self.rate_achieved
        )?;
        let by_type = breakdown(&self.valid_by_type);
        writeln!(f, "  valid       {:>10}  ({by_type})", self.valid_unique)?;
        writeln!(f, "  duplicates  {:>10}", self.duplicates)?;
        let by_kind = breakdown(&self.invalid_by_kind);
        writeln!(f, "  invalid     {:>10}  ({by_kind})", self.invalid_total)?;
        writeln!(f, "  acked       {:>10}", self.acked)?;
        writeln!(f, "  refused     {:>10}  (by the API)", self.refused)?;
        write!(f, "  failed      {:>10}", self.failed)?;
        if let Some(seed) = self.seed {
            write!(f, "\n  seed        {seed:>10}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_the_agreed_keys_with_every_type_and_kind() {
        let mut tally = Tally::default();
        tally.record(Outcome::Valid(EventType::Login));
        tally.record(Outcome::Valid(EventType::Login));
        tally.record(Outcome::Duplicate);
        tally.record(Outcome::Invalid(InvalidKind::BadIp));
        let facts = RunFacts {
            acked: 4,
            failed: 0,
            refused: 0,
            elapsed: Duration::from_secs(2),
            seed: Some(7),
            topic: "events".into(),
        };
        let json: serde_json::Value =
            serde_json::from_str(&Summary::new(&tally, facts).to_json()).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = vec![
            "sent_total",
            "valid_unique",
            "duplicates",
            "invalid_total",
            "invalid_by_kind",
            "valid_by_type",
            "acked",
            "failed",
            "refused",
            "elapsed_secs",
            "rate_achieved",
            "seed",
            "topic",
        ];
        expected.sort_unstable();
        let mut keys_sorted = keys.clone();
        keys_sorted.sort_unstable();
        assert_eq!(keys_sorted, expected);
        assert_eq!(json["sent_total"], 4);
        assert_eq!(json["valid_unique"], 2);
        assert_eq!(json["valid_by_type"]["login"], 2);
        assert_eq!(json["valid_by_type"]["form_submit"], 0);
        assert_eq!(json["invalid_by_kind"]["bad_ip"], 1);
        assert_eq!(
            json["invalid_by_kind"].as_object().unwrap().len(),
            InvalidKind::ALL.len()
        );
        assert_eq!(json["rate_achieved"], 2.0);
        assert_eq!(json["seed"], 7);
    }

    #[test]
    fn text_lists_only_the_kinds_that_occurred() {
        let mut tally = Tally::default();
        tally.record(Outcome::Invalid(InvalidKind::Oversize));
        let facts = RunFacts {
            acked: 1,
            failed: 0,
            refused: 0,
            elapsed: Duration::ZERO,
            seed: None,
            topic: "t".into(),
        };
        let text = Summary::new(&tally, facts).to_string();
        assert!(text.contains("(oversize 1)"), "{text}");
        assert!(text.contains("(none)"), "{text}");
        assert!(!text.contains("seed"), "{text}");
    }
}
