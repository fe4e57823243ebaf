//! The settings every eventpulse service reads alike: the brokers, the
//! topic, the database and the event validation limits. They have the same
//! flags, variables, defaults and ranges in every service, so that one
//! environment configures all of them and an event the API accepts is not
//! dead-lettered by the consumer. Each function applies the default when no
//! layer said anything, then checks the value.

use eventpulse_events::Limits;

use crate::settings::{in_range, non_empty, url_with_scheme, ConfigError};

/// `--brokers` / `EVENTPULSE_BROKERS`: Kafka bootstrap servers.
pub fn brokers(value: Option<String>) -> Result<String, ConfigError> {
    non_empty("brokers", value, "127.0.0.1:9092")
}

/// `--topic` / `EVENTPULSE_TOPIC`: the events topic.
pub fn topic(value: Option<String>) -> Result<String, ConfigError> {
    non_empty("topic", value, "events")
}

/// `--database-url` / `EVENTPULSE_DATABASE_URL`: the Postgres URL.
pub fn database_url(value: Option<String>) -> Result<String, ConfigError> {
    url_with_scheme(
        "database_url",
        value,
        "postgres://postgres@127.0.0.1:5432/eventpulse",
        &["postgres", "postgresql"],
    )
}

/// The five limit settings as one layer said them (`None`: not said).
/// Usually built from a service's `Layer` with [`limits_layer!`](crate::limits_layer).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LimitsLayer {
    pub max_message_bytes: Option<usize>,
    pub max_string_chars: Option<usize>,
    pub max_form_fields: Option<usize>,
    pub max_future_skew_secs: Option<i64>,
    pub max_age_days: Option<i64>,
}

impl LimitsLayer {
    /// Applies the defaults of [`Limits::default`] and checks the ranges.
    pub fn resolve(self) -> Result<Limits, ConfigError> {
        let defaults = Limits::default();
        Ok(Limits {
            max_message_bytes: in_range(
                "max_message_bytes",
                self.max_message_bytes,
                defaults.max_message_bytes,
                64,
                16 << 20,
            )?,
            max_string_chars: in_range(
                "max_string_chars",
                self.max_string_chars,
                defaults.max_string_chars,
                1,
                1 << 20,
            )?,
            max_form_fields: in_range(
                "max_form_fields",
                self.max_form_fields,
                defaults.max_form_fields,
                0,
                10_000,
            )?,
            max_future_skew: chrono::Duration::seconds(in_range(
                "max_future_skew_secs",
                self.max_future_skew_secs,
                defaults.max_future_skew.num_seconds(),
                0,
                86_400 * 365,
            )?),
            max_age: chrono::Duration::days(in_range(
                "max_age_days",
                self.max_age_days,
                defaults.max_age.num_days(),
                1,
                365 * 100,
            )?),
        })
    }
}

/// The [`LimitsLayer`] of any value with the five limit fields under their
/// usual names (every service's `Layer`), so no service lists them again.
#[macro_export]
macro_rules! limits_layer {
    ($layer:expr) => {{
        let layer = &$layer;
        $crate::common::LimitsLayer {
            max_message_bytes: layer.max_message_bytes,
            max_string_chars: layer.max_string_chars,
            max_form_fields: layer.max_form_fields,
            max_future_skew_secs: layer.max_future_skew_secs,
            max_age_days: layer.max_age_days,
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_point_at_the_local_stack() {
        assert_eq!(brokers(None).unwrap(), "127.0.0.1:9092");
        assert_eq!(topic(None).unwrap(), "events");
        assert!(database_url(None).unwrap().starts_with("postgres://"));
        assert_eq!(LimitsLayer::default().resolve().unwrap(), Limits::default());
    }

    #[test]
    fn limit_ranges_are_checked() {
        let layer = LimitsLayer {
            max_message_bytes: Some(10),
            ..LimitsLayer::default()
        };
        assert_eq!(
            layer.resolve().unwrap_err().to_string(),
            "invalid setting --max-message-bytes (EVENTPULSE_MAX_MESSAGE_BYTES): \
             must be between 64 and 16777216, got 10"
        );
    }
}
