//! Receive and validate: one Kafka message in, one batch entry (or nothing,
//! for a message of a partition this member does not own) out.
//!
//! A message is judged against its own Kafka timestamp, not the consumer's
//! clock: the same record read twice (by a zombie and the new owner, or again
//! after a restart) must get the same verdict, or it could end up both stored
//! and dead-lettered. Topics with `message.timestamp.type=LogAppendTime` make
//! that the broker's clock; with the default `CreateTime` it is the
//! producer's. Only a record without a timestamp (pre-0.10 message format)
//! is judged against the consumer's clock.

use chrono::{DateTime, Utc};
use eventpulse_events::{validate, Limits};
use rdkafka::message::{BorrowedMessage, Message};

use crate::batch::{Origin, PendingEvent, RejectedMessage};
use crate::commit::Commits;
use crate::metrics::Metrics;
use crate::partitions::{Admission, Stamp};

/// A message ready for the batch.
#[derive(Debug)]
pub enum Entry {
    Event(PendingEvent),
    Reject(RejectedMessage),
}

/// What a message becomes: `None` if it is not ours to process.
pub fn receive(
    message: &BorrowedMessage<'_>,
    commits: &Commits,
    limits: &Limits,
    metrics: &Metrics,
) -> Option<(Entry, Stamp)> {
    metrics.messages_consumed.inc();
    let (partition, offset) = (message.partition(), message.offset());
    let stamp = match commits.admit(partition, offset) {
        Admission::Process(stamp) => stamp,
        Admission::Rewound { stamp, expected } => {
            metrics.partition_anomaly("offsets_rewound", format_args!(
                "{}/{partition}: offset {offset} follows {}: the partition's offsets went back \
                 (topic recreated, log truncated or offsets reset); processing from here as epoch {}; \
                 events already stored are recognised by their id",
                message.topic(), expected - 1, stamp.epoch
            ));
            stamp
        }
        skip @ Admission::SkipUnassigned => {
            let reason = skip.skip_label().unwrap_or("unassigned");
            metrics.messages_skipped.with_label_values(&[reason]).inc();
            return None;
        }
    };
    let origin = Origin {
        partition,
        offset,
        epoch: stamp.epoch,
        timestamp_ms: message.timestamp().to_millis(),
    };
    Some((judge(message, origin, limits), stamp))
}

fn judge(message: &BorrowedMessage<'_>, origin: Origin, limits: &Limits) -> Entry {
    let value = message.payload().unwrap_or_default();
    let key = message.key().map(<[u8]>::to_vec);
    match validate(value, limits, record_time(message)) {
        Ok(event) => Entry::Event(PendingEvent {
            event: event.into(),
            origin,
            key,
            value: value.to_vec(),
        }),
        Err(rejection) => {
            tracing::debug!(partition = origin.partition, offset = origin.offset, reason = %rejection.reason, "rejected: {}", rejection.detail);
            Entry::Reject(RejectedMessage {
                origin,
                key,
                value: message.payload().map(<[u8]>::to_vec),
                rejection,
            })
        }
    }
}

/// The record's Kafka timestamp, which its verdict is judged against; the
/// consumer's clock only if it has none.
pub fn record_time(message: &impl Message) -> DateTime<Utc> {
    message
        .timestamp()
        .to_millis()
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or_else(Utc::now)
}
