//! The dead-letter topic. Each rejected message is produced with its original
//! key and bytes and headers that say why and where it came from:
//! `eventpulse-reason` (stable code), `eventpulse-error` (human message, at
//! most 1 KiB), `eventpulse-origin-topic`, `eventpulse-origin-partition`,
//! `eventpulse-origin-offset`, `eventpulse-origin-epoch`. A batch's offsets only
//! advance after every one of its dead letters is acknowledged.
//!
//! A message that cannot be produced as it is (larger than this producer's
//! `message.max.bytes`, or refused by the broker as too large) is produced
//! truncated instead, with `eventpulse-truncated`, `eventpulse-original-bytes`
//! and `eventpulse-original-sha256` headers; its full bytes are kept in the
//! `dead_letters` table. So every reject has a record that fits, and no error
//! that retrying cannot fix is ever retried.

use std::sync::Mutex;
use std::time::Duration;

use futures::future::join_all;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::ClientConfig;
use sha2::{Digest, Sha256};

use anyhow::Context as _;

use crate::batch::RejectedMessage;

/// librdkafka's default `message.max.bytes`, which this producer keeps.
const PRODUCER_MAX_BYTES: usize = 1_000_000;
/// Room left under that limit for librdkafka's own framing.
const FRAMING_BYTES: usize = 4_096;
/// What a truncated copy keeps of the value (and of the key).
pub const TRUNCATED_VALUE_BYTES: usize = 16 * 1024;
const TRUNCATED_KEY_BYTES: usize = 1024;
const MAX_ERROR_HEADER_BYTES: usize = 1024;

/// Why a dead letter was not acknowledged, by what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    /// Broker down, timeouts, a full queue: retry the same record later.
    #[error("the dead-letter topic is unavailable")]
    Transient(#[source] KafkaError),
    /// The record as it is will never be accepted: produce a truncated copy.
    #[error("the dead-letter record was refused")]
    Permanent(#[source] KafkaError),
    /// The idempotent producer hit a fatal error: it must be recreated.
    #[error("the dead-letter producer failed fatally")]
    Fatal(#[source] KafkaError),
}

impl From<KafkaError> for DeadLetterError {
    fn from(error: KafkaError) -> Self {
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::Fatal) => Self::Fatal(error),
            Some(
                RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::InvalidMessage,
            ) => Self::Permanent(error),
            _ => Self::Transient(error),
        }
    }
}

/// How a record is sent: as it arrived, or cut down to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fit {
    Whole,
    Truncated,
}

pub struct DeadLetters {
    config: ClientConfig,
    producer: Mutex<FutureProducer>,
    topic: String,
    origin_topic: String,
}

impl DeadLetters {
    pub fn new(
        brokers: &str,
        topic: &str,
        origin_topic: &str,
        extra: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true")
            // Brokers that allow it would otherwise create a mistyped DLQ topic.
            .set("allow.auto.create.topics", "false")
            .set("acks", "all")
            // A batch waits for its dead letters' acks: do not add a linger.
            .set("linger.ms", "0")
            .set("compression.type", "lz4")
            .set("message.timeout.ms", "30000")
            // Only one batch's rejects are in flight, and the batch is within
            // the consumer's byte budget; this only caps librdkafka's copy.
            .set("queue.buffering.max.kbytes", "32768");
        // -X is for the consumer; only connection-wide settings (security,
        // client id, sockets, debug) also apply to this producer.
        for (key, value) in extra.iter().filter(|(k, _)| is_connection_setting(k)) {
            config.set(key, value);
        }
        let producer = config
            .create()
            .context("creating the dead-letter producer")?;
        Ok(Self {
            config,
            producer: Mutex::new(producer),
            topic: topic.to_owned(),
            origin_topic: origin_topic.to_owned(),
        })
    }

    fn producer(&self) -> FutureProducer {
        self.producer.lock().expect("lock not poisoned").clone()
    }

    /// Produces every message and waits for the acknowledgements. Returns the
    /// messages still not acknowledged (to retry) with the first error.
    pub async fn send_all<'a>(
        &self,
        rejects: &[&'a RejectedMessage],
    ) -> Result<(), (Vec<&'a RejectedMessage>, DeadLetterError)> {
        let producer = self.producer();
        let sends = rejects.iter().map(|reject| self.deliver(&producer, reject));
        let mut failed = Vec::new();
        let mut first = None;
        for (reject, result) in rejects.iter().zip(join_all(sends).await) {
            if let Err(error) = result {
                failed.push(*reject);
                first.get_or_insert(error);
            }
        }
        match first {
            None => Ok(()),
            Some(error) => {
                if matches!(error, DeadLetterError::Fatal(_)) {
                    self.recreate_producer();
                }
                Err((failed, error))
            }
        }
    }

    /// One record: whole if it fits, else (or if refused as too large) truncated.
    async fn deliver(
        &self,
        producer: &FutureProducer,
        reject: &RejectedMessage,
    ) -> Result<(), DeadLetterError> {
        let fit = if whole_size(reject) + FRAMING_BYTES > PRODUCER_MAX_BYTES {
            Fit::Truncated
        } else {
            Fit::Whole
        };
        match self.send(producer, reject, fit).await {
            Err(DeadLetterError::Permanent(error)) if fit == Fit::Whole => {
                tracing::warn!(
                    partition = reject.origin.partition,
                    offset = reject.origin.offset,
                    "dead letter refused whole ({error}); sending it truncated"
                );
                self.send(producer, reject, Fit::Truncated).await
            }
            other => other,
        }
    }

    async fn send(
        &self,
        producer: &FutureProducer,
        reject: &RejectedMessage,
        fit: Fit,
    ) -> Result<(), DeadLetterError> {
        let partition = reject.origin.partition.to_string();
        let offset = reject.origin.offset.to_string();
        let epoch = reject.origin.epoch.to_string();
        let detail = cut_text(&reject.rejection.detail, MAX_ERROR_HEADER_BYTES);
        let mut headers = OwnedHeaders::new()
            .insert(header("eventpulse-reason", reject.rejection.reason.code()))
            .insert(header("eventpulse-error", detail))
            .insert(header("eventpulse-origin-topic", &self.origin_topic))
            .insert(header("eventpulse-origin-partition", &partition))
            .insert(header("eventpulse-origin-offset", &offset))
            .insert(header("eventpulse-origin-epoch", &epoch));
        let value = reject.value.as_deref();
        let mut key = reject.key.as_deref();
        let mut payload = value;
        let (size, digest);
        if fit == Fit::Truncated {
            let original = value.unwrap_or_default();
            size = original.len().to_string();
            digest = format!("{:x}", Sha256::digest(original));
            headers = headers
                .insert(header("eventpulse-truncated", "true"))
                .insert(header("eventpulse-original-bytes", &size))
                .insert(header("eventpulse-original-sha256", &digest));
            payload = value.map(|v| &v[..v.len().min(TRUNCATED_VALUE_BYTES)]);
            key = key.map(|k| &k[..k.len().min(TRUNCATED_KEY_BYTES)]);
        }
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&self.topic).headers(headers);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(payload) = payload {
            record = record.payload(payload);
        }
        producer
            .send(record, Duration::from_secs(30))
            .await
            .map(drop)
            .map_err(|(e, _)| DeadLetterError::from(e))
    }

    /// A fatal idempotence error poisons the producer for good: replace it.
    /// Records it had not delivered are re-sent by the caller's retry.
    fn recreate_producer(&self) {
        match self.config.create::<FutureProducer>() {
            Ok(fresh) => {
                let old = std::mem::replace(
                    &mut *self.producer.lock().expect("lock not poisoned"),
                    fresh,
                );
                let _ = old.flush(Duration::from_millis(100));
                tracing::warn!("dead-letter producer recreated after a fatal error");
            }
            Err(e) => tracing::error!("recreating the dead-letter producer: {e}"),
        }
    }
}

/// Bytes a record takes before librdkafka's framing: key, value, headers.
fn whole_size(reject: &RejectedMessage) -> usize {
    const HEADERS_BYTES: usize = 512;
    reject.key.as_ref().map_or(0, Vec::len)
        + reject.value.as_ref().map_or(0, Vec::len)
        + reject.rejection.detail.len().min(MAX_ERROR_HEADER_BYTES)
        + HEADERS_BYTES
}

/// At most `limit` bytes of `text`, cut at a character boundary.
fn cut_text(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn is_connection_setting(key: &str) -> bool {
    const PREFIXES: [&str; 10] = [
        "security.",
        "ssl.",
        "sasl.",
        "client.",
        "socket.",
        "broker.",
        "metadata.",
        "api.version",
        "debug",
        "reconnect.",
    ];
    PREFIXES.iter().any(|prefix| key.starts_with(prefix))
}

fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Origin;
    use eventpulse_events::{RejectReason, Rejection};

    fn reject(bytes: usize) -> RejectedMessage {
        RejectedMessage {
            origin: Origin {
                partition: 0,
                offset: 1,
                epoch: 0,
                timestamp_ms: None,
            },
            key: Some(b"user".to_vec()),
            value: Some(vec![b'x'; bytes]),
            rejection: Rejection::new(RejectReason::TooLarge, "é".repeat(5_000)),
        }
    }

    #[test]
    fn errors_are_classified_by_what_retrying_can_do() {
        let size = KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);
        assert!(matches!(size.into(), DeadLetterError::Permanent(_)));
        let down = KafkaError::MessageProduction(RDKafkaErrorCode::BrokerTransportFailure);
        assert!(matches!(down.into(), DeadLetterError::Transient(_)));
        let fatal = KafkaError::MessageProduction(RDKafkaErrorCode::Fatal);
        assert!(matches!(fatal.into(), DeadLetterError::Fatal(_)));
    }

    #[test]
    fn a_record_near_the_limit_counts_its_key_and_headers() {
        assert!(whole_size(&reject(990_000)) + FRAMING_BYTES <= PRODUCER_MAX_BYTES);
        assert!(whole_size(&reject(999_000)) + FRAMING_BYTES > PRODUCER_MAX_BYTES);
    }

    #[test]
    fn the_error_header_is_cut_at_a_character_boundary() {
        let reject = reject(0);
        let cut = cut_text(&reject.rejection.detail, MAX_ERROR_HEADER_BYTES);
        assert!(cut.len() <= MAX_ERROR_HEADER_BYTES && cut.len() >= MAX_ERROR_HEADER_BYTES - 1);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
