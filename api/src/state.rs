//! What every handler can reach. Its own module, so handlers and the router
//! that names them do not import each other.

use std::path::PathBuf;
use std::sync::Arc;

use eventpulse_events::Limits;
use sqlx::PgPool;
use tokio::sync::Semaphore;

use crate::feed::Feed;
use crate::kafka::{Ingestor, Watermarks};
use crate::keys::ApiKeys;
use crate::metrics::Metrics;
use crate::stats_source::StatsSource;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    /// `None` when no API key is configured: ingestion is disabled.
    pub ingestor: Option<Arc<Ingestor>>,
    pub api_keys: ApiKeys,
    pub limits: Arc<Limits>,
    pub max_batch_events: usize,
    pub max_body_bytes: usize,
    pub metrics: Metrics,
    /// What answers `/stats/hourly`, `/stats/top-users` and `/events/metrics`.
    pub stats_source: StatsSource,
    /// The source of `GET /events/live`.
    pub feed: Feed,
    /// One permit per live stream that may be open.
    pub live_streams: Arc<Semaphore>,
    pub live_max_streams: usize,
    /// Reads the brokers' high watermarks for `GET /pipeline/status`.
    pub watermarks: Arc<Watermarks>,
    /// The built dashboard's files, served at `/` and below.
    pub dashboard_dir: Arc<PathBuf>,
}
