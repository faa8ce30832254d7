//! API keys of the `prisma+postgres://` endpoint: one per connection, stored by SHA-256 hash
//! only (the caller hashes), looked up by that hash on every request, with the role's
//! password sealed under the key (the caller seals and opens; see migration 0015). Queries
//! checked at build time (`.sqlx/`, see the crate doc).

use chrono::{DateTime, Utc};

use crate::{ConnectionState, DatabaseState, Result};

/// What a key resolves to: the connection's login role on its database and server, with the
/// states that decide whether it may be served.
#[derive(Debug, Clone)]
pub struct AccelerateKeyTarget {
    pub connection_id: String,
    pub connection_status: ConnectionState,
    pub role_name: String,
    pub database_id: String,
    pub database_status: DatabaseState,
    pub pg_database: String,
    pub connection_limit: i32,
    pub server_id: Option<String>,
    /// The role's password sealed under the key, and the salt of its derived key (`None`
    /// for keys issued before they were sealed).
    pub seal_salt: Option<Vec<u8>>,
    pub sealed_password: Option<Vec<u8>>,
}

/// The row written for a key.
#[derive(Debug, Clone, Copy)]
pub struct NewAccelerateKey<'a> {
    pub connection_id: &'a str,
    pub key_hash: &'a [u8],
    pub seal_salt: &'a [u8],
    pub sealed_password: &'a [u8],
    pub now: DateTime<Utc>,
}

/// Sets the connection's key (replacing an older one: the old hash is gone with this write).
pub async fn put<'e>(ex: impl sqlx::PgExecutor<'e>, key: &NewAccelerateKey<'_>) -> Result<()> {
    sqlx::query!(
        "INSERT INTO accelerate_keys (connection_id, key_hash, created_at, seal_salt, sealed_password)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (connection_id) DO UPDATE
            SET key_hash = $2, created_at = $3, seal_salt = $4, sealed_password = $5",
        key.connection_id,
        key.key_hash,
        key.now,
        key.seal_salt,
        key.sealed_password
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// Removes the connection's key (deletion).
pub async fn delete<'e>(ex: impl sqlx::PgExecutor<'e>, connection_id: &str) -> Result<()> {
    sqlx::query!(
        "DELETE FROM accelerate_keys WHERE connection_id = $1",
        connection_id
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// The connection a presented key's hash belongs to, if any.
pub async fn lookup<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    key_hash: &[u8],
) -> Result<Option<AccelerateKeyTarget>> {
    Ok(sqlx::query_as!(
        AccelerateKeyTarget,
        r#"SELECT c.id AS connection_id, c.status AS "connection_status: ConnectionState",
                c.role_name, d.id AS database_id, d.status AS "database_status: DatabaseState",
                d.pg_database, d.connection_limit, d.server_id, k.seal_salt, k.sealed_password
           FROM accelerate_keys k
           JOIN connections c ON c.id = k.connection_id
           JOIN databases d ON d.id = c.database_id
          WHERE k.key_hash = $1"#,
        key_hash
    )
    .fetch_optional(ex)
    .await?)
}
