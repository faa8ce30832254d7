//! `/v1/integrations` and `/v1/workspaces/{workspaceId}/integrations`: the OAuth apps a
//! workspace has authorized, and revoking them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use pgfleet_api_types::integration::Integration;
use pgfleet_api_types::{Data, ErrorBody, List};
use serde::Deserialize;

use super::PageQuery;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Path, Query};
use crate::AppState;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationsQuery {
    /// Opaque cursor from a previous page's `pagination.nextCursor`.
    pub cursor: Option<String>,
    /// Page size, 1 to 100.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100, default = 100)]
    pub limit: Option<String>,
    /// The workspace whose integrations to list.
    #[param(required = true)]
    pub workspace_id: Option<String>,
}

#[utoipa::path(
    get, path = "/v1/workspaces/{workspaceId}/integrations", tag = "Integrations",
    operation_id = "getV1WorkspacesByWorkspaceIdIntegrations",
    params(("workspaceId" = String, Path, description = "Workspace ID"), PageQuery),
    responses(
        (status = 200, description = "Returned the integrations for the given workspace ID.", body = List<Integration>),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 404, description = "Workspace with the given ID was not found.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn workspace_integrations_list(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(workspace_id): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<List<Integration>>> {
    let page = q.page(100)?;
    Ok(Json(
        state.located(
            state
                .services
                .oauth()
                .integrations_list(&p.workspace_wide()?, &workspace_id, page)
                .await?,
        ),
    ))
}

/// Revokes every token of an app in a workspace.
#[utoipa::path(
    delete, path = "/v1/workspaces/{workspaceId}/integrations/{clientId}", tag = "Integrations",
    operation_id = "deleteV1WorkspacesByWorkspaceIdIntegrationsByClientId",
    params(("workspaceId" = String, Path, description = "Workspace ID"), ("clientId" = String, Path, description = "Integration client ID")),
    responses(
        (status = 204, description = "Revoked the integration tokens."),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 404, description = "Integration with the given client ID was not found.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn workspace_integrations_delete(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((workspace_id, client_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .services
        .oauth()
        .integration_revoke(
            &p.workspace_wide_write()?,
            &workspace_id,
            Some(&client_id),
            None,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get, path = "/v1/integrations", tag = "Integrations", operation_id = "getV1Integrations",
    params(IntegrationsQuery),
    responses(
        (status = 200, description = "Returned the integrations.", body = List<Integration>),
        (status = 400, description = "workspaceId missing, or a bad cursor or limit.", body = ErrorBody),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn integrations_list(
    State(state): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<IntegrationsQuery>,
) -> ApiResult<Json<List<Integration>>> {
    let page = pgfleet_domain::PageRequest::parse(q.cursor.as_deref(), q.limit.as_deref(), 100)?;
    let Some(ws) = q.workspace_id.as_deref() else {
        return Err(
            ApiError::bad_request("workspaceId is required").with_hint("Pass ?workspaceId=wksp_…")
        );
    };
    Ok(Json(
        state.located(
            state
                .services
                .oauth()
                .integrations_list(&p.workspace_wide()?, ws, page)
                .await?,
        ),
    ))
}

#[utoipa::path(
    get, path = "/v1/integrations/{id}", tag = "Integrations", operation_id = "getV1IntegrationsById",
    params(("id" = String, Path, description = "Integration ID")),
    responses(
        (status = 200, description = "Returned the integration.", body = Data<Integration>),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 404, description = "Integration with the given ID was not found.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn integrations_get(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Data<Integration>>> {
    Ok(Json(
        state.located(Data::new(
            state
                .services
                .oauth()
                .integration_get(&p.workspace_wide()?, &id)
                .await?,
        )),
    ))
}

/// Revokes one integration's tokens.
#[utoipa::path(
    delete, path = "/v1/integrations/{id}", tag = "Integrations", operation_id = "deleteV1IntegrationsById",
    params(("id" = String, Path, description = "Integration ID")),
    responses(
        (status = 204, description = "Revoked the integration tokens."),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 404, description = "Integration with the given ID was not found.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn integrations_delete(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let ws = p.workspace_id().to_string();
    state
        .services
        .oauth()
        .integration_revoke(&p.workspace_wide_write()?, &ws, None, Some(&id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
