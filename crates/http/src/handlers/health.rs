//! Liveness and readiness probes (no authentication).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::AppState;

/// `GET /healthz`: the process is up and serving HTTP.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the metadata store and every region's Postgres servers answer.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    match state.services.readiness().await {
        Ok(checks) => Ok(Json(json!({ "status": "ready", "checks": checks }))),
        Err(failures) => Err(ApiError {
            retry_after_secs: Some(crate::error::UNAVAILABLE_RETRY_AFTER_SECS),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!("Not ready: {}", failures.join("; ")),
            )
        }),
    }
}
