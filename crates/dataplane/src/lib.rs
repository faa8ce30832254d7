//! The data plane: the PostgreSQL servers that hold tenant databases.
//!
//! - [`cluster`] owns the embedded cluster: finding the server binaries, `initdb`, TLS,
//!   `pg_hba.conf`, starting `postgres` as a supervised child and stopping it.
//! - [`server`] is a handle on one Postgres server (embedded or external) that the
//!   [`Driver`] works through.
//! - [`archive`] owns continuous WAL archiving and point-in-time restores of a server
//!   (pgBackRest): its configuration, base backups, scratch instances.
//!
//! - [`query`] runs an agent's SQL (the MCP tools) as a database's agent login role, bounded.
//!
//! Nothing here knows about HTTP or the metadata schema.

pub mod archive;
pub mod binaries;
pub mod cluster;
pub mod driver;
mod files;
pub mod osuser;
pub mod query;
pub mod quota;
pub mod server;
pub mod sslmode;
pub mod tenant;
pub mod tls;
pub mod tools;
pub mod wal;

pub use cluster::{ClusterHandle, ClusterSettings, ClusterState, EmbeddedCluster};
pub use driver::{DatabaseSpec, Driver, LoginSpec, PgDriver};
pub use server::{ConnectionSettings, PgServer};
pub use tenant::{Drift, TenantLimits};
pub use tools::PgTools;

/// Errors of the data plane. `Display` is written for an operator reading the server log or
/// the start-up error.
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    #[error(
        "PostgreSQL server binaries not found (looked in {looked}). Install them with \
         `apt-get install postgresql` or set `postgres.bin_dir`"
    )]
    BinariesNotFound { looked: String },
    #[error("{0}")]
    Setup(String),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("postgres error: {}", pg_message(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("TLS certificate generation failed: {0}")]
    Tls(#[from] rcgen::Error),
    /// A TLS setting of a server URL that cannot be used, or a certificate that did not
    /// verify (the message names the host and says why).
    #[error("{0}")]
    ServerTls(String),
}

/// The server's own message (tokio-postgres' `Display` says only "db error").
fn pg_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

impl DataplaneError {
    pub(crate) fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        DataplaneError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}

pub type Result<T, E = DataplaneError> = std::result::Result<T, E>;
