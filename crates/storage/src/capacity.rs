//! Connection slots: the `CONNECTION LIMIT`s of the databases placed on each server and owned
//! by each workspace, the capacity of each server (`pg_servers.connection_capacity`) and
//! whether it is drained (`pg_servers.drained_at`).
//!
//! A create checks that its new database fits, then writes it, in one transaction that first
//! locks the rows it counts against (the workspace, the region's servers). The locks are
//! `FOR NO KEY UPDATE`: they exclude each other, so concurrent creates in the same workspace or
//! on the same servers (from any replica sharing this store) are counted one after another, but
//! they do not conflict with the key-share locks that inserting a project or a database takes
//! on its workspace or server row. The sums are read by a statement of their own after the
//! lock is held: under READ COMMITTED each statement sees what committed before it started, so
//! a sum read together with the lock could miss the create that held the lock before us.
//!
//! Queries checked at build time (`.sqlx/`, see the crate doc).

use crate::Result;

/// A server's capacity and the connection slots its databases already hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSlots {
    pub server_id: String,
    /// `None` until a pgfleet process has read the server's settings.
    pub capacity: Option<i32>,
    /// Sum of the `connection_limit` of the databases placed on it (every status: a database
    /// being created or dropped still holds its slots).
    pub used: i64,
    /// Drained by an operator: takes no new databases (those on it keep their slots).
    pub drained: bool,
}

/// Locks a workspace against concurrent creates and transfers into it; false when there is no
/// such workspace.
pub async fn lock_workspace(tx: &mut sqlx::PgConnection, workspace_id: &str) -> Result<bool> {
    let row = sqlx::query_scalar!(
        "SELECT id FROM workspaces WHERE id = $1 FOR NO KEY UPDATE",
        workspace_id
    )
    .fetch_optional(tx)
    .await?;
    Ok(row.is_some())
}

/// Sum of the connection limits of a workspace's databases (every status).
pub async fn workspace_used<'e>(ex: impl sqlx::PgExecutor<'e>, workspace_id: &str) -> Result<i64> {
    Ok(sqlx::query_scalar!(
        r#"SELECT coalesce(sum(d.connection_limit), 0)::bigint AS "used!"
             FROM databases d JOIN projects p ON p.id = d.project_id
            WHERE p.workspace_id = $1"#,
        workspace_id,
    )
    .fetch_one(ex)
    .await?)
}

/// Sum of the connection limits of a project's databases (every status).
pub async fn project_used<'e>(ex: impl sqlx::PgExecutor<'e>, project_id: &str) -> Result<i64> {
    Ok(sqlx::query_scalar!(
        r#"SELECT coalesce(sum(connection_limit), 0)::bigint AS "used!"
             FROM databases WHERE project_id = $1"#,
        project_id,
    )
    .fetch_one(ex)
    .await?)
}

/// Locks the given servers (in id order, so two creates never wait on each other crosswise)
/// and returns their capacity and use, in id order. Unknown ids are left out.
pub async fn lock_servers(
    tx: &mut sqlx::PgConnection,
    server_ids: &[String],
) -> Result<Vec<ServerSlots>> {
    let ids = sqlx::query_scalar!(
        "SELECT id FROM pg_servers WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
        server_ids,
    )
    .fetch_all(&mut *tx)
    .await?;
    servers(&mut *tx, &ids).await
}

/// Capacity and use of the given servers, in id order (no lock: for reports and warnings).
pub async fn servers<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    server_ids: &[String],
) -> Result<Vec<ServerSlots>> {
    Ok(sqlx::query_as!(
        ServerSlots,
        r#"SELECT s.id AS server_id, s.connection_capacity AS capacity,
                  coalesce((SELECT sum(d.connection_limit) FROM databases d
                             WHERE d.server_id = s.id), 0)::bigint AS "used!",
                  s.drained_at IS NOT NULL AS "drained!"
             FROM pg_servers s WHERE s.id = ANY($1) ORDER BY s.id"#,
        server_ids,
    )
    .fetch_all(ex)
    .await?)
}

/// Records a server's capacity as read from its settings.
pub async fn set_server_capacity<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    server_id: &str,
    capacity: i32,
) -> Result<()> {
    sqlx::query!(
        "UPDATE pg_servers SET connection_capacity = $2 WHERE id = $1",
        server_id,
        capacity
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// Lowers every database's connection limit that is above `max` to `max` (the configured
/// `database_connection_limit` was lowered, or the databases predate it); returns how many
/// changed. The tenant guard then applies the new limits on the servers. Never raises a
/// limit: that would need room the capacity check has not granted.
pub async fn lower_connection_limits<'e>(ex: impl sqlx::PgExecutor<'e>, max: i32) -> Result<u64> {
    Ok(sqlx::query!(
        "UPDATE databases SET connection_limit = $1 WHERE connection_limit > $1",
        max
    )
    .execute(ex)
    .await?
    .rows_affected())
}
