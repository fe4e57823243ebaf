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

    #[error("writing records to {target}: {source}")]
    Output {
        target: String,
        #[source]
        source: std::io::Error,
    },
}
