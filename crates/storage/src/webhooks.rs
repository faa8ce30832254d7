//! Webhooks (migration 0019): endpoints of a workspace with their sealed signing secret, and
//! the outbox — events and one delivery per subscribed endpoint — that delivery workers on
//! every replica share through `FOR UPDATE SKIP LOCKED` claims. Queries checked at build time
//! (`.sqlx/`, see the crate doc).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::{DeliveryState, Result};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EndpointRow {
    pub seq: i64,
    pub id: String,
    pub workspace_id: String,
    pub url: String,
    pub event_types: Option<Vec<String>>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub failing_since: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub struct NewEndpoint<'a> {
    pub id: &'a str,
    pub workspace_id: &'a str,
    pub url: &'a str,
    pub event_types: Option<&'a [String]>,
    pub seal_salt: &'a [u8],
    pub sealed_secret: &'a [u8],
    pub created_at: DateTime<Utc>,
}

/// Inserts an endpoint unless the workspace has `max` already (counted under a lock of the
/// workspace row, so two creates at once cannot both pass); `None` when it has.
pub async fn insert_endpoint(
    conn: &mut PgConnection,
    e: &NewEndpoint<'_>,
    max: i64,
) -> Result<Option<EndpointRow>> {
    sqlx::query_scalar!(
        "SELECT id FROM workspaces WHERE id = $1 FOR UPDATE",
        e.workspace_id
    )
    .fetch_optional(&mut *conn)
    .await?;
    let count = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM webhook_endpoints WHERE workspace_id = $1"#,
        e.workspace_id
    )
    .fetch_one(&mut *conn)
    .await?;
    if count >= max {
        return Ok(None);
    }
    Ok(Some(
        sqlx::query_as!(
            EndpointRow,
            "INSERT INTO webhook_endpoints
               (id, workspace_id, url, event_types, seal_salt, sealed_secret, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             RETURNING seq, id, workspace_id, url, event_types, disabled_at, failing_since,
                       last_attempt_at, last_status, last_error, created_at",
            e.id,
            e.workspace_id,
            e.url,
            e.event_types,
            e.seal_salt,
            e.sealed_secret,
            e.created_at,
        )
        .fetch_one(&mut *conn)
        .await?,
    ))
}

/// Endpoints of a workspace, oldest first.
pub async fn list_endpoints<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    workspace_id: &str,
) -> Result<Vec<EndpointRow>> {
    Ok(sqlx::query_as!(
        EndpointRow,
        "SELECT seq, id, workspace_id, url, event_types, disabled_at, failing_since,
                last_attempt_at, last_status, last_error, created_at
           FROM webhook_endpoints WHERE workspace_id = $1 ORDER BY seq",
        workspace_id,
    )
    .fetch_all(ex)
    .await?)
}

/// An endpoint of a workspace.
pub async fn get_endpoint<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    workspace_id: &str,
    id: &str,
) -> Result<Option<EndpointRow>> {
    Ok(sqlx::query_as!(
        EndpointRow,
        "SELECT seq, id, workspace_id, url, event_types, disabled_at, failing_since,
                last_attempt_at, last_status, last_error, created_at
           FROM webhook_endpoints WHERE workspace_id = $1 AND id = $2",
        workspace_id,
        id,
    )
    .fetch_optional(ex)
    .await?)
}

/// Deletes an endpoint (and its deliveries); false when there was none.
pub async fn delete_endpoint<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    workspace_id: &str,
    id: &str,
) -> Result<bool> {
    let r = sqlx::query!(
        "DELETE FROM webhook_endpoints WHERE workspace_id = $1 AND id = $2",
        workspace_id,
        id,
    )
    .execute(ex)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Writes an event and one pending delivery, due at once, per enabled endpoint of the
/// workspace subscribed to its type — in one statement, and nothing at all when no endpoint
/// is subscribed (most state changes of most workspaces). Returns how many deliveries it
/// queued.
pub async fn emit(
    conn: &mut PgConnection,
    id: &str,
    workspace_id: &str,
    event_type: &str,
    body: &str,
    now: DateTime<Utc>,
) -> Result<u64> {
    let r = sqlx::query!(
        "WITH targets AS (
           SELECT e.id FROM webhook_endpoints e
            WHERE e.workspace_id = $2 AND e.disabled_at IS NULL
              AND (e.event_types IS NULL OR $3 = ANY (e.event_types))
         ), event AS (
           INSERT INTO webhook_events (id, workspace_id, type, body, created_at)
           SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM targets)
           RETURNING id
         )
         INSERT INTO webhook_deliveries (event_id, endpoint_id, state, next_attempt_at, created_at)
         SELECT event.id, targets.id, $6, $5, $5 FROM event, targets",
        id,
        workspace_id,
        event_type,
        body,
        now,
        DeliveryState::Pending as _,
    )
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected())
}

/// A claimed delivery: what to send, where, and with which sealed secret.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub seq: i64,
    pub attempts: i32,
    pub event_id: String,
    pub event_type: String,
    pub body: String,
    pub endpoint_id: String,
    pub workspace_id: String,
    pub url: String,
    pub seal_salt: Vec<u8>,
    pub sealed_secret: Vec<u8>,
    pub failing_since: Option<DateTime<Utc>>,
}

/// Claims up to `limit` due deliveries of enabled endpoints: each moves to `deadline` (so no
/// other worker takes it before then, and it is due again if this one dies) with one more
/// attempt counted. Rows another worker holds locked are skipped, not waited for.
pub async fn claim_due<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    now: DateTime<Utc>,
    deadline: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<ClaimedDelivery>> {
    Ok(sqlx::query_as!(
        ClaimedDelivery,
        r#"WITH due AS (
             SELECT d.seq FROM webhook_deliveries d
               JOIN webhook_endpoints e ON e.id = d.endpoint_id
              WHERE d.state = $4 AND d.next_attempt_at <= $1 AND e.disabled_at IS NULL
              ORDER BY d.next_attempt_at LIMIT $3
              FOR UPDATE OF d SKIP LOCKED
           ), claimed AS (
             UPDATE webhook_deliveries d SET next_attempt_at = $2, attempts = d.attempts + 1
               FROM due WHERE d.seq = due.seq
             RETURNING d.seq, d.attempts, d.event_id, d.endpoint_id
           )
           SELECT c.seq AS "seq!", c.attempts AS "attempts!", c.event_id AS "event_id!",
                  ev.type AS event_type, ev.body, c.endpoint_id AS "endpoint_id!",
                  e.workspace_id, e.url, e.seal_salt, e.sealed_secret, e.failing_since
             FROM claimed c
             JOIN webhook_events ev ON ev.id = c.event_id
             JOIN webhook_endpoints e ON e.id = c.endpoint_id"#,
        now,
        deadline,
        limit,
        DeliveryState::Pending as _,
    )
    .fetch_all(ex)
    .await?)
}

/// The outcome of one attempt.
pub struct Attempt<'a> {
    pub seq: i64,
    pub endpoint_id: &'a str,
    pub at: DateTime<Utc>,
    pub status: Option<i32>,
    pub error: Option<&'a str>,
    /// `Some(next)`: failed, retry then; `None`: delivered.
    pub retry_at: Option<DateTime<Utc>>,
}

/// Records an attempt on the delivery and its endpoint. Returns the endpoint's
/// `failing_since` after the update (`None` after a success).
pub async fn record_attempt(
    conn: &mut PgConnection,
    a: &Attempt<'_>,
) -> Result<Option<DateTime<Utc>>> {
    let (state, delivered_at, next) = match a.retry_at {
        None => (DeliveryState::Delivered, Some(a.at), a.at),
        Some(next) => (DeliveryState::Pending, None, next),
    };
    sqlx::query!(
        "UPDATE webhook_deliveries
            SET state = $2, last_status = $3, last_error = $4, delivered_at = $5,
                next_attempt_at = $6
          WHERE seq = $1 AND state = 'pending'",
        a.seq,
        state as _,
        a.status,
        a.error,
        delivered_at,
        next,
    )
    .execute(&mut *conn)
    .await?;
    let delivered = a.retry_at.is_none();
    Ok(sqlx::query_scalar!(
        "UPDATE webhook_endpoints
            SET last_attempt_at = $2, last_status = $3, last_error = $4,
                failing_since = CASE WHEN $5 THEN NULL ELSE coalesce(failing_since, $2) END
          WHERE id = $1
         RETURNING failing_since",
        a.endpoint_id,
        a.at,
        a.status,
        a.error,
        delivered,
    )
    .fetch_optional(&mut *conn)
    .await?
    .flatten())
}

/// Disables an endpoint and gives up its pending deliveries; false when it was disabled
/// (or deleted) already, so only one worker reports it.
pub async fn disable(conn: &mut PgConnection, id: &str, now: DateTime<Utc>) -> Result<bool> {
    let r = sqlx::query!(
        "UPDATE webhook_endpoints SET disabled_at = $2 WHERE id = $1 AND disabled_at IS NULL",
        id,
        now,
    )
    .execute(&mut *conn)
    .await?;
    if r.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query!(
        "UPDATE webhook_deliveries SET state = $2 WHERE endpoint_id = $1 AND state = $3",
        id,
        DeliveryState::Failed as _,
        DeliveryState::Pending as _,
    )
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub seq: i64,
    pub event_id: String,
    pub event_type: String,
    pub state: DeliveryState,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// The newest `limit` deliveries of an endpoint, newest first.
pub async fn deliveries<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    endpoint_id: &str,
    limit: i64,
) -> Result<Vec<DeliveryRow>> {
    Ok(sqlx::query_as!(
        DeliveryRow,
        r#"SELECT d.seq, d.event_id, ev.type AS event_type, d.state AS "state: DeliveryState",
                  d.attempts, d.next_attempt_at, d.last_status, d.last_error, d.delivered_at,
                  d.created_at
             FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id
            WHERE d.endpoint_id = $1 ORDER BY d.seq DESC LIMIT $2"#,
        endpoint_id,
        limit,
    )
    .fetch_all(ex)
    .await?)
}

/// Deletes events older than `before` with no pending delivery (their deliveries go with
/// them). Returns how many events went.
pub async fn prune<'e>(ex: impl sqlx::PgExecutor<'e>, before: DateTime<Utc>) -> Result<u64> {
    let r = sqlx::query!(
        "DELETE FROM webhook_events ev WHERE ev.created_at < $1
            AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                             WHERE d.event_id = ev.id AND d.state = $2)",
        before,
        DeliveryState::Pending as _,
    )
    .execute(ex)
    .await?;
    Ok(r.rows_affected())
}

/// Pending deliveries of enabled endpoints, and the age in seconds of the oldest one due.
pub async fn backlog<'e>(ex: impl sqlx::PgExecutor<'e>, now: DateTime<Utc>) -> Result<(i64, f64)> {
    let r = sqlx::query!(
        r#"SELECT count(*) AS "n!",
                  coalesce(extract(epoch FROM $1 - min(d.next_attempt_at)
                           FILTER (WHERE d.next_attempt_at <= $1)), 0)::float8 AS "age!"
             FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
            WHERE d.state = $2 AND e.disabled_at IS NULL"#,
        now,
        DeliveryState::Pending as _,
    )
    .fetch_one(ex)
    .await?;
    Ok((r.n, r.age))
}
