//! Postgres' binary `COPY` format for the staging table of
//! [`event_rows`](crate::event_rows): a header, then per row a field count
//! and each field as a length and its bytes in the type's binary form, then
//! a trailer. Rows are encoded straight from the validated events, with no
//! intermediate arrays, into a buffer the caller sends in chunks.

use chrono::{DateTime, TimeZone, Utc};

use crate::batch::PendingEvent;

/// Columns of `eventpulse_staged`, in order: what every row carries.
macro_rules! columns {
    () => {
        "event_id, event_type, user_id, occurred_at, payload, kafka_partition, kafka_offset, ord"
    };
}
pub const COLUMNS: &str = columns!();

/// The statement that streams rows of this format into the staging table.
pub const COPY_INTO_STAGING: &str = concat!(
    "COPY pg_temp.eventpulse_staged (",
    columns!(),
    ") FROM STDIN (FORMAT binary)"
);

const FIELDS: i16 = 8;
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
/// The version byte that precedes jsonb's text in its binary form.
const JSONB_VERSION: u8 = 1;

/// Starts a COPY stream: the signature, no flags, no header extension.
pub fn header(buf: &mut Vec<u8>) {
    buf.extend_from_slice(SIGNATURE);
    buf.extend_from_slice(&0i32.to_be_bytes());
    buf.extend_from_slice(&0i32.to_be_bytes());
}

/// Ends a COPY stream.
pub fn trailer(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&(-1i16).to_be_bytes());
}

/// Appends one row; `ord` is the event's place in the batch (the first
/// copy of an id wins).
pub fn row(buf: &mut Vec<u8>, pending: &PendingEvent, ord: i32) {
    let event = &pending.event;
    buf.extend_from_slice(&FIELDS.to_be_bytes());
    field(buf, event.event_id.as_bytes());
    field(buf, event.event_type.as_str().as_bytes());
    field(buf, event.user_id.as_bytes());
    field(buf, &postgres_micros(event.occurred_at).to_be_bytes());
    let payload = event.payload.as_bytes();
    length(buf, payload.len() + 1);
    buf.push(JSONB_VERSION);
    buf.extend_from_slice(payload);
    field(buf, &pending.origin.partition.to_be_bytes());
    field(buf, &pending.origin.offset.to_be_bytes());
    field(buf, &ord.to_be_bytes());
}

/// Bytes a row of `pending` takes, to size the buffer.
pub fn row_len(pending: &PendingEvent) -> usize {
    let event = &pending.event;
    2 + 8 * 4
        + 16
        + event.event_type.as_str().len()
        + event.user_id.len()
        + 8
        + 1
        + event.payload.len()
        + 4
        + 8
        + 4
}

fn field(buf: &mut Vec<u8>, bytes: &[u8]) {
    length(buf, bytes.len());
    buf.extend_from_slice(bytes);
}

/// A field's length. Every field comes from a message, and messages are
/// capped by `--max-message-bytes` (at most 16 MiB), far below the 2 GiB a
/// length can say.
fn length(buf: &mut Vec<u8>, len: usize) {
    let len = i32::try_from(len).expect("a field of a capped message fits in i32");
    buf.extend_from_slice(&len.to_be_bytes());
}

/// Microseconds since 2000-01-01 UTC, timestamptz's binary form. Cannot
/// overflow: chrono's whole range (about 262,000 years each way) fits in
/// i64 microseconds.
fn postgres_micros(at: DateTime<Utc>) -> i64 {
    let epoch = Utc
        .with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid date");
    (at - epoch)
        .num_microseconds()
        .expect("chrono's range fits in i64 microseconds")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{EventRow, Origin};
    use eventpulse_events::EventType;
    use uuid::Uuid;

    fn pending() -> PendingEvent {
        PendingEvent {
            event: EventRow {
                event_id: Uuid::from_u128(1),
                event_type: EventType::Login,
                user_id: "u".into(),
                occurred_at: Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 1).unwrap(),
                payload: "{}".into(),
            },
            origin: Origin {
                partition: 3,
                offset: 7,
                epoch: 0,
                timestamp_ms: None,
            },
            key: None,
            value: Vec::new(),
        }
    }

    #[test]
    fn a_row_has_every_field_in_binary_form() {
        let mut buf = Vec::new();
        row(&mut buf, &pending(), 2);
        assert_eq!(buf.len(), row_len(&pending()));
        let mut expected = vec![0, 8];
        expected.extend([0, 0, 0, 16]);
        expected.extend(Uuid::from_u128(1).as_bytes());
        expected.extend([0, 0, 0, 5]);
        expected.extend(b"login");
        expected.extend([0, 0, 0, 1, b'u']);
        expected.extend([0, 0, 0, 8]);
        expected.extend(1_000_000i64.to_be_bytes());
        expected.extend([0, 0, 0, 3, 1, b'{', b'}']);
        expected.extend([0, 0, 0, 4, 0, 0, 0, 3]);
        expected.extend([0, 0, 0, 8]);
        expected.extend(7i64.to_be_bytes());
        expected.extend([0, 0, 0, 4, 0, 0, 0, 2]);
        assert_eq!(buf, expected);
    }

    #[test]
    fn the_stream_starts_with_the_signature_and_ends_with_minus_one() {
        let mut buf = Vec::new();
        header(&mut buf);
        trailer(&mut buf);
        assert_eq!(&buf[..11], SIGNATURE);
        assert_eq!(&buf[11..19], &[0; 8]);
        assert_eq!(&buf[19..], &[0xff, 0xff]);
    }

    #[test]
    fn times_before_2000_are_negative() {
        let at = Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap();
        assert_eq!(postgres_micros(at), -1_000_000);
    }
}
