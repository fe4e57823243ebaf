//! The router: every route in one table (which the OpenAPI test compares
//! with `openapi.json`), the body limit, the JSON 404, and the middleware
//! that counts and times every request. Also the three service routes:
//! `/healthz`, `/metrics` and `/openapi.json`.

use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::handler::{Handler, HandlerWithoutStateExt};
use axum::http::{header, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter};
use axum::Router;

use crate::error::{ApiError, DependencyFailed};
use crate::state::AppState;
use crate::{dashboard, ingest, live, lookup, stats, status, throughput};

/// The OpenAPI 3.1 description of every route, served as is.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// A router that remembers the method and path of each route it was given.
struct RouteTable {
    router: Router<AppState>,
    routes: Vec<(Method, &'static str)>,
}

impl RouteTable {
    fn add<H, T>(mut self, method: Method, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a standard method");
        self.router = self.router.route(path, on(filter, handler));
        self.routes.push((method, path));
        self
    }
}

fn table() -> RouteTable {
    RouteTable {
        router: Router::new(),
        routes: Vec::new(),
    }
    .add(Method::GET, "/", dashboard::index)
    .add(Method::GET, "/docs", dashboard::docs)
    .add(Method::GET, "/docs/", dashboard::docs)
    .add(Method::GET, "/stats/hourly", stats::hourly)
    .add(Method::GET, "/stats/top-users", stats::top_users)
    .add(Method::GET, "/stats/dead-letters", stats::dead_letters)
    .add(Method::GET, "/stats/throughput", throughput::serve)
    .add(Method::GET, "/events/metrics", stats::metrics)
    .add(Method::GET, "/events/live", live::live)
    .add(Method::GET, "/events/{event_id}", lookup::get_event)
    .add(Method::GET, "/events", lookup::list_events)
    .add(Method::POST, "/events", ingest::ingest_one)
    .add(Method::POST, "/events/batch", ingest::ingest_batch)
    .add(Method::GET, "/pipeline/status", status::pipeline_status)
    .add(Method::GET, "/healthz", healthz)
    .add(Method::GET, "/metrics", metrics)
    .add(Method::GET, "/openapi.json", openapi)
}

/// Every (method, path template) the router answers.
pub fn routes() -> Vec<(Method, &'static str)> {
    table().routes
}

pub fn router(state: AppState) -> Router {
    let max_body_bytes = state.max_body_bytes;
    let files = dashboard::files(&state.dashboard_dir, no_route.into_service());
    table()
        .router
        .fallback_service(files)
        // Only extractors that read the body (ingestion) are bound by this.
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// Counts and times every request by route template (never the raw path, so
/// ids cannot explode the label set), and counts dependency failures.
async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = match *request.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        _ => "other",
    };
    let response = next.run(request).await;
    if let Some(DependencyFailed(dependency)) = response.extensions().get() {
        state.metrics.dependency_failed(*dependency);
    }
    let status = response.status().as_u16();
    state
        .metrics
        .request(&route, method, status, started.elapsed());
    response
}

async fn no_route(method: Method, uri: axum::http::Uri) -> ApiError {
    let path: String = uri.path().chars().take(100).collect();
    ApiError::NoRoute(format!("{method} {path}"))
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn metrics(State(state): State<AppState>) -> Response {
    eventpulse_service::metrics::exposition(state.metrics.render())
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

#[cfg(test)]
mod openapi_tests;
