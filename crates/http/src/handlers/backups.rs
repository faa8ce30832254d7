//! `/v1/databases/{databaseId}/backups` and `/v1/databases/{targetDatabaseId}/restore`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use pgfleet_api_types::backup::{Backup, BackupList, RestoreRequest, RestoreSource};
use pgfleet_api_types::database::Database;
use pgfleet_api_types::{Data, ErrorBody};
use serde::Deserialize;

use crate::error::ApiResult;
use crate::extract::{self, Auth, Path, Query};
use crate::AppState;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BackupsQuery {
    /// 1 to 100 (default 25).
    pub limit: Option<String>,
}

/// Backups of a database, newest first.
#[utoipa::path(
    get, path = "/v1/databases/{databaseId}/backups", tag = "Backups", operation_id = "getV1DatabasesByDatabaseIdBackups",
    params(("databaseId" = String, Path, description = "Database ID"), BackupsQuery),
    responses(
        (status = 200, description = "Returns the backups of the database.", body = BackupList),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 404, description = "Database with the given ID was not found.", body = ErrorBody),
        (status = 422, description = "Invalid limit.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn backups_list(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(database_id): Path<String>,
    Query(q): Query<BackupsQuery>,
) -> ApiResult<Json<BackupList>> {
    Ok(Json(
        state
            .services
            .backups()
            .list(&p, &database_id, q.limit.as_deref())
            .await?,
    ))
}

/// Starts a backup now (a pgfleet extension of the contract): 202, status `running`.
#[utoipa::path(
    post, path = "/v1/databases/{databaseId}/backups", tag = "Backups", operation_id = "postV1DatabasesByDatabaseIdBackups",
    params(("databaseId" = String, Path, description = "Database ID")),
    responses(
        (status = 202, description = "Backup started.", body = Data<Backup>),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 404, description = "Database with the given ID was not found.", body = ErrorBody),
        (status = 409, description = "The database is not ready.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn backups_create(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(database_id): Path<String>,
) -> ApiResult<(StatusCode, Json<Data<Backup>>)> {
    let b = state
        .services
        .backups()
        .create(&p.for_write()?, &database_id)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(Data::new(b))))
}

/// Restores a backup into the database in place; `recovering` until done.
///
/// pgfleet extension: a `database` source with a `timestamp` restores it as that database (itself or another of
/// its project) was at that time (point-in-time recovery).
#[utoipa::path(
    post, path = "/v1/databases/{targetDatabaseId}/restore", tag = "Backups", operation_id = "postV1DatabasesByTargetDatabaseIdRestore",
    params(("targetDatabaseId" = String, Path, description = "Database to restore into")),
    request_body = RestoreRequest,
    responses(
        (status = 200, description = "Database restore initiated. The database status will be \"recovering\" until the restore completes.", body = Data<Database>),
        (status = 401, description = "Missing or invalid authorization token.", body = ErrorBody),
        (status = 404, description = "Target database, source database, or backup not found.", body = ErrorBody),
        (status = 409, description = "Target database is currently provisioning or recovering and cannot be restored.", body = ErrorBody),
        (status = 422, description = "Invalid source type or backup not usable; a `database` source without `timestamp`, on a server that is not archived, or with a `timestamp` outside the source's `restoreWindow` (the message names the window).", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn databases_restore(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(target): Path<String>,
    extract::Json(body): extract::Json<RestoreRequest>,
) -> ApiResult<Json<Data<Database>>> {
    let backups = state.services.backups();
    let restored = match body.source {
        RestoreSource::Backup {
            database_id,
            backup_id,
        } => {
            backups
                .restore(&p.for_write()?, &target, &database_id, &backup_id)
                .await?
        }
        RestoreSource::Database {
            database_id,
            timestamp,
        } => {
            backups
                .restore_as_of(&p.for_write()?, &target, &database_id, timestamp.as_deref())
                .await?
        }
    };
    Ok(Json(state.located(Data::new(restored))))
}
