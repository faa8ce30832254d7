//! Idempotency keys (`idempotency_keys`): one row per (principal, key) remembering which
//! request claimed the key and, once it finished, the response to replay.
//!
//! A row with `status IS NULL` is a request still in flight. Rows older than [`TTL`] count as
//! absent: [`begin`] replaces them atomically, and [`prune`] deletes them for housekeeping.
//! Queries checked at build time (`.sqlx/`, see the crate doc).

use chrono::{DateTime, Duration, Utc};

use crate::Result;

/// How long a key is remembered.
pub const TTL: Duration = Duration::hours(24);

/// What [`begin`] found for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// The key was free (or expired): it is now claimed by this request, in flight.
    New,
    /// The same request already finished with this response.
    Replay {
        status: u16,
        /// The stored JSON body; `Null` for an empty body.
        body: serde_json::Value,
    },
    /// The same request is still being processed.
    InFlight,
    /// The key was used with a different request.
    Mismatch,
}

/// Claims `key` for `principal` and the request whose hash is `request_hash`, or tells what
/// holds it. A row created at or before `now - TTL` is replaced, in the same statement that
/// would otherwise insert, so two concurrent requests can never both get [`Begin::New`].
pub async fn begin<'a>(
    conn: impl sqlx::Acquire<'a, Database = sqlx::Postgres>,
    principal: &str,
    key: &str,
    request_hash: &[u8],
    now: DateTime<Utc>,
) -> Result<Begin> {
    let mut conn = conn.acquire().await?;
    let cutoff = now - TTL;
    // The row may vanish (abandoned, pruned) or expire between the two statements; try again
    // then. If it keeps changing under us, someone else is working on it.
    for _ in 0..3 {
        let claimed = sqlx::query!(
            "INSERT INTO idempotency_keys AS k (principal, key, request_hash, status, response, created_at)
             VALUES ($1, $2, $3, NULL, NULL, $4)
             ON CONFLICT (principal, key) DO UPDATE
                SET request_hash = EXCLUDED.request_hash, status = NULL, response = NULL,
                    created_at = EXCLUDED.created_at
              WHERE k.created_at <= $5
             RETURNING 1 AS claimed",
            principal,
            key,
            request_hash,
            now,
            cutoff,
        )
        .fetch_optional(&mut *conn)
        .await?;
        if claimed.is_some() {
            return Ok(Begin::New);
        }
        let row = sqlx::query!(
            "SELECT request_hash, status, response FROM idempotency_keys
              WHERE principal = $1 AND key = $2 AND created_at > $3",
            principal,
            key,
            cutoff,
        )
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else {
            continue;
        };
        let (status, response) = (row.status, row.response);
        if row.request_hash != request_hash {
            return Ok(Begin::Mismatch);
        }
        return Ok(match status.and_then(|s| u16::try_from(s).ok()) {
            Some(status) => Begin::Replay {
                status,
                body: response.unwrap_or(serde_json::Value::Null),
            },
            None => Begin::InFlight,
        });
    }
    Ok(Begin::InFlight)
}

/// Records the response of the in-flight request holding the key. False when there was no
/// such request (the row was abandoned, pruned or already finished).
pub async fn finish<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    principal: &str,
    key: &str,
    status: u16,
    body: &serde_json::Value,
) -> Result<bool> {
    let r = sqlx::query!(
        "UPDATE idempotency_keys SET status = $3, response = $4
          WHERE principal = $1 AND key = $2 AND status IS NULL",
        principal,
        key,
        i32::from(status),
        body,
    )
    .execute(ex)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Releases the key of an in-flight request (it failed in a way the client may retry).
/// Finished rows are kept. False when there was nothing to release.
pub async fn abandon<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    principal: &str,
    key: &str,
) -> Result<bool> {
    let r = sqlx::query!(
        "DELETE FROM idempotency_keys WHERE principal = $1 AND key = $2 AND status IS NULL",
        principal,
        key,
    )
    .execute(ex)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Deletes every row created at or before `older_than` (usually `now - TTL`); returns how
/// many.
pub async fn prune<'e>(ex: impl sqlx::PgExecutor<'e>, older_than: DateTime<Utc>) -> Result<u64> {
    let r = sqlx::query!(
        "DELETE FROM idempotency_keys WHERE created_at <= $1",
        older_than
    )
    .execute(ex)
    .await?;
    Ok(r.rows_affected())
}
