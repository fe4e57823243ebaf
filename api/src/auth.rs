//! The API key that guards ingestion: header `X-API-Key`, checked against
//! the configured [`ApiKeys`](crate::keys::ApiKeys) before a body is read.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::state::AppState;

/// The header clients send their key in.
pub const API_KEY_HEADER: &str = "x-api-key";

/// Proof that the request carried a valid key; the ingestion handlers take
/// it as their first argument, so the check runs before the body is read.
pub struct Authorized;

impl FromRequestParts<AppState> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if state.api_keys.is_empty() {
            return Err(ApiError::IngestionDisabled);
        }
        let presented = parts.headers.get(API_KEY_HEADER).map(|v| v.as_bytes());
        match presented {
            Some(key) if state.api_keys.accepts(key) => Ok(Authorized),
            _ => Err(ApiError::Unauthorized),
        }
    }
}
