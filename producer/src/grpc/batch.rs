//! How records are grouped into `PushBatch` calls, and how a refused batch
//! is cut up for the next try. No I/O: the lane ([`super::lane`]) feeds it.
//!
//! A batch ends at [`BatchLimits::max_records`] or when the next record
//! would take it past [`BatchLimits::max_bytes`], whichever comes first. Both
//! defaults sit under the API's own defaults (`--max-batch-events` 500,
//! `--max-body-bytes` 1 MiB), so a default API never refuses a batch for its
//! size; one against an API with lower limits still works, more slowly, by
//! halving (see [`super::verdict`]).

use std::time::Duration;

/// A record's bytes, as handed to the sink.
pub type Record = Vec<u8>;

/// Protobuf framing per record inside an `EventBatch`: the `events` field's
/// tag and length, the `json` field's tag and length (at most 1 + 3 bytes
/// each for records under 2 MiB).
pub const FRAMING_BYTES: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    pub max_records: usize,
    /// Encoded size a batch stays under. A single record larger than this is
    /// still sent, alone: the API decides whether it is too large.
    pub max_bytes: usize,
    /// How long a batch waits for more records after its first.
    pub linger: Duration,
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self {
            max_records: 500,
            // Half the API's default body limit: a batch never comes near it,
            // even with the producer's oversize records (up to ~192 KiB) in it.
            max_bytes: 512 * 1024,
            // Long enough to fill a batch at a few tens of thousands of
            // records a second; short enough not to show at low rates.
            linger: Duration::from_millis(10),
        }
    }
}

/// A batch being filled.
#[derive(Debug)]
pub struct BatchBuilder {
    limits: BatchLimits,
    records: Vec<Record>,
    bytes: usize,
}

impl BatchBuilder {
    pub fn new(limits: BatchLimits, first: Record) -> Self {
        let mut records = Vec::with_capacity(limits.max_records.min(1024));
        let bytes = first.len() + FRAMING_BYTES;
        records.push(first);
        Self {
            limits,
            records,
            bytes,
        }
    }

    /// Adds `record`, or hands it back when it belongs to the next batch.
    pub fn push(&mut self, record: Record) -> Result<(), Record> {
        let bytes = record.len() + FRAMING_BYTES;
        if self.is_full() || self.bytes + bytes > self.limits.max_bytes {
            return Err(record);
        }
        self.bytes += bytes;
        self.records.push(record);
        Ok(())
    }

    /// No further record fits.
    pub fn is_full(&self) -> bool {
        self.records.len() >= self.limits.max_records || self.bytes >= self.limits.max_bytes
    }

    pub fn into_records(self) -> Vec<Record> {
        self.records
    }
}

/// The two halves of a batch (the first one the larger), in order.
pub fn halves(mut batch: Vec<Record>) -> (Vec<Record>, Vec<Record>) {
    let second = batch.split_off(batch.len().div_ceil(2));
    (batch, second)
}

/// `batch` without the records at `refused` (sorted, distinct, in range),
/// in order: what is sent again after the API named those invalid.
pub fn without(batch: Vec<Record>, refused: &[usize]) -> Vec<Record> {
    let mut refused = refused.iter().copied().peekable();
    batch
        .into_iter()
        .enumerate()
        .filter(|(index, _)| {
            let drop = refused.peek() == Some(index);
            if drop {
                refused.next();
            }
            !drop
        })
        .map(|(_, record)| record)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_records: usize, max_bytes: usize) -> BatchLimits {
        BatchLimits {
            max_records,
            max_bytes,
            linger: Duration::ZERO,
        }
    }

    fn records(n: u8) -> Vec<Record> {
        (0..n).map(|i| vec![i]).collect()
    }

    #[test]
    fn a_batch_ends_at_the_record_limit() {
        let mut batch = BatchBuilder::new(limits(3, 1 << 20), vec![0]);
        assert_eq!(batch.push(vec![1]), Ok(()));
        assert_eq!(batch.push(vec![2]), Ok(()));
        assert!(batch.is_full());
        assert_eq!(batch.push(vec![3]), Err(vec![3]));
        assert_eq!(batch.into_records(), records(3));
    }

    #[test]
    fn a_batch_ends_before_the_byte_limit() {
        // 100 + 8 framing each: two fit under 250, the third would not.
        let mut batch = BatchBuilder::new(limits(500, 250), vec![0; 100]);
        assert_eq!(batch.push(vec![1; 100]), Ok(()));
        assert!(!batch.is_full());
        assert_eq!(batch.push(vec![2; 100]), Err(vec![2; 100]));
        // A smaller record still fits.
        assert_eq!(batch.push(vec![3; 10]), Ok(()));
        assert_eq!(batch.into_records().len(), 3);
    }

    #[test]
    fn a_record_over_the_byte_limit_goes_alone() {
        let mut batch = BatchBuilder::new(limits(500, 250), vec![0; 1000]);
        assert!(batch.is_full());
        assert_eq!(batch.push(vec![1]), Err(vec![1]));
        assert_eq!(batch.into_records().len(), 1);
    }

    #[test]
    fn halves_keep_order_and_every_record() {
        assert_eq!(
            halves(records(5)),
            (records(3), (3..5).map(|i| vec![i]).collect())
        );
        assert_eq!(halves(records(2)), (records(1), vec![vec![1]]));
    }

    #[test]
    fn without_drops_exactly_the_refused_indexes() {
        let rest = without(records(6), &[0, 2, 5]);
        assert_eq!(rest, vec![vec![1], vec![3], vec![4]]);
        assert_eq!(without(records(3), &[]), records(3));
        assert!(without(records(2), &[0, 1]).is_empty());
    }
}
