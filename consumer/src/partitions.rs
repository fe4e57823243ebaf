//! Which partitions this consumer owns and where each must resume.
//!
//! On assignment Kafka starts a partition at its committed offset, which
//! trails the offset stored in Postgres (Kafka is committed only after the
//! Postgres transaction). Before the first message of a newly assigned
//! partition is used, the Postgres offset is loaded: messages below it are
//! skipped (already durable), and if Kafka starts past it (the database was
//! restored, or Kafka's offsets were reset) the consumer seeks back once.

use std::collections::HashMap;

/// What to do with one received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Process,
    /// The partition is not assigned to us (a message raced a revoke).
    SkipUnassigned,
    /// Offset already covered by a committed Postgres transaction.
    SkipAlreadyStored,
    /// Kafka is ahead of Postgres: seek the partition back to this offset.
    SeekTo(i64),
    /// The partition's stored offset has not been loaded yet.
    Resolve,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Unresolved,
    /// Next offset expected; `None` once the stored offset no longer matters.
    Resolved(Option<i64>),
    /// Sought back to this offset; the first message at or past it resumes.
    Seeking(i64),
}

#[derive(Debug, Default)]
pub struct Partitions {
    states: HashMap<i32, State>,
}

impl Partitions {
    pub fn assign(&mut self, partitions: &[i32]) {
        for p in partitions {
            self.states.insert(*p, State::Unresolved);
        }
    }

    pub fn revoke(&mut self, partitions: &[i32]) {
        for p in partitions {
            self.states.remove(p);
        }
    }

    pub fn assigned(&self) -> usize {
        self.states.len()
    }

    pub fn is_assigned(&self, partition: i32) -> bool {
        self.states.contains_key(&partition)
    }

    /// Partitions whose stored offset must be loaded before use.
    pub fn unresolved(&self) -> Vec<i32> {
        let mut list: Vec<_> = self
            .states
            .iter()
            .filter(|(_, s)| **s == State::Unresolved)
            .map(|(p, _)| *p)
            .collect();
        list.sort_unstable();
        list
    }

    /// Records the stored offsets for `partitions` (absent = none stored).
    pub fn resolve(&mut self, partitions: &[i32], stored: &[(i32, i64)]) {
        for p in partitions {
            if let Some(state) = self.states.get_mut(p) {
                let floor = stored.iter().find(|(sp, _)| sp == p).map(|(_, o)| *o);
                *state = State::Resolved(floor);
            }
        }
    }

    pub fn admit(&mut self, partition: i32, offset: i64) -> Admission {
        let Some(state) = self.states.get_mut(&partition) else {
            return Admission::SkipUnassigned;
        };
        match *state {
            State::Unresolved => Admission::Resolve,
            State::Resolved(None) => Admission::Process,
            State::Resolved(Some(floor)) if offset < floor => Admission::SkipAlreadyStored,
            State::Resolved(Some(floor)) if offset > floor => {
                *state = State::Seeking(floor);
                Admission::SeekTo(floor)
            }
            State::Resolved(Some(_)) => {
                *state = State::Resolved(None);
                Admission::Process
            }
            // librdkafka drops messages fetched before a seek, so the first
            // one at or past the target is the resumption point (if retention
            // removed the target, that is the earliest message still there).
            State::Seeking(target) if offset >= target => {
                *state = State::Resolved(None);
                Admission::Process
            }
            State::Seeking(_) => Admission::SkipAlreadyStored,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unassigned_partitions_are_skipped() {
        let mut parts = Partitions::default();
        assert_eq!(parts.admit(0, 0), Admission::SkipUnassigned);
        parts.assign(&[0]);
        parts.revoke(&[0]);
        assert_eq!(parts.admit(0, 0), Admission::SkipUnassigned);
    }

    #[test]
    fn messages_below_the_stored_offset_are_skipped_then_processing_resumes() {
        let mut parts = Partitions::default();
        parts.assign(&[1, 2]);
        assert_eq!(parts.admit(1, 0), Admission::Resolve);
        assert_eq!(parts.unresolved(), vec![1, 2]);
        parts.resolve(&[1, 2], &[(1, 5)]);
        assert_eq!(parts.admit(1, 3), Admission::SkipAlreadyStored);
        assert_eq!(parts.admit(1, 5), Admission::Process);
        assert_eq!(parts.admit(1, 6), Admission::Process);
        assert_eq!(parts.admit(2, 0), Admission::Process, "no stored offset");
    }

    #[test]
    fn kafka_ahead_of_postgres_seeks_back_once() {
        let mut parts = Partitions::default();
        parts.assign(&[0]);
        parts.resolve(&[0], &[(0, 10)]);
        assert_eq!(parts.admit(0, 15), Admission::SeekTo(10));
        assert_eq!(parts.admit(0, 9), Admission::SkipAlreadyStored);
        assert_eq!(
            parts.admit(0, 12),
            Admission::Process,
            "target gone: resume at what exists"
        );
        assert_eq!(parts.admit(0, 13), Admission::Process);
    }

    #[test]
    fn reassignment_forgets_the_old_position() {
        let mut parts = Partitions::default();
        parts.assign(&[0]);
        parts.resolve(&[0], &[(0, 10)]);
        assert_eq!(parts.admit(0, 10), Admission::Process);
        parts.revoke(&[0]);
        parts.assign(&[0]);
        assert_eq!(parts.admit(0, 10), Admission::Resolve);
    }
}
