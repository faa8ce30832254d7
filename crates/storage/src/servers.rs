//! The registry of Postgres servers (credentials stay in configuration), and what an
//! operator sees and sets on them: whether a server is drained (takes no new databases), and
//! the databases, connection slots and disk placed on it. Queries checked at build time
//! (`.sqlx/`, see the crate doc).

use chrono::{DateTime, Utc};

use crate::{Result, ServerRow};

/// Registers a server by its config key (or returns the existing row).
pub async fn upsert<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    new_id: &str,
    region_id: &str,
    config_key: &str,
    now: DateTime<Utc>,
) -> Result<ServerRow> {
    Ok(sqlx::query_as!(
        ServerRow,
        "INSERT INTO pg_servers (id, region_id, config_key, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (config_key) DO UPDATE SET region_id = EXCLUDED.region_id
         RETURNING id, region_id, config_key, created_at",
        new_id,
        region_id,
        config_key,
        now,
    )
    .fetch_one(ex)
    .await?)
}

/// One server as the operator sees it (`pgfleet admin servers list`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerReport {
    pub id: String,
    pub region_id: String,
    /// How the configuration names it: `embedded`, or its URL without the password.
    pub config_key: String,
    /// When it was drained; `None` while it takes new databases.
    pub drained_at: Option<DateTime<Utc>>,
    /// `None` until a pgfleet process has read the server's settings.
    pub connection_capacity: Option<i32>,
    /// Databases placed on it (every status).
    pub databases: i64,
    /// Sum of their connection limits.
    pub slots_assigned: i64,
    /// Sum of each database's latest usage sample's storage bytes (databases never sampled
    /// count 0): what the sampler last saw, not a live figure.
    pub storage_bytes: i64,
}

/// Every registered server, by region then id; with `id`, only that one.
pub async fn report<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    id: Option<&str>,
) -> Result<Vec<ServerReport>> {
    // The latest sample of each database is one backward step on the primary key
    // (database_id, sampled_at): cheap however long the history.
    Ok(sqlx::query_as!(
        ServerReport,
        r#"SELECT s.id, s.region_id, s.config_key, s.drained_at, s.connection_capacity,
                count(d.id)::bigint AS "databases!",
                coalesce(sum(d.connection_limit), 0)::bigint AS "slots_assigned!",
                coalesce(sum((SELECT u.storage_bytes FROM usage_samples u
                               WHERE u.database_id = d.id
                               ORDER BY u.sampled_at DESC LIMIT 1)), 0)::bigint
                  AS "storage_bytes!"
           FROM pg_servers s LEFT JOIN databases d ON d.server_id = s.id
          WHERE $1::text IS NULL OR s.id = $1
          GROUP BY s.id
          ORDER BY s.region_id, s.id"#,
        id,
    )
    .fetch_all(ex)
    .await?)
}

/// Drains a server (`Some(now)`: it takes no new databases from now on; draining a drained
/// server keeps the first time) or undrains it (`None`). False when there is no such server.
pub async fn set_drained<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    id: &str,
    at: Option<DateTime<Utc>>,
) -> Result<bool> {
    Ok(sqlx::query!(
        "UPDATE pg_servers
            SET drained_at = CASE WHEN $2::timestamptz IS NULL THEN NULL
                                  ELSE coalesce(drained_at, $2) END
          WHERE id = $1",
        id,
        at,
    )
    .execute(ex)
    .await?
    .rows_affected()
        == 1)
}
