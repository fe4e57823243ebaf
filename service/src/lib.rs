//! eventpulse-service: the plumbing every eventpulse service shares, so that
//! the consumer and the API are configured, log, report, start and stop alike.
//!
//! - [`settings`]: the helpers behind each service's layered settings (flags >
//!   env > file > defaults). A [`settings::Key`] names a setting the way the
//!   user sets it; every check ([`settings::in_range`],
//!   [`settings::non_empty`], [`settings::url_with_scheme`],
//!   [`settings::parse_properties`]) fails with a one-line [`ConfigError`]
//!   naming the flag and the variable; [`layer_over!`] merges two layers field
//!   by field and [`settings::over_file`] puts the command line over the TOML
//!   file.
//! - [`common`]: the settings every service reads alike (brokers, topic,
//!   database URL, event validation limits), with one set of defaults and
//!   ranges, so an event one service accepts another does not reject.
//! - [`redact`]: [`redact_url`], the only form in which a URL reaches a log or
//!   an error message.
//! - [`shutdown`]: the SIGTERM/SIGINT future, and [`ShutdownFlag`], which any
//!   number of tasks can wait on.
//! - [`telemetry`]: `tracing` to stderr, pretty or JSON.
//! - [`metrics`]: a Prometheus registry with the process series, registering
//!   metrics as they are made, and the `/metrics` response.
//! - [`dependency`]: the outside systems, as metric labels.
//! - [`feed`]: the channel the consumer notifies and the API's live feed hears.
//! - [`kafka`]: the start-up check that the brokers answer and a topic exists.
//! - [`startup`]: binding the listener, and what `main` does with the
//!   settings and the outcome (exit statuses 0, 1 and 2).
//!
//! What stays in each service: its `Layer` and `Settings` types (their fields
//! differ) and everything about its own work.

pub mod common;
pub mod dependency;
pub mod feed;
pub mod kafka;
pub mod metrics;
pub mod redact;
pub mod settings;
pub mod shutdown;
pub mod startup;
pub mod telemetry;

pub use dependency::Dependency;
pub use redact::redact_url;
pub use settings::ConfigError;
pub use shutdown::ShutdownFlag;
pub use telemetry::LogFormat;
