//! Service tokens: stored by SHA-256 hash only, with their scope (one project or the whole
//! workspace; read-only or not). Queries checked at build time (`.sqlx/`, see
//! the crate doc).

use chrono::{DateTime, Utc};

use crate::{Result, ServiceTokenRow};

pub struct NewServiceToken<'a> {
    pub id: &'a str,
    pub workspace_id: &'a str,
    pub name: &'a str,
    pub token_hash: &'a [u8],
    pub value_hint: &'a str,
    pub created_by_user_id: Option<&'a str>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The one project the token reaches (`None`: the whole workspace).
    pub project_id: Option<&'a str>,
    /// Reads only.
    pub read_only: bool,
}

pub async fn insert<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    t: &NewServiceToken<'_>,
) -> Result<ServiceTokenRow> {
    Ok(sqlx::query_as!(
        ServiceTokenRow,
        "INSERT INTO service_tokens
           (id, workspace_id, name, token_hash, value_hint, created_by_user_id, created_at, expires_at,
            project_id, read_only)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         RETURNING seq, id, workspace_id, name, value_hint, created_by_user_id, created_at, expires_at,
                   project_id, read_only",
        t.id,
        t.workspace_id,
        t.name,
        t.token_hash,
        t.value_hint,
        t.created_by_user_id,
        t.created_at,
        t.expires_at,
        t.project_id,
        t.read_only,
    )
    .fetch_one(ex)
    .await?)
}

/// Looks a presented token up by its hash.
pub async fn find_by_hash<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    hash: &[u8],
) -> Result<Option<ServiceTokenRow>> {
    Ok(sqlx::query_as!(
        ServiceTokenRow,
        "SELECT seq, id, workspace_id, name, value_hint, created_by_user_id, created_at, expires_at,
                project_id, read_only
           FROM service_tokens WHERE token_hash = $1",
        hash,
    )
    .fetch_optional(ex)
    .await?)
}

/// Tokens of a workspace, newest first (as the contract says), before the `before` sequence
/// number.
pub async fn list<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    workspace_id: &str,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<ServiceTokenRow>> {
    Ok(sqlx::query_as!(
        ServiceTokenRow,
        "SELECT seq, id, workspace_id, name, value_hint, created_by_user_id, created_at, expires_at,
                project_id, read_only
           FROM service_tokens WHERE workspace_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
        workspace_id,
        before.unwrap_or(i64::MAX),
        limit,
    )
    .fetch_all(ex)
    .await?)
}

/// Deletes a token of a workspace; false when there was none.
pub async fn delete<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    workspace_id: &str,
    id: &str,
) -> Result<bool> {
    let r = sqlx::query!(
        "DELETE FROM service_tokens WHERE workspace_id = $1 AND id = $2",
        workspace_id,
        id
    )
    .execute(ex)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Records use, at most once a minute per token to keep writes off the hot path.
pub async fn touch<'e>(ex: impl sqlx::PgExecutor<'e>, id: &str, now: DateTime<Utc>) -> Result<()> {
    sqlx::query!(
        "UPDATE service_tokens SET last_used_at = $2
          WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2::timestamptz - interval '1 minute')",
        id,
        now,
    )
    .execute(ex)
    .await?;
    Ok(())
}
