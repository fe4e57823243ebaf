//! The start-up check every Kafka client makes: the brokers answer and the
//! topic exists, or one line says which setting to fix.

use std::time::Duration;

use rdkafka::client::{Client, ClientContext};

/// Fails with one line naming the address (and `brokers_flag`) if the brokers
/// do not answer, or the topic (and `topic_flag`) if it is missing: brokers
/// may not auto-create topics. Blocks the calling worker thread while
/// librdkafka fetches the metadata.
pub fn check_topic<C: ClientContext>(
    client: &Client<C>,
    brokers: &str,
    topic: &str,
    topic_flag: &str,
) -> anyhow::Result<()> {
    let metadata =
        tokio::task::block_in_place(|| client.fetch_metadata(Some(topic), Duration::from_secs(10)))
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot reach Kafka at {brokers} (--brokers / EVENTPULSE_BROKERS): {e}"
                )
            })?;
    let exists = metadata
        .topics()
        .iter()
        .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty());
    if !exists {
        anyhow::bail!(
            "topic {topic:?} does not exist on {brokers} ({topic_flag}); create it, e.g. with scripts/stack.sh up"
        );
    }
    Ok(())
}
