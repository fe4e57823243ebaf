//! The live feed's source: one task per API process that hears the
//! consumer's commit notifications (`LISTEN`, see `eventpulse_service::feed`)
//! and reads the newly committed rows by their feed cursor, then hands each
//! row to every connected stream ([`crate::live`]) through one bounded
//! broadcast channel. A poll every second covers notifications missed while
//! the listening connection was being re-established.
//!
//! Why nothing is missed or repeated: a row is read only once every
//! transaction older than its writer has ended (its `feed_xid` is below the
//! snapshot's xmin), so no row can later commit behind a cursor already
//! handed out. The price: a long-running *writing* transaction anywhere in
//! the cluster holds the feed back until it ends.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::metrics::Metrics;
use crate::pacing::{Pacing, Reading};
use crate::queries::StoredRow;
use crate::throughput::Throughput;
use crate::view::EventView;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::{broadcast, watch};

/// Rows read per query; the reader loops until it has caught up.
const PAGE: i64 = 500;
/// How often the feed looks for rows without being notified.
const POLL: Duration = Duration::from_secs(1);

/// Where a row stands in the feed: its writer's transaction id, then its
/// sequence number. Sent to clients as the SSE `id`, `<xid>-<seq>`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct FeedCursor {
    pub xid: i64,
    pub seq: i64,
}

impl FeedCursor {
    pub fn parse(text: &str) -> Option<Self> {
        let (xid, seq) = text.trim().split_once('-')?;
        Some(Self {
            xid: xid.parse().ok().filter(|x| *x >= 0)?,
            seq: seq.parse().ok()?,
        })
    }
}

impl std::fmt::Display for FeedCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.xid, self.seq)
    }
}

/// One committed row as the query returns it.
#[derive(sqlx::FromRow)]
struct FeedRow {
    xid: i64,
    seq: i64,
    #[sqlx(flatten)]
    row: StoredRow,
}

/// One committed event, its place in the feed and its JSON, rendered once
/// for every stream that sends it.
#[derive(Debug, Clone)]
pub struct FeedEvent {
    pub cursor: FeedCursor,
    /// Its number among the rows the feed handed out (0 when read by a
    /// resuming stream itself).
    pub seq: u64,
    pub event_type: String,
    pub user_id: String,
    /// When its batch transaction started (the row's `ingested_at`).
    pub ingested_at: DateTime<Utc>,
    /// `None` for a stored payload that is not JSON (logged once, here).
    pub data: Option<String>,
}

impl From<FeedRow> for FeedEvent {
    fn from(feed: FeedRow) -> Self {
        let (event_type, user_id) = (feed.row.event_type.clone(), feed.row.user_id.clone());
        let (event_id, ingested_at) = (feed.row.event_id, feed.row.ingested_at);
        let data = EventView::try_from(feed.row)
            .map(|view| serde_json::to_string(&view).expect("an event view serialises"))
            .map_err(|e| tracing::error!(%event_id, "live feed: {e:#}"))
            .ok();
        Self {
            cursor: FeedCursor {
                xid: feed.xid,
                seq: feed.seq,
            },
            seq: 0,
            event_type,
            user_id,
            ingested_at,
            data,
        }
    }
}

/// The committed events after `after`, oldest first, at most `limit`.
pub async fn rows_after(
    pool: &PgPool,
    after: FeedCursor,
    limit: i64,
) -> sqlx::Result<Vec<FeedEvent>> {
    let rows: Vec<FeedRow> = sqlx::query_as(
        "SELECT feed_xid::text::int8 AS xid, feed_seq AS seq, event_id, event_type, user_id, \
                occurred_at, payload::text AS payload, ingested_at \
         FROM events \
         WHERE feed_xid IS NOT NULL \
           AND (feed_xid, feed_seq) > ($1::text::xid8, $2) \
           AND feed_xid < pg_snapshot_xmin(pg_current_snapshot()) \
         ORDER BY feed_xid, feed_seq \
         LIMIT $3",
    )
    .bind(after.xid.to_string())
    .bind(after.seq)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(FeedEvent::from).collect())
}

/// The cursor of the newest committed row at start-up.
async fn head(pool: &PgPool) -> sqlx::Result<FeedCursor> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT feed_xid::text::int8, feed_seq FROM events \
         WHERE feed_xid IS NOT NULL AND feed_xid < pg_snapshot_xmin(pg_current_snapshot()) \
         ORDER BY feed_xid DESC, feed_seq DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map_or(FeedCursor::default(), |(xid, seq)| FeedCursor { xid, seq }))
}

/// The handle streams subscribe through.
#[derive(Clone)]
pub struct Feed {
    rows: broadcast::Sender<Arc<FeedEvent>>,
    head: watch::Receiver<FeedCursor>,
    /// Set at shutdown: every stream ends, so the server can stop.
    stopping: Arc<watch::Sender<bool>>,
    throughput: Throughput,
    pacing: Pacing,
}

impl Feed {
    /// Reads the current head and starts the reading task; `capacity` rows
    /// is how far a stream may fall behind before it is cut off.
    pub async fn start(pool: PgPool, capacity: usize, metrics: Metrics) -> anyhow::Result<Self> {
        let start = head(&pool).await?;
        let (rows, _) = broadcast::channel(capacity);
        let (advance, head) = watch::channel(start);
        let stopping = Arc::new(watch::Sender::new(false));
        let throughput = Throughput::default();
        let pacing = Pacing::default();
        let reader = Reader {
            pool,
            rows: rows.clone(),
            advance,
            stopping: stopping.subscribe(),
            metrics,
            throughput: throughput.clone(),
            capacity,
            pacing: pacing.clone(),
        };
        tokio::spawn(reader.run(start));
        Ok(Self {
            rows,
            head,
            stopping,
            throughput,
            pacing,
        })
    }

    /// Ends the reading task and every stream (graceful shutdown waits for
    /// open connections, and a live stream never ends by itself).
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Completes once [`Feed::stop`] was called.
    pub async fn stopped(&self) {
        let mut stopping = self.stopping.subscribe();
        let _ = stopping.wait_for(|stop| *stop).await;
    }

    /// The live rows from now on, and where the stream records how far it
    /// has read them ([`crate::pacing`]).
    pub fn subscribe(&self) -> (broadcast::Receiver<Arc<FeedEvent>>, Reading) {
        (self.rows.subscribe(), self.pacing.join())
    }

    /// The newest row handed to the streams so far (rows of the page being
    /// handed out may be newer): where a stream without `Last-Event-ID`
    /// starts reading from Postgres.
    pub fn head(&self) -> FeedCursor {
        *self.head.borrow()
    }

    /// Events per second by type, counted as the rows are read.
    pub fn throughput(&self) -> &Throughput {
        &self.throughput
    }
}

struct Reader {
    pool: PgPool,
    rows: broadcast::Sender<Arc<FeedEvent>>,
    advance: watch::Sender<FeedCursor>,
    stopping: watch::Receiver<bool>,
    metrics: Metrics,
    throughput: Throughput,
    /// The buffer's size in rows.
    capacity: usize,
    pacing: Pacing,
}

impl Reader {
    /// Ends at [`Feed::stop`] or when the last [`Feed`] handle is gone.
    async fn run(self, mut cursor: FeedCursor) {
        let mut listener = None;
        while !self.advance.is_closed() && !*self.stopping.borrow() {
            if listener.is_none() {
                listener = self.listen().await;
            }
            let heard = match listener.as_mut() {
                Some(l) => tokio::time::timeout(POLL, l.try_recv()).await,
                None => Ok(Ok(None)),
            };
            match heard {
                // The connection dropped: listen again on the next round.
                Ok(Ok(None)) | Ok(Err(_)) => listener = None,
                Ok(Ok(Some(_))) | Err(_) => {}
            }
            // One read covers every commit notified so far.
            if let Some(l) = listener.as_mut() {
                while l.next_buffered().is_some() {}
            }
            if listener.is_none() {
                tokio::time::sleep(POLL).await;
            }
            cursor = self.catch_up(cursor).await;
        }
    }

    async fn listen(&self) -> Option<PgListener> {
        let attempt = async {
            let mut listener = PgListener::connect_with(&self.pool).await?;
            listener.listen(eventpulse_service::feed::CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        match attempt.await {
            Ok(listener) => Some(listener),
            Err(e) => {
                self.metrics
                    .dependency_failed(eventpulse_service::Dependency::Postgres);
                tracing::warn!("live feed: listening for commits: {e}; polling every second");
                None
            }
        }
    }

    /// Hands out every row committed after `cursor`; returns the new cursor.
    async fn catch_up(&self, mut cursor: FeedCursor) -> FeedCursor {
        loop {
            let rows = match rows_after(&self.pool, cursor, PAGE).await {
                Ok(rows) => rows,
                Err(e) => {
                    self.metrics
                        .dependency_failed(eventpulse_service::Dependency::Postgres);
                    tracing::warn!("live feed: reading new rows: {e}");
                    return cursor;
                }
            };
            let full = rows.len() as i64 == PAGE;
            let now = Utc::now();
            for mut row in rows {
                cursor = row.cursor;
                row.seq = self.pacing.next_seq();
                self.throughput
                    .record(&row.event_type, row.ingested_at, now);
                // No stream connected is not an error.
                let _ = self.rows.send(Arc::new(row));
            }
            let _ = self.advance.send(cursor);
            if !full {
                return cursor;
            }
            // Half the buffer: what the streams may fall behind in a burst.
            self.pacing.wait_for_readers(self.capacity as u64 / 2).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_order_by_transaction_first() {
        let cursor = FeedCursor { xid: 812, seq: 40 };
        assert_eq!(FeedCursor::parse(&cursor.to_string()), Some(cursor));
        assert!(FeedCursor { xid: 813, seq: 1 } > cursor);
        for bad in ["", "12", "a-1", "-1-2", "1-", "1-2-3"] {
            assert_eq!(FeedCursor::parse(bad), None, "{bad:?}");
        }
    }
}
