//! Projects, and the row lock that serializes changes to one project's databases.
//! Queries checked at build time (`.sqlx/`, see the crate doc).

use chrono::{DateTime, Utc};

use crate::{ProjectRow, Result};

pub async fn insert<'e>(ex: impl sqlx::PgExecutor<'e>, p: &ProjectRow) -> Result<ProjectRow> {
    Ok(sqlx::query_as!(
        ProjectRow,
        "INSERT INTO projects (id, workspace_id, name, logical_id, default_region, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING seq, id, workspace_id, name, logical_id, default_region, created_at",
        p.id,
        p.workspace_id,
        p.name,
        p.logical_id,
        p.default_region,
        p.created_at,
    )
    .fetch_one(ex)
    .await?)
}

/// A project of a workspace (`None` for another workspace's project).
pub async fn get<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    workspace_id: &str,
    id: &str,
) -> Result<Option<ProjectRow>> {
    Ok(sqlx::query_as!(
        ProjectRow,
        "SELECT seq, id, workspace_id, name, logical_id, default_region, created_at
           FROM projects WHERE id = $1 AND workspace_id = $2",
        id,
        workspace_id,
    )
    .fetch_optional(ex)
    .await?)
}

pub async fn get_any<'e>(ex: impl sqlx::PgExecutor<'e>, id: &str) -> Result<Option<ProjectRow>> {
    Ok(sqlx::query_as!(
        ProjectRow,
        "SELECT seq, id, workspace_id, name, logical_id, default_region, created_at
           FROM projects WHERE id = $1",
        id,
    )
    .fetch_optional(ex)
    .await?)
}

pub async fn list<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    workspace_id: &str,
    logical_id: Option<&str>,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<ProjectRow>> {
    Ok(sqlx::query_as!(
        ProjectRow,
        "SELECT seq, id, workspace_id, name, logical_id, default_region, created_at
           FROM projects
          WHERE workspace_id = $1 AND seq > $2 AND ($3::text IS NULL OR logical_id = $3)
          ORDER BY seq LIMIT $4",
        workspace_id,
        after.unwrap_or(0),
        logical_id,
        limit,
    )
    .fetch_all(ex)
    .await?)
}

pub async fn rename<'e>(ex: impl sqlx::PgExecutor<'e>, id: &str, name: &str) -> Result<()> {
    sqlx::query!("UPDATE projects SET name = $2 WHERE id = $1", id, name)
        .execute(ex)
        .await?;
    Ok(())
}

/// Moves a project to another workspace. The service tokens scoped to it (of the workspace
/// it leaves) are deleted in the same statement: they must not follow it into a workspace
/// that did not issue them, nor keep reaching it from the old one. Returns their ids (for
/// the authentication cache).
pub async fn set_workspace<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    id: &str,
    workspace_id: &str,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar!(
        "WITH moved AS (UPDATE projects SET workspace_id = $2 WHERE id = $1)
         DELETE FROM service_tokens WHERE project_id = $1 AND workspace_id <> $2 RETURNING id",
        id,
        workspace_id
    )
    .fetch_all(ex)
    .await?)
}

/// Locks a project's row until the end of the caller's transaction, so a concurrent
/// database create (or delete, or transfer) of the same project waits for it.
pub async fn lock(tx: &mut sqlx::PgConnection, id: &str) -> Result<()> {
    sqlx::query_scalar!(
        "SELECT 1 AS locked FROM projects WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(tx)
    .await?;
    Ok(())
}

pub async fn delete<'e>(ex: impl sqlx::PgExecutor<'e>, id: &str) -> Result<()> {
    sqlx::query!("DELETE FROM projects WHERE id = $1", id)
        .execute(ex)
        .await?;
    Ok(())
}

/// The row to insert for a new project.
pub fn new_row(
    id: String,
    workspace_id: String,
    name: String,
    logical_id: Option<String>,
    default_region: Option<String>,
    now: DateTime<Utc>,
) -> ProjectRow {
    ProjectRow {
        seq: 0,
        id,
        workspace_id,
        name,
        logical_id,
        default_region,
        created_at: now,
    }
}

/// Several projects by id (in any order).
pub async fn get_many<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    ids: &[String],
) -> Result<Vec<ProjectRow>> {
    Ok(sqlx::query_as!(
        ProjectRow,
        "SELECT seq, id, workspace_id, name, logical_id, default_region, created_at
           FROM projects WHERE id = ANY($1)",
        ids,
    )
    .fetch_all(ex)
    .await?)
}
