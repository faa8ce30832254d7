//! The metadata store: a PostgreSQL database reached through sqlx, its schema (migrations are
//! embedded in the binary and applied at start) and the queries the services run on it.
//!
//! Queries are checked at run time (`sqlx::query_as`), not at build time, so a clean clone
//! builds without a database. Every function takes an executor, so a service can run several
//! of them in one transaction.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

pub mod backups;
pub mod capacity;
pub mod connections;
pub mod databases;
pub mod idempotency;
pub mod leases;
pub mod login_throttle;
pub mod oauth;
pub mod operations;
pub mod projects;
pub mod rows;
pub mod servers;
pub mod sessions;
pub mod tokens;
pub mod usage;
pub mod users;
pub mod workspaces;

pub use rows::*;

/// Errors of the store. Callers map `NotFound`-like outcomes from `Option`s; this type is for
/// what went wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("metadata database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("metadata migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StorageError {
    /// True when the statement failed on a unique constraint (a duplicate).
    /// True when the database could not be reached (as opposed to refusing a statement).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StorageError::Db(
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
            )
        )
    }

    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StorageError::Db(sqlx::Error::Database(e)) if e.is_unique_violation())
    }

    /// True when a text parameter cannot be stored (SQLSTATE 22021, e.g. a NUL character,
    /// which PostgreSQL text never holds): the input was wrong, not the database.
    pub fn is_invalid_text(&self) -> bool {
        matches!(self, StorageError::Db(sqlx::Error::Database(e)) if e.code().as_deref() == Some("22021"))
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// The embedded migrations, also used by the test harness to prepare its template database.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Handle to the metadata database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    /// Connects (retrying for up to `wait`, since the embedded cluster may still be starting).
    pub async fn connect(
        options: PgConnectOptions,
        max_connections: u32,
        wait: Duration,
    ) -> Result<Self> {
        let deadline = tokio_deadline(wait);
        loop {
            let res = PgPoolOptions::new()
                .max_connections(max_connections)
                .min_connections(1)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(options.clone())
                .await;
            match res {
                Ok(pool) => return Ok(Self { pool }),
                // A bad certificate or setting does not get better by waiting.
                Err(e) if is_permanent(&e) => return Err(e.into()),
                Err(e) if std::time::Instant::now() < deadline => {
                    tracing::debug!(error = %e, "metadata database not reachable yet");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the embedded migrations (idempotent; concurrent starts are serialised by sqlx's
    /// advisory lock).
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// Closes the metadata database to everyone but its owner and superusers: tenants' login
    /// roles live on the same servers and PUBLIC gets CONNECT on every new database. Needs
    /// ownership of the database; returns the error otherwise (callers log it).
    pub async fn close_to_public(&self) -> Result<()> {
        sqlx::query(
            "DO $$ BEGIN EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database()); END $$",
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// `SELECT 1`: is the metadata database answering?
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        Ok(self.pool.begin().await?)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn tokio_deadline(wait: Duration) -> std::time::Instant {
    std::time::Instant::now() + wait
}

/// Reads a setting (a JSON value under a key).
pub async fn get_setting<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    key: &str,
) -> Result<Option<serde_json::Value>> {
    let v: Option<(serde_json::Value,)> =
        sqlx::query_as("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(ex)
            .await?;
    Ok(v.map(|(v,)| v))
}

/// Writes a setting; returns false when the key already existed and `overwrite` is false.
pub async fn put_setting<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    key: &str,
    value: &serde_json::Value,
    now: chrono::DateTime<chrono::Utc>,
    overwrite: bool,
) -> Result<bool> {
    let sql = if overwrite {
        "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at"
    } else {
        "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING"
    };
    let r = sqlx::query(sql)
        .bind(key)
        .bind(value)
        .bind(now)
        .execute(ex)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Connection errors that retrying cannot fix: TLS refused or not verified (rustls reports
/// a failed handshake as `InvalidData`), and configuration errors.
fn is_permanent(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Tls(_) | sqlx::Error::Configuration(_) => true,
        sqlx::Error::Io(io) => io.kind() == std::io::ErrorKind::InvalidData,
        _ => false,
    }
}
