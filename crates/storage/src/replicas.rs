//! The replica registry (`replicas`): which `pgfleet serve` processes share this metadata
//! store, with their version, API address and when each was last seen. Whether a row is
//! alive is decided by the caller from `last_seen_at` (`pgfleet_domain::services::replicas`).
//! Queries checked at build time (`.sqlx/`, see the crate doc).

use chrono::{DateTime, Utc};

use crate::Result;

/// One replica as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaRow {
    pub id: String,
    pub version: String,
    pub address: String,
    pub started_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// Set by a clean stop.
    pub stopped_at: Option<DateTime<Utc>>,
}

/// Registers (or re-registers) the replica `id`, seen now.
pub async fn register<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    id: &str,
    version: &str,
    address: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO replicas (id, version, address, started_at, last_seen_at)
         VALUES ($1, $2, $3, $4, $4)
         ON CONFLICT (id) DO UPDATE SET version = $2, address = $3, last_seen_at = $4,
             stopped_at = NULL",
        id,
        version,
        address,
        now,
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// Records that `id` is still running.
pub async fn heartbeat<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    id: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query!(
        "UPDATE replicas SET last_seen_at = $2 WHERE id = $1 AND stopped_at IS NULL",
        id,
        now
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// Marks `id` stopped (a clean stop): it is gone at once for everyone.
pub async fn mark_stopped<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    id: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query!("UPDATE replicas SET stopped_at = $2 WHERE id = $1", id, now)
        .execute(ex)
        .await?;
    Ok(())
}

/// Every registered replica, most recently started first. Rows of replicas stopped or unseen
/// since before `forget_before` are deleted first, so the table stays small.
pub async fn list(pool: &sqlx::PgPool, forget_before: DateTime<Utc>) -> Result<Vec<ReplicaRow>> {
    sqlx::query!(
        "DELETE FROM replicas WHERE last_seen_at < $1",
        forget_before
    )
    .execute(pool)
    .await?;
    Ok(sqlx::query_as!(
        ReplicaRow,
        "SELECT id, version, address, started_at, last_seen_at, stopped_at FROM replicas
         ORDER BY started_at DESC, id",
    )
    .fetch_all(pool)
    .await?)
}

/// Namespace of the registry's advisory lock (first key of `pg_advisory_xact_lock(int, int)`).
const REGISTRY_LOCK_SPACE: i32 = 0x7066_7267; // "pfrg"

/// Takes the registry's lock until the end of the caller's transaction. A replica that must
/// be the only one alive looks at the registry and registers under it, and every other
/// registration takes it too: of two replicas starting at the same moment, the second sees
/// the first's row.
pub async fn lock_registry(tx: &mut sqlx::PgConnection) -> Result<()> {
    sqlx::query!(
        "SELECT pg_advisory_xact_lock($1, hashtext('replicas'))",
        REGISTRY_LOCK_SPACE
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Every registered replica, most recently started first (no pruning: for use inside a
/// transaction that holds [`lock_registry`]).
pub async fn all<'e>(ex: impl sqlx::PgExecutor<'e>) -> Result<Vec<ReplicaRow>> {
    Ok(sqlx::query_as!(
        ReplicaRow,
        "SELECT id, version, address, started_at, last_seen_at, stopped_at FROM replicas
         ORDER BY started_at DESC, id",
    )
    .fetch_all(ex)
    .await?)
}
