//! `GET /events/live`: committed events as Server-Sent Events, in feed order
//! ([`crate::feed`]). Each event's SSE `id` is its feed cursor; a client that
//! reconnects with `Last-Event-ID` (browsers' `EventSource` does so by
//! itself) first gets what it missed, read from Postgres, then the live
//! stream, with no gap and no repeat.
//!
//! - `last_event_id=<cursor>` does what the header does, for clients that
//!   cannot set headers (a page reopening its `EventSource` after a pause);
//!   the header wins when both are given, as it is the newer one.
//! - Filters: `type` (one event type) and `user_id`.
//! - `max_per_second=N`: a sampled stream for people watching high rates; an
//!   `event: skipped` with `{"count": n}` precedes the next event after skips.
//! - Rows a stream handles but does not send (filtered out, sampled away)
//!   still move its position: an `event: position` carrying only an `id`,
//!   at most once a second, so a resume does not replay them.
//! - A stream that falls more than the feed's buffer behind (a slow client)
//!   gets `event: dropped` and is closed, so it never holds up the others.
//! - At most `--live-max-streams` streams at once; beyond that, 503.
//! - A comment every 15 s keeps proxies from closing an idle stream.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::{DateTime, Utc};
use eventpulse_events::EventType;
use futures::Stream;
use tokio::sync::broadcast::{error::RecvError, Receiver};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use crate::error::ApiError;
use crate::feed::{rows_after, FeedCursor, FeedEvent};
use crate::metrics::Metrics;
use crate::pacing::Reading;
use crate::params::{FromQuery, Params, Query};
use crate::state::AppState;

/// Rows per Postgres read while a resuming stream catches up.
/// Small, so a replaying stream holds little (rows are at most 64 KiB).
const REPLAY_PAGE: i64 = 100;
const HEARTBEAT: Duration = Duration::from_secs(15);
/// Most often a stream sends its position without an event.
const POSITION_EVERY: Duration = Duration::from_secs(1);

pub struct LiveParams {
    event_type: Option<EventType>,
    user_id: Option<String>,
    max_per_second: Option<u32>,
    last_event_id: Option<FeedCursor>,
}

impl FromQuery for LiveParams {
    const NAMES: &'static [&'static str] = &["type", "user_id", "max_per_second", "last_event_id"];

    fn from_query(query: &mut Query, _now: DateTime<Utc>) -> Result<Self, ApiError> {
        let user_id = query.user_id("user_id")?;
        let max_per_second = match query.take("max_per_second") {
            None => None,
            Some(raw) => Some(query_rate(&raw)?),
        };
        let last_event_id = match query.take("last_event_id") {
            None => None,
            Some(raw) => Some(FeedCursor::parse(&raw).ok_or_else(|| {
                ApiError::bad_parameter("last_event_id", "last_event_id is not a feed cursor")
            })?),
        };
        Ok(Self {
            event_type: query.event_type("type")?,
            user_id,
            max_per_second,
            last_event_id,
        })
    }
}

fn query_rate(raw: &str) -> Result<u32, ApiError> {
    raw.parse::<u32>()
        .ok()
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| {
            ApiError::bad_parameter("max_per_second", "max_per_second must be from 1 to 10000")
        })
}

pub async fn live(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(params): Params<LiveParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let resume =
        match headers.get("last-event-id") {
            None => params.last_event_id,
            Some(value) => Some(value.to_str().ok().and_then(FeedCursor::parse).ok_or_else(
                || ApiError::bad_parameter("Last-Event-ID", "Last-Event-ID is not a feed cursor"),
            )?),
        };
    let permit = Arc::clone(&state.live_streams)
        .try_acquire_owned()
        .map_err(|_| ApiError::TooManyStreams {
            limit: state.live_max_streams,
        })?;
    // Every stream starts by reading from Postgres (from the feed's head
    // when not resuming), and subscribes to the live rows only once it has
    // caught up: nothing falls between the two, and a long replay cannot
    // overrun the shared buffer.
    let start = resume.unwrap_or_else(|| state.feed.head());
    let guard = Guard::new(permit, state.metrics.clone());
    let stream = LiveStream {
        state,
        filter: params,
        rows: None,
        sent: start,
        told: (start, Instant::now()),
        replaying: true,
        pending: VecDeque::new(),
        sampler: None,
        done: false,
        _guard: guard,
    };
    Ok(Sse::new(futures::stream::unfold(stream, LiveStream::next))
        .keep_alive(KeepAlive::new().interval(HEARTBEAT)))
}

/// Holds the stream's slot and keeps the connected-clients gauge right
/// however the stream ends (finished, dropped, client gone).
struct Guard {
    _permit: OwnedSemaphorePermit,
    metrics: Metrics,
}

impl Guard {
    fn new(permit: OwnedSemaphorePermit, metrics: Metrics) -> Self {
        metrics.live_clients.inc();
        Self {
            _permit: permit,
            metrics,
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.metrics.live_clients.dec();
    }
}

/// At most `limit` events per second; counts what it leaves out.
struct Sampler {
    limit: u32,
    window: Instant,
    sent_in_window: u32,
    skipped: u64,
}

impl Sampler {
    fn new(limit: u32) -> Self {
        Self {
            limit,
            window: Instant::now(),
            sent_in_window: 0,
            skipped: 0,
        }
    }

    /// Whether to send the next event; if so, how many were skipped before it.
    fn admit(&mut self) -> Option<u64> {
        if self.window.elapsed() >= Duration::from_secs(1) {
            self.window = Instant::now();
            self.sent_in_window = 0;
        }
        if self.sent_in_window >= self.limit {
            self.skipped += 1;
            return None;
        }
        self.sent_in_window += 1;
        Some(std::mem::take(&mut self.skipped))
    }
}

struct LiveStream {
    state: AppState,
    filter: LiveParams,
    /// The live rows, subscribed once the replay has caught up, and where
    /// this stream tells the feed how far it has read them.
    rows: Option<(Receiver<Arc<FeedEvent>>, Reading)>,
    /// The cursor of the last row handled (sent, filtered out or skipped).
    sent: FeedCursor,
    /// The last cursor the client was given as an `id`, and when.
    told: (FeedCursor, Instant),
    /// Reading missed rows from Postgres before switching to the live rows.
    replaying: bool,
    /// Events ready to go out, oldest first.
    pending: VecDeque<Event>,
    sampler: Option<Sampler>,
    done: bool,
    _guard: Guard,
}

impl LiveStream {
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some((Ok(event), self));
            }
            if self.done {
                return None;
            }
            if self.replaying {
                self.replay().await;
            } else {
                self.receive().await;
            }
        }
    }

    /// One page of missed rows from Postgres. The first short page
    /// subscribes to the live rows, and one more page covers what committed
    /// meanwhile; the live rows take over after that.
    async fn replay(&mut self) {
        if self.state.feed.is_stopping() {
            return self.end("server_stopping");
        }
        match rows_after(&self.state.pool, self.sent, REPLAY_PAGE).await {
            Ok(rows) => {
                if (rows.len() as i64) < REPLAY_PAGE {
                    match self.rows {
                        None => self.rows = Some(self.state.feed.subscribe()),
                        Some(_) => self.replaying = false,
                    }
                }
                for row in rows {
                    self.handle(&row);
                }
            }
            Err(e) => {
                tracing::warn!("live feed: replaying for a resumed stream: {e}");
                self.end("postgres_unavailable");
            }
        }
    }

    async fn receive(&mut self) {
        let Some((rows, reading)) = self.rows.as_mut() else {
            unreachable!("the live rows are subscribed before the replay ends");
        };
        let received = tokio::select! {
            biased;
            () = self.state.feed.stopped() => return self.end("server_stopping"),
            received = rows.recv() => received,
        };
        match received {
            Ok(row) => {
                reading.took(row.seq);
                self.handle(&row);
            }
            Err(RecvError::Lagged(missed)) => {
                self.state.metrics.live_dropped();
                tracing::info!(missed, "live feed: a stream fell behind and was cut off");
                self.end("slow_client");
            }
            Err(RecvError::Closed) => self.end("server_stopping"),
        }
    }

    /// Queues `row` if it is new to this stream and passes its filters.
    fn handle(&mut self, row: &FeedEvent) {
        if row.cursor <= self.sent {
            return; // already handled: replay and live overlap
        }
        self.sent = row.cursor;
        let Some((data, skipped)) = self.admit(row) else {
            return self.tell_position();
        };
        if skipped > 0 {
            let note = Event::default()
                .event("skipped")
                .data(format!(r#"{{"count":{skipped}}}"#));
            self.pending.push_back(note);
        }
        let event = Event::default().id(row.cursor.to_string()).data(data);
        self.pending.push_back(event);
        self.told = (row.cursor, Instant::now());
        self.state.metrics.live_sent();
    }

    /// The row's JSON and how many rows sampling left out before it, if the
    /// row passes the filters and the sampler.
    fn admit<'r>(&mut self, row: &'r FeedEvent) -> Option<(&'r str, u64)> {
        let data = row.data.as_deref()?;
        let other_type = self
            .filter
            .event_type
            .is_some_and(|t| t.as_str() != row.event_type);
        let other_user = self
            .filter
            .user_id
            .as_ref()
            .is_some_and(|u| *u != row.user_id);
        if other_type || other_user {
            return None;
        }
        let Some(limit) = self.filter.max_per_second else {
            return Some((data, 0));
        };
        let sampler = self.sampler.get_or_insert_with(|| Sampler::new(limit));
        sampler.admit().map(|skipped| (data, skipped))
    }

    /// Rows handled but not sent still move the stream on: at most once
    /// every [`POSITION_EVERY`] an `event: position` carries the cursor as
    /// its `id`, so a client resuming from its last id does not get those
    /// rows again (a sampled or filtered stream would otherwise replay
    /// everything since the last event it was sent).
    fn tell_position(&mut self) {
        let (told, at) = self.told;
        if self.sent > told && at.elapsed() >= POSITION_EVERY {
            let event = Event::default()
                .event("position")
                .id(self.sent.to_string())
                .data("{}");
            self.pending.push_back(event);
            self.told = (self.sent, Instant::now());
        }
    }

    /// Sends a last `dropped` event saying why, then ends the stream.
    fn end(&mut self, reason: &str) {
        let event = Event::default().event("dropped").data(format!(
            r#"{{"reason":"{reason}","last_event_id":"{}"}}"#,
            self.sent
        ));
        self.pending.push_back(event);
        self.done = true;
    }
}
