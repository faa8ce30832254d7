//! `/v1/connections` and `/v1/databases/{databaseId}/connections`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use pgfleet_api_types::connection::{Connection, CreateConnection, CreatedConnection};
use pgfleet_api_types::{Data, ErrorBody, List};
use serde::Deserialize;

use super::PageQuery;
use crate::error::{ApiError, ApiResult};
use crate::extract::{self, Auth, Path, Query};
use crate::AppState;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionsQuery {
    /// Opaque cursor from a previous page's `pagination.nextCursor`.
    pub cursor: Option<String>,
    /// Page size, 1 to 100.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100, default = 100)]
    pub limit: Option<String>,
    pub database_id: Option<String>,
}

// The request schemas of the document; the handlers read `CreateConnection` (and answer 400
// when `POST /v1/connections` has no `databaseId`).

/// Body of `POST /v1/connections`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateConnectionBody {
    /// ID of the database to create the connection for.
    pub database_id: String,
    /// Display name of the connection.
    pub name: String,
}

/// Body of `POST /v1/databases/{databaseId}/connections`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDatabaseConnectionBody {
    /// Display name of the connection.
    pub name: String,
}

#[utoipa::path(
    get, path = "/v1/connections", tag = "Connections", operation_id = "getV1Connections",
    params(ConnectionsQuery),
    responses(
        (status = 200, description = "Returned list of connections.", body = List<Connection>),
        (status = 400, description = "Invalid cursor or limit.", body = ErrorBody),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn connections_list(
    State(state): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<ConnectionsQuery>,
) -> ApiResult<Json<List<Connection>>> {
    let page = pgfleet_domain::PageRequest::parse(q.cursor.as_deref(), q.limit.as_deref(), 100)?;
    Ok(Json(
        state.located(
            state
                .services
                .connections()
                .list(&p, q.database_id.as_deref(), page)
                .await?,
        ),
    ))
}

/// Creates a connection (a new login role) for the database given in the body.
#[utoipa::path(
    post, path = "/v1/connections", tag = "Connections", operation_id = "postV1Connections",
    request_body = CreateConnectionBody,
    responses(
        (status = 201, description = "Created a new connection.", body = Data<CreatedConnection>),
        (status = 400, description = "Invalid request parameters.", body = ErrorBody),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 404, description = "Database with the given ID was not found.", body = ErrorBody),
        (status = 409, description = "The database is not ready.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn connections_create(
    State(state): State<AppState>,
    Auth(p): Auth,
    extract::Json(body): extract::Json<CreateConnection>,
) -> ApiResult<(StatusCode, Json<Data<CreatedConnection>>)> {
    let Some(db) = body.database_id.as_deref() else {
        return Err(ApiError::bad_request("databaseId is required"));
    };
    let c = state
        .services
        .connections()
        .create(&p.for_write()?, db, &body.name)
        .await?;
    Ok((StatusCode::CREATED, Json(state.located(Data::new(c)))))
}

#[utoipa::path(
    get, path = "/v1/databases/{databaseId}/connections", tag = "Connections", operation_id = "getV1DatabasesByDatabaseIdConnections",
    params(("databaseId" = String, Path, description = "Database ID"), PageQuery),
    responses(
        (status = 200, description = "Returned the connections of the database.", body = List<Connection>),
        (status = 400, description = "Invalid cursor or limit.", body = ErrorBody),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 404, description = "Database with the given ID was not found.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn database_connections_list(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(database_id): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<List<Connection>>> {
    let page = q.page(100)?;
    Ok(Json(
        state.located(
            state
                .services
                .connections()
                .list(&p, Some(&database_id), page)
                .await?,
        ),
    ))
}

/// Creates a connection for a database.
#[utoipa::path(
    post, path = "/v1/databases/{databaseId}/connections", tag = "Connections", operation_id = "postV1DatabasesByDatabaseIdConnections",
    params(("databaseId" = String, Path, description = "Database ID")),
    request_body = CreateDatabaseConnectionBody,
    responses(
        (status = 200, description = "Created a new connection string for the database.", body = Data<CreatedConnection>),
        (status = 400, description = "Invalid request parameters.", body = ErrorBody),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 404, description = "Database with the given ID was not found.", body = ErrorBody),
        (status = 409, description = "The database is not ready.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn database_connections_create(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(database_id): Path<String>,
    extract::Json(body): extract::Json<CreateConnection>,
) -> ApiResult<Json<Data<CreatedConnection>>> {
    if body
        .database_id
        .as_deref()
        .is_some_and(|d| d != database_id)
    {
        return Err(ApiError::bad_request(
            "databaseId in the body differs from the path",
        ));
    }
    Ok(Json(
        state.located(Data::new(
            state
                .services
                .connections()
                .create(&p.for_write()?, &database_id, &body.name)
                .await?,
        )),
    ))
}

#[utoipa::path(
    get, path = "/v1/connections/{id}", tag = "Connections", operation_id = "getV1ConnectionsById",
    params(("id" = String, Path, description = "Connection ID")),
    responses(
        (status = 200, description = "Returned the connection.", body = Data<Connection>),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 404, description = "Connection with the given ID was not found.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn connections_get(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Data<Connection>>> {
    Ok(Json(state.located(Data::new(
        state.services.connections().get(&p, &id).await?,
    ))))
}

/// Deletes a connection: its role is dropped and its sessions end.
#[utoipa::path(
    delete, path = "/v1/connections/{id}", tag = "Connections", operation_id = "deleteV1ConnectionsById",
    params(("id" = String, Path, description = "Connection ID")),
    responses(
        (status = 204, description = "Deleted the connection."),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 404, description = "Connection with the given ID was not found.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn connections_delete(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .services
        .connections()
        .delete(&p.for_write()?, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// New credentials for a connection; the old password stops working at once.
#[utoipa::path(
    post, path = "/v1/connections/{id}/rotate", tag = "Connections", operation_id = "postV1ConnectionsByIdRotate",
    params(("id" = String, Path, description = "Connection ID")),
    responses(
        (status = 200, description = "Rotated connection credentials.", body = Data<CreatedConnection>),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 404, description = "Connection with the given ID was not found.", body = ErrorBody),
        (status = 409, description = "The database is not ready.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn connections_rotate(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Data<CreatedConnection>>> {
    Ok(Json(
        state.located(Data::new(
            state
                .services
                .connections()
                .rotate(&p.for_write()?, &id)
                .await?,
        )),
    ))
}
