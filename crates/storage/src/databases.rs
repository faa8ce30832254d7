//! Tenant databases. Rows in status `deleting` are on their way out and invisible to the API.
//! Queries checked at build time (`.sqlx/`, see the crate doc).

use chrono::{DateTime, Utc};

use crate::{DatabaseRow, DatabaseState, Result};

pub async fn insert<'e>(ex: impl sqlx::PgExecutor<'e>, d: &DatabaseRow) -> Result<DatabaseRow> {
    Ok(sqlx::query_as!(
        DatabaseRow,
        r#"INSERT INTO databases AS d (id, project_id, name, region_id, server_id, status,
                is_default, pg_database, owner_role, connection_limit, source, branch_id,
                logical_id, default_connection_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         RETURNING d.seq, d.id, d.project_id, d.name, d.region_id, d.server_id,
                d.status AS "status: DatabaseState", d.is_default, d.pg_database, d.owner_role,
                d.connection_limit, d.source, d.branch_id, d.logical_id, d.default_connection_id,
                d.created_at"#,
        d.id,
        d.project_id,
        d.name,
        d.region_id,
        d.server_id,
        d.status as _,
        d.is_default,
        d.pg_database,
        d.owner_role,
        d.connection_limit,
        d.source,
        d.branch_id,
        d.logical_id,
        d.default_connection_id,
        d.created_at,
    )
    .fetch_one(ex)
    .await?)
}

/// A visible database of a workspace.
pub async fn get_in_workspace<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    workspace_id: &str,
    id: &str,
) -> Result<Option<DatabaseRow>> {
    Ok(sqlx::query_as!(
        DatabaseRow,
        r#"SELECT d.seq, d.id, d.project_id, d.name, d.region_id, d.server_id,
                d.status AS "status: DatabaseState", d.is_default, d.pg_database, d.owner_role,
                d.connection_limit, d.source, d.branch_id, d.logical_id, d.default_connection_id,
                d.created_at FROM databases d JOIN projects p ON p.id = d.project_id
          WHERE d.id = $1 AND p.workspace_id = $2 AND d.status <> 'deleting'"#,
        id,
        workspace_id
    )
    .fetch_optional(ex)
    .await?)
}

/// Any database row, whatever its status (for the reconciler).
pub async fn get<'e>(ex: impl sqlx::PgExecutor<'e>, id: &str) -> Result<Option<DatabaseRow>> {
    Ok(sqlx::query_as!(
        DatabaseRow,
        r#"SELECT d.seq, d.id, d.project_id, d.name, d.region_id, d.server_id,
                d.status AS "status: DatabaseState", d.is_default, d.pg_database, d.owner_role,
                d.connection_limit, d.source, d.branch_id, d.logical_id, d.default_connection_id,
                d.created_at FROM databases d WHERE d.id = $1"#,
        id
    )
    .fetch_optional(ex)
    .await?)
}

/// Several rows by id, whatever their status (in any order).
pub async fn get_many<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    ids: &[String],
) -> Result<Vec<DatabaseRow>> {
    Ok(sqlx::query_as!(
        DatabaseRow,
        r#"SELECT d.seq, d.id, d.project_id, d.name, d.region_id, d.server_id,
                d.status AS "status: DatabaseState", d.is_default, d.pg_database, d.owner_role,
                d.connection_limit, d.source, d.branch_id, d.logical_id, d.default_connection_id,
                d.created_at FROM databases d WHERE d.id = ANY($1)"#,
        ids
    )
    .fetch_all(ex)
    .await?)
}

/// Visible databases of a workspace, optionally of one project, in creation order.
pub async fn list<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    workspace_id: &str,
    project_id: Option<&str>,
    logical_id: Option<&str>,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<DatabaseRow>> {
    Ok(sqlx::query_as!(
        DatabaseRow,
        r#"SELECT d.seq, d.id, d.project_id, d.name, d.region_id, d.server_id,
                d.status AS "status: DatabaseState", d.is_default, d.pg_database, d.owner_role,
                d.connection_limit, d.source, d.branch_id, d.logical_id, d.default_connection_id,
                d.created_at FROM databases d JOIN projects p ON p.id = d.project_id
          WHERE p.workspace_id = $1 AND d.status <> 'deleting' AND d.seq > $2
            AND ($3::text IS NULL OR d.project_id = $3) AND ($4::text IS NULL OR d.logical_id = $4)
          ORDER BY d.seq LIMIT $5"#,
        workspace_id,
        after.unwrap_or(0),
        project_id,
        logical_id,
        limit
    )
    .fetch_all(ex)
    .await?)
}

/// All rows of a project, whatever their status.
pub async fn all_of_project<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    project_id: &str,
) -> Result<Vec<DatabaseRow>> {
    Ok(sqlx::query_as!(
        DatabaseRow,
        r#"SELECT d.seq, d.id, d.project_id, d.name, d.region_id, d.server_id,
                d.status AS "status: DatabaseState", d.is_default, d.pg_database, d.owner_role,
                d.connection_limit, d.source, d.branch_id, d.logical_id, d.default_connection_id,
                d.created_at FROM databases d WHERE d.project_id = $1 ORDER BY d.seq"#,
        project_id
    )
    .fetch_all(ex)
    .await?)
}

/// Every `ready` database placed on a server, in creation order (for periodic checks).
pub async fn ready<'e>(ex: impl sqlx::PgExecutor<'e>) -> Result<Vec<DatabaseRow>> {
    Ok(sqlx::query_as!(
        DatabaseRow,
        r#"SELECT d.seq, d.id, d.project_id, d.name, d.region_id, d.server_id,
                d.status AS "status: DatabaseState", d.is_default, d.pg_database, d.owner_role,
                d.connection_limit, d.source, d.branch_id, d.logical_id, d.default_connection_id,
                d.created_at FROM databases d
          WHERE d.status = 'ready' AND d.server_id IS NOT NULL ORDER BY d.seq"#
    )
    .fetch_all(ex)
    .await?)
}

/// Every `ready` database, placed or not (for the backup schedule).
pub async fn all_ready<'e>(ex: impl sqlx::PgExecutor<'e>) -> Result<Vec<DatabaseRow>> {
    Ok(sqlx::query_as!(
        DatabaseRow,
        r#"SELECT d.seq, d.id, d.project_id, d.name, d.region_id, d.server_id,
                d.status AS "status: DatabaseState", d.is_default, d.pg_database, d.owner_role,
                d.connection_limit, d.source, d.branch_id, d.logical_id, d.default_connection_id,
                d.created_at FROM databases d WHERE d.status = 'ready'"#
    )
    .fetch_all(ex)
    .await?)
}

/// Moves a `ready` database to `recovering` from `source` (a restore in place); does nothing
/// when it is no longer `ready`.
pub async fn start_recovery<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    id: &str,
    source: &serde_json::Value,
) -> Result<()> {
    sqlx::query!(
"UPDATE databases SET status = 'recovering', source = $2 WHERE id = $1 AND status = 'ready'",
id,
source
)
    .execute(ex)
    .await?;
    Ok(())
}

/// Marks a database as being over its storage quota since `since`, or (`None`) no longer.
/// An existing mark keeps its time.
pub async fn set_over_quota<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    id: &str,
    since: Option<DateTime<Utc>>,
) -> Result<()> {
    sqlx::query!(
        "UPDATE databases SET over_quota_since = CASE WHEN $2::timestamptz IS NULL THEN NULL \
                ELSE coalesce(over_quota_since, $2) END WHERE id = $1",
        id,
        since
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// Since when a database is over its storage quota (`None`: it is not, or is unknown).
pub async fn over_quota_since<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    id: &str,
) -> Result<Option<DateTime<Utc>>> {
    Ok(
        sqlx::query_scalar!("SELECT over_quota_since FROM databases WHERE id = $1", id)
            .fetch_optional(ex)
            .await?
            .flatten(),
    )
}

pub async fn set_status<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    id: &str,
    status: DatabaseState,
) -> Result<()> {
    sqlx::query!(
        "UPDATE databases SET status = $2 WHERE id = $1",
        id,
        status as _
    )
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn rename<'e>(ex: impl sqlx::PgExecutor<'e>, id: &str, name: &str) -> Result<()> {
    sqlx::query!("UPDATE databases SET name = $2 WHERE id = $1", id, name)
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn set_logical_id<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    id: &str,
    logical_id: &str,
) -> Result<()> {
    sqlx::query!(
        "UPDATE databases SET logical_id = $2 WHERE id = $1",
        id,
        logical_id
    )
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn set_default_connection<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    id: &str,
    connection_id: Option<&str>,
) -> Result<()> {
    sqlx::query!(
        "UPDATE databases SET default_connection_id = $2 WHERE id = $1",
        id,
        connection_id
    )
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn delete<'e>(ex: impl sqlx::PgExecutor<'e>, id: &str) -> Result<()> {
    sqlx::query!("DELETE FROM databases WHERE id = $1", id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Databases per server, for placing a new one on the least loaded.
pub async fn count_by_server<'e>(ex: impl sqlx::PgExecutor<'e>) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query!(
        r#"SELECT server_id AS "server_id!", count(*) AS "count!" FROM databases
            WHERE server_id IS NOT NULL GROUP BY server_id"#
    )
    .fetch_all(ex)
    .await?
    .into_iter()
    .map(|r| (r.server_id, r.count))
    .collect())
}
