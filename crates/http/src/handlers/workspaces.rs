//! `/v1/workspaces`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use pgfleet_api_types::workspace::CreateWorkspace;
use pgfleet_api_types::{Data, ErrorBody, List, Workspace};

use super::PageQuery;
use crate::error::ApiResult;
use crate::extract::{Auth, OptionalJson, Path, Query};
use crate::AppState;

/// Workspaces the current credential can access.
#[utoipa::path(
    get, path = "/v1/workspaces", tag = "Workspaces", operation_id = "getV1Workspaces",
    params(PageQuery),
    responses(
        (status = 200, description = "Returns the list of workspaces the current token can access.", body = List<Workspace>),
        (status = 400, description = "Invalid cursor or limit.", body = ErrorBody),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn workspaces_list(
    State(state): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<List<Workspace>>> {
    let page = q.page(100)?;
    Ok(Json(state.located(
        state.services.workspaces().list(&p, page).await?,
    )))
}

/// One workspace.
#[utoipa::path(
    get, path = "/v1/workspaces/{id}", tag = "Workspaces", operation_id = "getV1WorkspacesById",
    params(("id" = String, Path, description = "Workspace ID")),
    responses(
        (status = 200, description = "Workspace retrieved.", body = Data<Workspace>),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 404, description = "Workspace with the specified ID was not found.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn workspaces_get(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Data<Workspace>>> {
    Ok(Json(state.located(Data::new(
        state.services.workspaces().get(&p, &id).await?,
    ))))
}

/// Creates a workspace owned by the signed-in user.
#[utoipa::path(
    post, path = "/v1/workspaces", tag = "Workspaces", operation_id = "postV1Workspaces",
    request_body = CreateWorkspace,
    responses(
        (status = 201, description = "The created workspace.", body = Data<Workspace>),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 403, description = "Service tokens cannot create workspaces; a user-attributable actor is required.", body = ErrorBody),
        (status = 413, description = "Request body exceeds this endpoint's size cap.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn workspaces_create(
    State(state): State<AppState>,
    Auth(p): Auth,
    OptionalJson(body): OptionalJson<CreateWorkspace>,
) -> ApiResult<(StatusCode, Json<Data<Workspace>>)> {
    let ws = state
        .services
        .workspaces()
        .create(&p.workspace_wide_write()?, body.display_name.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(state.located(Data::new(ws)))))
}
