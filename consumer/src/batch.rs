//! The unit of work: messages accumulated since the last flush, already
//! validated, plus the next offset per partition they cover. A batch becomes
//! durable as a whole (see `flush`), so its offsets can advance as a whole.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use eventpulse_events::{EventType, Rejection, ValidEvent};
use uuid::Uuid;

/// Where a message came from in the consumed topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub partition: i32,
    pub offset: i64,
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

#[derive(Debug, Default)]
pub struct Batch {
    pub events: Vec<PendingEvent>,
    pub rejects: Vec<RejectedMessage>,
    next_offsets: BTreeMap<i32, i64>,
}

impl Batch {
    /// Messages in the batch, valid or not.
    pub fn len(&self) -> usize {
        self.events.len() + self.rejects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn push_event(&mut self, pending: PendingEvent) {
        self.cover(pending.origin);
        self.events.push(pending);
    }

    pub fn push_reject(&mut self, reject: RejectedMessage) {
        self.cover(reject.origin);
        self.rejects.push(reject);
    }

    fn cover(&mut self, origin: Origin) {
        let next = self.next_offsets.entry(origin.partition).or_insert(0);
        *next = (*next).max(origin.offset + 1);
    }

    /// The offset to resume from, per partition, once this batch is durable.
    pub fn next_offsets(&self) -> Vec<(i32, i64)> {
        self.next_offsets.iter().map(|(p, o)| (*p, *o)).collect()
    }

    /// Forgets the messages of partitions this consumer no longer owns: their
    /// offsets were not committed, so the new owner will read them again.
    pub fn drop_partitions(&mut self, revoked: &[i32]) -> usize {
        let before = self.len();
        self.events
            .retain(|e| !revoked.contains(&e.origin.partition));
        self.rejects
            .retain(|r| !revoked.contains(&r.origin.partition));
        self.next_offsets.retain(|p, _| !revoked.contains(p));
        before - self.len()
    }

    /// The events to store, first occurrence of each id only, and how many
    /// later copies were dropped. Offsets still cover the copies.
    pub fn unique_events(&self) -> (Vec<&PendingEvent>, u64) {
        let mut seen = HashSet::with_capacity(self.events.len());
        let unique: Vec<_> = self
            .events
            .iter()
            .filter(|e| seen.insert(e.event.event_id))
            .collect();
        let dropped = (self.events.len() - unique.len()) as u64;
        (unique, dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eventpulse_events::{EventType, RejectReason};

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
            origin: Origin { partition, offset },
            key: None,
            value: Vec::new(),
        }
    }

    fn reject(partition: i32, offset: i64) -> RejectedMessage {
        RejectedMessage {
            origin: Origin { partition, offset },
            key: None,
            value: Some(b"x".to_vec()),
            rejection: Rejection::new(RejectReason::MalformedJson, "x"),
        }
    }

    #[test]
    fn offsets_cover_every_message_including_rejects_and_copies() {
        let mut batch = Batch::default();
        batch.push_event(event(1, 0, 10));
        batch.push_event(event(1, 0, 11));
        batch.push_reject(reject(0, 12));
        batch.push_event(event(2, 3, 5));
        assert_eq!(batch.len(), 4);
        assert_eq!(batch.next_offsets(), vec![(0, 13), (3, 6)]);
        let (unique, dropped) = batch.unique_events();
        assert_eq!(unique.len(), 2);
        assert_eq!(dropped, 1);
        assert_eq!(unique[0].origin.offset, 10, "the first copy is kept");
    }

    #[test]
    fn revoked_partitions_leave_no_trace() {
        let mut batch = Batch::default();
        batch.push_event(event(1, 0, 1));
        batch.push_reject(reject(1, 7));
        batch.push_event(event(2, 2, 3));
        assert_eq!(batch.drop_partitions(&[0, 1]), 2);
        assert_eq!(batch.next_offsets(), vec![(2, 4)]);
        assert_eq!(batch.len(), 1);
    }
}
