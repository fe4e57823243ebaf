//! Where a newly assigned partition starts. Postgres holds the truth (the
//! position written with the rows); Kafka's watermarks and committed offset
//! are checked against it, because each disagreement means something that
//! must not be handled by skipping:
//!
//! - stored offset past the high watermark: the offsets are being reused
//!   (topic deleted and recreated, log truncated): start a new epoch from the
//!   earliest message instead of skipping everything below the old offset;
//! - Kafka's committed offset ahead of Postgres (Kafka is only committed after
//!   Postgres, and Redis only confirmed after Kafka): Postgres lost commits
//!   (restored from a backup, failed over to a standby that lagged), so Redis
//!   "stored" marks may vouch for rows that no longer exist: re-read from the
//!   Postgres position and stop trusting every mark written so far.
//!
//! [`decide`] is the pure decision; [`resolve`] gathers its inputs, retrying
//! each dependency until it answers or shutdown is requested.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use uuid::Uuid;

use crate::commit::StartAt;
use crate::kafka::EventConsumer;
use crate::metrics::{Dependency, Metrics};
use crate::position::{Generation, PartitionOffset, Position};
use crate::retry::{self, Interrupted};
use crate::shutdown::ShutdownFlag;
use crate::store::Store;

const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);

/// What Kafka says about one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KafkaView {
    pub low: i64,
    pub high: i64,
    /// The group's committed offset, if any.
    pub committed: Option<i64>,
}

/// Where to start, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// From the stored position (the normal case).
    Stored(Position),
    /// Nothing stored: from the earliest message.
    Fresh,
    /// The stored offset is past the end: a new epoch, from the earliest message.
    Reused {
        stored: Position,
        low: i64,
        high: i64,
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

pub fn decide(stored: Option<Position>, kafka: KafkaView) -> Resume {
    if let Some(stored) = stored {
        if stored.offset > kafka.high {
            return Resume::Reused {
                stored,
                low: kafka.low,
                high: kafka.high,
            };
        }
    }
    let stored_offset = stored.map_or(0, |s| s.offset);
    match kafka.committed {
        Some(committed) if committed > stored_offset => {
            Resume::PostgresBehind { stored, committed }
        }
        _ => stored.map_or(Resume::Fresh, Resume::Stored),
    }
}

/// What [`resolve`] found for a set of starting partitions.
#[derive(Debug, Default)]
pub struct Resolved {
    pub starts: Vec<StartAt>,
    /// Set when Postgres was found behind Kafka: the database's new identity,
    /// under which Redis marks must be read from now on.
    pub new_instance: Option<Uuid>,
}

/// The decision for each of `partitions`, or `Interrupted` at shutdown.
pub async fn resolve(
    partitions: Vec<(i32, Generation)>,
    store: Store,
    consumer: Arc<EventConsumer>,
    topic: String,
    metrics: Metrics,
    shutdown: ShutdownFlag,
) -> Result<Resolved, Interrupted> {
    // Shutdown may come while Postgres or Kafka is down: every wait below
    // ends with it.
    let ids: Vec<i32> = partitions.iter().map(|(p, _)| *p).collect();
    let stored = retry::until_ok(Dependency::Postgres, &metrics, &shutdown, || {
        store.stored_offsets(&ids)
    })
    .await?;
    let views = retry::until_ok(Dependency::Kafka, &metrics, &shutdown, || {
        kafka_views(Arc::clone(&consumer), topic.clone(), ids.clone())
    })
    .await?;
    let mut resolved = Resolved::default();
    for ((partition, generation), view) in partitions.iter().zip(views) {
        let at = stored
            .iter()
            .find(|s| s.partition == *partition)
            .map(|s| s.position);
        let resume = decide(at, view);
        let (epoch, offset) = resume.start();
        let start = StartAt {
            partition: *partition,
            generation: *generation,
            epoch,
            offset,
        };
        report(&metrics, &topic, start, resume);
        match resume {
            Resume::Reused { low, .. } => {
                let begin = PartitionOffset {
                    partition: *partition,
                    position: Position { epoch, offset: low },
                };
                retry::until_ok(Dependency::Postgres, &metrics, &shutdown, || {
                    store.start_epoch(begin)
                })
                .await?;
            }
            Resume::PostgresBehind { .. } if resolved.new_instance.is_none() => {
                let fresh = retry::until_ok(Dependency::Postgres, &metrics, &shutdown, || {
                    store.rotate_instance_id()
                })
                .await?;
                resolved.new_instance = Some(fresh);
            }
            _ => {}
        }
        resolved.starts.push(start);
    }
    Ok(resolved)
}

/// Logs and counts a disagreement between Postgres and Kafka, once.
fn report(metrics: &Metrics, topic: &str, start: StartAt, resume: Resume) {
    let Some(kind) = resume.anomaly() else {
        return;
    };
    let partition = start.partition;
    match resume {
        Resume::Reused { stored, low, high } => metrics.partition_anomaly(kind, format_args!(
            "{topic}/{partition}: the stored offset {} (epoch {}) is past the high watermark {high}: \
             its offsets are being reused (topic recreated or log truncated); reading it again from \
             offset {low} as epoch {}; events already stored are recognised by their id",
            stored.offset, stored.epoch, start.epoch
        )),
        Resume::PostgresBehind { stored, committed } => metrics.partition_anomaly(kind, format_args!(
            "{topic}/{partition}: Kafka's committed offset {committed} is ahead of Postgres ({}): \
             Postgres lost commits (restored or failed over); re-reading from there and ignoring \
             every Redis mark written so far",
            stored.map_or("nothing stored".to_owned(), |s| format!("offset {} epoch {}", s.offset, s.epoch))
        )),
        Resume::Stored(_) | Resume::Fresh => {}
    }
}

/// Watermarks and committed offsets, read on a blocking thread (librdkafka's
/// calls block), for `partitions` in order.
async fn kafka_views(
    consumer: Arc<EventConsumer>,
    topic: String,
    partitions: Vec<i32>,
) -> anyhow::Result<Vec<KafkaView>> {
    let read = move || -> anyhow::Result<Vec<KafkaView>> {
        let mut list = TopicPartitionList::new();
        for p in &partitions {
            list.add_partition(&topic, *p);
        }
        let committed = consumer.committed_offsets(list, KAFKA_TIMEOUT)?;
        partitions
            .iter()
            .map(|p| {
                let (low, high) = consumer.fetch_watermarks(&topic, *p, KAFKA_TIMEOUT)?;
                let committed =
                    committed
                        .find_partition(&topic, *p)
                        .and_then(|e| match e.offset() {
                            Offset::Offset(o) => Some(o),
                            _ => None,
                        });
                Ok(KafkaView {
                    low,
                    high,
                    committed,
                })
            })
            .collect()
    };
    tokio::task::spawn_blocking(read).await?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(offset: i64) -> Position {
        Position { epoch: 0, offset }
    }

    fn kafka(high: i64, committed: Option<i64>) -> KafkaView {
        KafkaView {
            low: 0,
            high,
            committed,
        }
    }

    #[test]
    fn the_stored_position_is_used_when_kafka_agrees() {
        assert_eq!(
            decide(Some(at(10)), kafka(50, Some(8))),
            Resume::Stored(at(10))
        );
        assert_eq!(
            decide(Some(at(50)), kafka(50, Some(50))),
            Resume::Stored(at(50))
        );
        assert_eq!(decide(None, kafka(50, None)), Resume::Fresh);
    }

    #[test]
    fn a_stored_offset_past_the_end_starts_a_new_epoch_from_the_start() {
        let resume = decide(Some(at(10_000)), kafka(1_000, Some(10_000)));
        assert_eq!(
            resume,
            Resume::Reused {
                stored: at(10_000),
                low: 0,
                high: 1_000
            }
        );
        assert_eq!(resume.start(), (1, None));
        assert_eq!(resume.anomaly(), Some("offsets_reused"));
    }

    #[test]
    fn kafka_ahead_of_postgres_means_postgres_lost_commits() {
        let resume = decide(Some(at(100)), kafka(500, Some(300)));
        assert_eq!(
            resume,
            Resume::PostgresBehind {
                stored: Some(at(100)),
                committed: 300
            }
        );
        assert_eq!(resume.start(), (0, Some(100)), "re-read what Postgres lost");
        let empty = decide(None, kafka(500, Some(300)));
        assert_eq!(empty.start(), (0, None));
        assert_eq!(empty.anomaly(), Some("postgres_behind_kafka"));
    }
}
