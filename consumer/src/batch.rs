//! The unit of work: messages accumulated since the last flush, already
//! validated, plus how far each partition they cover will have advanced once
//! the batch is durable. A batch becomes durable as a whole (see `flush`), so
//! its offsets can advance as a whole. Its size is counted in bytes as well as
//! messages, so memory stays bounded whatever the message sizes.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use eventpulse_events::{EventType, Rejection, ValidEvent};
use uuid::Uuid;

use crate::partitions::Stamp;
use crate::position::{Generation, PartitionOffset, Position, StoredPosition};

/// Where a message came from in the consumed topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub partition: i32,
    pub offset: i64,
    /// The partition's offset epoch (see `position.rs`).
    pub epoch: i32,
    /// The record's Kafka timestamp, if it has one.
    pub timestamp_ms: Option<i64>,
}

/// A validated event as it will be stored. The payload is kept as JSON text,
/// not as a parsed map: a batch holds thousands of these (two batches while
/// one flushes), and the text is what the insert sends anyway, so it is
/// serialised once, while the previous batch is still flushing.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub event_id: Uuid,
    pub event_type: EventType,
    pub user_id: String,
    pub occurred_at: DateTime<Utc>,
    pub payload: String,
}

impl From<ValidEvent> for EventRow {
    fn from(event: ValidEvent) -> Self {
        Self {
            payload: serde_json::to_string(&event.payload).expect("JSON values serialise"),
            event_id: event.event_id,
            event_type: event.event_type,
            user_id: event.user_id,
            occurred_at: event.occurred_at,
        }
    }
}

/// A valid event waiting to be stored. The original key and bytes are kept
/// because Postgres may still refuse the row, and then it is dead-lettered
/// exactly as it arrived.
#[derive(Debug, Clone)]
pub struct PendingEvent {
    pub event: EventRow,
    pub origin: Origin,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
}

/// A message bound for the dead-letter topic, bytes kept as they arrived.
#[derive(Debug, Clone)]
pub struct RejectedMessage {
    pub origin: Origin,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub rejection: Rejection,
}

/// What a buffered message costs beyond its bytes (structs, ids, vectors):
/// measured roughly, so that many tiny messages also count.
const OVERHEAD_BYTES: usize = 160;

impl PendingEvent {
    pub fn bytes(&self) -> usize {
        let row = &self.event;
        OVERHEAD_BYTES
            + self.value.len()
            + self.key.as_ref().map_or(0, Vec::len)
            + row.payload.len()
            + row.user_id.len()
    }
}

impl RejectedMessage {
    pub fn bytes(&self) -> usize {
        OVERHEAD_BYTES
            + self.value.as_ref().map_or(0, Vec::len)
            + self.key.as_ref().map_or(0, Vec::len)
            + self.rejection.detail.len()
    }
}

/// How far one partition's messages in the batch reach, and under which
/// ownership generation they were read.
#[derive(Debug, Clone, Copy)]
struct Reach {
    generation: Generation,
    next: Position,
    /// The timestamp of the record at `next - 1`.
    last_record_ms: Option<i64>,
}

#[derive(Debug, Default)]
pub struct Batch {
    pub events: Vec<PendingEvent>,
    pub rejects: Vec<RejectedMessage>,
    reach: BTreeMap<i32, Reach>,
    bytes: usize,
}

impl Batch {
    /// Messages in the batch, valid or not.
    pub fn len(&self) -> usize {
        self.events.len() + self.rejects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the batch's messages occupy in memory, approximately.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn push_event(&mut self, pending: PendingEvent, stamp: Stamp) {
        self.cover(pending.origin, stamp);
        self.bytes += pending.bytes();
        self.events.push(pending);
    }

    pub fn push_reject(&mut self, reject: RejectedMessage, stamp: Stamp) {
        self.cover(reject.origin, stamp);
        self.bytes += reject.bytes();
        self.rejects.push(reject);
    }

    fn cover(&mut self, origin: Origin, stamp: Stamp) {
        let next = Position {
            epoch: origin.epoch,
            offset: origin.offset + 1,
        };
        let reach = self.reach.entry(origin.partition).or_insert(Reach {
            generation: stamp.generation,
            next,
            last_record_ms: origin.timestamp_ms,
        });
        if next >= reach.next {
            reach.next = next;
            reach.last_record_ms = origin.timestamp_ms;
        }
    }

    /// The position to resume from, per partition, once this batch is durable.
    pub fn next_offsets(&self) -> Vec<StoredPosition> {
        self.reach
            .iter()
            .map(|(partition, reach)| StoredPosition {
                at: PartitionOffset {
                    partition: *partition,
                    position: reach.next,
                },
                last_record_ms: reach.last_record_ms,
            })
            .collect()
    }

    /// The same, with the generation each partition was read under.
    pub fn progress(&self) -> Vec<(Generation, PartitionOffset)> {
        self.reach
            .iter()
            .map(|(partition, reach)| {
                let position = reach.next;
                let done = PartitionOffset {
                    partition: *partition,
                    position,
                };
                (reach.generation, done)
            })
            .collect()
    }

    /// Forgets the messages of partitions this consumer no longer owns: their
    /// offsets were not committed, so the new owner will read them again.
    pub fn drop_partitions(&mut self, revoked: &[i32]) -> usize {
        let before = self.len();
        self.events
            .retain(|e| !revoked.contains(&e.origin.partition));
        self.rejects
            .retain(|r| !revoked.contains(&r.origin.partition));
        self.reach.retain(|p, _| !revoked.contains(p));
        self.bytes = self.events.iter().map(PendingEvent::bytes).sum::<usize>()
            + self
                .rejects
                .iter()
                .map(RejectedMessage::bytes)
                .sum::<usize>();
        before - self.len()
    }

    /// The events to store, first occurrence of each id only, and the later
    /// copies (offsets still cover them). A copy matters only if Postgres
    /// refuses the first: then the next copy gets its own chance.
    pub fn unique_events(&self) -> (Vec<&PendingEvent>, Vec<&PendingEvent>) {
        let mut seen = HashSet::with_capacity(self.events.len());
        self.events
            .iter()
            .partition(|e| seen.insert(e.event.event_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eventpulse_events::{EventType, RejectReason};

    const STAMP: Stamp = Stamp {
        generation: 1,
        epoch: 0,
    };

    fn origin(partition: i32, offset: i64) -> Origin {
        Origin {
            partition,
            offset,
            epoch: 0,
            timestamp_ms: Some(offset),
        }
    }

    fn event(id: u128, partition: i32, offset: i64) -> PendingEvent {
        let event = ValidEvent {
            event_id: uuid::Uuid::from_u128(id),
            event_type: EventType::Login,
            user_id: "u".into(),
            occurred_at: chrono::Utc::now(),
            payload: Default::default(),
        };
        PendingEvent {
            event: event.into(),
            origin: origin(partition, offset),
            key: None,
            value: vec![b'x'; 1000],
        }
    }

    fn reject(partition: i32, offset: i64) -> RejectedMessage {
        RejectedMessage {
            origin: origin(partition, offset),
            key: None,
            value: Some(b"x".to_vec()),
            rejection: Rejection::new(RejectReason::MalformedJson, "x"),
        }
    }

    /// A stored position; the record before it is the test record at
    /// `offset - 1`, whose timestamp is its offset.
    fn at(partition: i32, epoch: i32, offset: i64) -> StoredPosition {
        StoredPosition {
            at: PartitionOffset {
                partition,
                position: Position { epoch, offset },
            },
            last_record_ms: Some(offset - 1),
        }
    }

    #[test]
    fn offsets_cover_every_message_including_rejects_and_copies() {
        let mut batch = Batch::default();
        batch.push_event(event(1, 0, 10), STAMP);
        batch.push_event(event(1, 0, 11), STAMP);
        batch.push_reject(reject(0, 12), STAMP);
        batch.push_event(event(2, 3, 5), STAMP);
        assert_eq!(batch.len(), 4);
        assert_eq!(batch.next_offsets(), vec![at(0, 0, 13), at(3, 0, 6)]);
        let (unique, copies) = batch.unique_events();
        assert_eq!(unique.len(), 2);
        assert_eq!(copies.len(), 1);
        assert_eq!(unique[0].origin.offset, 10, "the first copy is kept");
        assert_eq!(copies[0].origin.offset, 11);
    }

    #[test]
    fn a_new_epoch_in_the_batch_wins_over_higher_offsets_of_the_old_one() {
        let mut batch = Batch::default();
        batch.push_event(event(1, 0, 9_999), STAMP);
        let mut rewound = event(2, 0, 0);
        rewound.origin.epoch = 1;
        batch.push_event(rewound, Stamp { epoch: 1, ..STAMP });
        assert_eq!(batch.next_offsets(), vec![at(0, 1, 1)]);
    }

    #[test]
    fn bytes_count_what_is_held_and_shrink_with_a_revoke() {
        let mut batch = Batch::default();
        batch.push_event(event(1, 0, 1), STAMP);
        batch.push_event(event(2, 1, 1), STAMP);
        assert!(batch.bytes() >= 2_000, "the raw bytes count");
        let one = batch.bytes() / 2;
        batch.drop_partitions(&[1]);
        assert_eq!(batch.bytes(), one);
    }

    #[test]
    fn revoked_partitions_leave_no_trace() {
        let mut batch = Batch::default();
        batch.push_event(event(1, 0, 1), STAMP);
        batch.push_reject(reject(1, 7), STAMP);
        batch.push_event(event(2, 2, 3), STAMP);
        assert_eq!(batch.drop_partitions(&[0, 1]), 2);
        assert_eq!(batch.next_offsets(), vec![at(2, 0, 4)]);
        assert_eq!(batch.progress(), vec![(1, at(2, 0, 4).at)]);
        assert_eq!(batch.len(), 1);
    }
}
