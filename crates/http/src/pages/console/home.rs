//! The console's entry points: `/console` (the user's first workspace), the workspace
//! switcher and `/console/w/{ws}`, and the console's script `/console/console.js`
//! (`crates/http/static/console.js`, compiled in).

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::ctx::first_workspace;
use crate::pages::{query_param, render, see_other, urlencode, Chrome};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(console_home))
        .route("/console/console.js", get(console_js))
        .route("/console/switch", get(switch))
        .route("/console/w/{ws}", get(workspace_home))
}

/// The copy buttons and live status: shown only when this script runs.
const CONSOLE_JS: &str = include_str!("../../../static/console.js");

/// `GET /console/console.js`: cached for five minutes (its URL carries no version, so a
/// browser picks up a new one soon after an upgrade).
async fn console_js() -> Response {
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        CONSOLE_JS,
    )
        .into_response()
}

#[derive(Template)]
#[template(path = "console_empty.html")]
struct EmptyTemplate {
    chrome: Chrome,
}

/// `GET /console`: the user's first workspace.
async fn console_home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match first_workspace(&state, &headers, "/console").await {
        Ok((_, Some(ws))) => see_other(&format!("/console/w/{}/projects", urlencode(&ws))),
        Ok((signed, None)) => render(
            StatusCode::OK,
            &EmptyTemplate {
                chrome: signed.chrome(),
            },
        ),
        Err(res) => res,
    }
}

/// `GET /console/switch?workspace_id=…`: the switcher's form (works without JavaScript).
async fn switch(RawQuery(query): RawQuery) -> Response {
    match query_param(query.as_deref(), "workspace_id") {
        Some(ws) if !ws.is_empty() => see_other(&format!("/console/w/{}/projects", urlencode(&ws))),
        _ => see_other("/console"),
    }
}

/// `GET /console/w/{ws}`
async fn workspace_home(Path(ws): Path<String>) -> Response {
    see_other(&format!("/console/w/{}/projects", urlencode(&ws)))
}
