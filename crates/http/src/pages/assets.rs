//! The pages' stylesheet, `GET /static/pgfleet.css` (`crates/http/static/pgfleet.css`,
//! compiled in), linked by every page's frame (`base.html`) and allowed by the pages' CSP
//! (`style-src 'self'`; no page has inline style). Served outside the metadata breaker, so
//! the page that says the metadata store is down is styled too.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::AppState;

/// The style of every page.
const PGFLEET_CSS: &str = include_str!("../../static/pgfleet.css");

/// The stylesheet's route (merged into the root router beside the guarded pages).
pub fn router() -> Router<AppState> {
    Router::new().route("/static/pgfleet.css", get(stylesheet))
}

/// `GET /static/pgfleet.css`: cached for five minutes, like `console.js` (its URL carries no
/// version, so a browser picks up a new one soon after an upgrade).
async fn stylesheet() -> Response {
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
            (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        PGFLEET_CSS,
    )
        .into_response()
}
