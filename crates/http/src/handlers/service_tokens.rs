//! `/v1/workspaces/{workspaceId}/service-tokens`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use pgfleet_api_types::service_token::{CreateServiceToken, CreatedServiceToken, ServiceToken};
use pgfleet_api_types::{Data, ErrorBody, List};

use super::PageQuery;
use crate::error::ApiResult;
use crate::extract::{self, Auth, Path, Query};
use crate::AppState;
use pgfleet_domain::TokenScope;

/// Service tokens of a workspace (secrets are never listed).
#[utoipa::path(
    get, path = "/v1/workspaces/{workspaceId}/service-tokens", tag = "Service tokens",
    operation_id = "getV1WorkspacesByWorkspaceIdService-tokens",
    params(("workspaceId" = String, Path, description = "Workspace ID"), PageQuery),
    responses(
        (status = 200, description = "Returns the list of service tokens.", body = List<ServiceToken>),
        (status = 400, description = "Invalid cursor or limit.", body = ErrorBody),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 404, description = "Workspace with the given ID was not found (or is not the credential's).", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn service_tokens_list(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(workspace_id): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<List<ServiceToken>>> {
    let page = q.page(100)?;
    Ok(Json(
        state
            .services
            .tokens()
            .list(&p.workspace_wide()?, &workspace_id, page)
            .await?,
    ))
}

/// Creates a service token; its value is in this response only.
#[utoipa::path(
    post, path = "/v1/workspaces/{workspaceId}/service-tokens", tag = "Service tokens",
    operation_id = "postV1WorkspacesByWorkspaceIdService-tokens",
    params(("workspaceId" = String, Path, description = "Workspace ID")),
    request_body = CreateServiceToken,
    responses(
        (status = 201, description = "Created a new service token. The token value is returned once in the response body.", body = Data<CreatedServiceToken>),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 400, description = "Invalid name (empty, too long, or with a control, bidirectional or invisible character).", body = ErrorBody),
        (status = 404, description = "Workspace with the given ID was not found.", body = ErrorBody),
        (status = 422, description = "Invalid expiresAt.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn service_tokens_create(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(workspace_id): Path<String>,
    extract::Json(body): extract::Json<CreateServiceToken>,
) -> ApiResult<(StatusCode, Json<Data<CreatedServiceToken>>)> {
    let t = state
        .services
        .tokens()
        .create(
            &p.workspace_wide_write()?,
            &workspace_id,
            &body.name,
            body.expires_at.as_deref(),
            &TokenScope {
                project_id: body.project_id,
                read_only: body.read_only.unwrap_or(false),
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(Data::new(t))))
}

/// Deletes a service token; it is refused from the next request on.
#[utoipa::path(
    delete, path = "/v1/workspaces/{workspaceId}/service-tokens/{serviceTokenId}", tag = "Service tokens",
    operation_id = "deleteV1WorkspacesByWorkspaceIdService-tokensByServiceTokenId",
    params(("workspaceId" = String, Path, description = "Workspace ID"), ("serviceTokenId" = String, Path, description = "Service token ID")),
    responses(
        (status = 204, description = "Deleted the service token successfully."),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 404, description = "Workspace not found, or the service token does not exist in it.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn service_tokens_delete(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((workspace_id, token_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .services
        .tokens()
        .delete(&p.workspace_wide_write()?, &workspace_id, &token_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
