//! Every way a request can fail, and the HTTP answer each one gets. The
//! variant decides the status; the body is always JSON:
//! `{"error": "...", "parameter": "from"}` for a bad parameter,
//! `{"error": "...", "errors": [{"index", "reason", "detail"}]}` for invalid
//! events, `{"error": "..."}` otherwise. Failures of a dependency are logged
//! here, once, with their whole source chain; clients see no internals.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use uuid::Uuid;

pub use eventpulse_service::Dependency;

/// Set on a response that failed because of `Dependency`, for the metrics
/// middleware: the failure is logged here and counted there, once each.
#[derive(Debug, Clone, Copy)]
pub struct DependencyFailed(pub Dependency);

/// One invalid event of an ingestion request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventError {
    /// Position in the batch (0 for `POST /events`).
    pub index: usize,
    /// Stable reason code from `eventpulse-events` (e.g. `missing_field`).
    pub reason: &'static str,
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A query or path parameter is malformed or out of range.
    #[error("{message}")]
    BadParameter { parameter: String, message: String },
    /// The request body is not what the route takes (not JSON, empty batch...).
    #[error("{0}")]
    BadBody(String),
    /// Some events failed validation; none of the request was produced.
    #[error("{} of the events are invalid; none was accepted", .0.len())]
    InvalidEvents(Vec<EventError>),
    #[error("no event with id {0}")]
    EventNotFound(Uuid),
    #[error("no route for {0}")]
    NoRoute(String),
    #[error("missing or invalid API key (header X-API-Key)")]
    Unauthorized,
    #[error("ingestion is disabled: the server has no API key configured")]
    IngestionDisabled,
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the query ran longer than the server's limit; narrow the time range")]
    QueryTimeout,
    #[error("{limit} live streams are open, the most this server allows (--live-max-streams); try again later")]
    TooManyStreams { limit: usize },
    #[error("{} is unavailable, try again later", .dependency.label())]
    Unavailable {
        dependency: Dependency,
        #[source]
        source: anyhow::Error,
    },
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn bad_parameter(parameter: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadParameter {
            parameter: parameter.into(),
            message: message.into(),
        }
    }

    /// Logs a dependency's failure or a bug with its whole source chain,
    /// once, where the answer is made (HTTP or gRPC); the rest is the
    /// client's to fix and is only counted.
    pub fn log(&self) {
        match self {
            Self::Unavailable { dependency, source } => {
                tracing::warn!(dependency = dependency.label(), error = %format!("{source:#}"), "dependency unavailable");
            }
            Self::Internal(source) => {
                tracing::error!(error = %format!("{source:#}"), "request failed");
            }
            _ => {}
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadParameter { .. } | Self::BadBody(_) | Self::InvalidEvents(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::EventNotFound(_) | Self::NoRoute(_) => StatusCode::NOT_FOUND,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::IngestionDisabled
            | Self::QueryTimeout
            | Self::TooManyStreams { .. }
            | Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameter: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [EventError]>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        let body = ErrorBody {
            error: self.to_string(),
            parameter: match &self {
                Self::BadParameter { parameter, .. } => Some(parameter.as_str()),
                _ => None,
            },
            errors: match &self {
                Self::InvalidEvents(errors) => Some(errors),
                _ => None,
            },
        };
        let mut response = (self.status(), Json(body)).into_response();
        if let Self::Unavailable { dependency, .. } = &self {
            response
                .extensions_mut()
                .insert(DependencyFailed(*dependency));
        }
        response
    }
}

/// Classifies a Postgres failure: connection trouble and overload are 503
/// (worth retrying), a cancelled statement is the query timeout, anything
/// else (a bug, a missing table) is 500.
impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        let unavailable = match &error {
            sqlx::Error::Database(db) => match db.code().as_deref() {
                Some("57014") => return Self::QueryTimeout,
                // 08: connection exception, 53: insufficient resources,
                // 57P0x: server shutting down, 3D000: database gone.
                Some(code) => {
                    code.starts_with("08")
                        || code.starts_with("53")
                        || code.starts_with("57P0")
                        || code == "3D000"
                }
                None => false,
            },
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            _ => false,
        };
        let source = anyhow::Error::new(error).context("querying Postgres");
        if unavailable {
            Self::Unavailable {
                dependency: Dependency::Postgres,
                source,
            }
        } else {
            Self::Internal(source)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(error: ApiError) -> (StatusCode, serde_json::Value) {
        let response = error.into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, serde_json::from_slice(&bytes).expect("JSON body"))
    }

    #[tokio::test]
    async fn bad_parameters_name_the_parameter() {
        let (status, body) = body_of(ApiError::bad_parameter("from", "from is not RFC 3339")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body,
            serde_json::json!({"error": "from is not RFC 3339", "parameter": "from"})
        );
    }

    #[tokio::test]
    async fn invalid_events_list_each_error() {
        let errors = vec![EventError {
            index: 3,
            reason: "missing_field",
            detail: "required field type is missing".into(),
        }];
        let (status, body) = body_of(ApiError::InvalidEvents(errors)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["errors"][0]["index"], 3);
        assert_eq!(body["errors"][0]["reason"], "missing_field");
    }

    #[tokio::test]
    async fn dependency_failures_hide_internals() {
        let error = ApiError::from(sqlx::Error::PoolTimedOut);
        let (status, body) = body_of(error).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body,
            serde_json::json!({"error": "postgres is unavailable, try again later"})
        );
    }

    #[test]
    fn unknown_sqlx_errors_are_internal() {
        let error = ApiError::from(sqlx::Error::RowNotFound);
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
