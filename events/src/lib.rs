//! The eventpulse wire format, shared by the producer and the consumer.
//!
//! A Kafka record's value is one JSON object and its key is the user id:
//!
//! ```json
//! {"eventId": "<UUID>", "type": "login|logout|page_view|button_click|form_submit",
//!  "timestamp": "<RFC 3339>", "payload": {"userId": "...", ...}}
//! ```
//!
//! Layout:
//! - [`wire`]: typed events ([`Event`], one payload struct per [`EventType`]) that
//!   the producer builds and serialises. Serialising is the only way events are made,
//!   so what the producer sends always has the shape the consumer expects.
//! - [`validate`]: the consumer's gate. It turns untrusted bytes into a
//!   [`ValidEvent`] or a [`Rejection`] carrying a stable [`RejectReason`] code;
//!   it never panics, whatever the input (a property test holds it to that).
//! - [`limits`]: the configurable bounds validation enforces ([`Limits`]).
//! - [`reason`]: the reason codes, which are part of the public interface: they
//!   appear in dead-letter headers and metric labels.
//! - `numeric`: how many digits a payload number has once Postgres writes it
//!   out; payload numbers keep their exact text (serde_json's
//!   `arbitrary_precision`), and validation bounds them by [`MAX_NUMBER_DIGITS`].
//! - `grpc` (feature `grpc`): the same events over gRPC, `eventpulse.v1`
//!   from `proto/eventpulse/v1/events.proto`, mapped to the JSON above.

#[cfg(feature = "grpc")]
pub mod grpc;
pub mod limits;
mod numeric;
pub mod reason;
pub mod validate;
pub mod wire;

pub use limits::Limits;
pub use numeric::MAX_NUMBER_DIGITS;
pub use reason::{RejectReason, Rejection};
pub use validate::{validate, ValidEvent};
pub use wire::{
    ButtonClickPayload, Event, EventBody, EventType, FormSubmitPayload, LoginPayload,
    LogoutPayload, PageViewPayload,
};

/// Longest `payload.userId` accepted, in characters. Fixed by the wire format
/// (it is also the Kafka key), unlike the tunable [`Limits`].
pub const MAX_USER_ID_CHARS: usize = 128;
