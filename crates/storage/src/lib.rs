//! The metadata store: a PostgreSQL database reached through sqlx, its schema (migrations are
//! embedded in the binary and applied at start), the queries the services run on it, and the
//! typed states and kinds its rows carry ([`lifecycle`]).
//!
//! Queries are sqlx macros (`query!`, `query_as!`, `query_scalar!`) checked at build time
//! against the offline data committed in `.sqlx/` at the workspace root (`.env` here sets
//! `SQLX_OFFLINE=true`), so a clean clone builds without a database; `scripts/sqlx-prepare`
//! regenerates `.sqlx/` after a query or migration changes (`--check` fails when it is
//! stale). Enum columns come out typed through `AS "status: DatabaseState"` overrides and go
//! in as `value as _`; computed columns the checker cannot prove non-null say so with
//! `AS "name!"`. Three statements stay run-time checked `sqlx::query`, each with a comment
//! why: the failure counting of `users::claim_attempt` and `login_throttle::claim` (their SQL
//! embeds the backoff expression the two share, `login_throttle::Backoff::sql_until`), and
//! the read of `_sqlx_migrations` in [`Store::migrate`] (sqlx's own table, absent from the
//! schema the macros are checked against). Every function takes an executor, so a service
//! can run several of them in one transaction.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

pub mod accelerate_keys;
pub mod backups;
pub mod capacity;
pub mod claimables;
pub mod connections;
pub mod databases;
pub mod idempotency;
pub mod leases;
pub mod lifecycle;
pub mod locks;
pub mod login_throttle;
pub mod oauth;
pub mod operations;
pub mod pitr;
pub mod projects;
pub mod replicas;
pub mod rows;
pub mod servers;
pub mod sessions;
pub mod target;
pub mod tokens;
pub mod usage;
pub mod users;
pub mod webhooks;
pub mod workspaces;

pub use lifecycle::{
    BackupState, BackupTrigger, ConnectionState, DatabaseState, DeliveryState, OperationKind,
    OperationState, UnknownValue,
};
pub use rows::*;
pub use target::{MetadataTarget, SessionAttrs, TargetError};

/// Errors of the store. Callers map `NotFound`-like outcomes from `Option`s; this type is for
/// what went wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("metadata database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("metadata migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A newer pgfleet migrated the store past what this binary knows: running on would
    /// read and write tables it does not understand.
    #[error(
        "the metadata store's schema is at migration {applied}, newer than this pgfleet \
         (knows up to {known}): upgrade pgfleet to a version that has migration {applied}"
    )]
    SchemaNewer { applied: i64, known: i64 },
}

impl StorageError {
    /// True when the statement failed on a unique constraint (a duplicate).
    /// True when the database could not be reached (as opposed to refusing a statement).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StorageError::Db(
                sqlx::Error::PoolTimedOut
                | sqlx::Error::Io(_)
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed,
            ) => true,
            // The server went away under a statement: a connection failure (class 08), an
            // administrator or crash shutdown, a server still starting; or a write reached a
            // host that has become a standby (25006) during a failover. All pass on retry.
            StorageError::Db(sqlx::Error::Database(e)) => e.code().is_some_and(|c| {
                c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03" | "25006")
            }),
            _ => false,
        }
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
    /// Connects (retrying for up to `wait`, since the embedded cluster may still be starting,
    /// or a failover may be under way). `acquire_timeout` bounds how long a statement waits for
    /// a connection: while the store is down, requests fail after it instead of hanging.
    ///
    /// With several hosts or `target_session_attrs=read-write`, the pool connects to the first
    /// suitable host, refuses read-only sessions, and a watcher moves it to another host when
    /// the current one stops answering or becomes a standby.
    pub async fn connect(
        target: MetadataTarget,
        max_connections: u32,
        wait: Duration,
        acquire_timeout: Duration,
    ) -> Result<Self> {
        let deadline = tokio_deadline(wait);
        loop {
            let res = match target.resolve(acquire_timeout).await {
                Ok(options) => {
                    let attrs = target.attrs();
                    PgPoolOptions::new()
                        .max_connections(max_connections)
                        .min_connections(1)
                        .acquire_timeout(acquire_timeout)
                        .after_connect(move |conn, _| {
                            Box::pin(async move {
                                if target::suits(conn, attrs).await? {
                                    Ok(())
                                } else {
                                    Err(target::read_only())
                                }
                            })
                        })
                        .connect_with(options)
                        .await
                }
                Err(e) => Err(e),
            };
            match res {
                Ok(pool) => {
                    if target.needs_watching() {
                        tokio::spawn(watch(pool.clone(), target, acquire_timeout));
                    }
                    return Ok(Self { pool });
                }
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
    /// Refuses ([`StorageError::SchemaNewer`]) a store that a newer pgfleet migrated further.
    pub async fn migrate(&self) -> Result<()> {
        self.check_schema_not_newer().await?;
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// Errs when the store has an applied migration newer than every one this binary has
    /// (a newer replica migrated it). A fresh store has no `_sqlx_migrations` yet.
    async fn check_schema_not_newer(&self) -> Result<()> {
        let known = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        // The table is named in a second statement: PostgreSQL resolves names when it parses.
        let exists = sqlx::query_scalar!(
            r#"SELECT to_regclass('_sqlx_migrations') IS NOT NULL AS "exists!""#
        )
        .fetch_one(&self.pool)
        .await?;
        if !exists {
            return Ok(());
        }
        // Run-time checked: `_sqlx_migrations` is sqlx's own table, made by the migrator, not
        // by a migration, so the schema the macros are checked against does not have it.
        let (applied,): (Option<i64>,) =
            sqlx::query_as("SELECT max(version) FROM _sqlx_migrations")
                .fetch_one(&self.pool)
                .await?;
        match applied {
            Some(applied) if applied > known => Err(StorageError::SchemaNewer { applied, known }),
            _ => Ok(()),
        }
    }

    /// Closes the metadata database to everyone but its owner and superusers: tenants' login
    /// roles live on the same servers and PUBLIC gets CONNECT on every new database. Needs
    /// ownership of the database; returns the error otherwise (callers log it).
    pub async fn close_to_public(&self) -> Result<()> {
        sqlx::query!(
            "DO $$ BEGIN EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database()); END $$",
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// `SELECT 1`: is the metadata database answering?
    pub async fn ping(&self) -> Result<()> {
        sqlx::query_scalar!("SELECT 1 AS one")
            .fetch_one(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether the store answers on a connection of its own, outside the pool: tells an
    /// outage (nothing answers) from a busy pool (every connection lent, the store fine).
    pub async fn ping_outside_pool(&self) -> Result<()> {
        use sqlx::Connection;
        let options = self.pool.connect_options();
        let mut conn = sqlx::PgConnection::connect_with(&options).await?;
        sqlx::query_scalar!("SELECT 1 AS one")
            .fetch_one(&mut conn)
            .await?;
        conn.close().await?;
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

/// How often the failover watcher checks the current metadata host.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// Keeps the pool on a suitable host: every second, checks that the current host answers and
/// is writable (when required); if not, tries the hosts in order and points the pool's new
/// connections at the first suitable one. Connections already open to a failed host fail on
/// their own and are dropped by the pool. Ends when the pool is closed.
async fn watch(pool: PgPool, target: MetadataTarget, per_host: Duration) {
    let attrs = target.attrs();
    while !pool.is_closed() {
        tokio::time::sleep(WATCH_EVERY).await;
        let healthy = match tokio::time::timeout(per_host, pool.acquire()).await {
            Ok(Ok(mut conn)) => matches!(target::suits(&mut conn, attrs).await, Ok(true)),
            _ => false,
        };
        if healthy || pool.is_closed() {
            continue;
        }
        match target.resolve(per_host).await {
            Ok(options) => {
                let current = pool.connect_options();
                if options.get_host() != current.get_host()
                    || options.get_port() != current.get_port()
                {
                    tracing::warn!(
                        host = options.get_host(),
                        port = options.get_port(),
                        "metadata store moved to another host"
                    );
                    pool.set_connect_options(options);
                }
            }
            Err(e) => tracing::warn!(error = %e, "no metadata host is reachable and writable"),
        }
    }
}

/// Reads a setting (a JSON value under a key).
pub async fn get_setting<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    key: &str,
) -> Result<Option<serde_json::Value>> {
    Ok(
        sqlx::query_scalar!("SELECT value FROM settings WHERE key = $1", key)
            .fetch_optional(ex)
            .await?,
    )
}

/// Writes a setting; returns false when the key already existed and `overwrite` is false.
pub async fn put_setting<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    key: &str,
    value: &serde_json::Value,
    now: chrono::DateTime<chrono::Utc>,
    overwrite: bool,
) -> Result<bool> {
    let r = if overwrite {
        sqlx::query!(
            "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE
                SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at",
            key,
            value,
            now,
        )
        .execute(ex)
        .await?
    } else {
        sqlx::query!(
            "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO NOTHING",
            key,
            value,
            now,
        )
        .execute(ex)
        .await?
    };
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
