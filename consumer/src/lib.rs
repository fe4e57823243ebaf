//! eventpulse-consumer: Kafka `events` -> validation -> Redis dedup -> Postgres,
//! every valid event stored exactly once, every invalid one dead-lettered.
//!
//! The pipeline, one module per stage:
//! - [`receive`]: a Kafka message in, admitted by the commit stage and
//!   validated (by the shared `eventpulse-events` crate) against its own Kafka
//!   timestamp, a batch entry out.
//! - [`batch`]: messages gathered until a count, byte or linger limit.
//! - [`flush`]: makes a batch durable, in order: in-batch dedup, Redis claim
//!   ([`dedup`]), dead letters ([`dlq`]), one Postgres transaction ([`store`];
//!   its rows go in by binary COPY, [`event_rows`] and [`copy_binary`]).
//!   Every retry goes through [`retry::until_ok`], which shutdown always ends.
//! - [`commit`]: the one owner of partition state ([`partitions`], a pure
//!   state machine; [`position`], offsets within epochs): ownership from the
//!   rebalance callbacks ([`kafka`]), where each new partition starts
//!   ([`resume`], the decision, and [`resolve`], its inputs: the record
//!   before the stored position is checked with a [`reader`] outside the group), every Kafka commit, and which Redis marks may be confirmed.
//! - [`pipeline`]: the loop tying these together; [`lanes`]: with
//!   `--flush-lanes` above 1, batches of disjoint partitions flushed side by side.
//!
//! Around it: [`config`] (flags > env > file > defaults), [`metrics`] (every
//! Prometheus series), [`http`] (`/metrics`, `/healthz`, `/readyz`),
//! [`heartbeat`] (this member's row in `consumer_members`, for the API's status),
//! [`preflight`] (start-up warnings: a Redis too old for the claim, Postgres not durable),
//! [`retention`] (time partitions created ahead, expired ones dropped),
//! [`shutdown`], and [`app`], which wires everything up. `main.rs` only parses
//! the command line and calls [`app::Application`] or, for the one-shot
//! subcommands, [`commands`]: [`schema`] (migrations, and the layouts a
//! consumer refuses), [`rollups`] (check and rebuild against the rows), [`replay`]
//! (a range of the topic again, under its own group id). The plumbing shared with
//! the API (settings checks, URL redaction, the shutdown signal, logging,
//! Prometheus rendering, exit statuses) is in `eventpulse-service`.
//!
//! Why it cannot lose or duplicate: a batch's rows, its dead-letter records
//! and its next positions commit in one Postgres transaction; Kafka is
//! committed only afterwards, and Redis told "stored" only after Kafka; the
//! `event_ids` primary key turns any replay into a no-op; and a partition whose
//! offsets disagree with Postgres is re-read, never skipped.

pub mod app;
pub mod batch;
pub mod commands;
pub mod commit;
pub mod config;
pub mod copy_binary;
pub mod dedup;
pub mod dlq;
pub mod event_rows;
pub mod flush;
pub mod heartbeat;
pub mod http;
pub mod kafka;
pub mod lanes;
pub mod metrics;
pub mod partitions;
pub mod pipeline;
pub mod position;
pub mod preflight;
pub mod reader;
pub mod receive;
pub mod replay;
pub mod resolve;
pub mod resume;
pub mod retention;
pub mod retry;
pub mod rollups;
pub mod schema;
pub mod shutdown;
pub mod store;

pub use app::Application;
pub use config::{Cli, Command, Settings};
