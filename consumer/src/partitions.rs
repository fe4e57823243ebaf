//! The partitions this member owns, as a pure state machine (no I/O): the
//! commit stage (`commit.rs`) is its only owner and drives it from the
//! rebalance callbacks and the pipeline.
//!
//! A partition handed over by the group is first *starting*: its position is
//! being read from Postgres, and librdkafka has not been told to fetch it yet
//! (the assignment is made with the start offsets in it, so no seek is ever
//! needed, and none can fail). Then it is *active*: every message is checked
//! against the offset expected next. An offset that goes back means the
//! partition's offsets are being reused (topic recreated, log truncated,
//! offsets reset): the message starts a new epoch instead of being skipped as
//! "already stored", because it is not the message that was stored there.

use std::collections::HashMap;

use crate::position::{Generation, PartitionOffset, Position};

/// Which epoch and assignment a message that is used belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub generation: Generation,
    pub epoch: i32,
}

/// What to do with one received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Process(Stamp),
    /// The offset went back: use the message, in a new epoch.
    Rewound {
        stamp: Stamp,
        expected: i64,
    },
    /// Not ours, or not started: a message that raced a revoke.
    SkipUnassigned,
}

impl Admission {
    /// The metric label of a message that is not used.
    pub fn skip_label(&self) -> Option<&'static str> {
        match self {
            Self::SkipUnassigned => Some("unassigned"),
            Self::Process(_) | Self::Rewound { .. } => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Starting,
    /// `next` is `None` until the first message when starting from the
    /// beginning of the partition.
    Active {
        epoch: i32,
        next: Option<i64>,
    },
}

#[derive(Debug, Clone, Copy)]
struct Owned {
    generation: Generation,
    phase: Phase,
    /// The furthest position known durable in Postgres.
    durable: Option<Position>,
}

#[derive(Debug, Default)]
pub struct Partitions {
    owned: HashMap<i32, Owned>,
    last_generation: Generation,
}

impl Partitions {
    /// Takes ownership of newly assigned partitions, each starting.
    pub fn assign(&mut self, partitions: &[i32]) -> Vec<(i32, Generation)> {
        partitions
            .iter()
            .map(|p| {
                self.last_generation += 1;
                let owned = Owned {
                    generation: self.last_generation,
                    phase: Phase::Starting,
                    durable: None,
                };
                self.owned.insert(*p, owned);
                (*p, self.last_generation)
            })
            .collect()
    }

    /// Gives up partitions; returns their durable positions, to commit.
    pub fn revoke(&mut self, partitions: &[i32]) -> Vec<PartitionOffset> {
        partitions
            .iter()
            .filter_map(|p| {
                let owned = self.owned.remove(p)?;
                owned.durable.map(|position| PartitionOffset {
                    partition: *p,
                    position,
                })
            })
            .collect()
    }

    pub fn owned(&self) -> usize {
        self.owned.len()
    }

    /// Starts an active partition over under a new generation (its offsets
    /// went back under a running consumer); `None` if it is not active.
    pub fn restart(&mut self, partition: i32) -> Option<(i32, Generation)> {
        let active = self
            .owned
            .get(&partition)
            .is_some_and(|o| matches!(o.phase, Phase::Active { .. }));
        if !active {
            return None;
        }
        self.owned.remove(&partition);
        self.assign(&[partition]).pop()
    }

    /// Whether `partition` is still owned under `generation` and starting.
    pub fn is_starting(&self, partition: i32, generation: Generation) -> bool {
        self.owned
            .get(&partition)
            .is_some_and(|o| o.generation == generation && o.phase == Phase::Starting)
    }

    /// A starting partition becomes active. `at` is where fetching begins
    /// (`None`: from the earliest message, in `epoch`); a stored position is
    /// durable by definition. False if it is no longer owned under `generation`.
    pub fn activate(
        &mut self,
        partition: i32,
        generation: Generation,
        epoch: i32,
        at: Option<i64>,
    ) -> bool {
        let Some(owned) = self.owned.get_mut(&partition) else {
            return false;
        };
        if owned.generation != generation || owned.phase != Phase::Starting {
            return false;
        }
        owned.phase = Phase::Active { epoch, next: at };
        owned.durable = at.map(|offset| Position { epoch, offset });
        true
    }

    pub fn admit(&mut self, partition: i32, offset: i64) -> Admission {
        let Some(owned) = self.owned.get_mut(&partition) else {
            return Admission::SkipUnassigned;
        };
        let Phase::Active { epoch, next } = &mut owned.phase else {
            return Admission::SkipUnassigned;
        };
        let expected = *next;
        *next = Some(offset + 1);
        match expected {
            Some(expected) if offset < expected => {
                *epoch += 1;
                let stamp = Stamp {
                    generation: owned.generation,
                    epoch: *epoch,
                };
                Admission::Rewound { stamp, expected }
            }
            // Gaps are normal: compaction, transaction markers, retention.
            _ => Admission::Process(Stamp {
                generation: owned.generation,
                epoch: *epoch,
            }),
        }
    }

    /// Records positions made durable by a flush; returns those of partitions
    /// still owned under the generation they were read in, to commit.
    pub fn record_durable(
        &mut self,
        flushed: &[(Generation, PartitionOffset)],
    ) -> Vec<PartitionOffset> {
        let mut advanced = Vec::new();
        for (generation, done) in flushed {
            let Some(owned) = self.owned.get_mut(&done.partition) else {
                continue;
            };
            if owned.generation != *generation {
                continue;
            }
            let durable = owned
                .durable
                .map_or(done.position, |d| d.max(done.position));
            owned.durable = Some(durable);
            advanced.push(PartitionOffset {
                partition: done.partition,
                position: durable,
            });
        }
        advanced
    }

    /// Every durable position, for the final commit.
    pub fn durable(&self) -> Vec<PartitionOffset> {
        let mut all: Vec<_> = self
            .owned
            .iter()
            .filter_map(|(p, o)| {
                o.durable.map(|position| PartitionOffset {
                    partition: *p,
                    position,
                })
            })
            .collect();
        all.sort_unstable_by_key(|d| d.partition);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn active(parts: &mut Partitions, partition: i32, epoch: i32, at: Option<i64>) -> Generation {
        let generation = parts.assign(&[partition])[0].1;
        assert!(parts.activate(partition, generation, epoch, at));
        generation
    }

    #[test]
    fn only_an_active_partition_restarts_and_under_a_new_generation() {
        let mut parts = Partitions::default();
        assert_eq!(parts.restart(0), None, "not owned");
        let starting = parts.assign(&[0])[0].1;
        assert_eq!(parts.restart(0), None, "already starting");
        assert!(parts.activate(0, starting, 0, Some(300)));
        let (partition, again) = parts.restart(0).expect("an active partition restarts");
        assert_eq!(partition, 0);
        assert!(again > starting);
        assert!(parts.is_starting(0, again));
        assert_eq!(
            parts.admit(0, 0),
            Admission::SkipUnassigned,
            "until it starts again"
        );
        assert!(
            parts.durable().is_empty(),
            "its old position is not committed"
        );
    }

    #[test]
    fn starting_and_unassigned_partitions_are_skipped() {
        let mut parts = Partitions::default();
        assert_eq!(parts.admit(0, 0), Admission::SkipUnassigned);
        parts.assign(&[0]);
        assert_eq!(parts.admit(0, 0), Admission::SkipUnassigned, "starting");
        parts.revoke(&[0]);
        assert_eq!(parts.admit(0, 0), Admission::SkipUnassigned);
    }

    #[test]
    fn an_offset_that_goes_back_starts_a_new_epoch_and_is_used() {
        let mut parts = Partitions::default();
        let generation = active(&mut parts, 0, 2, Some(10_000));
        let stamp = Stamp {
            generation,
            epoch: 2,
        };
        assert_eq!(parts.admit(0, 10_000), Admission::Process(stamp));
        assert_eq!(
            parts.admit(0, 10_005),
            Admission::Process(stamp),
            "gaps are fine"
        );
        let rewound = Stamp {
            generation,
            epoch: 3,
        };
        assert_eq!(
            parts.admit(0, 0),
            Admission::Rewound {
                stamp: rewound,
                expected: 10_006
            }
        );
        assert_eq!(parts.admit(0, 1), Admission::Process(rewound));
    }

    #[test]
    fn a_partition_started_from_the_beginning_accepts_any_first_offset() {
        let mut parts = Partitions::default();
        let generation = active(&mut parts, 1, 0, None);
        let stamp = Stamp {
            generation,
            epoch: 0,
        };
        assert_eq!(parts.admit(1, 42), Admission::Process(stamp));
        assert!(parts.durable().is_empty(), "nothing durable yet");
    }

    #[test]
    fn only_the_generation_a_batch_was_read_in_is_committed() {
        let mut parts = Partitions::default();
        let old = active(&mut parts, 0, 0, Some(5));
        let flushed = PartitionOffset {
            partition: 0,
            position: Position {
                epoch: 0,
                offset: 9,
            },
        };
        parts.revoke(&[0]);
        let new = active(&mut parts, 0, 0, Some(7));
        assert_ne!(old, new);
        assert!(
            parts.record_durable(&[(old, flushed)]).is_empty(),
            "zombie batch"
        );
        assert_eq!(parts.record_durable(&[(new, flushed)]), vec![flushed]);
    }

    #[test]
    fn durable_positions_only_move_forward_and_leave_with_a_revoke() {
        let mut parts = Partitions::default();
        let generation = active(&mut parts, 3, 0, Some(5));
        let at = |offset| PartitionOffset {
            partition: 3,
            position: Position { epoch: 0, offset },
        };
        assert_eq!(parts.record_durable(&[(generation, at(9))]), vec![at(9)]);
        assert_eq!(parts.record_durable(&[(generation, at(7))]), vec![at(9)]);
        assert_eq!(parts.revoke(&[3]), vec![at(9)]);
        assert!(parts.durable().is_empty());
    }

    #[test]
    fn activation_is_refused_for_a_partition_revoked_meanwhile() {
        let mut parts = Partitions::default();
        let generation = parts.assign(&[0])[0].1;
        parts.revoke(&[0]);
        let again = parts.assign(&[0])[0].1;
        assert!(!parts.activate(0, generation, 0, Some(1)));
        assert!(parts.is_starting(0, again));
        assert!(parts.activate(0, again, 0, Some(1)));
    }
}
