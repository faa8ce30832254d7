//! `/v1/workspaces/{workspaceId}/webhooks`: signed webhook endpoints (pgfleet's extension,
//! not in the Management API contract).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use pgfleet_api_types::webhook::{CreateWebhook, CreatedWebhook, Webhook, WebhookDelivery};
use pgfleet_api_types::{Data, ErrorBody, List};

use crate::error::ApiResult;
use crate::extract::{self, Auth, Path};
use crate::AppState;

/// Webhook endpoints of a workspace (secrets are never listed). pgfleet extension.
#[utoipa::path(
    get, path = "/v1/workspaces/{workspaceId}/webhooks", tag = "Webhooks",
    operation_id = "getV1WorkspacesByWorkspaceIdWebhooks",
    params(("workspaceId" = String, Path, description = "Workspace ID")),
    responses(
        (status = 200, description = "The workspace's webhook endpoints, oldest first (one page).", body = List<Webhook>),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 404, description = "Workspace with the given ID was not found (or is not the credential's).", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn webhooks_list(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(workspace_id): Path<String>,
) -> ApiResult<Json<List<Webhook>>> {
    Ok(Json(
        state
            .services
            .webhooks()
            .list(&p.workspace_wide()?, &workspace_id)
            .await?,
    ))
}

/// Creates a webhook endpoint; its signing secret is in this response only. pgfleet extension.
#[utoipa::path(
    post, path = "/v1/workspaces/{workspaceId}/webhooks", tag = "Webhooks",
    operation_id = "postV1WorkspacesByWorkspaceIdWebhooks",
    params(("workspaceId" = String, Path, description = "Workspace ID")),
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "Created the endpoint. The signing secret (`whsec_…`) is returned once.", body = Data<CreatedWebhook>),
        (status = 400, description = "Invalid url (not http(s), too long, credentials, or an internal destination), unknown event type, or too many endpoints.", body = ErrorBody),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 404, description = "Workspace with the given ID was not found.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn webhooks_create(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(workspace_id): Path<String>,
    extract::Json(body): extract::Json<CreateWebhook>,
) -> ApiResult<(StatusCode, Json<Data<CreatedWebhook>>)> {
    let w = state
        .services
        .webhooks()
        .create(
            &p.workspace_wide_write()?,
            &workspace_id,
            &body.url,
            body.events.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(Data::new(w))))
}

/// Deletes a webhook endpoint and its pending deliveries. pgfleet extension.
#[utoipa::path(
    delete, path = "/v1/workspaces/{workspaceId}/webhooks/{webhookId}", tag = "Webhooks",
    operation_id = "deleteV1WorkspacesByWorkspaceIdWebhooksByWebhookId",
    params(("workspaceId" = String, Path, description = "Workspace ID"), ("webhookId" = String, Path, description = "Webhook ID")),
    responses(
        (status = 204, description = "Deleted the endpoint."),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 404, description = "Workspace not found, or the endpoint does not exist in it.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn webhooks_delete(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((workspace_id, webhook_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .services
        .webhooks()
        .delete(&p.workspace_wide_write()?, &workspace_id, &webhook_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The newest deliveries to an endpoint (at most 100), with their attempts. pgfleet extension.
#[utoipa::path(
    get, path = "/v1/workspaces/{workspaceId}/webhooks/{webhookId}/deliveries", tag = "Webhooks",
    operation_id = "getV1WorkspacesByWorkspaceIdWebhooksByWebhookIdDeliveries",
    params(("workspaceId" = String, Path, description = "Workspace ID"), ("webhookId" = String, Path, description = "Webhook ID")),
    responses(
        (status = 200, description = "Deliveries, newest first.", body = List<WebhookDelivery>),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 404, description = "Workspace not found, or the endpoint does not exist in it.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn webhook_deliveries_list(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((workspace_id, webhook_id)): Path<(String, String)>,
) -> ApiResult<Json<List<WebhookDelivery>>> {
    Ok(Json(
        state
            .services
            .webhooks()
            .deliveries(&p.workspace_wide()?, &workspace_id, &webhook_id)
            .await?,
    ))
}
