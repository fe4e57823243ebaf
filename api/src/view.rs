//! A stored event as every route shows it: the lookups, the listing and the
//! live feed render the same JSON.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::error::ApiError;
use crate::queries::StoredRow;

/// A stored event as the API shows it.
#[derive(Debug, Serialize)]
pub struct EventView {
    event_id: Uuid,
    event_type: String,
    user_id: String,
    occurred_at: DateTime<Utc>,
    ingested_at: DateTime<Utc>,
    payload: serde_json::Value,
}

impl TryFrom<StoredRow> for EventView {
    type Error = ApiError;

    fn try_from(row: StoredRow) -> Result<Self, ApiError> {
        let payload = serde_json::from_str(&row.payload).map_err(|e| {
            ApiError::Internal(anyhow::Error::new(e).context("stored payload is not JSON"))
        })?;
        Ok(Self {
            event_id: row.event_id,
            event_type: row.event_type,
            user_id: row.user_id,
            occurred_at: row.occurred_at,
            ingested_at: row.ingested_at,
            payload,
        })
    }
}
