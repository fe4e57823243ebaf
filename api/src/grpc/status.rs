//! Each [`ApiError`] as the gRPC status matching its HTTP answer, and the
//! one place a gRPC call is logged and counted.
//!
//! | HTTP | gRPC |
//! |---|---|
//! | 400 (invalid events, bad batch) | INVALID_ARGUMENT, a `google.rpc.BadRequest` naming `events[i]` with its reason code |
//! | 401 | UNAUTHENTICATED |
//! | 413 | RESOURCE_EXHAUSTED |
//! | 503 (broker, ingestion disabled) | UNAVAILABLE |
//! | 500 | INTERNAL |

use std::time::Instant;

use axum::http::{HeaderValue, Response, StatusCode};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt as _};

use crate::error::{ApiError, EventError};
use crate::state::AppState;

/// Counts a finished call under `method` (`Push`, `PushBatch`, ...) with its
/// code, and turns a failure into its status (logged once, here).
pub fn finish<T>(
    state: &AppState,
    method: &str,
    started: Instant,
    result: Result<T, ApiError>,
) -> Result<T, Status> {
    let code = match &result {
        Ok(_) => Code::Ok,
        Err(error) => code_of(error),
    };
    state
        .metrics
        .grpc_request(method, code_label(code), started.elapsed());
    result.map_err(|error| to_status(state, error))
}

fn to_status(state: &AppState, error: ApiError) -> Status {
    error.log();
    if let ApiError::Unavailable { dependency, .. } = &error {
        state.metrics.dependency_failed(*dependency);
    }
    let message = error.to_string();
    match &error {
        ApiError::InvalidEvents(errors) => {
            let violations = first_violations(errors);
            let message = if violations.len() < errors.len() {
                format!("{message} (the first {} are listed)", violations.len())
            } else {
                message
            };
            Status::with_error_details(
                Code::InvalidArgument,
                message,
                ErrorDetails::with_bad_request(violations),
            )
        }
        // The HTTP wording names the header; a gRPC caller sets metadata.
        ApiError::Unauthorized => Status::unauthenticated(UNAUTHENTICATED_MESSAGE),
        _ => Status::new(code_of(&error), message),
    }
}

/// What a call without a known `x-api-key` is told.
const UNAUTHENTICATED_MESSAGE: &str = "missing or invalid API key (metadata x-api-key)";

/// The details travel base64-encoded in a trailer, and clients refuse
/// headers over 16 KiB by default (hyper's limit, tonic's too): a batch of
/// hundreds of invalid events would otherwise reach them as INTERNAL.
const MAX_VIOLATION_BYTES: usize = 8 * 1024;

/// One violation per invalid event, `events[i]` and `reason: detail`, as
/// many as fit in [`MAX_VIOLATION_BYTES`]; a client resending the rest of
/// its batch learns of the others then.
fn first_violations(errors: &[EventError]) -> Vec<FieldViolation> {
    let mut bytes = 0;
    errors
        .iter()
        .map(|e| {
            FieldViolation::new(
                format!("events[{}]", e.index),
                format!("{}: {}", e.reason, e.detail),
            )
        })
        .take_while(|v| {
            bytes += v.field.len() + v.description.len() + 8;
            bytes <= MAX_VIOLATION_BYTES
        })
        .collect()
}

/// The code matching the HTTP status the same failure gets, derived from
/// it so the two answers cannot drift apart.
fn code_of(error: &ApiError) -> Code {
    match error.status() {
        StatusCode::BAD_REQUEST => Code::InvalidArgument,
        StatusCode::NOT_FOUND => Code::NotFound,
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        StatusCode::PAYLOAD_TOO_LARGE => Code::ResourceExhausted,
        StatusCode::SERVICE_UNAVAILABLE => Code::Unavailable,
        _ => Code::Internal,
    }
}

/// The code's name as the gRPC specification spells it.
fn code_label(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::NotFound => "NOT_FOUND",
        Code::Unauthenticated => "UNAUTHENTICATED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::Unavailable => "UNAVAILABLE",
        _ => "INTERNAL",
    }
}

/// tonic refuses a message over `max_decoding_message_size` with
/// OUT_OF_RANGE before buffering it; HTTP answers the same request 413, and
/// other gRPC servers RESOURCE_EXHAUSTED, so that is what clients get. No
/// handler here answers OUT_OF_RANGE itself. The refusal is a trailers-only
/// response, so the status is in the headers.
pub fn too_large_as_exhausted<B>(mut response: Response<B>) -> Response<B> {
    let headers = response.headers_mut();
    let out_of_range = HeaderValue::from(Code::OutOfRange as i32);
    if headers.get("grpc-status") == Some(&out_of_range) {
        headers.insert(
            "grpc-status",
            HeaderValue::from(Code::ResourceExhausted as i32),
        );
    }
    response
}
