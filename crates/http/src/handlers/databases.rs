//! `/v1/databases` and `/v1/projects/{projectId}/databases`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use pgfleet_api_types::database::{
    CreateDatabase, CreatedDatabase, Database, DatabaseSource, FromDatabase, UpdateDatabase,
};
use pgfleet_api_types::{Data, ErrorBody, List};
use serde::Deserialize;

use super::PageQuery;
use crate::error::{ApiError, ApiResult};
use crate::extract::{self, Auth, OptionalJson, Path, Query};
use crate::AppState;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct DatabasesQuery {
    /// Opaque cursor from a previous page's `pagination.nextCursor`.
    pub cursor: Option<String>,
    /// Page size, 1 to 100.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100, default = 100)]
    pub limit: Option<String>,
    pub project_id: Option<String>,
    pub logical_id: Option<String>,
    pub branch_id: Option<String>,
    pub branch_git_name: Option<String>,
}

// The request schemas of the document; the handlers read `CreateDatabase`.

/// Body of `POST /v1/databases`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateDatabaseBody {
    /// ID of the project to create the database in.
    pub project_id: String,
    /// A region id, or `inherit` for the project's default region.
    #[schema(nullable = false, default = "us-east-1")]
    pub region: Option<String>,
    /// Display name for the database.
    #[schema(nullable = false)]
    pub name: Option<String>,
    /// Whether this is the default database.
    #[schema(nullable = false, default = false)]
    pub is_default: Option<bool>,
    /// Source to create the database from. Omit to create an empty database.
    #[schema(nullable = false)]
    pub source: Option<DatabaseSource>,
    /// ID of the branch to attach the database to; only `unassigned` exists here.
    pub branch_id: Option<String>,
    /// Git name of the branch to attach the database to.
    pub branch_git_name: Option<String>,
    /// Declared identity of the resource, unique within its branch.
    #[schema(nullable = false)]
    pub logical_id: Option<String>,
}

/// Body of `POST /v1/projects/{projectId}/databases`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateProjectDatabaseBody {
    /// A region id, or `inherit` for the project's default region.
    #[schema(nullable = false, default = "us-east-1")]
    pub region: Option<String>,
    /// Display name for the database.
    #[schema(nullable = false)]
    pub name: Option<String>,
    /// Whether this is the default database.
    #[schema(nullable = false, default = false)]
    pub is_default: Option<bool>,
    /// Deprecated: use `source` instead.
    #[schema(nullable = false, deprecated)]
    pub from_database: Option<FromDatabase>,
    /// Source to create the database from. Omit to create an empty database.
    #[schema(nullable = false)]
    pub source: Option<DatabaseSource>,
}

#[utoipa::path(
    get, path = "/v1/databases", tag = "Databases", operation_id = "getV1Databases",
    params(DatabasesQuery),
    responses(
        (status = 200, description = "Returns the list of databases.", body = List<Database>),
        (status = 400, description = "Invalid cursor or limit.", body = ErrorBody),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn databases_list(
    State(state): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<DatabasesQuery>,
) -> ApiResult<Json<List<Database>>> {
    let page = pgfleet_domain::PageRequest::parse(q.cursor.as_deref(), q.limit.as_deref(), 100)?;
    if q.branch_id.is_some() || q.branch_git_name.is_some() {
        // Branches do not exist here: only "unassigned" matches, and it matches everything.
        if q.branch_id.as_deref() != Some("unassigned") || q.branch_git_name.is_some() {
            return Ok(Json(List {
                data: vec![],
                pagination: pgfleet_api_types::Pagination {
                    next_cursor: None,
                    has_more: false,
                },
            }));
        }
    }
    if let Some(project) = q.project_id.as_deref() {
        return Ok(Json(
            state.located(
                state
                    .services
                    .databases()
                    .list_in_project(&p, project, page)
                    .await
                    .or_else(|e| match e {
                        pgfleet_domain::DomainError::NotFound { .. } => Ok(List {
                            data: vec![],
                            pagination: pgfleet_api_types::Pagination {
                                next_cursor: None,
                                has_more: false,
                            },
                        }),
                        e => Err(ApiError::from(e)),
                    })?,
            ),
        ));
    }
    Ok(Json(
        state.located(
            state
                .services
                .databases()
                .list(&p, None, q.logical_id.as_deref(), page)
                .await?,
        ),
    ))
}

/// Creates a database in the project given in the body.
#[utoipa::path(
    post, path = "/v1/databases", tag = "Databases", operation_id = "postV1Databases",
    request_body = CreateDatabaseBody,
    responses(
        (status = 201, description = "Created a new database.", body = Data<Database>),
        (status = 400, description = "Invalid request parameters.", body = ErrorBody),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 404, description = "Project not found.", body = ErrorBody),
        (status = 409, description = "A database with the same `logicalId` already exists.", body = ErrorBody),
        (status = 413, description = "Request body exceeds this endpoint's size cap.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn databases_create(
    State(state): State<AppState>,
    Auth(p): Auth,
    extract::Json(body): extract::Json<CreateDatabase>,
) -> ApiResult<(StatusCode, Json<Data<Database>>)> {
    let Some(project_id) = body.project_id.clone() else {
        return Err(ApiError::bad_request("projectId is required")
            .with_hint("Pass the id of the project to create the database in."));
    };
    if body.from_database.is_some() {
        return Err(ApiError::bad_request(
            "fromDatabase is not accepted here; use source",
        ));
    }
    let created = state
        .services
        .databases()
        .create(&p.for_write()?, &project_id, body)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(state.located(Data::new(created.database))),
    ))
}

#[utoipa::path(
    get, path = "/v1/projects/{projectId}/databases", tag = "Databases", operation_id = "getV1ProjectsByProjectIdDatabases",
    params(("projectId" = String, Path, description = "Project ID"), PageQuery),
    responses(
        (status = 200, description = "Returns the list of databases of the project.", body = List<Database>),
        (status = 400, description = "Invalid cursor or limit.", body = ErrorBody),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 404, description = "Project with the given ID was not found.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn project_databases_list(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(project_id): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<List<Database>>> {
    let page = q.page(100)?;
    Ok(Json(
        state.located(
            state
                .services
                .databases()
                .list_in_project(&p, &project_id, page)
                .await?,
        ),
    ))
}

/// Creates a database in a project.
#[utoipa::path(
    post, path = "/v1/projects/{projectId}/databases", tag = "Databases", operation_id = "postV1ProjectsByProjectIdDatabases",
    params(("projectId" = String, Path, description = "Project ID")),
    request_body = CreateProjectDatabaseBody,
    responses(
        (status = 201, description = "Created a new database for the project.", body = Data<CreatedDatabase>),
        (status = 400, description = "The request is invalid due to missing or invalid parameters.", body = ErrorBody),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 404, description = "Project with the given ID was not found.", body = ErrorBody),
        (status = 413, description = "Request body exceeds this endpoint's size cap.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn project_databases_create(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(project_id): Path<String>,
    OptionalJson(body): OptionalJson<CreateDatabase>,
) -> ApiResult<(StatusCode, Json<Data<CreatedDatabase>>)> {
    if body.project_id.is_some() {
        return Err(ApiError::bad_request(
            "projectId belongs in the path here, not in the body",
        ));
    }
    let db = state
        .services
        .databases()
        .create(&p.for_write()?, &project_id, body)
        .await?;
    Ok((StatusCode::CREATED, Json(state.located(Data::new(db)))))
}

#[utoipa::path(
    get, path = "/v1/databases/{databaseId}", tag = "Databases", operation_id = "getV1DatabasesByDatabaseId",
    params(("databaseId" = String, Path, description = "Database ID")),
    responses(
        (status = 200, description = "Returns the database.", body = Data<Database>),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 404, description = "Database with the given ID was not found.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn databases_get(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Data<Database>>> {
    Ok(Json(state.located(Data::new(
        state.services.databases().get(&p, &id).await?,
    ))))
}

#[utoipa::path(
    patch, path = "/v1/databases/{databaseId}", tag = "Databases", operation_id = "patchV1DatabasesByDatabaseId",
    params(("databaseId" = String, Path, description = "Database ID")),
    request_body = UpdateDatabase,
    responses(
        (status = 200, description = "Updated the database.", body = Data<Database>),
        (status = 400, description = "Invalid request parameters.", body = ErrorBody),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 404, description = "Database with the given ID was not found.", body = ErrorBody),
        (status = 409, description = "A database with the same `logicalId` already exists.", body = ErrorBody),
        (status = 413, description = "Request body exceeds this endpoint's size cap.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn databases_update(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    extract::Json(body): extract::Json<UpdateDatabase>,
) -> ApiResult<Json<Data<Database>>> {
    Ok(Json(
        state.located(Data::new(
            state
                .services
                .databases()
                .update(&p.for_write()?, &id, body)
                .await?,
        )),
    ))
}

/// Deletes a database (not a project's default one) with its roles.
#[utoipa::path(
    delete, path = "/v1/databases/{databaseId}", tag = "Databases", operation_id = "deleteV1DatabasesByDatabaseId",
    params(("databaseId" = String, Path, description = "Database ID")),
    responses(
        (status = 204, description = "Deleted the database successfully."),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 403, description = "Cannot delete the default environment.", body = ErrorBody),
        (status = 404, description = "Database with the given ID was not found.", body = ErrorBody),
        (status = 409, description = "The database is provisioning or recovering.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn databases_delete(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .services
        .databases()
        .delete(&p.for_write()?, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
