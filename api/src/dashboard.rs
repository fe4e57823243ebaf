//! The dashboard: `GET /` serves the page built from `dashboard/` (Vite; its
//! own README), `GET /docs` the Swagger UI page built beside it over
//! `/openapi.json`, and every other path the router does not know is
//! looked up among the built files (`/assets/...`) before it is a JSON 404.
//! The files are read from `--dashboard-dir` at request time, not embedded,
//! so `cargo build` needs no Node.js and a rebuilt page needs no restart.

use std::path::Path;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use tower_http::services::ServeDir;
use tower_http::set_status::SetStatus;

use crate::config::DashboardDir;
use crate::state::AppState;

/// What `/` and `/docs` answer when the folder holds no built page.
const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>eventpulse</title>\
<h1>The dashboard is not built</h1>\
<p>Build it with <code>npm --prefix dashboard ci &amp;&amp; npm --prefix dashboard run build</code> \
(<code>scripts/demo.sh</code> does this), or point <code>--dashboard-dir</code> \
(<code>EVENTPULSE_DASHBOARD_DIR</code>) at a built copy. The JSON API works meanwhile: \
<a href=\"/openapi.json\">/openapi.json</a>.</p>";

pub async fn index(State(state): State<AppState>) -> Response {
    page(&state.dashboard_dir, "index.html").await
}

/// Swagger UI, a second Vite page, so the API reference needs no CDN.
pub async fn docs(State(state): State<AppState>) -> Response {
    page(&state.dashboard_dir, "docs.html").await
}

async fn page(dir: &Path, file: &str) -> Response {
    match tokio::fs::read_to_string(dir.join(file)).await {
        // The page names its hashed assets, so only it must never be stale.
        Ok(page) => ([(header::CACHE_CONTROL, "no-cache")], Html(page)).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, Html(NOT_BUILT)).into_response(),
    }
}

/// The built files under `dir`, falling back to `not_found` for anything
/// else (any method, any path), so unknown API routes keep their JSON 404.
pub fn files<S>(dir: &Path, not_found: S) -> ServeDir<SetStatus<S>> {
    ServeDir::new(dir)
        .append_index_html_on_directories(false)
        .call_fallback_on_method_not_allowed(true)
        .not_found_service(not_found)
}

/// Says at start-up that `/` and `/docs` will only explain how to build the page.
pub fn warn_if_missing(dashboard: &DashboardDir) {
    if !dashboard.is_built() {
        tracing::warn!(
            dir = %dashboard.path.display(),
            "the dashboard is not built, so GET / and GET /docs only explain how to build it: \
             npm --prefix dashboard ci && npm --prefix dashboard run build"
        );
    }
}
