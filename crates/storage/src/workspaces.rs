//! Workspaces and who belongs to them. Queries checked at build time (`.sqlx/`).

use chrono::{DateTime, Utc};

use crate::{Result, WorkspaceRow};

pub async fn insert<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    id: &str,
    name: &str,
    now: DateTime<Utc>,
) -> Result<WorkspaceRow> {
    Ok(sqlx::query_as!(
        WorkspaceRow,
        "INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3)
         RETURNING seq, id, name, created_at",
        id,
        name,
        now
    )
    .fetch_one(ex)
    .await?)
}

pub async fn add_member<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    workspace_id: &str,
    user_id: &str,
    role: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = EXCLUDED.role",
        workspace_id,
        user_id,
        role,
        now
    )
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn get<'e>(ex: impl sqlx::PgExecutor<'e>, id: &str) -> Result<Option<WorkspaceRow>> {
    Ok(sqlx::query_as!(
        WorkspaceRow,
        "SELECT seq, id, name, created_at FROM workspaces WHERE id = $1",
        id
    )
    .fetch_optional(ex)
    .await?)
}

/// The id of the oldest workspace (the bootstrap one), if any: where `pgfleet admin apps
/// create` puts an app when no workspace is named.
pub async fn first_id<'e>(ex: impl sqlx::PgExecutor<'e>) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar!("SELECT id FROM workspaces ORDER BY seq LIMIT 1")
            .fetch_optional(ex)
            .await?,
    )
}

/// Workspaces a user is a member of, in creation order, after the `after` sequence number.
pub async fn list_for_user<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    user_id: &str,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<WorkspaceRow>> {
    Ok(sqlx::query_as!(
        WorkspaceRow,
        "SELECT w.seq, w.id, w.name, w.created_at
           FROM workspaces w JOIN memberships m ON m.workspace_id = w.id
          WHERE m.user_id = $1 AND w.seq > $2
          ORDER BY w.seq LIMIT $3",
        user_id,
        after.unwrap_or(0),
        limit
    )
    .fetch_all(ex)
    .await?)
}

pub async fn is_member<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    workspace_id: &str,
    user_id: &str,
) -> Result<bool> {
    let r = sqlx::query_scalar!(
        "SELECT 1 AS one FROM memberships WHERE workspace_id = $1 AND user_id = $2",
        workspace_id,
        user_id
    )
    .fetch_optional(ex)
    .await?;
    Ok(r.is_some())
}

/// A member of a workspace: the membership and its user.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    /// The user's `seq` (members are listed in user order).
    pub seq: i64,
    pub user_id: String,
    pub email: String,
    pub name: Option<String>,
    pub role: String,
    pub created_at: DateTime<Utc>,
    /// Whether the user administers the whole server.
    pub is_admin: bool,
}

/// Members of a workspace in user order, after the `after` user sequence number.
pub async fn list_members<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    workspace_id: &str,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<MemberRow>> {
    Ok(sqlx::query_as!(
        MemberRow,
        "SELECT u.seq, u.id AS user_id, u.email, u.name, m.role, m.created_at, u.is_admin
           FROM memberships m JOIN users u ON u.id = m.user_id
          WHERE m.workspace_id = $1 AND u.seq > $2
          ORDER BY u.seq LIMIT $3",
        workspace_id,
        after.unwrap_or(0),
        limit
    )
    .fetch_all(ex)
    .await?)
}

/// The role of a user in a workspace (`None` when not a member).
pub async fn member_role<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    workspace_id: &str,
    user_id: &str,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar!(
        "SELECT role FROM memberships WHERE workspace_id = $1 AND user_id = $2",
        workspace_id,
        user_id
    )
    .fetch_optional(ex)
    .await?)
}

/// Removes a membership; false when there was none.
pub async fn remove_member<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    workspace_id: &str,
    user_id: &str,
) -> Result<bool> {
    let r = sqlx::query!(
        "DELETE FROM memberships WHERE workspace_id = $1 AND user_id = $2",
        workspace_id,
        user_id
    )
    .execute(ex)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// How many admins a workspace has, locking its memberships against a concurrent change.
pub async fn count_admins_for_update(
    tx: &mut sqlx::PgConnection,
    workspace_id: &str,
) -> Result<i64> {
    let rows = sqlx::query_scalar!(
        "SELECT user_id FROM memberships WHERE workspace_id = $1 AND role = 'admin' FOR UPDATE",
        workspace_id
    )
    .fetch_all(tx)
    .await?;
    Ok(rows.len() as i64)
}
