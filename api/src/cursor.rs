//! The keyset pagination cursor of `GET /events`: the position
//! `(occurred_at, event_id)` of the last event on a page. Listing is ordered
//! by `occurred_at DESC, event_id DESC`, so the next page is every row whose
//! position is below the cursor, whatever was inserted meanwhile.
//!
//! Clients see it as an opaque token (URL-safe base64 of
//! `v1:<microseconds since epoch>:<uuid>`); the version prefix lets the
//! format change without breaking tokens in flight. Microseconds are
//! Postgres's precision, so the position round-trips exactly.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::ApiError;

/// A position in the `occurred_at DESC, event_id DESC` order; derives `Ord`
/// field by field, which is that order's ascending twin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub occurred_at: DateTime<Utc>,
    pub event_id: Uuid,
}

const VERSION: &str = "v1";

impl Cursor {
    /// The position just above every event that occurred before `at`: the
    /// starting point of a listing bounded by `to = at`.
    pub fn before(at: DateTime<Utc>) -> Self {
        Self {
            occurred_at: at,
            event_id: Uuid::nil(),
        }
    }

    pub fn encode(&self) -> String {
        let text = format!(
            "{VERSION}:{}:{}",
            self.occurred_at.timestamp_micros(),
            self.event_id
        );
        URL_SAFE_NO_PAD.encode(text)
    }

    /// Decodes a token from [`Cursor::encode`]; anything else is a 400
    /// naming `cursor`.
    pub fn decode(token: &str) -> Result<Self, ApiError> {
        let bad = || ApiError::bad_parameter("cursor", "cursor is not a token from next_cursor");
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let mut parts = text.splitn(3, ':');
        let (Some(VERSION), Some(micros), Some(id)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let micros: i64 = micros.parse().map_err(|_| bad())?;
        Ok(Self {
            occurred_at: DateTime::from_timestamp_micros(micros).ok_or_else(bad)?,
            event_id: Uuid::parse_str(id).map_err(|_| bad())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_microsecond_precision() {
        let cursor = Cursor {
            occurred_at: DateTime::from_timestamp_micros(1_795_000_000_123_456).expect("valid"),
            event_id: Uuid::new_v4(),
        };
        let token = cursor.encode();
        assert!(token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(Cursor::decode(&token).expect("decodes"), cursor);
    }

    #[test]
    fn garbage_names_the_cursor_parameter() {
        let v2 = URL_SAFE_NO_PAD.encode(format!("v2:1:{}", Uuid::nil()));
        for token in ["", "!!!", "djE6eHg6eXk", v2.as_str()] {
            match Cursor::decode(token) {
                Err(ApiError::BadParameter { parameter, .. }) => assert_eq!(parameter, "cursor"),
                other => panic!("{token:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn order_is_by_time_then_id() {
        let at = DateTime::from_timestamp(1_795_000_000, 0).expect("valid");
        let low = Cursor {
            occurred_at: at,
            event_id: Uuid::from_u128(1),
        };
        let high = Cursor {
            occurred_at: at,
            event_id: Uuid::from_u128(2),
        };
        assert!(Cursor::before(at) < low && low < high);
    }
}
