//! eventpulse-api: what you can ask of the stored events, and a way to send
//! events in over HTTP. One axum service, two sides:
//!
//! Read side, on Postgres (the consumer's tables: `events`, partitioned by
//! day, `event_ids`, and the rollups its inserts keep exact):
//! - [`stats`]: `GET /stats/hourly`, `GET /stats/top-users`, `GET /events/metrics`,
//!   `GET /stats/dead-letters`. Counts by time and user come from the
//!   [`stats_source`] chosen by `--stats-source`: [`rollups`] (whole hours and
//!   days from the rollup tables, the edges of the range, as cut by
//!   [`range_split`], from the rows) or [`queries`] (every row); both give
//!   the same answers.
//! - [`lookup`]: `GET /events/{event_id}` (found through `event_ids`) and
//!   `GET /events`, paginated by a keyset [`cursor`]; each event rendered as
//!   a [`view::EventView`].
//! - [`live`]: `GET /events/live`, committed events as Server-Sent Events,
//!   fed by one [`feed`] task per process that hears the consumer's commits
//!   and, in bursts, waits for the streams that keep up ([`pacing`]).
//! - [`status`]: `GET /pipeline/status`, each partition's stored position,
//!   high watermark and lag, and the time since the last commit.
//! - [`params`]: query parameters parsed into valid values (400 naming the
//!   parameter otherwise); [`queries`]: every SQL statement on the rows,
//!   [`rollups`]: the statistics statements on the rollups; [`db`]: the
//!   read-only pool, which checks at start-up that the tables exist.
//!
//! Write side, into Kafka:
//! - [`ingest`]: `POST /events` and `POST /events/batch`, guarded by
//!   [`auth`] (`X-API-Key` against the [`keys`], constant-time), validated with the shared
//!   `eventpulse-events` rules, split by [`json_array`], produced by
//!   [`kafka`] and answered 202 only after the broker acknowledged.
//! - [`grpc`]: the same ingestion over gRPC (`eventpulse.v1.EventService`,
//!   `--grpc-addr`), with the standard health and reflection services.
//!
//! Around them: [`http`] (the route table, `/healthz`, `/metrics`,
//! `/openapi.json` and the request metrics middleware), [`state`] (what every
//! handler can reach), [`error`] (every
//! failure and its status), [`metrics`], [`config`] (flags > env > file >
//! defaults), and [`app`], which wires it all up. `main.rs` only parses the
//! command line and calls [`app::Application`]. The plumbing shared with the
//! consumer (settings checks, URL redaction, the shutdown signal, logging,
//! Prometheus rendering, exit statuses) is in `eventpulse-service`.
//! `openapi.json` beside `src/` documents every route; a unit test in
//! [`http`] keeps it in step with the router.

pub mod app;
pub mod auth;
pub mod config;
pub mod cursor;
pub mod dashboard;
pub mod db;
pub mod error;
pub mod feed;
pub mod grpc;
pub mod http;
pub mod ingest;
pub mod json_array;
pub mod kafka;
pub mod keys;
pub mod live;
pub mod lookup;
pub mod metrics;
pub mod pacing;
pub mod params;
pub mod queries;
pub mod range_split;
pub mod rollups;
pub mod state;
pub mod stats;
pub mod stats_source;
pub mod status;
pub mod throughput;
pub mod view;

pub use app::Application;
pub use config::{Cli, Settings};
