//! Reads what [`decide`] needs for each newly assigned partition (its stored
//! position from Postgres; watermarks, the committed offset and the record
//! before the stored position from Kafka), applies the decision's side
//! effects (a new epoch stored, the Redis identity rotated), and logs and
//! counts each anomaly once. Every read retries until its dependency answers
//! or shutdown is requested.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use uuid::Uuid;

use crate::commit::StartAt;
use crate::kafka::EventConsumer;
use crate::metrics::{Dependency, Metrics};
use crate::position::{Generation, PartitionOffset, Position, StoredPosition};
use crate::reader::RecordReader;
use crate::resume::{decide, KafkaView, Resume, ReuseSign};
use crate::retry::{self, Interrupted};
use crate::shutdown::ShutdownFlag;
use crate::store::Store;

const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);

/// What [`Resolver::resolve`] found for a set of starting partitions.
#[derive(Debug, Default)]
pub struct Resolved {
    pub starts: Vec<StartAt>,
    /// The database's identity as read after the decisions: new when this
    /// member or another one found Postgres behind Kafka, so Redis marks
    /// written before are ignored by every member that starts a partition.
    pub instance: Option<Uuid>,
    rotated: bool,
}

/// What reading a partition's start takes; cheap to clone (handles only).
#[derive(Clone)]
pub struct Resolver {
    pub store: Store,
    pub consumer: Arc<EventConsumer>,
    pub reader: Arc<RecordReader>,
    pub topic: String,
    pub metrics: Metrics,
    pub shutdown: ShutdownFlag,
}

impl Resolver {
    /// The decision for each of `partitions`, or `Interrupted` at shutdown.
    pub async fn resolve(
        self,
        partitions: Vec<(i32, Generation)>,
    ) -> Result<Resolved, Interrupted> {
        // Shutdown may come while Postgres or Kafka is down: every wait below
        // ends with it.
        let (metrics, shutdown) = (&self.metrics, &self.shutdown);
        let ids: Vec<i32> = partitions.iter().map(|(p, _)| *p).collect();
        let stored = retry::until_ok(Dependency::Postgres, metrics, shutdown, || {
            self.store.stored_offsets(&ids)
        })
        .await?;
        let views = retry::until_ok(Dependency::Kafka, metrics, shutdown, || {
            kafka_views(self.clone(), ids.clone(), stored.clone())
        })
        .await?;
        let mut resolved = Resolved::default();
        for ((partition, generation), view) in partitions.iter().zip(views) {
            let at = stored.iter().find(|s| s.at.partition == *partition);
            let resume = decide(at.copied(), view);
            let (epoch, offset) = resume.start();
            let start = StartAt {
                partition: *partition,
                generation: *generation,
                epoch,
                offset,
            };
            report(metrics, &self.topic, start, resume);
            self.settle(start, resume, &mut resolved).await?;
            resolved.starts.push(start);
        }
        // Another member may have rotated it since this one started.
        let instance = retry::until_ok(Dependency::Postgres, metrics, shutdown, || {
            self.store.instance_id()
        })
        .await?;
        resolved.instance = Some(instance);
        Ok(resolved)
    }

    /// What an anomaly needs before the partition starts: a new epoch stored,
    /// or the database's Redis identity rotated (once per resolution).
    async fn settle(
        &self,
        start: StartAt,
        resume: Resume,
        resolved: &mut Resolved,
    ) -> Result<(), Interrupted> {
        let (metrics, shutdown) = (&self.metrics, &self.shutdown);
        match resume {
            Resume::Reused { low, .. } => {
                let begin = PartitionOffset {
                    partition: start.partition,
                    position: Position {
                        epoch: start.epoch,
                        offset: low,
                    },
                };
                retry::until_ok(Dependency::Postgres, metrics, shutdown, || {
                    self.store.start_epoch(begin)
                })
                .await
            }
            Resume::PostgresBehind { .. } if !resolved.rotated => {
                retry::until_ok(Dependency::Postgres, metrics, shutdown, || {
                    self.store.rotate_instance_id()
                })
                .await?;
                resolved.rotated = true;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Logs and counts a disagreement between Postgres and Kafka, once.
fn report(metrics: &Metrics, topic: &str, start: StartAt, resume: Resume) {
    let Some(kind) = resume.anomaly() else {
        return;
    };
    let partition = start.partition;
    match resume {
        Resume::Reused { stored, low, high, sign } => metrics.partition_anomaly(kind, format_args!(
            "{topic}/{partition}: {}: its offsets are being reused (topic recreated, log truncated \
             or replaced); reading it again from offset {low} (high watermark {high}) as epoch {}; \
             events already stored are recognised by their id",
            match sign {
                ReuseSign::PastTheEnd => format!("the stored offset {} (epoch {}) is past the high watermark {high}", stored.offset, stored.epoch),
                ReuseSign::OtherRecord { stored_ms, found_ms } => format!(
                    "the record before the stored offset {} (epoch {}) has timestamp {found_ms}, the one stored had {stored_ms}",
                    stored.offset, stored.epoch
                ),
            },
            start.epoch
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

/// Watermarks, committed offsets and the timestamp of the record before each
/// stored position, read on a blocking thread (librdkafka's calls block),
/// for `partitions` in order.
async fn kafka_views(
    resolver: Resolver,
    partitions: Vec<i32>,
    stored: Vec<StoredPosition>,
) -> anyhow::Result<Vec<KafkaView>> {
    let read = move || -> anyhow::Result<Vec<KafkaView>> {
        let (consumer, topic) = (&resolver.consumer, &resolver.topic);
        let mut list = TopicPartitionList::new();
        for p in &partitions {
            list.add_partition(topic, *p);
        }
        let committed = consumer.committed_offsets(list, KAFKA_TIMEOUT)?;
        let mut views = Vec::with_capacity(partitions.len());
        for p in &partitions {
            let (low, high) = consumer.fetch_watermarks(topic, *p, KAFKA_TIMEOUT)?;
            let committed = committed
                .find_partition(topic, *p)
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                });
            // Only a record that can still be there is worth reading.
            let before = stored
                .iter()
                .find(|s| s.at.partition == *p && s.last_record_ms.is_some())
                .map(|s| s.at.position.offset - 1)
                .filter(|offset| (low..high).contains(offset));
            let record_before_ms = match before {
                Some(offset) => resolver.reader.timestamp_at(*p, offset, KAFKA_TIMEOUT)?,
                None => None,
            };
            views.push(KafkaView {
                low,
                high,
                committed,
                record_before_ms,
            });
        }
        Ok(views)
    };
    tokio::task::spawn_blocking(read).await?
}
