//! Records the consumer must dead-letter, one kind per way real producers get
//! it wrong.
//!
//! Each kind starts from a valid event (so that the record looks like real
//! traffic and is keyed by a real user) and breaks exactly one thing, so the
//! consumer's rejection reason is predictable: [`InvalidKind::expected_reason`]
//! names it and a unit test holds every kind to it.

use eventpulse_events::{Event, EventType, RejectReason};
use fake::faker::lorem::en::Sentence;
use fake::Fake;
use rand::seq::IndexedRandom;
use rand::Rng;
use serde_json::{json, Map, Value};

/// Bytes added past the consumer's default 64 KiB limit, at most. The broker
/// refuses records over ~1 MiB, so oversize records stay far below that.
const OVERSIZE_EXTRA: std::ops::Range<usize> = 1..128 * 1024;
const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InvalidKind {
    MalformedJson,
    UnknownType,
    MissingField,
    BadUuid,
    BadIp,
    Oversize,
    FutureTimestamp,
    WrongType,
    NotUtf8,
}

impl InvalidKind {
    pub const ALL: [InvalidKind; 9] = [
        Self::MalformedJson,
        Self::UnknownType,
        Self::MissingField,
        Self::BadUuid,
        Self::BadIp,
        Self::Oversize,
        Self::FutureTimestamp,
        Self::WrongType,
        Self::NotUtf8,
    ];

    /// The stable name used in the summary's `invalid_by_kind`.
    pub fn name(self) -> &'static str {
        match self {
            Self::MalformedJson => "malformed_json",
            Self::UnknownType => "unknown_type",
            Self::MissingField => "missing_field",
            Self::BadUuid => "bad_uuid",
            Self::BadIp => "bad_ip",
            Self::Oversize => "oversize",
            Self::FutureTimestamp => "future_timestamp",
            Self::WrongType => "wrong_type",
            Self::NotUtf8 => "not_utf8",
        }
    }

    /// What the consumer's validation (with default limits) says about this kind.
    pub fn expected_reason(self) -> RejectReason {
        match self {
            Self::MalformedJson => RejectReason::MalformedJson,
            Self::UnknownType => RejectReason::UnknownEventType,
            Self::MissingField => RejectReason::MissingField,
            Self::BadUuid => RejectReason::InvalidEventId,
            Self::BadIp => RejectReason::InvalidIp,
            Self::Oversize => RejectReason::TooLarge,
            Self::FutureTimestamp => RejectReason::TimestampInFuture,
            Self::WrongType => RejectReason::WrongType,
            Self::NotUtf8 => RejectReason::NotUtf8,
        }
    }

    pub fn random<R: Rng + ?Sized>(rng: &mut R) -> Self {
        *Self::ALL.choose(rng).expect("kinds are not empty")
    }

    /// The type of event to start from: a bad IP needs an event with an `ip`.
    pub fn template_type<R: Rng + ?Sized>(self, rng: &mut R) -> EventType {
        let choices: &[EventType] = match self {
            Self::BadIp => &[EventType::Login, EventType::Logout],
            _ => &EventType::ALL,
        };
        *choices.choose(rng).expect("types are not empty")
    }

    /// The record value: `template` broken in this kind's way.
    pub fn corrupt<R: Rng + ?Sized>(self, template: &Event, rng: &mut R) -> Vec<u8> {
        match self {
            Self::MalformedJson => return malformed(template, rng),
            Self::NotUtf8 => return not_utf8(template, rng),
            _ => {}
        }
        let mut value = serde_json::to_value(template).expect("events always serialise");
        let envelope = value.as_object_mut().expect("events serialise to objects");
        match self {
            Self::UnknownType => {
                let name = ["purchase", "page_scroll", "video_play", "Login", ""].choose(rng);
                envelope.insert("type".into(), json!(name));
            }
            Self::MissingField => remove_required_field(envelope, rng),
            Self::BadUuid => {
                let id = template.event_id.to_string();
                // The version digit of a v4 UUID is always `4`, so the replace always bites.
                let bad = [
                    id[..35].to_string(),
                    id.replace(['a', '4'], "g"),
                    "not-a-uuid".to_string(),
                    String::new(),
                ];
                envelope.insert("eventId".into(), json!(bad.choose(rng)));
            }
            Self::BadIp => {
                let bad = [
                    "999.1.2.3",
                    "10.0.0",
                    "localhost",
                    "2001:db8::zz",
                    "1.2.3.4.5",
                ];
                payload(envelope).insert("ip".into(), json!(bad.choose(rng)));
            }
            Self::Oversize => {
                let size = DEFAULT_MAX_MESSAGE_BYTES + rng.random_range(OVERSIZE_EXTRA);
                // A repeated sentence: compresses well on the wire, but the
                // consumer's limit applies to the decompressed value.
                let sentence: String = Sentence(8..16).fake_with_rng(rng);
                let mut padding = sentence.repeat(size / sentence.len() + 1);
                padding.truncate(size);
                payload(envelope).insert("padding".into(), json!(padding));
            }
            Self::FutureTimestamp => {
                let ahead = chrono::TimeDelta::hours(rng.random_range(24..24 * 30));
                let at = (template.timestamp + ahead).to_rfc3339();
                envelope.insert("timestamp".into(), json!(at));
            }
            Self::WrongType => wrong_type(envelope, rng),
            Self::MalformedJson | Self::NotUtf8 => unreachable!("handled above"),
        }
        serde_json::to_vec(&value).expect("JSON values always serialise")
    }
}

fn payload(envelope: &mut Map<String, Value>) -> &mut Map<String, Value> {
    envelope
        .get_mut("payload")
        .and_then(Value::as_object_mut)
        .expect("events have an object payload")
}

/// A strict prefix of a JSON object, or an object with a stray trailing
/// token: never parseable, always valid UTF-8 without newlines.
fn malformed<R: Rng + ?Sized>(template: &Event, rng: &mut R) -> Vec<u8> {
    let mut bytes = template.to_json();
    if rng.random_bool(0.5) {
        let cut = rng.random_range(1..bytes.len());
        bytes.truncate(cut);
        // A cut inside a multi-byte character would make this `not_utf8` instead.
        while std::str::from_utf8(&bytes).is_err() {
            bytes.pop();
        }
    } else {
        bytes.extend_from_slice(b",}");
    }
    bytes
}

/// Valid JSON except for bytes that are not UTF-8 inside the user id (none
/// of them is a newline, so JSON-lines output keeps one record per line).
fn not_utf8<R: Rng + ?Sized>(template: &Event, rng: &mut R) -> Vec<u8> {
    let json = template.to_json();
    let needle = format!("\"{}\"", template.user_id());
    let at = find(&json, needle.as_bytes()).expect("the user id is in the JSON") + 1;
    let garbage: &[u8] = [&[0xff, 0xfe][..], &[0xc3, 0x28][..], &[0x80][..]]
        .choose(rng)
        .expect("garbage is not empty");
    let mut bytes = json[..at].to_vec();
    bytes.extend_from_slice(garbage);
    bytes.extend_from_slice(&json[at..]);
    bytes
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn remove_required_field<R: Rng + ?Sized>(envelope: &mut Map<String, Value>, rng: &mut R) {
    const ENVELOPE_FIELDS: [&str; 4] = ["eventId", "timestamp", "type", "payload"];
    if rng.random_bool(0.2) {
        payload(envelope).remove("userId");
    } else {
        envelope.remove(*ENVELOPE_FIELDS.choose(rng).expect("fields are not empty"));
    }
}

/// Replaces one string field with a number or an array, as a client with a
/// loose type system might.
fn wrong_type<R: Rng + ?Sized>(envelope: &mut Map<String, Value>, rng: &mut R) {
    let (key, value) = match rng.random_range(0..4) {
        0 => ("eventId", json!(rng.random::<u32>())),
        1 => ("timestamp", json!(1_767_225_600)),
        2 => ("type", json!(["login"])),
        _ => {
            payload(envelope).insert("userId".into(), json!(rng.random::<u32>()));
            return;
        }
    };
    envelope.insert(key.into(), value);
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use eventpulse_events::{validate, Limits};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::simulate::Simulator;

    #[test]
    fn every_kind_fails_validation_with_its_reason() {
        let mut rng = StdRng::seed_from_u64(7);
        let sim = Simulator::new(10, &mut rng);
        let now: DateTime<Utc> = Utc::now();
        for kind in InvalidKind::ALL {
            for _ in 0..200 {
                let template_type = kind.template_type(&mut rng);
                let template = sim.stray_event(&mut rng, now, template_type);
                let bytes = kind.corrupt(&template, &mut rng);
                let rejection = validate(&bytes, &Limits::default(), now).expect_err(kind.name());
                assert_eq!(
                    rejection.reason,
                    kind.expected_reason(),
                    "{kind:?}: {rejection}"
                );
                assert!(!bytes.contains(&b'\n'), "{kind:?} has a newline");
                assert!(
                    bytes.len() < 512 * 1024,
                    "{kind:?} is {} bytes",
                    bytes.len()
                );
            }
        }
    }

    #[test]
    fn names_are_unique_snake_case() {
        let mut names: Vec<_> = InvalidKind::ALL.iter().map(|k| k.name()).collect();
        assert!(names.iter().all(|n| n
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), InvalidKind::ALL.len());
    }
}
