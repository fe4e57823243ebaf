//! The record stream: simulated events mixed with duplicates and invalid
//! records in the configured proportions, all drawn from one seeded RNG.
//!
//! Each record draws one number to decide what it is: below
//! `invalid_ratio` it is invalid, below `invalid_ratio + duplicate_ratio` it
//! re-sends an earlier valid record, otherwise it is the simulation's next
//! event. The ratios are therefore shares of all records sent.

use chrono::{DateTime, Utc};
use eventpulse_events::EventType;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::duplicates::{Reservoir, SentRecord, RESERVOIR_CAPACITY};
use crate::invalid::InvalidKind;
use crate::simulate::Simulator;

/// What a record is, from the consumer's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A new event the consumer must store.
    Valid(EventType),
    /// A byte-identical copy of an earlier valid record.
    Duplicate,
    /// A record the consumer must dead-letter.
    Invalid(InvalidKind),
}

/// One Kafka record: key = user id, payload = the JSON bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: String,
    pub payload: Vec<u8>,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Copy)]
pub struct TrafficSettings {
    pub users: u64,
    pub duplicate_ratio: f64,
    pub invalid_ratio: f64,
    pub seed: u64,
}

pub struct Traffic {
    rng: StdRng,
    simulator: Simulator,
    reservoir: Reservoir,
    settings: TrafficSettings,
}

impl Traffic {
    pub fn new(settings: TrafficSettings) -> Self {
        let mut rng = StdRng::seed_from_u64(settings.seed);
        let simulator = Simulator::new(settings.users, &mut rng);
        Self {
            rng,
            simulator,
            reservoir: Reservoir::new(RESERVOIR_CAPACITY),
            settings,
        }
    }

    /// The next record, stamped `at` (a duplicate keeps its original's bytes,
    /// timestamp included).
    pub fn next_record(&mut self, at: DateTime<Utc>) -> Record {
        let draw: f64 = self.rng.random();
        if draw < self.settings.invalid_ratio {
            return self.invalid(at);
        }
        if draw < self.settings.invalid_ratio + self.settings.duplicate_ratio {
            if let Some(sent) = self.reservoir.pick(&mut self.rng) {
                return Record {
                    key: sent.key.clone(),
                    payload: sent.payload.clone(),
                    outcome: Outcome::Duplicate,
                };
            }
        }
        self.valid(at)
    }

    fn valid(&mut self, at: DateTime<Utc>) -> Record {
        let event = self.simulator.next_event(&mut self.rng, at);
        let record = Record {
            key: event.user_id().to_string(),
            payload: event.to_json(),
            outcome: Outcome::Valid(event.event_type()),
        };
        // Copying every record into the reservoir costs time that unpaced
        // runs without duplicates should not pay.
        if self.settings.duplicate_ratio > 0.0 {
            let sent = SentRecord {
                key: record.key.clone(),
                payload: record.payload.clone(),
            };
            self.reservoir.offer(sent, &mut self.rng);
        }
        record
    }

    fn invalid(&mut self, at: DateTime<Utc>) -> Record {
        let kind = InvalidKind::random(&mut self.rng);
        let template_type = kind.template_type(&mut self.rng);
        let template = self.simulator.stray_event(&mut self.rng, at, template_type);
        Record {
            key: template.user_id().to_string(),
            payload: kind.corrupt(&template, &mut self.rng),
            outcome: Outcome::Invalid(kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use chrono::TimeDelta;

    use super::*;

    fn records(settings: TrafficSettings, n: u64) -> Vec<Record> {
        let start: DateTime<Utc> = "2026-02-01T00:00:00Z".parse().unwrap();
        let mut traffic = Traffic::new(settings);
        (0..n)
            .map(|i| traffic.next_record(start + TimeDelta::milliseconds(i as i64)))
            .collect()
    }

    fn settings(seed: u64) -> TrafficSettings {
        TrafficSettings {
            users: 100,
            duplicate_ratio: 0.1,
            invalid_ratio: 0.05,
            seed,
        }
    }

    #[test]
    fn same_seed_same_records_other_seed_other_records() {
        assert_eq!(records(settings(9), 5000), records(settings(9), 5000));
        assert_ne!(records(settings(9), 100), records(settings(10), 100));
    }

    #[test]
    fn ratios_are_shares_of_all_records() {
        let all = records(settings(11), 20_000);
        let count = |f: fn(&Outcome) -> bool| all.iter().filter(|r| f(&r.outcome)).count();
        let duplicates = count(|o| *o == Outcome::Duplicate);
        let invalid = count(|o| matches!(o, Outcome::Invalid(_)));
        assert!(
            (1700..2300).contains(&duplicates),
            "{duplicates} duplicates"
        );
        assert!((800..1200).contains(&invalid), "{invalid} invalid");
    }

    #[test]
    fn duplicates_repeat_a_valid_record_exactly() {
        let all = records(settings(12), 5000);
        let mut valid: HashSet<(&str, &[u8])> = HashSet::new();
        for record in &all {
            let pair = (record.key.as_str(), record.payload.as_slice());
            match record.outcome {
                Outcome::Valid(_) => assert!(valid.insert(pair), "a valid record repeated"),
                Outcome::Duplicate => assert!(valid.contains(&pair), "duplicate of nothing sent"),
                Outcome::Invalid(_) => assert!(!valid.contains(&pair)),
            }
        }
    }
}
