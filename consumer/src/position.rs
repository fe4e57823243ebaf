//! Positions in a partition. Kafka offsets alone cannot say "later": a topic
//! recreated or a log truncated hands out the same offsets again. A position
//! is therefore an offset within an *epoch*, and positions compare by epoch
//! first, so "offsets only move forward" stays true across a reuse.

/// The next offset to read of one partition, within an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub epoch: i32,
    pub offset: i64,
}

/// One partition's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffset {
    pub partition: i32,
    pub position: Position,
}

/// A position as Postgres keeps it: with the Kafka timestamp of the record
/// just before it, so a later start can check that this record is still the
/// one at that offset (a recreated topic holds other records there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredPosition {
    pub at: PartitionOffset,
    /// `None`: unknown (no record read yet in this epoch, or no timestamp).
    pub last_record_ms: Option<i64>,
}

/// Which assignment of a partition to this member a message was read under.
/// A partition revoked and assigned again gets a new generation, so work done
/// under the old one can never be committed as the new one's.
pub type Generation = u64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_epoch_is_later_than_any_offset_of_the_old_one() {
        let old = Position {
            epoch: 0,
            offset: 10_000,
        };
        let reused = Position {
            epoch: 1,
            offset: 3,
        };
        assert!(reused > old);
        assert_eq!(old.max(reused), reused);
    }
}
