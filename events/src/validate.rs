//! Untrusted bytes in, a [`ValidEvent`] or a [`Rejection`] out.
//!
//! Validation walks a `serde_json::Value` instead of deserialising straight into
//! the typed structs in [`crate::wire`]: that way each failure maps to a precise
//! reason code and field name (serde's error strings are not a stable interface),
//! and unknown payload fields survive into the stored payload as the wire format
//! promises. Every check is total: no input makes this module panic.
//!
//! Rejection details are logged, dead-letter headers and API answers: any
//! piece of the input they quote goes through [`truncate`] first, so a hostile
//! message cannot make them as large as itself.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde_json::{Map, Number, Value};
use uuid::Uuid;

use crate::numeric::{written_out_digits, MAX_NUMBER_DIGITS};
use crate::reason::{RejectReason, Rejection};
use crate::wire::EventType;
use crate::{Limits, MAX_USER_ID_CHARS};

/// An event that passed validation, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidEvent {
    pub event_id: Uuid,
    pub event_type: EventType,
    pub user_id: String,
    /// The event's timestamp converted to UTC.
    pub occurred_at: DateTime<Utc>,
    /// The whole `payload` object, unknown fields included.
    pub payload: Map<String, Value>,
}

type Checked<T> = Result<T, Rejection>;

/// Validates one Kafka record value against the wire format and `limits`.
/// `now` is the consumer's clock, passed in so that tests are deterministic.
pub fn validate(bytes: &[u8], limits: &Limits, now: DateTime<Utc>) -> Checked<ValidEvent> {
    if bytes.len() > limits.max_message_bytes {
        return Err(Rejection::new(
            RejectReason::TooLarge,
            format!(
                "message is {} bytes, the limit is {}",
                bytes.len(),
                limits.max_message_bytes
            ),
        ));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Rejection::new(RejectReason::NotUtf8, format!("value is not UTF-8: {e}")))?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        Rejection::new(
            RejectReason::MalformedJson,
            format!("value is not JSON: {e}"),
        )
    })?;
    let Value::Object(mut envelope) = value else {
        return Err(Rejection::new(
            RejectReason::NotAnObject,
            "value is not a JSON object",
        ));
    };
    if text.contains("u0000") {
        reject_nul_characters(&envelope)?;
    }

    let event_id = parse_event_id(&envelope)?;
    let event_type = parse_event_type(&envelope)?;
    let occurred_at = parse_timestamp(&envelope, limits, now)?;
    let payload = match envelope.remove("payload") {
        Some(Value::Object(payload)) => payload,
        None | Some(Value::Null) => return Err(missing("payload")),
        Some(_) => {
            return Err(Rejection::new(
                RejectReason::NotAnObject,
                "payload is not a JSON object",
            ))
        }
    };
    let user_id = parse_user_id(&payload)?;
    check_payload(event_type, &payload, limits)?;
    check_numbers(&payload)?;
    Ok(ValidEvent {
        event_id,
        event_type,
        user_id,
        occurred_at,
        payload,
    })
}

fn missing(field: &str) -> Rejection {
    Rejection::new(
        RejectReason::MissingField,
        format!("required field {field} is missing"),
    )
}

fn wrong_type(field: &str, expected: &str) -> Rejection {
    Rejection::new(
        RejectReason::WrongType,
        format!("field {field} must be {expected}"),
    )
}

/// The string at `key`, or a rejection naming `path` (the field as users see it).
fn required_str<'a>(object: &'a Map<String, Value>, key: &str, path: &str) -> Checked<&'a str> {
    match object.get(key) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(missing(path)),
        Some(_) => Err(wrong_type(path, "a string")),
    }
}

fn parse_event_id(envelope: &Map<String, Value>) -> Checked<Uuid> {
    let raw = required_str(envelope, "eventId", "eventId")?;
    Uuid::parse_str(raw).map_err(|_| {
        Rejection::new(
            RejectReason::InvalidEventId,
            format!("eventId {:?} is not a UUID", truncate(raw)),
        )
    })
}

fn parse_event_type(envelope: &Map<String, Value>) -> Checked<EventType> {
    let raw = required_str(envelope, "type", "type")?;
    EventType::parse(raw).ok_or_else(|| {
        Rejection::new(
            RejectReason::UnknownEventType,
            format!("type {:?} is not a known event type", truncate(raw)),
        )
    })
}

fn parse_timestamp(
    envelope: &Map<String, Value>,
    limits: &Limits,
    now: DateTime<Utc>,
) -> Checked<DateTime<Utc>> {
    let raw = required_str(envelope, "timestamp", "timestamp")?;
    let at = DateTime::parse_from_rfc3339(raw)
        .map_err(|e| {
            Rejection::new(
                RejectReason::InvalidTimestamp,
                format!("timestamp {:?} is not RFC 3339: {e}", truncate(raw)),
            )
        })?
        .with_timezone(&Utc);
    if at > now + limits.max_future_skew {
        return Err(Rejection::new(
            RejectReason::TimestampInFuture,
            format!(
                "timestamp {} is more than {} s in the future",
                truncate(raw),
                limits.max_future_skew.num_seconds()
            ),
        ));
    }
    if at < now - limits.max_age {
        return Err(Rejection::new(
            RejectReason::TimestampTooOld,
            format!(
                "timestamp {} is more than {} days old",
                truncate(raw),
                limits.max_age.num_days()
            ),
        ));
    }
    Ok(at)
}

fn parse_user_id(payload: &Map<String, Value>) -> Checked<String> {
    let user_id = required_str(payload, "userId", "payload.userId")?;
    let chars = user_id.chars().count();
    if chars == 0 || chars > MAX_USER_ID_CHARS {
        return Err(Rejection::new(
            RejectReason::InvalidUserId,
            format!("payload.userId must have 1 to {MAX_USER_ID_CHARS} characters, it has {chars}"),
        ));
    }
    Ok(user_id.to_owned())
}

/// Checks the type-specific payload fields (`userId` is checked already).
fn check_payload(kind: EventType, payload: &Map<String, Value>, limits: &Limits) -> Checked<()> {
    let text = |key: &str| check_text(payload, key, true, limits);
    let optional_text = |key: &str| check_text(payload, key, false, limits);
    match kind {
        EventType::Login => {
            check_ip(payload)?;
            text("device")
        }
        EventType::Logout => {
            check_duration(payload)?;
            check_ip(payload)
        }
        EventType::PageView => {
            text("page")?;
            optional_text("referrer")?;
            optional_text("device")
        }
        EventType::ButtonClick => {
            text("buttonId")?;
            text("page")
        }
        EventType::FormSubmit => {
            text("formId")?;
            check_form_fields(payload, limits)
        }
    }
}

fn check_text(
    payload: &Map<String, Value>,
    key: &str,
    required: bool,
    limits: &Limits,
) -> Checked<()> {
    let path = format!("payload.{key}");
    let value = match payload.get(key) {
        None | Some(Value::Null) if !required => return Ok(()),
        _ => required_str(payload, key, &path)?,
    };
    check_length(value, &path, limits)
}

fn check_length(value: &str, path: &str, limits: &Limits) -> Checked<()> {
    // Bytes bound chars from above, so the count is skipped for short strings.
    if value.len() > limits.max_string_chars && value.chars().count() > limits.max_string_chars {
        return Err(Rejection::new(
            RejectReason::StringTooLong,
            format!(
                "{path} is longer than {} characters",
                limits.max_string_chars
            ),
        ));
    }
    Ok(())
}

fn check_ip(payload: &Map<String, Value>) -> Checked<()> {
    let raw = required_str(payload, "ip", "payload.ip")?;
    raw.parse::<IpAddr>().map(drop).map_err(|_| {
        Rejection::new(
            RejectReason::InvalidIp,
            format!(
                "payload.ip {:?} is not an IPv4 or IPv6 address",
                truncate(raw)
            ),
        )
    })
}

fn check_duration(payload: &Map<String, Value>) -> Checked<()> {
    match payload.get("duration") {
        None | Some(Value::Null) => Err(missing("payload.duration")),
        Some(Value::Number(n)) if n.is_u64() => Ok(()),
        // Numbers keep their text (`arbitrary_precision`), which may be
        // thousands of digits long.
        Some(Value::Number(n)) => Err(Rejection::new(
            RejectReason::InvalidDuration,
            format!(
                "payload.duration {} is not a non-negative whole number of seconds",
                truncate(n.as_str())
            ),
        )),
        Some(_) => Err(wrong_type("payload.duration", "a number")),
    }
}

fn check_form_fields(payload: &Map<String, Value>, limits: &Limits) -> Checked<()> {
    let fields = match payload.get("fields") {
        Some(Value::Object(fields)) => fields,
        None | Some(Value::Null) => return Err(missing("payload.fields")),
        Some(_) => return Err(wrong_type("payload.fields", "an object")),
    };
    if fields.len() > limits.max_form_fields {
        return Err(Rejection::new(
            RejectReason::TooManyFormFields,
            format!(
                "payload.fields has {} entries, the limit is {}",
                fields.len(),
                limits.max_form_fields
            ),
        ));
    }
    for (name, value) in fields {
        check_length(name, "a payload.fields name", limits)?;
        let path = format!("payload.fields.{}", truncate(name));
        match value {
            Value::String(s) => check_length(s, &path, limits)?,
            _ => return Err(wrong_type(&path, "a string")),
        }
    }
    Ok(())
}

/// Postgres cannot store U+0000 in `text` or `jsonb`, so such events are
/// rejected here rather than failing their whole batch at insert time.
fn reject_nul_characters(envelope: &Map<String, Value>) -> Checked<()> {
    fn has_nul(value: &Value) -> bool {
        match value {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().any(has_nul),
            Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            _ => false,
        }
    }
    if envelope.iter().any(|(k, v)| k.contains('\0') || has_nul(v)) {
        return Err(Rejection::new(
            RejectReason::NulCharacter,
            "a string contains U+0000, which cannot be stored",
        ));
    }
    Ok(())
}

/// Rejects payload numbers Postgres would refuse, or blow up, when storing
/// them (see [`crate::numeric`]), rather than failing their whole batch.
fn check_numbers(payload: &Map<String, Value>) -> Checked<()> {
    fn oversized(value: &Value) -> Option<&Number> {
        match value {
            Value::Number(n) => written_out_digits(n.as_str())
                .is_none_or(|digits| digits > MAX_NUMBER_DIGITS)
                .then_some(n),
            Value::Array(items) => items.iter().find_map(oversized),
            Value::Object(map) => map.values().find_map(oversized),
            _ => None,
        }
    }
    match payload.values().find_map(oversized) {
        Some(n) => Err(Rejection::new(
            RejectReason::NumberOutOfRange,
            format!(
                "payload number {} has more than {MAX_NUMBER_DIGITS} digits written out in full",
                truncate(n.as_str())
            ),
        )),
        None => Ok(()),
    }
}

/// At most 64 characters of untrusted text, for error messages.
fn truncate(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}
