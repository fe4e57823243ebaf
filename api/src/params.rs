//! Query parameters, parsed into values that can only exist valid.
//!
//! Each read route has a parameter struct implementing [`FromQuery`], whose
//! `NAMES` lists every parameter the route takes; the [`Params`] extractor
//! refuses any other name (a typo such as `evnt_type` would otherwise be
//! ignored and silently widen the query) and any repeated one, and the
//! OpenAPI test holds `openapi.json` to the same lists. An empty value
//! (`?event_type=`) means "not given". Every problem is a 400 naming the
//! parameter.

use std::collections::HashMap;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, Duration, SubsecRound, Utc};
use eventpulse_events::{EventType, MAX_USER_ID_CHARS};

use crate::error::ApiError;

/// Longest time range a statistics query may cover: 744 hourly buckets.
pub const MAX_STATS_RANGE: Duration = Duration::days(31);
/// Range of a statistics query without `from`/`to`: the last day.
pub const DEFAULT_STATS_RANGE: Duration = Duration::hours(24);

/// A route's parameters, built from its decoded query string.
pub trait FromQuery: Sized {
    /// Every parameter the route accepts, as documented in `openapi.json`.
    const NAMES: &'static [&'static str];

    fn from_query(query: &mut Query, now: DateTime<Utc>) -> Result<Self, ApiError>;
}

/// The decoded, checked query string: each known name at most once.
#[derive(Debug, Default)]
pub struct Query(HashMap<&'static str, String>);

impl Query {
    pub fn parse(raw: Option<&str>, names: &'static [&'static str]) -> Result<Self, ApiError> {
        let mut values = HashMap::new();
        for (name, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            let Some(known) = names.iter().find(|known| **known == name) else {
                return Err(ApiError::bad_parameter(
                    name.chars().take(64).collect::<String>(),
                    format!("unknown parameter; this route takes {}", names.join(", ")),
                ));
            };
            if values.insert(*known, value.into_owned()).is_some() {
                return Err(ApiError::bad_parameter(
                    *known,
                    format!("{known} is given more than once"),
                ));
            }
        }
        values.retain(|_, value: &mut String| !value.is_empty());
        Ok(Self(values))
    }

    /// The value of `name`, if given (non-empty).
    pub fn take(&mut self, name: &'static str) -> Option<String> {
        self.0.remove(name)
    }

    pub fn time(&mut self, name: &'static str) -> Result<Option<DateTime<Utc>>, ApiError> {
        let Some(raw) = self.take(name) else {
            return Ok(None);
        };
        DateTime::parse_from_rfc3339(&raw)
            .map(|at| Some(at.with_timezone(&Utc)))
            .map_err(|e| {
                let hint = if raw.contains(' ') {
                    " (a '+' in a URL means a space: write the offset as %2B or use Z)"
                } else {
                    ""
                };
                ApiError::bad_parameter(name, format!("{name} is not an RFC 3339 time: {e}{hint}"))
            })
    }

    pub fn event_type(&mut self, name: &'static str) -> Result<Option<EventType>, ApiError> {
        let Some(raw) = self.take(name) else {
            return Ok(None);
        };
        EventType::parse(&raw).map(Some).ok_or_else(|| {
            let known: Vec<_> = EventType::ALL.iter().map(|t| t.as_str()).collect();
            ApiError::bad_parameter(name, format!("{name} must be one of {}", known.join(", ")))
        })
    }

    /// A user id as events carry it (at most `MAX_USER_ID_CHARS` characters).
    pub fn user_id(&mut self, name: &'static str) -> Result<Option<String>, ApiError> {
        let user_id = self.take(name);
        if user_id
            .as_ref()
            .is_some_and(|u| u.chars().count() > MAX_USER_ID_CHARS)
        {
            return Err(ApiError::bad_parameter(
                name,
                format!("{name} is longer than {MAX_USER_ID_CHARS} characters"),
            ));
        }
        Ok(user_id)
    }

    /// A positive whole number, `default` when absent, capped at `max`.
    pub fn limit(&mut self, name: &'static str, default: u32, max: u32) -> Result<u32, ApiError> {
        let Some(raw) = self.take(name) else {
            return Ok(default);
        };
        match raw.parse::<u64>() {
            Ok(n) if n >= 1 => Ok(n.min(u64::from(max)) as u32),
            _ => Err(ApiError::bad_parameter(
                name,
                format!("{name} must be a whole number from 1 (values above {max} count as {max})"),
            )),
        }
    }
}

/// Extracts `T` from the query string; failures are 400s naming the parameter.
pub struct Params<T>(pub T);

impl<T: FromQuery, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let mut query = Query::parse(parts.uri.query(), T::NAMES)?;
        // Postgres keeps microseconds; echoing nanoseconds would suggest more.
        let now = Utc::now().trunc_subsecs(6);
        T::from_query(&mut query, now).map(Params)
    }
}

/// A half-open time range `[from, to)`, `from` strictly before `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl TimeRange {
    /// The range of a statistics query: defaults to the day before `to` (or
    /// before now), and covers at most [`MAX_STATS_RANGE`].
    pub fn for_stats(query: &mut Query, now: DateTime<Utc>) -> Result<Self, ApiError> {
        let from = query.time("from")?;
        let to = query.time("to")?;
        let to = to.unwrap_or_else(|| match from {
            Some(from) if from >= now => from + DEFAULT_STATS_RANGE,
            _ => now,
        });
        let range = Self::checked(from.unwrap_or(to - DEFAULT_STATS_RANGE), to)?;
        if range.to - range.from > MAX_STATS_RANGE {
            return Err(ApiError::bad_parameter(
                "from",
                format!(
                    "the range from..to is longer than {} days",
                    MAX_STATS_RANGE.num_days()
                ),
            ));
        }
        Ok(range)
    }

    /// The range of a listing: unbounded on either side unless given.
    pub fn for_listing(query: &mut Query) -> Result<Self, ApiError> {
        let from = query.time("from")?.unwrap_or(DateTime::UNIX_EPOCH);
        let to = query.time("to")?.unwrap_or_else(far_future);
        Self::checked(from, to)
    }

    fn checked(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Self, ApiError> {
        if from >= to {
            return Err(ApiError::bad_parameter("from", "from must be before to"));
        }
        Ok(Self { from, to })
    }
}

/// Later than any event can be (Postgres's timestamptz goes far beyond).
fn far_future() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("9999-12-31T23:59:59Z")
        .expect("a valid constant")
        .with_timezone(&Utc)
}

/// The event types a query covers: the one asked for, or all of them. Queries
/// always filter with `event_type = ANY($types)`, which lets Postgres use the
/// `(event_type, occurred_at)` index even without a type filter (one index
/// range per type), so no index on `occurred_at` alone is needed.
pub fn type_filter(event_type: Option<EventType>) -> Vec<&'static str> {
    match event_type {
        Some(t) => vec![t.as_str()],
        None => EventType::ALL.iter().map(|t| t.as_str()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: &[&str] = &["event_type", "from", "to", "limit"];

    fn query(raw: &str) -> Query {
        Query::parse(Some(raw), NAMES).expect("parses")
    }

    fn parameter_of(error: ApiError) -> String {
        match error {
            ApiError::BadParameter { parameter, .. } => parameter,
            other => panic!("expected a bad parameter, got {other:?}"),
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("valid")
            .with_timezone(&Utc)
    }

    #[test]
    fn unknown_and_repeated_parameters_are_named() {
        let unknown = Query::parse(Some("evnt_type=login"), NAMES).unwrap_err();
        assert_eq!(parameter_of(unknown), "evnt_type");
        let repeated = Query::parse(Some("to=1&to=2"), NAMES).unwrap_err();
        assert_eq!(parameter_of(repeated), "to");
    }

    #[test]
    fn empty_values_mean_absent() {
        let mut q = query("event_type=&from=&to=");
        assert_eq!(q.event_type("event_type").expect("absent"), None);
        assert_eq!(q.time("from").expect("absent"), None);
    }

    #[test]
    fn stats_range_defaults_to_the_last_day() {
        let now = at("2026-11-23T12:00:00Z");
        let range = TimeRange::for_stats(&mut query(""), now).expect("valid");
        assert_eq!(range.from, at("2026-11-22T12:00:00Z"));
        assert_eq!(range.to, now);
        let until = TimeRange::for_stats(&mut query("to=2026-11-01T00:00:00Z"), now).expect("ok");
        assert_eq!(until.from, at("2026-10-31T00:00:00Z"));
    }

    #[test]
    fn stats_range_is_checked_and_capped() {
        let now = at("2026-11-23T12:00:00Z");
        for raw in [
            "from=2026-11-23T12:00:00Z&to=2026-11-23T12:00:00Z",
            "from=2026-10-01T00:00:00Z&to=2026-11-02T00:00:00Z",
            "from=yesterday",
        ] {
            let error = TimeRange::for_stats(&mut query(raw), now).unwrap_err();
            assert_eq!(parameter_of(error), "from", "{raw}");
        }
        let error = TimeRange::for_stats(&mut query("to=2026-11-23T12:00:00 00:00"), now);
        assert!(error.unwrap_err().to_string().contains("%2B"));
        let month = "from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z";
        assert!(TimeRange::for_stats(&mut query(month), now).is_ok());
    }

    #[test]
    fn limits_default_cap_and_refuse_nonsense() {
        assert_eq!(query("").limit("limit", 10, 1000).expect("ok"), 10);
        assert_eq!(
            query("limit=5000").limit("limit", 10, 1000).expect("ok"),
            1000
        );
        for raw in ["limit=0", "limit=-1", "limit=ten"] {
            let error = query(raw).limit("limit", 10, 1000).unwrap_err();
            assert_eq!(parameter_of(error), "limit");
        }
    }

    #[test]
    fn event_types_are_checked() {
        assert_eq!(
            query("event_type=page_view")
                .event_type("event_type")
                .expect("ok"),
            Some(EventType::PageView)
        );
        let error = query("event_type=purchase")
            .event_type("event_type")
            .unwrap_err();
        assert_eq!(parameter_of(error), "event_type");
        assert_eq!(type_filter(None).len(), EventType::ALL.len());
    }
}
