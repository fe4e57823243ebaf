//! Already sent records kept for re-sending as duplicates.
//!
//! Real duplicates come from producer retries (the same record again right
//! away) and from replays (a record from long ago). Half the duplicates
//! re-send the latest valid record; the other half pick from a bounded,
//! uniform sample of everything sent so far (reservoir sampling, Algorithm R),
//! so a duplicate can trail its original by the whole run while memory stays
//! at [`RESERVOIR_CAPACITY`] records.

use rand::Rng;

/// Records kept for late duplicates (a few MiB of typical events).
pub const RESERVOIR_CAPACITY: usize = 10_000;

/// A sent record: its key and its exact bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRecord {
    pub key: String,
    pub payload: Vec<u8>,
}

#[derive(Debug)]
pub struct Reservoir {
    latest: Option<SentRecord>,
    sample: Vec<SentRecord>,
    capacity: usize,
    offered: u64,
}

impl Reservoir {
    pub fn new(capacity: usize) -> Self {
        Self {
            latest: None,
            sample: Vec::with_capacity(capacity.min(1024)),
            capacity: capacity.max(1),
            offered: 0,
        }
    }

    /// Remembers a valid record that was just sent.
    pub fn offer<R: Rng + ?Sized>(&mut self, record: SentRecord, rng: &mut R) {
        self.offered += 1;
        if self.sample.len() < self.capacity {
            self.sample.push(record.clone());
        } else {
            let slot = rng.random_range(0..self.offered);
            if let Some(kept) = self.sample.get_mut(slot as usize) {
                *kept = record.clone();
            }
        }
        self.latest = Some(record);
    }

    /// A record to re-send, or `None` if nothing valid was sent yet.
    pub fn pick<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<&SentRecord> {
        if self.sample.is_empty() || rng.random_bool(0.5) {
            return self.latest.as_ref();
        }
        Some(&self.sample[rng.random_range(0..self.sample.len())])
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    fn record(n: u64) -> SentRecord {
        SentRecord {
            key: format!("user-{n}"),
            payload: n.to_string().into_bytes(),
        }
    }

    #[test]
    fn empty_reservoir_has_nothing_to_pick() {
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(Reservoir::new(10).pick(&mut rng), None);
    }

    #[test]
    fn picks_are_sent_records_both_recent_and_old() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut reservoir = Reservoir::new(100);
        for n in 0..10_000 {
            reservoir.offer(record(n), &mut rng);
        }
        assert_eq!(reservoir.sample.len(), 100);
        let picks: Vec<u64> = (0..1000)
            .map(|_| {
                let picked = reservoir.pick(&mut rng).unwrap();
                let n: u64 = String::from_utf8(picked.payload.clone())
                    .unwrap()
                    .parse()
                    .unwrap();
                assert_eq!(
                    picked.key,
                    format!("user-{n}"),
                    "key and payload were split up"
                );
                n
            })
            .collect();
        let latest = picks.iter().filter(|&&n| n == 9_999).count();
        assert!(
            (400..600).contains(&latest),
            "{latest} of 1000 picks were the latest"
        );
        // A uniform sample over 10,000 records: many picks come from the first half.
        let old = picks.iter().filter(|&&n| n < 5_000).count();
        assert!(
            old > 150,
            "only {old} picks were from the first half of the run"
        );
    }
}
