//! Integration tests against the real local stack (`scripts/stack.sh up`):
//! the broker, Redis and Postgres. Each test makes its own topics, group and
//! database. One test binary keeps link time down.

mod support;

mod dashboards;
mod faults;
mod group;
mod hardening;
mod heartbeat;
mod pipeline;
mod preflight;
mod replay;
mod storage;
mod write_methods;
