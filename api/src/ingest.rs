//! HTTP ingestion: `POST /events` (one event) and `POST /events/batch` (a
//! JSON array of up to `--max-batch-events`).
//!
//! The order of checks is the order of cost: the API key (401, before the
//! body is read), the body size (413), the body's shape (400), then every
//! event is validated with the shared `eventpulse-events` rules, the same
//! the consumer applies. A request is all or nothing: if any event is
//! invalid, the 400 lists each error with its index and reason code and
//! nothing is produced, so a client can fix and resend the whole request
//! without creating partial duplicates. Otherwise every event is produced
//! (its original bytes, keyed by `payload.userId`) and the answer, `202
//! {"accepted": [ids]}`, is sent only once Kafka acknowledged all of them.
//! [`accept`] is that contract, shared with gRPC's `EventService`
//! ([`crate::grpc`]).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use eventpulse_events::{validate, ValidEvent};
use serde::Serialize;
use uuid::Uuid;

use crate::auth::Authorized;
use crate::error::{ApiError, Dependency, EventError};
use crate::json_array;
use crate::kafka::Record;
use crate::state::AppState;

#[derive(Debug, Serialize)]
pub struct Accepted {
    /// The ids of the accepted events, in request order.
    accepted: Vec<Uuid>,
}

pub async fn ingest_one(
    State(state): State<AppState>,
    _key: Authorized,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let body = read_body(body, state.max_body_bytes)?;
    ingest(&state, &[&body]).await
}

pub async fn ingest_batch(
    State(state): State<AppState>,
    _key: Authorized,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let body = read_body(body, state.max_body_bytes)?;
    let events = json_array::split(&body).map_err(|e| ApiError::BadBody(e.to_string()))?;
    check_batch_len(events.len(), state.max_batch_events)?;
    ingest(&state, &events).await
}

/// A batch holds at least one event and at most `--max-batch-events`.
pub fn check_batch_len(len: usize, max: usize) -> Result<(), ApiError> {
    if len == 0 {
        return Err(ApiError::BadBody("the batch is empty".into()));
    }
    if len > max {
        return Err(ApiError::BadBody(format!(
            "the batch has {len} events, the limit is {max}"
        )));
    }
    Ok(())
}

/// The body, or 413 when it exceeded the limit while being read.
fn read_body(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge { limit }
        } else {
            ApiError::BadBody(rejection.body_text())
        }
    })
}

async fn ingest(
    state: &AppState,
    events: &[&[u8]],
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let accepted = accept(state, events).await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { accepted })))
}

/// Validates every event, then produces all of them and returns their ids
/// once the broker acknowledged every one; nothing is produced if any is
/// invalid. Shared by the HTTP routes and gRPC's `EventService`.
pub async fn accept(state: &AppState, events: &[&[u8]]) -> Result<Vec<Uuid>, ApiError> {
    let valid = validate_all(state, events)?;
    let records: Vec<Record<'_>> = valid
        .iter()
        .zip(events)
        .map(|(event, bytes)| Record {
            key: &event.user_id,
            value: bytes,
        })
        .collect();
    let ingestor = state.ingestor.as_ref().ok_or(ApiError::IngestionDisabled)?;
    ingestor
        .produce_all(&records)
        .await
        .map_err(|source| ApiError::Unavailable {
            dependency: Dependency::Kafka,
            source,
        })?;
    for event in &valid {
        state.metrics.ingested(event.event_type);
    }
    Ok(valid.iter().map(|event| event.event_id).collect())
}

/// Every event valid, or a 400 listing every invalid one (counted by reason).
fn validate_all(state: &AppState, events: &[&[u8]]) -> Result<Vec<ValidEvent>, ApiError> {
    let now = Utc::now();
    let mut valid = Vec::with_capacity(events.len());
    let mut errors = Vec::new();
    for (index, bytes) in events.iter().enumerate() {
        match validate(bytes, &state.limits, now) {
            Ok(event) => valid.push(event),
            Err(rejection) => {
                state.metrics.rejected(rejection.reason);
                errors.push(EventError {
                    index,
                    reason: rejection.reason.code(),
                    detail: rejection.detail,
                });
            }
        }
    }
    if errors.is_empty() {
        Ok(valid)
    } else {
        Err(ApiError::InvalidEvents(errors))
    }
}
