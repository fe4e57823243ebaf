//! eventpulse-harness: the real binaries against the real stack, in two
//! programs. `eventpulse-bench` (`scripts/bench.sh`) measures how fast
//! eventpulse is relative to what this machine's components can do at all;
//! `eventpulse-faults` (`scripts/faults.sh`) breaks things while traffic flows
//! and checks that nothing was lost or stored twice.
//!
//! Benchmark:
//! - [`ceilings`]: each component alone, through the consumer's own code where
//!   one exists: broker drain (no processing), Redis claim+confirm pipelines
//!   (`RedisFilter`); [`postgres_ceilings`]: Postgres alone into the final
//!   schema (server-side `INSERT ... SELECT` and pre-encoded binary COPY),
//!   beside the consumer's `Store::write_batch` by each write method and the
//!   unpartitioned table of before.
//! - [`scenarios`]: the real binaries end to end: drain a pre-filled topic,
//!   produce-to-row latency at a fixed rate, scaling over 1..3 consumers, and
//!   the batch-size sweep that chose the defaults.
//! - [`grpc`]: events/s through the API's gRPC ingestion into Kafka, beside
//!   the same producer straight to Kafka.
//! - [`live`]: the API's live feed under load: delay from commit to client
//!   and the API's CPU and memory with many streams open ([`sse`] reads them).
//! - [`peer`]: our consumer against Quix Streams' PostgreSQLSink on the same
//!   topic (`--peer`; `scripts/peer/quix_sink.py`).
//! - [`storage`]: the statistics endpoints at 2M and 20M rows from the
//!   rollups and from the rows, and writes during a retention drop.
//! - [`procs`]: spawning the binaries, waiting for a drain, reading CPU time and
//!   peak RSS from `/proc`.
//! - [`report`]: one table with ratios to the slowest ceiling, and JSON;
//!   [`goals`]: Step 11's goals, met or missed, from the same figures.
//!
//! Nothing here asserts on time: it prints what it measured.

pub mod ceilings;
pub mod cli;
pub mod faults;
pub mod goals;
pub mod grpc;
pub mod live;
pub mod peer;
pub mod postgres_ceilings;
pub mod procs;
pub mod report;
pub mod scenarios;
pub mod services;
pub mod sse;
pub mod storage;
