//! Why a message was rejected. The codes are stable: dead-letter headers and the
//! `reason` metric label carry them, so dashboards and DLQ tooling can rely on them.

use std::fmt;

/// A stable, low-cardinality reason code for a rejected message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// The record is larger than `Limits::max_message_bytes`.
    TooLarge,
    /// The record value is not valid UTF-8.
    NotUtf8,
    /// The value is not parseable JSON (includes nesting deeper than 128 levels).
    MalformedJson,
    /// The JSON is valid but not an object, or `payload` is not an object.
    NotAnObject,
    /// A required field is absent (or `null`).
    MissingField,
    /// A field has the wrong JSON type (e.g. a number where a string belongs).
    WrongType,
    /// `type` names no known event type.
    UnknownEventType,
    /// `eventId` is not a UUID.
    InvalidEventId,
    /// `timestamp` is not RFC 3339.
    InvalidTimestamp,
    /// `timestamp` is further in the future than the allowed clock skew.
    TimestampInFuture,
    /// `timestamp` is older than `Limits::max_age`.
    TimestampTooOld,
    /// `payload.userId` is empty or longer than 128 characters.
    InvalidUserId,
    /// An `ip` field is neither IPv4 nor IPv6.
    InvalidIp,
    /// `duration` is not a non-negative integer.
    InvalidDuration,
    /// A string is longer than `Limits::max_string_chars`.
    StringTooLong,
    /// `fields` has more entries than `Limits::max_form_fields`.
    TooManyFormFields,
    /// A string contains U+0000, which Postgres text and jsonb cannot store.
    NulCharacter,
    /// A payload number has more than [`crate::MAX_NUMBER_DIGITS`] digits
    /// written out in full (`1e1000`), which Postgres would refuse or expand.
    NumberOutOfRange,
    /// Set by the consumer, not by validation: Postgres refused this one row
    /// with a permanent error (found by bisecting a failed batch).
    StorageRejected,
}

impl RejectReason {
    /// Every reason, for tests and for pre-registering metric labels.
    pub const ALL: [RejectReason; 19] = [
        Self::TooLarge,
        Self::NotUtf8,
        Self::MalformedJson,
        Self::NotAnObject,
        Self::MissingField,
        Self::WrongType,
        Self::UnknownEventType,
        Self::InvalidEventId,
        Self::InvalidTimestamp,
        Self::TimestampInFuture,
        Self::TimestampTooOld,
        Self::InvalidUserId,
        Self::InvalidIp,
        Self::InvalidDuration,
        Self::StringTooLong,
        Self::TooManyFormFields,
        Self::NulCharacter,
        Self::NumberOutOfRange,
        Self::StorageRejected,
    ];

    /// The stable code used in headers and metric labels.
    pub fn code(self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::NotUtf8 => "not_utf8",
            Self::MalformedJson => "malformed_json",
            Self::NotAnObject => "not_an_object",
            Self::MissingField => "missing_field",
            Self::WrongType => "wrong_type",
            Self::UnknownEventType => "unknown_event_type",
            Self::InvalidEventId => "invalid_event_id",
            Self::InvalidTimestamp => "invalid_timestamp",
            Self::TimestampInFuture => "timestamp_in_future",
            Self::TimestampTooOld => "timestamp_too_old",
            Self::InvalidUserId => "invalid_user_id",
            Self::InvalidIp => "invalid_ip",
            Self::InvalidDuration => "invalid_duration",
            Self::StringTooLong => "string_too_long",
            Self::TooManyFormFields => "too_many_form_fields",
            Self::NulCharacter => "nul_character",
            Self::NumberOutOfRange => "number_out_of_range",
            Self::StorageRejected => "storage_rejected",
        }
    }

    /// The reason for a code, the inverse of [`RejectReason::code`].
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|reason| reason.code() == code)
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A rejected message: the machine-readable reason and a message for humans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: RejectReason,
    pub detail: String,
}

impl Rejection {
    pub fn new(reason: RejectReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

impl std::error::Error for Rejection {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut codes: Vec<_> = RejectReason::ALL.iter().map(|r| r.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), RejectReason::ALL.len());
        for reason in RejectReason::ALL {
            assert_eq!(RejectReason::from_code(reason.code()), Some(reason));
        }
        assert_eq!(RejectReason::from_code("nope"), None);
    }
}
