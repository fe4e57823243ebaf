//! Single events: `GET /events/{event_id}` and `GET /events`, a listing
//! newest first with keyset pagination (see [`crate::cursor`]): each page
//! ends with `next_cursor`, null on the last page.

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use eventpulse_events::EventType;
use serde::Serialize;
use uuid::Uuid;

use crate::cursor::Cursor;
use crate::error::ApiError;
use crate::params::{type_filter, FromQuery, Params, Query, TimeRange};
use crate::queries::{self, Listing};
use crate::state::AppState;
use crate::view::EventView;

/// Default and largest page size of `GET /events`.
pub const PAGE_DEFAULT: u32 = 100;
pub const PAGE_MAX: u32 = 1000;

pub async fn get_event(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Result<Json<EventView>, ApiError> {
    let event_id = Uuid::parse_str(&raw_id)
        .map_err(|_| ApiError::bad_parameter("event_id", "event_id is not a UUID"))?;
    match queries::by_id(&state.pool, event_id).await? {
        Some(row) => Ok(Json(row.try_into()?)),
        None => Err(ApiError::EventNotFound(event_id)),
    }
}

pub struct ListParams {
    user_id: Option<String>,
    event_type: Option<EventType>,
    range: TimeRange,
    limit: u32,
    cursor: Option<Cursor>,
}

impl FromQuery for ListParams {
    const NAMES: &'static [&'static str] = &["user_id", "type", "from", "to", "limit", "cursor"];

    fn from_query(query: &mut Query, _now: DateTime<Utc>) -> Result<Self, ApiError> {
        let user_id = query.user_id("user_id")?;
        Ok(Self {
            user_id,
            event_type: query.event_type("type")?,
            range: TimeRange::for_listing(query)?,
            limit: query.limit("limit", PAGE_DEFAULT, PAGE_MAX)?,
            cursor: query
                .take("cursor")
                .map(|c| Cursor::decode(&c))
                .transpose()?,
        })
    }
}

#[derive(Debug, Serialize)]
pub struct ListResponse {
    events: Vec<EventView>,
    /// Pass as `cursor` (with the same filters) for the next page; null at the end.
    next_cursor: Option<String>,
}

pub async fn list_events(
    State(state): State<AppState>,
    Params(params): Params<ListParams>,
) -> Result<Json<ListResponse>, ApiError> {
    let types = type_filter(params.event_type);
    // `to` is a position too: the page starts below whichever is lower.
    let start = Cursor::before(params.range.to);
    let below = params.cursor.map_or(start, |cursor| cursor.min(start));
    let listing = Listing {
        user_id: params.user_id.as_deref(),
        types: &types,
        from: params.range.from,
        below,
        // One more than asked for tells whether another page exists.
        limit: params.limit + 1,
    };
    let mut rows = queries::list(&state.pool, &listing).await?;
    let next_cursor = if rows.len() > params.limit as usize {
        rows.truncate(params.limit as usize);
        rows.last().map(|row| row.position().encode())
    } else {
        None
    };
    let events = rows
        .into_iter()
        .map(EventView::try_from)
        .collect::<Result<_, _>>()?;
    Ok(Json(ListResponse {
        events,
        next_cursor,
    }))
}
