//! The contract between the consumer and the API's live feed: the consumer's
//! batch transaction notifies [`CHANNEL`] when it stored rows (a Postgres
//! notification is delivered on commit only, in commit order), and the API
//! then reads the new rows by their feed cursor (`feed_xid`, `feed_seq`).

/// The `LISTEN`/`NOTIFY` channel.
pub const CHANNEL: &str = "eventpulse_feed";
