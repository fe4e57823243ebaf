//! Bounds that validation enforces. All are configurable in the consumer; the
//! defaults suit the simulated traffic and keep one bad producer from filling
//! Postgres with megabyte rows.

use chrono::Duration;

/// Limits applied by [`crate::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest Kafka record value accepted, in bytes.
    pub max_message_bytes: usize,
    /// Longest string accepted for a known payload field or form field, in characters.
    pub max_string_chars: usize,
    /// Most entries a `form_submit` event's `fields` object may have.
    pub max_form_fields: usize,
    /// How far ahead of the consumer's clock a timestamp may be (clock skew).
    pub max_future_skew: Duration,
    /// How far in the past a timestamp may be; older ones are treated as absurd.
    pub max_age: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 * 1024,
            max_string_chars: 2048,
            max_form_fields: 64,
            max_future_skew: Duration::minutes(5),
            max_age: Duration::days(365),
        }
    }
}
