//! Usage samples: per database, the raw value of its operations counter and its size, read
//! from its Postgres server at an interval by the sampler (`pgfleet_domain::services::usage`).
//!
//! Counters are stored as the server reports them (they only grow, except when the server
//! loses its statistics); usage over a window is computed from consecutive samples by the
//! domain, which handles those resets.
//!
//! Queries checked at build time (`.sqlx/`, see the crate doc).

use chrono::{DateTime, Utc};

use crate::Result;

/// One sample of one database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageSample {
    pub database_id: String,
    pub sampled_at: DateTime<Utc>,
    /// Raw counter value (statements or transactions, see `source`).
    pub operations: i64,
    pub storage_bytes: i64,
    /// `statements` or `transactions`.
    pub source: String,
}

/// A database the sampler reads: ready, with the server it lives on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampledDatabase {
    pub id: String,
    pub server_id: String,
    pub pg_database: String,
}

/// Every `ready` database placed on a server, in creation order.
pub async fn ready_databases<'e>(ex: impl sqlx::PgExecutor<'e>) -> Result<Vec<SampledDatabase>> {
    Ok(sqlx::query_as!(
        SampledDatabase,
        r#"SELECT id, server_id AS "server_id!", pg_database FROM databases
            WHERE status = 'ready' AND server_id IS NOT NULL ORDER BY seq"#,
    )
    .fetch_all(ex)
    .await?)
}

/// Stores a sample (a second one at the same instant is ignored).
pub async fn insert<'e>(ex: impl sqlx::PgExecutor<'e>, s: &UsageSample) -> Result<()> {
    sqlx::query!(
        "INSERT INTO usage_samples (database_id, sampled_at, operations, storage_bytes, source)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (database_id, sampled_at) DO NOTHING",
        s.database_id,
        s.sampled_at,
        s.operations,
        s.storage_bytes,
        s.source,
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// The samples of a database taken in `start..=end`, oldest first, preceded by the last
/// sample before `start` when there is one (the baseline of the first delta).
pub async fn window<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    database_id: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<UsageSample>> {
    // The outer select only restates what both branches read (NOT NULL columns): sqlx does
    // not follow nullability through a UNION, so the overrides say it.
    Ok(sqlx::query_as!(
        UsageSample,
        r#"SELECT w.database_id AS "database_id!", w.sampled_at AS "sampled_at!",
                  w.operations AS "operations!", w.storage_bytes AS "storage_bytes!",
                  w.source AS "source!"
             FROM ((SELECT database_id, sampled_at, operations, storage_bytes, source
                      FROM usage_samples
                     WHERE database_id = $1 AND sampled_at < $2
                     ORDER BY sampled_at DESC LIMIT 1)
                   UNION ALL
                   (SELECT database_id, sampled_at, operations, storage_bytes, source
                      FROM usage_samples
                     WHERE database_id = $1 AND sampled_at >= $2 AND sampled_at <= $3)) w
            ORDER BY w.sampled_at"#,
        database_id,
        start,
        end,
    )
    .fetch_all(ex)
    .await?)
}

/// Deletes samples older than `before` except each database's newest one (the baseline of
/// later windows), and every sample of databases that no longer exist; returns how many.
pub async fn prune<'e>(ex: impl sqlx::PgExecutor<'e>, before: DateTime<Utc>) -> Result<u64> {
    Ok(sqlx::query!(
        "DELETE FROM usage_samples u
          WHERE NOT EXISTS (SELECT 1 FROM databases d WHERE d.id = u.database_id)
             OR (u.sampled_at < $1 AND EXISTS (
                   SELECT 1 FROM usage_samples n
                    WHERE n.database_id = u.database_id
                      AND n.sampled_at > u.sampled_at AND n.sampled_at < $1))",
        before,
    )
    .execute(ex)
    .await?
    .rows_affected())
}
