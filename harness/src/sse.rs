//! A bare Server-Sent Events reader for the live-feed benchmark: one
//! `GET /events/live` stream, each event's delay from its batch
//! transaction's start (`ingested_at`) to its arrival here.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// What one stream saw.
#[derive(Debug, Default)]
pub struct Received {
    /// Milliseconds from `ingested_at` to arrival, one per event.
    pub delays_ms: Vec<f64>,
    /// Events the sampled mode left out (`event: skipped`).
    pub skipped: u64,
    /// Why the stream ended with `event: dropped` (`slow_client`,
    /// `server_stopping`...), if it did.
    pub dropped: Option<String>,
}

/// Reads `url` until `stop` is raised or the stream ends.
pub async fn read(url: String, mut stop: watch::Receiver<bool>) -> anyhow::Result<Received> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(10))
        .build()?;
    let mut response = client.get(&url).send().await?.error_for_status()?;
    let mut received = Received::default();
    // Bytes, not text, until a whole event is in: a chunk may end inside a
    // multi-byte character.
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let chunk = tokio::select! {
            _ = stop.wait_for(|s| *s) => return Ok(received),
            chunk = response.chunk() => chunk?,
        };
        let Some(chunk) = chunk else {
            return Ok(received);
        };
        let arrived = Utc::now();
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = pending.drain(..end + 2).collect();
            handle(&String::from_utf8_lossy(&block), arrived, &mut received);
        }
    }
}

fn handle(block: &str, arrived: DateTime<Utc>, received: &mut Received) {
    let field = |name: &str| {
        block
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(str::trim)
    };
    let data = field("data:").unwrap_or_default();
    match field("event:") {
        Some("skipped") => {
            let count = serde_json::from_str::<serde_json::Value>(data)
                .ok()
                .and_then(|v| v["count"].as_u64());
            received.skipped += count.unwrap_or(0);
        }
        Some("dropped") => {
            let reason = serde_json::from_str::<serde_json::Value>(data)
                .ok()
                .and_then(|v| v["reason"].as_str().map(str::to_owned));
            received.dropped = Some(reason.unwrap_or_else(|| "unknown".to_owned()));
        }
        Some(_) => {}
        None if data.is_empty() => {} // a heartbeat comment
        None => {
            let ingested = serde_json::from_str::<serde_json::Value>(data)
                .ok()
                .and_then(|v| v["ingested_at"].as_str().map(str::to_owned))
                .and_then(|t| DateTime::parse_from_rfc3339(&t).ok());
            if let Some(ingested) = ingested {
                let delay = arrived - ingested.with_timezone(&Utc);
                received
                    .delays_ms
                    .push(delay.num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_skips_and_drops_are_told_apart() {
        let arrived = DateTime::parse_from_rfc3339("2026-12-03T10:00:00.250Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut received = Received::default();
        handle(
            "id: 1-2\ndata: {\"ingested_at\":\"2026-12-03T10:00:00.200Z\"}\n\n",
            arrived,
            &mut received,
        );
        handle(
            "event: skipped\ndata: {\"count\":7}\n\n",
            arrived,
            &mut received,
        );
        handle(":\n\n", arrived, &mut received);
        handle(
            "event: dropped\ndata: {\"reason\":\"slow_client\"}\n\n",
            arrived,
            &mut received,
        );
        assert_eq!(received.delays_ms, vec![50.0]);
        assert_eq!(received.skipped, 7);
        assert_eq!(received.dropped.as_deref(), Some("slow_client"));
    }
}
