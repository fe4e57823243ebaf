//! Errors that end a run, each worded as the one line the user sees.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    #[error(
        "cannot reach Kafka at {brokers} (topic {topic}) within {}s: {reason}",
        timeout.as_secs_f64()
    )]
    BrokerUnreachable {
        brokers: String,
        topic: String,
        timeout: Duration,
        reason: String,
    },

    #[error(
        "topic {topic} does not exist on {brokers}; the broker does not auto-create \
         topics (`scripts/stack.sh up` creates `events`)"
    )]
    TopicMissing { brokers: String, topic: String },

    /// librdkafka refused the configuration, e.g. an unknown `-X` property.
    #[error("invalid Kafka client configuration: {0}")]
    KafkaConfig(String),

    /// The API did not answer its health check (`--via grpc://...`).
    #[error(
        "cannot reach eventpulse-api at {endpoint} (--via) within {}s: {reason}",
        timeout.as_secs_f64()
    )]
    ApiUnreachable {
        endpoint: String,
        timeout: Duration,
        reason: String,
    },

    /// The API answers but does not take events: no `--api-keys`
    /// configured, or it is shutting down.
    #[error(
        "eventpulse-api at {endpoint} (--via) answers, but its EventService is {status}: \
         ingestion is disabled (no --api-keys) or the API is stopping"
    )]
    ApiNotServing { endpoint: String, status: String },

    /// `--via grpc://...` without `--api-key` (checked while parsing flags;
    /// this is for a [`crate::Config`] built without that check).
    #[error("--via {endpoint} needs --api-key (or EVENTPULSE_API_KEY)")]
    ApiKeyMissing { endpoint: String },

    /// The gRPC client's runtime could not start (threads, file descriptors).
    #[error("starting the gRPC client: {0}")]
    GrpcRuntime(#[source] std::io::Error),

    #[error("writing records to {target}: {source}")]
    Output {
        target: String,
        #[source]
        source: std::io::Error,
    },
}
