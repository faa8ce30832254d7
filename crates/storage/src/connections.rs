//! Connections: one login role each. Rows in status `deleting` are invisible to the API.
//! Queries checked at build time (`.sqlx/`, see the crate doc).

use crate::{ConnectionRow, ConnectionState, Result};

pub async fn insert<'e>(ex: impl sqlx::PgExecutor<'e>, c: &ConnectionRow) -> Result<ConnectionRow> {
    Ok(sqlx::query_as!(
        ConnectionRow,
        r#"INSERT INTO connections AS c
                (id, database_id, name, kind, role_name, scram_verifier, status, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         RETURNING c.seq, c.id, c.database_id, c.name, c.kind, c.role_name, c.scram_verifier,
                c.status AS "status: ConnectionState", c.created_at, c.rotated_at"#,
        c.id,
        c.database_id,
        c.name,
        c.kind,
        c.role_name,
        c.scram_verifier,
        c.status as _,
        c.created_at
    )
    .fetch_one(ex)
    .await?)
}

/// A visible connection of a workspace.
pub async fn get_in_workspace<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    workspace_id: &str,
    id: &str,
) -> Result<Option<ConnectionRow>> {
    Ok(sqlx::query_as!(
        ConnectionRow,
        r#"SELECT c.seq, c.id, c.database_id, c.name, c.kind, c.role_name, c.scram_verifier,
                c.status AS "status: ConnectionState", c.created_at, c.rotated_at
           FROM connections c
           JOIN databases d ON d.id = c.database_id JOIN projects p ON p.id = d.project_id
          WHERE c.id = $1 AND p.workspace_id = $2
            AND c.status <> 'deleting' AND d.status <> 'deleting'"#,
        id,
        workspace_id
    )
    .fetch_optional(ex)
    .await?)
}

pub async fn get<'e>(ex: impl sqlx::PgExecutor<'e>, id: &str) -> Result<Option<ConnectionRow>> {
    Ok(sqlx::query_as!(
        ConnectionRow,
        r#"SELECT c.seq, c.id, c.database_id, c.name, c.kind, c.role_name, c.scram_verifier,
                c.status AS "status: ConnectionState", c.created_at, c.rotated_at
           FROM connections c WHERE c.id = $1"#,
        id
    )
    .fetch_optional(ex)
    .await?)
}

/// Visible connections of a workspace, optionally of one database and/or one project.
pub async fn list<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    workspace_id: &str,
    database_id: Option<&str>,
    project_id: Option<&str>,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<ConnectionRow>> {
    Ok(sqlx::query_as!(
        ConnectionRow,
        r#"SELECT c.seq, c.id, c.database_id, c.name, c.kind, c.role_name, c.scram_verifier,
                c.status AS "status: ConnectionState", c.created_at, c.rotated_at
           FROM connections c
           JOIN databases d ON d.id = c.database_id JOIN projects p ON p.id = d.project_id
          WHERE p.workspace_id = $1 AND c.status <> 'deleting' AND d.status <> 'deleting'
            AND c.seq > $2
            AND ($3::text IS NULL OR c.database_id = $3)
            AND ($5::text IS NULL OR d.project_id = $5)
          ORDER BY c.seq LIMIT $4"#,
        workspace_id,
        after.unwrap_or(0),
        database_id,
        limit,
        project_id
    )
    .fetch_all(ex)
    .await?)
}

/// Visible connections of several databases (to embed them in database views).
pub async fn of_databases<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    database_ids: &[String],
) -> Result<Vec<ConnectionRow>> {
    Ok(sqlx::query_as!(
        ConnectionRow,
        r#"SELECT c.seq, c.id, c.database_id, c.name, c.kind, c.role_name, c.scram_verifier,
                c.status AS "status: ConnectionState", c.created_at, c.rotated_at
           FROM connections c
          WHERE c.database_id = ANY($1) AND c.status <> 'deleting' ORDER BY c.seq"#,
        database_ids
    )
    .fetch_all(ex)
    .await?)
}

/// Every row of a database, whatever its status (for the reconciler).
pub async fn all_of_database<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    database_id: &str,
) -> Result<Vec<ConnectionRow>> {
    Ok(sqlx::query_as!(
        ConnectionRow,
        r#"SELECT c.seq, c.id, c.database_id, c.name, c.kind, c.role_name, c.scram_verifier,
                c.status AS "status: ConnectionState", c.created_at, c.rotated_at
           FROM connections c WHERE c.database_id = $1 ORDER BY c.seq"#,
        database_id
    )
    .fetch_all(ex)
    .await?)
}

pub async fn set_status<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    id: &str,
    status: ConnectionState,
) -> Result<()> {
    sqlx::query!(
        "UPDATE connections SET status = $2 WHERE id = $1",
        id,
        status as _
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// Marks every `creating` connection of a database active (its roles now exist).
pub async fn activate_all<'e>(ex: impl sqlx::PgExecutor<'e>, database_id: &str) -> Result<()> {
    sqlx::query!(
        "UPDATE connections SET status = 'active' WHERE database_id = $1 AND status = 'creating'",
        database_id
    )
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn set_verifier<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    id: &str,
    verifier: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    sqlx::query!(
        "UPDATE connections SET scram_verifier = $2, rotated_at = $3 WHERE id = $1",
        id,
        verifier,
        now
    )
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn delete<'e>(ex: impl sqlx::PgExecutor<'e>, id: &str) -> Result<()> {
    sqlx::query!("DELETE FROM connections WHERE id = $1", id)
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn delete_of_database<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    database_id: &str,
) -> Result<()> {
    sqlx::query!(
        "DELETE FROM connections WHERE database_id = $1",
        database_id
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// The connection whose login role is `role`, with its database (the pooler's lookup).
pub async fn by_role<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    role: &str,
) -> Result<Option<ConnectionRow>> {
    Ok(sqlx::query_as!(
        ConnectionRow,
        r#"SELECT c.seq, c.id, c.database_id, c.name, c.kind, c.role_name, c.scram_verifier,
                c.status AS "status: ConnectionState", c.created_at, c.rotated_at
           FROM connections c WHERE c.role_name = $1"#,
        role
    )
    .fetch_optional(ex)
    .await?)
}
