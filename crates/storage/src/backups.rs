//! Backups of tenant databases. Queries checked at build time (`.sqlx/`, see the crate doc);
//! the trigger and status come out typed through `AS "…: BackupTrigger"` overrides.

use chrono::{DateTime, Utc};

use crate::lifecycle::{BackupState, BackupTrigger};
use crate::Result;

#[derive(Debug, Clone)]
pub struct BackupRow {
    pub seq: i64,
    pub id: String,
    pub database_id: String,
    pub kind: String,
    pub trigger: BackupTrigger,
    pub status: BackupState,
    pub size_bytes: Option<i64>,
    pub location: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub activity_marker: Option<i64>,
}

pub async fn insert<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    id: &str,
    database_id: &str,
    trigger: BackupTrigger,
    now: DateTime<Utc>,
) -> Result<BackupRow> {
    Ok(sqlx::query_as!(
        BackupRow,
        r#"INSERT INTO backups (id, database_id, kind, trigger, status, created_at)
           VALUES ($1, $2, 'full', $3, 'running', $4)
           RETURNING seq, id, database_id, kind, trigger AS "trigger: BackupTrigger",
                status AS "status: BackupState", size_bytes, location, error, created_at,
                finished_at, activity_marker"#,
        id,
        database_id,
        trigger as _,
        now,
    )
    .fetch_one(ex)
    .await?)
}

/// Namespace of the backup schedule's advisory locks (first key of
/// `pg_advisory_xact_lock(int, int)`).
const SCHEDULE_LOCK_SPACE: i32 = 0x7066_6273; // "pfbs"

/// Takes the lock on `database_id`'s backup schedule until the end of the caller's
/// transaction, and returns the database's newest running or completed backup. Two scheduler
/// rounds that overlap (one that outlived its lease and the next holder's) each decide under
/// it, so the second sees the backup the first recorded.
pub async fn lock_schedule_and_latest(
    tx: &mut sqlx::PgConnection,
    database_id: &str,
) -> Result<Option<BackupRow>> {
    sqlx::query!(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        SCHEDULE_LOCK_SPACE,
        database_id,
    )
    .execute(&mut *tx)
    .await?;
    Ok(sqlx::query_as!(
        BackupRow,
        r#"SELECT seq, id, database_id, kind, trigger AS "trigger: BackupTrigger",
                status AS "status: BackupState", size_bytes, location, error, created_at,
                finished_at, activity_marker
             FROM backups
            WHERE database_id = $1 AND status IN ('completed', 'running')
            ORDER BY seq DESC LIMIT 1"#,
        database_id,
    )
    .fetch_optional(&mut *tx)
    .await?)
}

pub async fn get<'e>(ex: impl sqlx::PgExecutor<'e>, id: &str) -> Result<Option<BackupRow>> {
    Ok(sqlx::query_as!(
        BackupRow,
        r#"SELECT seq, id, database_id, kind, trigger AS "trigger: BackupTrigger",
                status AS "status: BackupState", size_bytes, location, error, created_at,
                finished_at, activity_marker
             FROM backups WHERE id = $1"#,
        id,
    )
    .fetch_optional(ex)
    .await?)
}

/// Newest first.
pub async fn list<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    database_id: &str,
    limit: i64,
) -> Result<Vec<BackupRow>> {
    Ok(sqlx::query_as!(
        BackupRow,
        r#"SELECT seq, id, database_id, kind, trigger AS "trigger: BackupTrigger",
                status AS "status: BackupState", size_bytes, location, error, created_at,
                finished_at, activity_marker
             FROM backups WHERE database_id = $1 ORDER BY seq DESC LIMIT $2"#,
        database_id,
        limit,
    )
    .fetch_all(ex)
    .await?)
}

pub async fn complete<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    id: &str,
    size: i64,
    location: &str,
    marker: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query!(
        "UPDATE backups SET status = 'completed', size_bytes = $2, location = $3, activity_marker = $4,
                finished_at = $5, error = NULL WHERE id = $1",
        id,
        size,
        location,
        marker,
        now,
    )
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn fail<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    id: &str,
    error: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query!(
        "UPDATE backups SET status = 'failed', error = $2, finished_at = $3 WHERE id = $1",
        id,
        error,
        now,
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// The newest backup of each database that is completed or still running.
pub async fn latest_per_database<'e>(ex: impl sqlx::PgExecutor<'e>) -> Result<Vec<BackupRow>> {
    Ok(sqlx::query_as!(
        BackupRow,
        r#"SELECT DISTINCT ON (database_id) seq, id, database_id, kind, trigger AS "trigger: BackupTrigger",
                status AS "status: BackupState", size_bytes, location, error, created_at,
                finished_at, activity_marker
             FROM backups WHERE status IN ('completed', 'running')
            ORDER BY database_id, seq DESC"#,
    )
    .fetch_all(ex)
    .await?)
}

/// Backups created before `cutoff` (for retention).
pub async fn older_than<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    cutoff: DateTime<Utc>,
) -> Result<Vec<BackupRow>> {
    Ok(sqlx::query_as!(
        BackupRow,
        r#"SELECT seq, id, database_id, kind, trigger AS "trigger: BackupTrigger",
                status AS "status: BackupState", size_bytes, location, error, created_at,
                finished_at, activity_marker
             FROM backups WHERE created_at < $1 AND status <> 'running' ORDER BY seq"#,
        cutoff,
    )
    .fetch_all(ex)
    .await?)
}

pub async fn delete<'e>(ex: impl sqlx::PgExecutor<'e>, id: &str) -> Result<()> {
    sqlx::query!("DELETE FROM backups WHERE id = $1", id)
        .execute(ex)
        .await?;
    Ok(())
}
