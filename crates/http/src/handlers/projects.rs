//! `/v1/projects`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use pgfleet_api_types::project::{
    CreateProject, CreatedProject, Project, TransferProject, UpdateProject,
};
use pgfleet_api_types::{Data, ErrorBody, List};
use serde::Deserialize;

use crate::error::ApiResult;
use crate::extract::{self, Auth, OptionalJson, Path, Query};
use crate::AppState;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ProjectsQuery {
    /// Opaque cursor from a previous page's `pagination.nextCursor`.
    pub cursor: Option<String>,
    /// Page size, 1 to 100.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100, default = 100)]
    pub limit: Option<String>,
    pub logical_id: Option<String>,
}

#[utoipa::path(
    get, path = "/v1/projects", tag = "Projects", operation_id = "getV1Projects",
    params(ProjectsQuery),
    responses(
        (status = 200, description = "Returns the list of projects.", body = List<Project>),
        (status = 400, description = "Invalid cursor or limit.", body = ErrorBody),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn projects_list(
    State(state): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<ProjectsQuery>,
) -> ApiResult<Json<List<Project>>> {
    let page = pgfleet_domain::PageRequest::parse(q.cursor.as_deref(), q.limit.as_deref(), 100)?;
    Ok(Json(
        state.located(
            state
                .services
                .projects()
                .list(&p, q.logical_id.as_deref(), page)
                .await?,
        ),
    ))
}

/// Creates a project and, unless `createDatabase` is false, its default database.
#[utoipa::path(
    post, path = "/v1/projects", tag = "Projects", operation_id = "postV1Projects",
    request_body = CreateProject,
    responses(
        (status = 201, description = "New project created.", body = Data<CreatedProject>),
        (status = 400, description = "Invalid request parameters.", body = ErrorBody),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 409, description = "A project with the same `logicalId` already exists in the workspace.", body = ErrorBody),
        (status = 413, description = "Request body exceeds this endpoint's size cap.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn projects_create(
    State(state): State<AppState>,
    Auth(p): Auth,
    OptionalJson(body): OptionalJson<CreateProject>,
) -> ApiResult<(StatusCode, Json<Data<CreatedProject>>)> {
    Ok((
        StatusCode::CREATED,
        Json(
            state.located(Data::new(
                state
                    .services
                    .projects()
                    .create(&p.workspace_wide_write()?, body)
                    .await?,
            )),
        ),
    ))
}

#[utoipa::path(
    get, path = "/v1/projects/{id}", tag = "Projects", operation_id = "getV1ProjectsById",
    params(("id" = String, Path, description = "Project ID")),
    responses(
        (status = 200, description = "Project retrieved.", body = Data<Project>),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 404, description = "Project with the specified ID was not found.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn projects_get(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Data<Project>>> {
    Ok(Json(state.located(Data::new(
        state.services.projects().get(&p, &id).await?,
    ))))
}

#[utoipa::path(
    patch, path = "/v1/projects/{id}", tag = "Projects", operation_id = "patchV1ProjectsById",
    params(("id" = String, Path, description = "Project ID")),
    request_body = UpdateProject,
    responses(
        (status = 200, description = "Project updated.", body = Data<Project>),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 404, description = "Project with the specified ID was not found.", body = ErrorBody),
        (status = 413, description = "Request body exceeds this endpoint's size cap.", body = ErrorBody),
        (status = 422, description = "Validation failed.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn projects_update(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    extract::Json(body): extract::Json<UpdateProject>,
) -> ApiResult<Json<Data<Project>>> {
    Ok(Json(
        state.located(Data::new(
            state
                .services
                .projects()
                .update(&p.for_write()?, &id, body)
                .await?,
        )),
    ))
}

/// Deletes a project and its default database.
#[utoipa::path(
    delete, path = "/v1/projects/{id}", tag = "Projects", operation_id = "deleteV1ProjectsById",
    params(("id" = String, Path, description = "Project ID")),
    responses(
        (status = 204, description = "Project deleted."),
        (status = 400, description = "Project cannot be deleted due to existing dependencies.", body = ErrorBody),
        (status = 401, description = "Unauthorized", body = ErrorBody),
        (status = 404, description = "Project with the specified ID was not found", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn projects_delete(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .services
        .projects()
        .delete(&p.workspace_wide_write()?, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Moves a project to the workspace of `recipientAccessToken`.
#[utoipa::path(
    post, path = "/v1/projects/{id}/transfer", tag = "Projects", operation_id = "postV1ProjectsByIdTransfer",
    params(("id" = String, Path, description = "Project ID")),
    request_body = TransferProject,
    responses(
        (status = 204, description = "Project transferred"),
        (status = 400, description = "The recipient token is not valid.", body = ErrorBody),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 404, description = "Project with the given ID was not found.", body = ErrorBody),
        (status = 409, description = "The project cannot be transferred in its current state.", body = ErrorBody),
        (status = 413, description = "Request body exceeds this endpoint's size cap.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn projects_transfer(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    extract::Json(body): extract::Json<TransferProject>,
) -> ApiResult<StatusCode> {
    state
        .services
        .projects()
        .transfer(
            &p.workspace_wide_write()?,
            &id,
            &body.recipient_access_token,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
