//! Prometheus: the middleware that counts and times every request, and `GET /metrics`.
//!
//! The metrics themselves live in `pgfleet_domain::metrics` (the `prometheus` crate, text
//! exposition format). `/metrics` is unauthenticated, like `/healthz`: it shows database ids,
//! sizes and activity, so operators should let only their Prometheus reach it (bind
//! `listen` to a private address or filter the path at the reverse proxy), never the public.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// Records method, matched route template (`unmatched` for the fallback, so unknown paths
/// do not create series), status and latency of each request.
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let res = next.run(req).await;
    pgfleet_domain::metrics::record_http(
        method.as_str(),
        route.as_deref().unwrap_or("unmatched"),
        res.status().as_u16(),
        started.elapsed(),
    );
    res
}

/// `GET /metrics`: every metric in the Prometheus text format, and this process's metadata
/// circuit breaker as `pgfleet_metadata_available` (kept out of the process-wide registry:
/// it belongs to this server's state), and the WAL archive's metrics (from the metadata
/// store, so every replica shows the same: `pgfleet_domain::services::pitr::render_metrics`).
pub async fn metrics_get(State(state): State<AppState>) -> Response {
    let mut body = pgfleet_domain::metrics::render();
    body.push_str(&format!(
        "# HELP pgfleet_metadata_available 1 while requests reach the metadata store, 0 while its circuit breaker answers them 503 at once.\n\
         # TYPE pgfleet_metadata_available gauge\n\
         pgfleet_metadata_available {}\n",
        u8::from(!state.breaker.is_open())
    ));
    // The WAL archive of each archived server, as recorded in the metadata store (absent
    // while it cannot be read).
    if let Ok(Ok(health)) = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        state.services.pitr().health(),
    )
    .await
    {
        body.push_str(&pgfleet_domain::services::pitr::render_metrics(&health));
    }
    (
        [(header::CONTENT_TYPE, pgfleet_domain::metrics::CONTENT_TYPE)],
        body,
    )
        .into_response()
}
