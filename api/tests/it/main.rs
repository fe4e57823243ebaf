//! Integration tests against the real local stack (`scripts/stack.sh up`):
//! the broker, Redis (for the consumer in the end-to-end test) and
//! Postgres. Each test makes its own topic and database. One test binary
//! keeps link time down.

mod support;

mod browser;
mod dashboard_api;
mod end_to_end;
mod grpc;
mod grpcurl;
mod ingest;
mod listing;
mod live;
mod query;
mod stats_sources;
mod status;
mod unavailable;
