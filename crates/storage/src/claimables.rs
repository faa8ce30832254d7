//! Claimable temporary databases (`claimables`, migration 0018): one row per project created
//! without an account, its claim token's SHA-256, the client address that made it (the
//! per-client rate limit counts these rows) and its expiry; closed by a claim or by the
//! reaper. Queries checked at build time (`.sqlx/`, see the crate doc).

use chrono::{DateTime, Utc};

use crate::Result;

/// Namespace of the transaction-level lock that serialises admissions (first key of
/// `pg_advisory_xact_lock(int, int)`), so two creates on two replicas cannot both pass the
/// limits with one place left.
const ADMISSION_LOCK_SPACE: i32 = 0x636c_6d20; // "clm "

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimableRow {
    pub project_id: String,
    pub token_hash: Vec<u8>,
    pub client_addr: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub claimed_into: Option<String>,
    pub reaped_at: Option<DateTime<Utc>>,
}

/// Waits for, then holds until the end of `tx`, the lock every admission takes before it
/// counts and inserts.
pub async fn lock_admission(tx: &mut sqlx::PgConnection) -> Result<()> {
    sqlx::query!("SELECT pg_advisory_xact_lock($1, 0)", ADMISSION_LOCK_SPACE)
        .execute(tx)
        .await?;
    Ok(())
}

/// Rows neither claimed nor reaped (what the cap on unclaimed databases counts).
pub async fn count_open<'e>(ex: impl sqlx::PgExecutor<'e>) -> Result<i64> {
    Ok(sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM claimables WHERE claimed_at IS NULL AND reaped_at IS NULL"#
    )
    .fetch_one(ex)
    .await?)
}

/// How many rows `addr` created after `since`, and the oldest of those creation times.
pub async fn recent_of<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    addr: &str,
    since: DateTime<Utc>,
) -> Result<(i64, Option<DateTime<Utc>>)> {
    let r = sqlx::query!(
        r#"SELECT count(*) AS "n!", min(created_at) AS oldest
           FROM claimables WHERE client_addr = $1 AND created_at > $2"#,
        addr,
        since
    )
    .fetch_one(ex)
    .await?;
    Ok((r.n, r.oldest))
}

pub async fn insert<'e>(ex: impl sqlx::PgExecutor<'e>, row: &ClaimableRow) -> Result<()> {
    sqlx::query!(
        "INSERT INTO claimables (project_id, token_hash, client_addr, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
        row.project_id,
        row.token_hash,
        row.client_addr,
        row.created_at,
        row.expires_at
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// The row of a claim token's hash.
pub async fn by_token<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    token_hash: &[u8],
) -> Result<Option<ClaimableRow>> {
    Ok(sqlx::query_as!(
        ClaimableRow,
        "SELECT project_id, token_hash, client_addr, created_at, expires_at, claimed_at,
                claimed_into, reaped_at
         FROM claimables WHERE token_hash = $1",
        token_hash
    )
    .fetch_optional(ex)
    .await?)
}

/// The row of a claim token's hash, locked until the end of `tx` (a claim and a reap of the
/// same project wait for each other; the second sees the first's outcome).
pub async fn lock_by_token(
    tx: &mut sqlx::PgConnection,
    token_hash: &[u8],
) -> Result<Option<ClaimableRow>> {
    Ok(sqlx::query_as!(
        ClaimableRow,
        "SELECT project_id, token_hash, client_addr, created_at, expires_at, claimed_at,
                claimed_into, reaped_at
         FROM claimables WHERE token_hash = $1 FOR UPDATE",
        token_hash
    )
    .fetch_optional(tx)
    .await?)
}

/// The row of a project, locked until the end of `tx`.
pub async fn lock_by_project(
    tx: &mut sqlx::PgConnection,
    project_id: &str,
) -> Result<Option<ClaimableRow>> {
    Ok(sqlx::query_as!(
        ClaimableRow,
        "SELECT project_id, token_hash, client_addr, created_at, expires_at, claimed_at,
                claimed_into, reaped_at
         FROM claimables WHERE project_id = $1 FOR UPDATE",
        project_id
    )
    .fetch_optional(tx)
    .await?)
}

/// Open rows whose expiry is at or before `now`, oldest first, at most `limit`.
pub async fn due<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<ClaimableRow>> {
    Ok(sqlx::query_as!(
        ClaimableRow,
        "SELECT project_id, token_hash, client_addr, created_at, expires_at, claimed_at,
                claimed_into, reaped_at
         FROM claimables
         WHERE claimed_at IS NULL AND reaped_at IS NULL AND expires_at <= $1
         ORDER BY expires_at LIMIT $2",
        now,
        limit
    )
    .fetch_all(ex)
    .await?)
}

/// Open rows, soonest expiry first, at most `limit` (the admin page).
pub async fn open<'e>(ex: impl sqlx::PgExecutor<'e>, limit: i64) -> Result<Vec<ClaimableRow>> {
    Ok(sqlx::query_as!(
        ClaimableRow,
        "SELECT project_id, token_hash, client_addr, created_at, expires_at, claimed_at,
                claimed_into, reaped_at
         FROM claimables WHERE claimed_at IS NULL AND reaped_at IS NULL
         ORDER BY expires_at LIMIT $1",
        limit
    )
    .fetch_all(ex)
    .await?)
}

pub async fn mark_claimed<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    project_id: &str,
    workspace_id: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query!(
        "UPDATE claimables SET claimed_at = $3, claimed_into = $2 WHERE project_id = $1",
        project_id,
        workspace_id,
        now
    )
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn mark_reaped<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    project_id: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query!(
        "UPDATE claimables SET reaped_at = $2 WHERE project_id = $1",
        project_id,
        now
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// Forgets closed rows created before `before` (past the rate window: nothing counts them).
pub async fn forget_closed<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    before: DateTime<Utc>,
) -> Result<u64> {
    Ok(sqlx::query!(
        "DELETE FROM claimables
         WHERE (claimed_at IS NOT NULL OR reaped_at IS NOT NULL) AND created_at < $1",
        before
    )
    .execute(ex)
    .await?
    .rows_affected())
}
