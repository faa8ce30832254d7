//! The routes of the `create-db` CLI's create service, under `/create-db` (the CLI's
//! `CREATE_DB_WORKER_URL` is `{public URL}/create-db`): `GET /health`, `GET /regions`,
//! `POST /create` and `POST /analytics` (accepted and ignored). Shapes as the unmodified CLI
//! (`create-db` 1.2.1) reads them; the claim page the CLI's claim URL opens is
//! `crate::pages::claim`. All answer 404 unless `[claimable] enabled`.
//!
//! The create answers `data.id` = the claim token: the CLI builds its claim URL from that
//! field alone (`{CLAIM_DB_WORKER_URL}/claim?projectID={data.id}`), so it must be the
//! unguessable secret; the project's own id is `data.projectId`.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use pgfleet_domain::services::claimable::TemporaryCreate;
use pgfleet_domain::DomainError;
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::extract::ClientAddr;
use crate::AppState;

/// Largest body of these routes (the CLI's create and analytics bodies are a few hundred
/// bytes).
const BODY_LIMIT: usize = 16 * 1024;
/// Longest region id looked at.
const MAX_REGION: usize = 64;

/// The routes, nested at `/create-db` by [`crate::routes`].
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/regions", get(regions))
        .route("/create", post(create))
        .route("/analytics", post(analytics))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

fn disabled(state: &AppState) -> Option<ApiError> {
    (!state.services.claimable().enabled()).then(|| {
        ApiError::route_not_found("/create-db")
            .with_hint("Claimable databases are not enabled on this server.")
    })
}

async fn health(State(state): State<AppState>) -> Response {
    if let Some(e) = disabled(&state) {
        return e.into_response();
    }
    Json(json!({ "status": "ok" })).into_response()
}

/// The Postgres regions (`id`, `name`, `status`), as a bare array.
async fn regions(State(state): State<AppState>) -> Response {
    if let Some(e) = disabled(&state) {
        return e.into_response();
    }
    Json(state.services.regions().postgres()).into_response()
}

/// The create body the CLI sends; its other fields (`name`, `utm_source`, `userAgent`,
/// `source`) are ignored.
#[derive(Debug, Deserialize)]
struct CreateBody {
    region: Option<String>,
    #[serde(rename = "ttlMs")]
    ttl_ms: Option<u64>,
}

async fn create(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    body: crate::extract::Json<CreateBody>,
) -> Response {
    if let Some(e) = disabled(&state) {
        return e.into_response();
    }
    let crate::extract::Json(body) = body;
    let region = body
        .region
        .unwrap_or_else(|| pgfleet_domain::services::projects::DEFAULT_REGION.to_string());
    if region.len() > MAX_REGION {
        return ApiError::from(DomainError::bad_request("region is too long")).into_response();
    }
    let req = TemporaryCreate {
        region,
        ttl: body.ttl_ms.map(std::time::Duration::from_millis),
    };
    match state.services.claimable().create(client, req).await {
        Ok(created) => {
            let database = created.database.map(|d| state.located(d));
            let body = json!({
                "data": {
                    "id": created.claim_token,
                    "projectId": created.project_id,
                    "expiresAt": created.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "database": database,
                }
            });
            (StatusCode::CREATED, Json(body)).into_response()
        }
        Err(DomainError::TooManyRequests {
            message,
            hint,
            retry_after_secs,
        }) => {
            // The shape the CLI shows its message for (`error: "RATE_LIMIT_EXCEEDED"`).
            let mut res = (
                StatusCode::TOO_MANY_REQUESTS,
                Json(json!({
                    "error": "RATE_LIMIT_EXCEEDED",
                    "message": message,
                    "hint": hint,
                    "rateLimitInfo": { "retryAfterSeconds": retry_after_secs },
                })),
            )
                .into_response();
            crate::error::set_retry_after(&mut res, Some(retry_after_secs));
            res
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Analytics events of the CLI: read within the body limit (413 past it) and dropped.
async fn analytics(
    State(state): State<AppState>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    if let Some(e) = disabled(&state) {
        return e.into_response();
    }
    match body {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(_) => crate::extract::payload_too_large().into_response(),
    }
}
