//! The reconciler's intent log: one row per operation, its kind and state typed
//! ([`crate::lifecycle`]). Queries checked at build time (`.sqlx/`, see the crate doc).

use chrono::{DateTime, Utc};

use crate::{OperationKind, OperationRow, OperationState, Result};

pub async fn insert<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    id: &str,
    kind: OperationKind,
    resource_id: &str,
    payload: &serde_json::Value,
    request_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<OperationRow> {
    Ok(sqlx::query_as!(
        OperationRow,
        r#"INSERT INTO operations (id, kind, resource_id, state, payload, next_attempt_at,
                                   created_at, updated_at, request_id)
           VALUES ($1, $2, $3, 'pending', $4, $5, $5, $5, $6)
           RETURNING seq, id, kind AS "kind: OperationKind", resource_id, state AS "state: OperationState",
                step, attempts, next_attempt_at, payload, error, created_at, updated_at, request_id"#,
        id,
        kind as _,
        resource_id,
        payload,
        now,
        request_id,
    )
    .fetch_one(ex)
    .await?)
}

pub async fn get<'e>(ex: impl sqlx::PgExecutor<'e>, id: &str) -> Result<Option<OperationRow>> {
    Ok(sqlx::query_as!(
        OperationRow,
        r#"SELECT seq, id, kind AS "kind: OperationKind", resource_id, state AS "state: OperationState",
                step, attempts, next_attempt_at, payload, error, created_at, updated_at, request_id
             FROM operations WHERE id = $1"#,
        id,
    )
    .fetch_optional(ex)
    .await?)
}

/// Open operations that are due, oldest first; only of the kinds this binary knows, so a
/// kind a newer replica sharing the store wrote waits for that replica (and does not stop
/// this one's reconciler with a row it cannot read).
pub async fn due<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<OperationRow>> {
    Ok(sqlx::query_as!(
        OperationRow,
        r#"SELECT seq, id, kind AS "kind: OperationKind", resource_id, state AS "state: OperationState",
                step, attempts, next_attempt_at, payload, error, created_at, updated_at, request_id
             FROM operations
            WHERE state IN ('pending', 'running') AND next_attempt_at <= $1 AND kind = ANY($3)
            ORDER BY seq LIMIT $2"#,
        now,
        limit,
        OperationKind::ALL as _,
    )
    .fetch_all(ex)
    .await?)
}

/// Open operations on a resource.
pub async fn open_for<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    resource_id: &str,
) -> Result<Vec<OperationRow>> {
    Ok(sqlx::query_as!(
        OperationRow,
        r#"SELECT seq, id, kind AS "kind: OperationKind", resource_id, state AS "state: OperationState",
                step, attempts, next_attempt_at, payload, error, created_at, updated_at, request_id
             FROM operations
            WHERE resource_id = $1 AND state IN ('pending', 'running') ORDER BY seq"#,
        resource_id,
    )
    .fetch_all(ex)
    .await?)
}

pub async fn start<'e>(ex: impl sqlx::PgExecutor<'e>, id: &str, now: DateTime<Utc>) -> Result<()> {
    sqlx::query!(
        "UPDATE operations SET state = 'running', attempts = attempts + 1, updated_at = $2
          WHERE id = $1",
        id,
        now,
    )
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn step<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    id: &str,
    step: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query!(
        "UPDATE operations SET step = $2, updated_at = $3 WHERE id = $1",
        id,
        step,
        now,
    )
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn finish<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    id: &str,
    state: OperationState,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query!(
        "UPDATE operations SET state = $2, error = $3, updated_at = $4 WHERE id = $1",
        id,
        state as _,
        error,
        now,
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// Back to `pending`, due again at `next`.
pub async fn retry_at<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    id: &str,
    error: &str,
    next: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query!(
        "UPDATE operations SET state = 'pending', error = $2, next_attempt_at = $3, updated_at = $4
          WHERE id = $1",
        id,
        error,
        next,
        now,
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// Whether an open operation reads the archive of this backup: a restore of it, or the
/// create of a database whose `source` is it (their downloaded staging files are in use).
pub async fn backup_in_use<'e>(ex: impl sqlx::PgExecutor<'e>, backup_id: &str) -> Result<bool> {
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (
            SELECT 1 FROM operations o
             WHERE o.state IN ('pending', 'running')
               AND (o.payload->>'backupId' = $1
                    OR EXISTS (SELECT 1 FROM databases d
                                WHERE d.id = o.resource_id AND d.source->>'backupId' = $1)))
             AS "in_use!""#,
        backup_id,
    )
    .fetch_one(ex)
    .await?)
}
