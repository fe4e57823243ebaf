//! Where a newly assigned partition starts. Postgres holds the truth (the
//! position written with the rows); Kafka's watermarks and committed offset
//! are checked against it, because each disagreement means something that
//! must not be handled by skipping:
//!
//! - stored offset past the high watermark, or the record just before it no
//!   longer the one stored (its Kafka timestamp differs): the offsets are being
//!   reused (topic deleted and recreated, log truncated or replaced): start a
//!   new epoch from the earliest message instead of skipping everything below
//!   the old offset;
//! - Kafka's committed offset ahead of Postgres (Kafka is only committed after
//!   Postgres, and Redis only confirmed after Kafka): Postgres lost commits
//!   (restored from a backup, failed over to a standby that lagged), so Redis
//!   "stored" marks may vouch for rows that no longer exist: re-read from the
//!   Postgres position and stop trusting every mark written so far.
//!
//! [`decide`] is the pure decision; [`crate::resolve`] gathers its inputs,
//! retrying each dependency until it answers or shutdown is requested.

use crate::position::{Position, StoredPosition};

/// What Kafka says about one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KafkaView {
    pub low: i64,
    pub high: i64,
    /// The group's committed offset, if any.
    pub committed: Option<i64>,
    /// The timestamp of the record just before the stored position, if it
    /// could be read (it may be gone to retention or compaction).
    pub record_before_ms: Option<i64>,
}

/// What gives reused offsets away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReuseSign {
    /// The stored offset is past the partition's high watermark.
    PastTheEnd,
    /// The record before the stored offset is not the one stored.
    OtherRecord { stored_ms: i64, found_ms: i64 },
}

/// Where to start, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// From the stored position (the normal case).
    Stored(Position),
    /// Nothing stored: from the earliest message.
    Fresh,
    /// The offsets are being reused: a new epoch, from the earliest message.
    Reused {
        stored: Position,
        low: i64,
        high: i64,
        sign: ReuseSign,
    },
    /// Kafka is ahead of Postgres: from the stored position (or the start),
    /// with every Redis mark distrusted.
    PostgresBehind {
        stored: Option<Position>,
        committed: i64,
    },
}

impl Resume {
    /// The epoch and offset librdkafka is told to start at (`None`: earliest).
    pub fn start(&self) -> (i32, Option<i64>) {
        match *self {
            Self::Stored(at)
            | Self::PostgresBehind {
                stored: Some(at), ..
            } => (at.epoch, Some(at.offset)),
            Self::Fresh | Self::PostgresBehind { stored: None, .. } => (0, None),
            Self::Reused { stored, .. } => (stored.epoch + 1, None),
        }
    }

    /// The metric label of an anomaly, `None` for the normal cases.
    pub fn anomaly(&self) -> Option<&'static str> {
        match self {
            Self::Stored(_) | Self::Fresh => None,
            Self::Reused { .. } => Some("offsets_reused"),
            Self::PostgresBehind { .. } => Some("postgres_behind_kafka"),
        }
    }
}

pub fn decide(stored: Option<StoredPosition>, kafka: KafkaView) -> Resume {
    if let Some(stored) = stored {
        if let Some(sign) = reuse_sign(stored, kafka) {
            return Resume::Reused {
                stored: stored.at.position,
                low: kafka.low,
                high: kafka.high,
                sign,
            };
        }
    }
    let stored = stored.map(|s| s.at.position);
    let stored_offset = stored.map_or(0, |s| s.offset);
    match kafka.committed {
        Some(committed) if committed > stored_offset => {
            Resume::PostgresBehind { stored, committed }
        }
        _ => stored.map_or(Resume::Fresh, Resume::Stored),
    }
}

fn reuse_sign(stored: StoredPosition, kafka: KafkaView) -> Option<ReuseSign> {
    if stored.at.position.offset > kafka.high {
        return Some(ReuseSign::PastTheEnd);
    }
    match (stored.last_record_ms, kafka.record_before_ms) {
        (Some(stored_ms), Some(found_ms)) if stored_ms != found_ms => {
            Some(ReuseSign::OtherRecord {
                stored_ms,
                found_ms,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::position::PartitionOffset;

    fn at(offset: i64) -> Position {
        Position { epoch: 0, offset }
    }

    /// Stored at `offset`, the record before it stamped `offset - 1`.
    fn stored(offset: i64) -> Option<StoredPosition> {
        Some(StoredPosition {
            at: PartitionOffset {
                partition: 0,
                position: at(offset),
            },
            last_record_ms: Some(offset - 1),
        })
    }

    /// Kafka's view when the record before `offset` is still the stored one.
    fn kafka(high: i64, committed: Option<i64>, offset: i64) -> KafkaView {
        KafkaView {
            low: 0,
            high,
            committed,
            record_before_ms: (offset <= high).then_some(offset - 1),
        }
    }

    #[test]
    fn the_stored_position_is_used_when_kafka_agrees() {
        assert_eq!(
            decide(stored(10), kafka(50, Some(8), 10)),
            Resume::Stored(at(10))
        );
        assert_eq!(
            decide(stored(50), kafka(50, Some(50), 50)),
            Resume::Stored(at(50))
        );
        assert_eq!(decide(None, kafka(50, None, 0)), Resume::Fresh);
        let unreadable = KafkaView {
            record_before_ms: None,
            ..kafka(50, None, 10)
        };
        assert_eq!(
            decide(stored(10), unreadable),
            Resume::Stored(at(10)),
            "a record gone to retention cannot be checked: the position stands"
        );
    }

    #[test]
    fn a_stored_offset_past_the_end_starts_a_new_epoch_from_the_start() {
        let resume = decide(stored(10_000), kafka(1_000, Some(10_000), 10_000));
        assert_eq!(
            resume,
            Resume::Reused {
                stored: at(10_000),
                low: 0,
                high: 1_000,
                sign: ReuseSign::PastTheEnd,
            }
        );
        assert_eq!(resume.start(), (1, None));
        assert_eq!(resume.anomaly(), Some("offsets_reused"));
    }

    #[test]
    fn another_record_before_the_stored_offset_starts_a_new_epoch() {
        let replaced = KafkaView {
            record_before_ms: Some(1_700_000_000_000),
            ..kafka(300, None, 300)
        };
        let resume = decide(stored(300), replaced);
        assert_eq!(
            resume,
            Resume::Reused {
                stored: at(300),
                low: 0,
                high: 300,
                sign: ReuseSign::OtherRecord {
                    stored_ms: 299,
                    found_ms: 1_700_000_000_000
                },
            }
        );
        assert_eq!(resume.start(), (1, None));
    }

    #[test]
    fn kafka_ahead_of_postgres_means_postgres_lost_commits() {
        let resume = decide(stored(100), kafka(500, Some(300), 100));
        assert_eq!(
            resume,
            Resume::PostgresBehind {
                stored: Some(at(100)),
                committed: 300
            }
        );
        assert_eq!(resume.start(), (0, Some(100)), "re-read what Postgres lost");
        let empty = decide(None, kafka(500, Some(300), 0));
        assert_eq!(empty.start(), (0, None));
        assert_eq!(empty.anomaly(), Some("postgres_behind_kafka"));
    }
}
