//! The ingestion producer, and [`Watermarks`], the client `/pipeline/status`
//! reads high watermarks with. The ingestion producer: Idempotent with `acks=all`: a record counts as
//! ingested only once every in-sync replica has it, and librdkafka's own
//! retries cannot duplicate or reorder it. Each record is keyed by its
//! `payload.userId`, like the simulator's, so one user's events share a
//! partition and stay in order; its value is the client's bytes, unchanged.
//!
//! A failed send (broker down past `--produce-timeout-ms`) fails the whole
//! request with 503; records of the request that did reach the broker are
//! then there twice if the client retries, which the consumer's dedup on
//! `eventId` absorbs.

use std::time::Duration;

use futures::future::try_join_all;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::KafkaResult;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::ClientConfig;
use tokio::time::Instant;

/// One record to produce: the key and the original JSON bytes.
pub struct Record<'a> {
    pub key: &'a str,
    pub value: &'a [u8],
}

pub struct Ingestor {
    producer: FutureProducer,
    topic: String,
    timeout: Duration,
}

/// What the ingestion producer needs of the API's settings.
pub struct ProducerSettings<'a> {
    pub brokers: &'a str,
    pub topic: &'a str,
    /// How long a record may wait for the broker's acknowledgement.
    pub produce_timeout: Duration,
    /// `-X` overrides, applied last.
    pub kafka_properties: &'a [(String, String)],
}

impl Ingestor {
    /// Checks that a broker answers, creates the producer, and checks that
    /// the topic exists; each failure is one line naming the setting.
    pub async fn connect(settings: ProducerSettings<'_>) -> anyhow::Result<Self> {
        probe_brokers(settings.brokers).await?;
        let ingestor = Self::new(&settings)?;
        eventpulse_service::kafka::check_topic(
            ingestor.producer.client(),
            settings.brokers,
            settings.topic,
            "--topic / EVENTPULSE_TOPIC",
        )?;
        Ok(ingestor)
    }

    fn new(settings: &ProducerSettings<'_>) -> anyhow::Result<Self> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", settings.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("compression.type", "lz4")
            // librdkafka's producers default to asking the broker to create
            // unknown topics (on metadata requests too, so even the start-up
            // check would create it); a typo in --topic must fail instead.
            .set("allow.auto.create.topics", "false")
            .set(
                "message.timeout.ms",
                settings.produce_timeout.as_millis().to_string(),
            );
        for (key, value) in settings.kafka_properties {
            config.set(key, value);
        }
        let producer = config.create().map_err(|e| {
            anyhow::anyhow!(
                "creating the Kafka producer (check -X / EVENTPULSE_KAFKA_PROPERTIES): {e}"
            )
        })?;
        Ok(Self {
            producer,
            topic: settings.topic.to_owned(),
            timeout: settings.produce_timeout,
        })
    }

    /// Produces every record and returns once the broker acknowledged all of
    /// them, or with the first failure. Records are enqueued one after the
    /// other before any acknowledgement is awaited, so a user's events keep
    /// the order they have in the request.
    pub async fn produce_all(&self, records: &[Record<'_>]) -> anyhow::Result<()> {
        let deadline = Instant::now() + self.timeout;
        let mut deliveries = Vec::with_capacity(records.len());
        for record in records {
            deliveries.push(self.enqueue(record, deadline).await?);
        }
        for delivery in try_join_all(deliveries).await? {
            delivery.map_err(|(e, _)| anyhow::anyhow!("producing to topic {}: {e}", self.topic))?;
        }
        Ok(())
    }

    /// Hands one record to librdkafka, waiting while its queue is full.
    async fn enqueue(
        &self,
        record: &Record<'_>,
        deadline: Instant,
    ) -> anyhow::Result<DeliveryFuture> {
        let mut future_record = FutureRecord::to(&self.topic)
            .key(record.key)
            .payload(record.value);
        loop {
            match self.producer.send_result(future_record) {
                Ok(delivery) => return Ok(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if Instant::now() < deadline =>
                {
                    future_record = back;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err((e, _)) => anyhow::bail!("producing to topic {}: {e}", self.topic),
            }
        }
    }

    /// Waits (bounded) for records still in flight, at shutdown.
    pub fn flush(&self) {
        if let Err(e) = self.producer.flush(self.timeout) {
            tracing::warn!("flushing the Kafka producer at shutdown: {e}");
        }
    }
}

/// Fails fast, in one line, when no bootstrap broker accepts a TCP
/// connection: librdkafka would instead retry (and log each retry) until the
/// metadata timeout. Entries it cannot parse are left to librdkafka.
async fn probe_brokers(brokers: &str) -> anyhow::Result<()> {
    let mut last_error = None;
    for broker in brokers.split(',').map(str::trim) {
        let address = broker.rsplit_once("://").map_or(broker, |(_, a)| a);
        let connect = tokio::net::TcpStream::connect(address);
        match tokio::time::timeout(Duration::from_secs(3), connect).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::InvalidInput => return Ok(()),
            Ok(Err(e)) => last_error = Some(e.to_string()),
            Err(_) => last_error = Some("timed out after 3 s".to_owned()),
        }
    }
    match last_error {
        Some(e) => {
            anyhow::bail!("cannot reach Kafka at {brokers} (--brokers / EVENTPULSE_BROKERS): {e}")
        }
        None => Ok(()),
    }
}

/// Per partition: `/pipeline/status` answers within a page load even with
/// the brokers gone.
pub const WATERMARK_TIMEOUT: Duration = Duration::from_secs(2);

/// Reads high watermarks; creating it does not connect.
pub struct Watermarks {
    client: BaseConsumer,
}

impl Watermarks {
    pub fn new(brokers: &str, kafka_properties: &[(String, String)]) -> anyhow::Result<Self> {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", brokers);
        for (key, value) in kafka_properties {
            config.set(key, value);
        }
        let client = config.create().map_err(|e| {
            anyhow::anyhow!("creating the Kafka client for /pipeline/status (check -X): {e}")
        })?;
        Ok(Self { client })
    }

    /// The high watermark of one partition. Blocks.
    pub fn high(&self, topic: &str, partition: i32, timeout: Duration) -> KafkaResult<i64> {
        self.client
            .fetch_watermarks(topic, partition, timeout)
            .map(|(_, high)| high)
    }
}
