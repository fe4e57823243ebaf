//! One test per reason code, plus property tests: typed events always validate,
//! and arbitrary bytes yield an event or a reason without panicking.

use chrono::{DateTime, Duration, Utc};
use eventpulse_events::{
    validate, EventType, Limits, RejectReason, Rejection, ValidEvent, MAX_NUMBER_DIGITS,
};
use proptest::prelude::*;
use serde_json::{json, Value};

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn base(kind: &str, payload: Value) -> Value {
    json!({
        "eventId": "6f1c1a3e-7c2b-4e7e-9a53-0b2f1f6e9d10",
        "type": kind,
        "timestamp": "2026-06-01T13:59:00+02:00",
        "payload": payload,
    })
}

fn login() -> Value {
    base(
        "login",
        json!({"userId": "user-1", "ip": "10.0.0.1", "device": "Firefox"}),
    )
}

fn check(value: &Value) -> Result<ValidEvent, RejectReason> {
    check_bytes(&serde_json::to_vec(value).unwrap())
}

fn check_bytes(bytes: &[u8]) -> Result<ValidEvent, RejectReason> {
    validate(bytes, &Limits::default(), now()).map_err(|r| r.reason)
}

/// The rejection of `text`, a whole record value.
fn rejection(text: &str) -> Rejection {
    validate(text.as_bytes(), &Limits::default(), now()).expect_err(text)
}

/// A login record whose payload also holds `extra`, written as-is (JSON text),
/// so numbers reach validation exactly as a client wrote them.
fn login_with(extra: &str) -> String {
    format!(
        r#"{{"eventId":"6f1c1a3e-7c2b-4e7e-9a53-0b2f1f6e9d10","type":"login","timestamp":"2026-06-01T12:00:00Z","payload":{{"userId":"u","ip":"::1","device":"d",{extra}}}}}"#
    )
}

fn with(mut value: Value, pointer: &str, new: Value) -> Value {
    *value.pointer_mut(pointer).unwrap() = new;
    value
}

fn without(mut value: Value, parent: &str, key: &str) -> Value {
    value
        .pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove(key);
    value
}

#[test]
fn accepts_every_event_type_and_keeps_unknown_payload_fields() {
    let cases = [
        login(),
        base(
            "logout",
            json!({"userId": "u", "duration": 0, "ip": "2001:db8::1"}),
        ),
        base(
            "page_view",
            json!({"userId": "u", "page": "/", "referrer": null}),
        ),
        base(
            "button_click",
            json!({"userId": "u", "buttonId": "b", "page": "/x"}),
        ),
        base(
            "form_submit",
            json!({"userId": "u", "formId": "f", "fields": {"a": "b"}, "extra": [1]}),
        ),
    ];
    for (case, kind) in cases.iter().zip(EventType::ALL) {
        let event = check(case).unwrap_or_else(|r| panic!("{kind} rejected: {r}"));
        assert_eq!(event.event_type, kind);
        assert_eq!(event.user_id, case["payload"]["userId"]);
    }
    let form = check(&cases[4]).unwrap();
    assert_eq!(form.payload["extra"], json!([1]));
}

#[test]
fn stores_timestamps_as_utc() {
    let event = check(&login()).unwrap();
    assert_eq!(event.occurred_at.to_rfc3339(), "2026-06-01T11:59:00+00:00");
}

#[test]
fn too_large() {
    let limits = Limits {
        max_message_bytes: 10,
        ..Limits::default()
    };
    let bytes = serde_json::to_vec(&login()).unwrap();
    assert_eq!(
        validate(&bytes, &limits, now()).unwrap_err().reason,
        RejectReason::TooLarge
    );
}

#[test]
fn not_utf8() {
    assert_eq!(
        check_bytes(b"{\"eventId\": \"\xff\"}"),
        Err(RejectReason::NotUtf8)
    );
}

#[test]
fn malformed_json() {
    assert_eq!(
        check_bytes(b"{\"eventId\": "),
        Err(RejectReason::MalformedJson)
    );
    assert_eq!(check_bytes(b""), Err(RejectReason::MalformedJson));
    let deep = "[".repeat(10_000);
    assert_eq!(
        check_bytes(deep.as_bytes()),
        Err(RejectReason::MalformedJson)
    );
}

#[test]
fn payload_numbers_keep_their_exact_text() {
    let big = "123456789012345678901234567890";
    let event = check_bytes(login_with(&format!(r#""big":{big}"#)).as_bytes()).expect("valid");
    assert_eq!(
        serde_json::to_string(&event.payload).unwrap(),
        format!(r#"{{"big":{big},"device":"d","ip":"::1","userId":"u"}}"#)
    );
    // Beyond f64, yet kept: serde_json only spells an exponent's sign out.
    for (number, kept) in [
        ("1e400", "1e+400"),
        ("-1E-400", "-1e-400"),
        ("1e999", "1e+999"),
        (
            "0.1000000000000000000000000000001",
            "0.1000000000000000000000000000001",
        ),
    ] {
        let event = check_bytes(login_with(&format!(r#""n":[{number}]"#)).as_bytes())
            .unwrap_or_else(|r| panic!("{number} rejected: {r}"));
        assert_eq!(event.payload["n"].to_string(), format!("[{kept}]"));
    }
}

#[test]
fn not_an_object() {
    assert_eq!(check_bytes(b"[1, 2]"), Err(RejectReason::NotAnObject));
    assert_eq!(
        check(&with(login(), "/payload", json!("x"))),
        Err(RejectReason::NotAnObject)
    );
}

#[test]
fn missing_field() {
    for key in ["eventId", "type", "timestamp", "payload"] {
        assert_eq!(
            check(&without(login(), "", key)),
            Err(RejectReason::MissingField),
            "{key}"
        );
    }
    for key in ["userId", "ip", "device"] {
        assert_eq!(
            check(&without(login(), "/payload", key)),
            Err(RejectReason::MissingField),
            "{key}"
        );
    }
    let form = base("form_submit", json!({"userId": "u", "formId": "f"}));
    assert_eq!(check(&form), Err(RejectReason::MissingField));
}

#[test]
fn wrong_type() {
    assert_eq!(
        check(&with(login(), "/eventId", json!(7))),
        Err(RejectReason::WrongType)
    );
    assert_eq!(
        check(&with(login(), "/payload/device", json!(true))),
        Err(RejectReason::WrongType)
    );
    let logout = base(
        "logout",
        json!({"userId": "u", "duration": "10", "ip": "::1"}),
    );
    assert_eq!(check(&logout), Err(RejectReason::WrongType));
    let form = base(
        "form_submit",
        json!({"userId": "u", "formId": "f", "fields": {"a": 1}}),
    );
    assert_eq!(check(&form), Err(RejectReason::WrongType));
    let form = base(
        "form_submit",
        json!({"userId": "u", "formId": "f", "fields": ["a"]}),
    );
    assert_eq!(check(&form), Err(RejectReason::WrongType));
}

#[test]
fn unknown_event_type() {
    assert_eq!(
        check(&with(login(), "/type", json!("purchase"))),
        Err(RejectReason::UnknownEventType)
    );
}

#[test]
fn invalid_event_id() {
    assert_eq!(
        check(&with(login(), "/eventId", json!("not-a-uuid"))),
        Err(RejectReason::InvalidEventId)
    );
}

#[test]
fn invalid_timestamp() {
    assert_eq!(
        check(&with(login(), "/timestamp", json!("yesterday"))),
        Err(RejectReason::InvalidTimestamp)
    );
    assert_eq!(
        check(&with(login(), "/timestamp", json!("2026-06-01 12:00"))),
        Err(RejectReason::InvalidTimestamp)
    );
}

#[test]
fn timestamp_in_future() {
    let later = (now() + Duration::hours(1)).to_rfc3339();
    assert_eq!(
        check(&with(login(), "/timestamp", json!(later))),
        Err(RejectReason::TimestampInFuture)
    );
    let skew_ok = (now() + Duration::minutes(4)).to_rfc3339();
    assert!(check(&with(login(), "/timestamp", json!(skew_ok))).is_ok());
}

#[test]
fn timestamp_too_old() {
    assert_eq!(
        check(&with(login(), "/timestamp", json!("1970-01-01T00:00:00Z"))),
        Err(RejectReason::TimestampTooOld)
    );
}

/// Details quote at most a short prefix of the input, however long it is.
#[test]
fn details_never_repeat_long_input() {
    let fraction = "1".repeat(20_000);
    let cases = [
        (format!("2099-01-01T00:00:00.{fraction}Z"), "/timestamp"),
        (format!("1970-01-01T00:00:00.{fraction}Z"), "/timestamp"),
        (format!("not a timestamp {fraction}"), "/timestamp"),
        (fraction.clone(), "/eventId"),
        (fraction.clone(), "/type"),
        (fraction.clone(), "/payload/ip"),
    ];
    for (input, pointer) in cases {
        let bytes = serde_json::to_vec(&with(login(), pointer, json!(input))).unwrap();
        let limits = Limits {
            max_message_bytes: 1 << 20,
            ..Limits::default()
        };
        let rejection = validate(&bytes, &limits, now()).expect_err(pointer);
        assert!(rejection.detail.len() < 200, "{pointer}: {rejection}");
    }
    let duration = format!("0.{}", "5".repeat(900));
    let logout = format!(
        r#"{{"eventId":"6f1c1a3e-7c2b-4e7e-9a53-0b2f1f6e9d10","type":"logout","timestamp":"2026-06-01T12:00:00Z","payload":{{"userId":"u","ip":"::1","duration":{duration}}}}}"#
    );
    let rejection = rejection(&logout);
    assert_eq!(rejection.reason, RejectReason::InvalidDuration);
    assert!(rejection.detail.len() < 200, "{rejection}");
    let number = rejection_of_number(&format!("1{}", "0".repeat(5000)));
    assert!(number.detail.len() < 200, "{number}");
}

fn rejection_of_number(number: &str) -> Rejection {
    rejection(&login_with(&format!(r#""n":{number}"#)))
}

#[test]
fn invalid_user_id() {
    assert_eq!(
        check(&with(login(), "/payload/userId", json!(""))),
        Err(RejectReason::InvalidUserId)
    );
    let long = "é".repeat(129);
    assert_eq!(
        check(&with(login(), "/payload/userId", json!(long))),
        Err(RejectReason::InvalidUserId)
    );
    let max = "é".repeat(128);
    assert!(check(&with(login(), "/payload/userId", json!(max))).is_ok());
}

#[test]
fn invalid_ip() {
    assert_eq!(
        check(&with(login(), "/payload/ip", json!("999.1.1.1"))),
        Err(RejectReason::InvalidIp)
    );
}

#[test]
fn invalid_duration() {
    for bad in [json!(-5), json!(1.5)] {
        let logout = base(
            "logout",
            json!({"userId": "u", "duration": bad, "ip": "::1"}),
        );
        assert_eq!(check(&logout), Err(RejectReason::InvalidDuration));
    }
}

#[test]
fn string_too_long() {
    let limits = Limits {
        max_string_chars: 8,
        ..Limits::default()
    };
    let bytes = serde_json::to_vec(&with(login(), "/payload/device", json!("123456789"))).unwrap();
    assert_eq!(
        validate(&bytes, &limits, now()).unwrap_err().reason,
        RejectReason::StringTooLong
    );
}

#[test]
fn too_many_form_fields() {
    let fields: serde_json::Map<String, Value> =
        (0..65).map(|i| (format!("f{i}"), json!("v"))).collect();
    let form = base(
        "form_submit",
        json!({"userId": "u", "formId": "f", "fields": fields}),
    );
    assert_eq!(check(&form), Err(RejectReason::TooManyFormFields));
}

#[test]
fn nul_character() {
    let bytes = br#"{"eventId":"6f1c1a3e-7c2b-4e7e-9a53-0b2f1f6e9d10","type":"login","timestamp":"2026-06-01T12:00:00Z","payload":{"userId":"u","ip":"::1","device":"a\u0000b"}}"#;
    assert_eq!(check_bytes(bytes), Err(RejectReason::NulCharacter));
    let in_extra_key = br#"{"eventId":"6f1c1a3e-7c2b-4e7e-9a53-0b2f1f6e9d10","type":"login","timestamp":"2026-06-01T12:00:00Z","payload":{"userId":"u","ip":"::1","device":"d","x\u0000":1}}"#;
    assert_eq!(check_bytes(in_extra_key), Err(RejectReason::NulCharacter));
}

#[test]
fn number_out_of_range() {
    let too_many = MAX_NUMBER_DIGITS + 1;
    for number in [
        format!("1e{}", too_many - 1),
        format!("-1e-{too_many}"),
        format!("[{{\"deep\": 0.5e-{too_many}}}]"),
        format!("1{}", "0".repeat(too_many as usize)),
        "1e99999999999999999999".to_owned(),
    ] {
        assert_eq!(
            rejection_of_number(&number).reason,
            RejectReason::NumberOutOfRange,
            "{number}"
        );
    }
}

#[test]
fn every_validation_reason_is_covered_above() {
    // StorageRejected is assigned by the consumer after a Postgres refusal.
    let tested = RejectReason::ALL.len() - 1;
    assert_eq!(tested, 18, "a new reason needs its own test in this file");
}

proptest! {
    #[test]
    fn any_bytes_yield_an_event_or_a_reason(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = validate(&bytes, &Limits::default(), now());
    }

    #[test]
    fn json_shaped_noise_never_panics(
        id in "[0-9a-f-]{0,40}",
        kind in prop::sample::select(vec!["login", "logout", "page_view", "button_click", "form_submit", "x"]),
        ts in "[0-9T:Z+-]{0,30}",
        user in ".{0,140}",
        extra in any::<i64>(),
    ) {
        let value = json!({"eventId": id, "type": kind, "timestamp": ts,
                           "payload": {"userId": user, "duration": extra, "ip": user, "fields": {"k": user}}});
        let _ = validate(&serde_json::to_vec(&value).unwrap(), &Limits::default(), now());
    }
}
