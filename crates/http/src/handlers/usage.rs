//! `GET /v1/databases/{databaseId}/usage`.

use axum::extract::State;
use axum::Json;
use pgfleet_api_types::usage::DatabaseUsage;
use pgfleet_api_types::ErrorBody;
use serde::Deserialize;

use crate::error::ApiResult;
use crate::extract::{Auth, Path, Query};
use crate::AppState;

/// The window: ISO 8601 dates or date-times; default from the start of the month (UTC) to now.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct UsageQuery {
    /// Start of the period (`2025-01-01` or `2025-01-01T00:00:00Z`); default the first day
    /// of `endDate`'s month, 00:00 UTC.
    pub start_date: Option<String>,
    /// End of the period, included (a bare date means the end of that day); default now.
    pub end_date: Option<String>,
}

/// Operations run in the period (statements, or transactions where pg_stat_statements is
/// unavailable) and the database's size at its end, from the usage sampler's samples.
#[utoipa::path(
    get, path = "/v1/databases/{databaseId}/usage", tag = "Databases", operation_id = "getV1DatabasesByDatabaseIdUsage",
    params(("databaseId" = String, Path, description = "Database ID"), UsageQuery),
    responses(
        (status = 200, description = "Returned usage metrics for the given database.", body = DatabaseUsage),
        (status = 400, description = "Invalid request parameters", body = ErrorBody),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 404, description = "Database with the given ID was not found.", body = ErrorBody),
        (status = 500, description = "Error occurred while fetching metrics", body = ErrorBody),
        (status = 503, description = "Usage metrics are temporarily unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn database_usage_get(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Query(q): Query<UsageQuery>,
) -> ApiResult<Json<DatabaseUsage>> {
    Ok(Json(
        state
            .services
            .usage()
            .database(&p, &id, q.start_date.as_deref(), q.end_date.as_deref())
            .await?,
    ))
}
