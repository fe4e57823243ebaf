//! eventpulse-consumer: Kafka `events` -> validation -> Redis dedup -> Postgres,
//! every valid event stored exactly once, every invalid one dead-lettered.
//!
//! The pipeline, one module per stage:
//! - [`kafka`]: the group consumer and its rebalance callbacks.
//! - [`partitions`]: partition ownership and resumption from the offsets
//!   stored in Postgres (the source of truth, written with the rows).
//! - validation lives in the shared `eventpulse-events` crate.
//! - [`batch`]: messages gathered until a size or linger limit.
//! - [`flush`]: makes a batch durable, in order: in-batch dedup, Redis claim
//!   ([`dedup`]), dead letters ([`dlq`]), one Postgres transaction ([`store`]),
//!   Redis confirmation. Transient failures retry with [`retry`] backoff.
//! - [`pipeline`]: the loop tying these together, then the Kafka commit.
//!
//! Around it: [`config`] (flags > env > file > defaults), [`metrics`] (every
//! Prometheus series), [`http`] (`/metrics`, `/healthz`, `/readyz`),
//! [`shutdown`], and [`app`], which wires everything up. `main.rs` only parses
//! the command line and calls [`app::Application`]. The plumbing shared with
//! the API (settings checks, URL redaction, the shutdown signal, logging,
//! Prometheus rendering, exit statuses) is in `eventpulse-service`.
//!
//! Why it cannot lose or duplicate: a batch's rows, its dead-letter records
//! and its next offsets commit in one Postgres transaction; Kafka is committed
//! only afterwards; the `events` primary key turns any replay into a no-op;
//! and Redis only ever says "stored" for rows already committed.

pub mod app;
pub mod batch;
pub mod config;
pub mod dedup;
pub mod dlq;
pub mod flush;
pub mod http;
pub mod kafka;
pub mod metrics;
pub mod partitions;
pub mod pipeline;
pub mod retry;
pub mod shutdown;
pub mod store;

pub use app::Application;
pub use config::{Cli, Command, Settings};
