//! The dead-letter topic. Each rejected message is produced with its original
//! key and bytes and headers that say why and where it came from:
//! `eventpulse-reason` (stable code), `eventpulse-error` (human message),
//! `eventpulse-origin-topic`, `eventpulse-origin-partition`,
//! `eventpulse-origin-offset`. A batch's offsets only advance after every one
//! of its dead letters is acknowledged.

use std::time::Duration;

use futures::future::try_join_all;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

use crate::batch::RejectedMessage;

pub struct DeadLetters {
    producer: FutureProducer,
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
            .set("message.timeout.ms", "30000");
        // -X is for the consumer; only connection-wide settings (security,
        // client id, sockets, debug) also apply to this producer.
        for (key, value) in extra.iter().filter(|(k, _)| is_connection_setting(k)) {
            config.set(key, value);
        }
        let producer = config
            .create()
            .map_err(|e| anyhow::anyhow!("creating the dead-letter producer: {e}"))?;
        Ok(Self {
            producer,
            topic: topic.to_owned(),
            origin_topic: origin_topic.to_owned(),
        })
    }

    /// Produces every message and waits for all acknowledgements.
    pub async fn send_all(&self, rejects: &[RejectedMessage]) -> anyhow::Result<()> {
        let sends = rejects.iter().map(|reject| self.send(reject));
        try_join_all(sends).await?;
        Ok(())
    }

    async fn send(&self, reject: &RejectedMessage) -> anyhow::Result<()> {
        let partition = reject.origin.partition.to_string();
        let offset = reject.origin.offset.to_string();
        let headers = OwnedHeaders::new()
            .insert(header("eventpulse-reason", reject.rejection.reason.code()))
            .insert(header("eventpulse-error", &reject.rejection.detail))
            .insert(header("eventpulse-origin-topic", &self.origin_topic))
            .insert(header("eventpulse-origin-partition", &partition))
            .insert(header("eventpulse-origin-offset", &offset));
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&self.topic).headers(headers);
        if let Some(key) = &reject.key {
            record = record.key(key.as_slice());
        }
        if let Some(value) = &reject.value {
            record = record.payload(value.as_slice());
        }
        self.producer
            .send(record, Duration::from_secs(30))
            .await
            .map(drop)
            .map_err(|(e, _)| anyhow::anyhow!("producing to dead-letter topic {}: {e}", self.topic))
    }
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
