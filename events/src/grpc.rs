//! The gRPC form of the wire format (feature `grpc`): the messages, client
//! and server of `eventpulse.v1.EventService`, generated from
//! `proto/eventpulse/v1/events.proto`, and the mapping between an
//! [`v1::EventFields`] and the JSON object the HTTP API and Kafka carry.
//!
//! The mapping is the protobuf JSON mapping of the same field names, so an
//! event converted to JSON is validated by [`crate::validate`] exactly like
//! one posted over HTTP: a missing timestamp or payload becomes a missing
//! field, a `google.protobuf.Value` of the wrong kind a wrong type.

use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Timestamp, Value};
use serde_json::{Map, Number, Value as Json};

/// The generated code, and the descriptors that reflection serves.
pub mod v1 {
    tonic::include_proto!("eventpulse.v1");

    /// `events.proto` and its imports, encoded (for server reflection).
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/eventpulse_v1_descriptor.bin"));
}

/// Largest integer an f64 holds exactly: a whole `number_value` up to it is
/// written as a JSON integer (a `google.protobuf.Value` has no integer kind).
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

impl v1::Event {
    /// An event sent as the JSON object the HTTP API takes.
    pub fn json(bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            form: Some(v1::event::Form::Json(bytes.into())),
        }
    }
}

/// The JSON object `fields` stands for, in the wire format's field names.
pub fn fields_to_json(fields: &v1::EventFields) -> Vec<u8> {
    let mut object = Map::new();
    object.insert("eventId".into(), Json::String(fields.event_id.clone()));
    object.insert("type".into(), Json::String(fields.r#type.clone()));
    if let Some(timestamp) = &fields.timestamp {
        object.insert("timestamp".into(), timestamp_to_json(timestamp));
    }
    if let Some(payload) = &fields.payload {
        object.insert("payload".into(), Json::Object(struct_to_json(payload)));
    }
    serde_json::to_vec(&Json::Object(object)).expect("a JSON value serialises")
}

/// RFC 3339 in UTC, or the nanosecond count as given if it is out of range
/// (which validation then refuses as a bad timestamp).
fn timestamp_to_json(timestamp: &Timestamp) -> Json {
    let nanos = u32::try_from(timestamp.nanos).unwrap_or(u32::MAX);
    match chrono::DateTime::from_timestamp(timestamp.seconds, nanos) {
        Some(at) => Json::String(at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        None => Json::String(format!("{}s{}ns", timestamp.seconds, timestamp.nanos)),
    }
}

pub fn struct_to_json(value: &Struct) -> Map<String, Json> {
    value
        .fields
        .iter()
        .map(|(key, value)| (key.clone(), value_to_json(value)))
        .collect()
}

fn value_to_json(value: &Value) -> Json {
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::BoolValue(b)) => Json::Bool(*b),
        Some(Kind::StringValue(s)) => Json::String(s.clone()),
        Some(Kind::NumberValue(n)) => number_to_json(*n),
        Some(Kind::StructValue(s)) => Json::Object(struct_to_json(s)),
        Some(Kind::ListValue(list)) => Json::Array(list.values.iter().map(value_to_json).collect()),
    }
}

fn number_to_json(n: f64) -> Json {
    if n.fract() == 0.0 && n.abs() <= MAX_EXACT_INTEGER {
        Json::Number(Number::from(n as i64))
    } else {
        // NaN and the infinities have no JSON form: null, a wrong type.
        Number::from_f64(n).map_or(Json::Null, Json::Number)
    }
}

/// A JSON object as a `google.protobuf.Struct` (for clients building
/// [`v1::EventFields`] from JSON they have).
pub fn json_to_struct(object: &Map<String, Json>) -> Struct {
    Struct {
        fields: object
            .iter()
            .map(|(key, value)| (key.clone(), json_to_value(value)))
            .collect(),
    }
}

fn json_to_value(value: &Json) -> Value {
    let kind = match value {
        Json::Null => Kind::NullValue(0),
        Json::Bool(b) => Kind::BoolValue(*b),
        Json::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        Json::String(s) => Kind::StringValue(s.clone()),
        Json::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(json_to_value).collect(),
        }),
        Json::Object(object) => Kind::StructValue(json_to_struct(object)),
    };
    Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{validate, Limits};

    fn fields(payload: serde_json::Value) -> v1::EventFields {
        let now = chrono::Utc::now();
        v1::EventFields {
            event_id: uuid::Uuid::new_v4().to_string(),
            r#type: "logout".into(),
            timestamp: Some(Timestamp {
                seconds: now.timestamp(),
                nanos: now.timestamp_subsec_nanos() as i32,
            }),
            payload: Some(json_to_struct(payload.as_object().unwrap())),
        }
    }

    #[test]
    fn fields_validate_like_the_json_they_stand_for() {
        let event = fields(serde_json::json!({
            "userId": "user-1", "duration": 1800, "ip": "10.0.0.1"
        }));
        let json = fields_to_json(&event);
        let valid = validate(&json, &Limits::default(), chrono::Utc::now()).expect("valid");
        assert_eq!(valid.event_id.to_string(), event.event_id);
        // A whole number stays an integer, as the payload's u64 requires.
        assert_eq!(valid.payload["duration"], serde_json::json!(1800));
    }

    #[test]
    fn what_is_missing_or_of_the_wrong_kind_is_refused_with_its_reason() {
        let mut event = fields(serde_json::json!({
            "userId": "user-1", "duration": 1.5, "ip": "10.0.0.1"
        }));
        let wrong = validate(
            &fields_to_json(&event),
            &Limits::default(),
            chrono::Utc::now(),
        );
        assert_eq!(wrong.unwrap_err().reason.code(), "invalid_duration");
        event.timestamp = None;
        let missing = validate(
            &fields_to_json(&event),
            &Limits::default(),
            chrono::Utc::now(),
        );
        assert_eq!(missing.unwrap_err().reason.code(), "missing_field");
    }
}
