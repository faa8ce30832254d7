//! The registry of Postgres servers (credentials stay in configuration).

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
    Ok(sqlx::query_as(
        "INSERT INTO pg_servers (id, region_id, config_key, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (config_key) DO UPDATE SET region_id = EXCLUDED.region_id
         RETURNING id, region_id, config_key, created_at",
    )
    .bind(new_id)
    .bind(region_id)
    .bind(config_key)
    .bind(now)
    .fetch_one(ex)
    .await?)
}
