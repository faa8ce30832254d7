//! The restorable window of each archived Postgres server (`pitr_windows`, issue 19): what
//! the periodic PITR job last learnt from the server's archive and archiver, so every replica
//! answers `restoreWindow`, `/readyz` and `/metrics` from the metadata store alone. Also the
//! open operations whose scratch instances must survive a clean-up. Queries checked at build
//! time (`.sqlx/`, see the crate doc).

use chrono::{DateTime, Utc};

use crate::Result;

/// One server's window and archiving health as the PITR job last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PitrWindowRow {
    pub server_id: String,
    /// End of the oldest base backup; `None` before the first one completed.
    pub earliest: Option<DateTime<Utc>>,
    pub last_archived_at: Option<DateTime<Utc>>,
    pub last_failed_at: Option<DateTime<Utc>>,
    pub failed_count: i64,
    pub wal_bytes: i64,
    pub last_full_at: Option<DateTime<Utc>>,
    pub last_incr_at: Option<DateTime<Utc>>,
    /// The job's last error on this server; `None` once a round went through.
    pub last_error: Option<String>,
    pub checked_at: DateTime<Utc>,
}

/// Writes a server's row (insert or replace).
pub async fn upsert<'e>(ex: impl sqlx::PgExecutor<'e>, row: &PitrWindowRow) -> Result<()> {
    sqlx::query!(
        "INSERT INTO pitr_windows (server_id, earliest, last_archived_at, last_failed_at,
                 failed_count, wal_bytes, last_full_at, last_incr_at, last_error, checked_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (server_id) DO UPDATE SET earliest = $2, last_archived_at = $3,
             last_failed_at = $4, failed_count = $5, wal_bytes = $6, last_full_at = $7,
             last_incr_at = $8, last_error = $9, checked_at = $10",
        row.server_id,
        row.earliest,
        row.last_archived_at,
        row.last_failed_at,
        row.failed_count,
        row.wal_bytes,
        row.last_full_at,
        row.last_incr_at,
        row.last_error,
        row.checked_at,
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// Every server's row.
pub async fn list<'e>(ex: impl sqlx::PgExecutor<'e>) -> Result<Vec<PitrWindowRow>> {
    Ok(sqlx::query_as!(
        PitrWindowRow,
        "SELECT server_id, earliest, last_archived_at, last_failed_at, failed_count, wal_bytes,
                last_full_at, last_incr_at, last_error, checked_at
           FROM pitr_windows ORDER BY server_id"
    )
    .fetch_all(ex)
    .await?)
}

/// One server's row.
pub async fn get<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    server_id: &str,
) -> Result<Option<PitrWindowRow>> {
    Ok(sqlx::query_as!(
        PitrWindowRow,
        "SELECT server_id, earliest, last_archived_at, last_failed_at, failed_count, wal_bytes,
                last_full_at, last_incr_at, last_error, checked_at
           FROM pitr_windows WHERE server_id = $1",
        server_id,
    )
    .fetch_optional(ex)
    .await?)
}

/// Ids of every open (pending or running) operation: a scratch instance named after one of
/// them may still be needed; any other is a crash's leftover.
pub async fn open_operation_ids<'e>(ex: impl sqlx::PgExecutor<'e>) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar!(
        "SELECT id FROM operations WHERE state IN ('pending', 'running') ORDER BY seq"
    )
    .fetch_all(ex)
    .await?)
}
