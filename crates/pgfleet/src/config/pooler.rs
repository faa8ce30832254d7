//! `[pooler]`: the pooled endpoint's settings (pool sizes, client caps, TLS, timeouts),
//! their defaults and their validation.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[pooler]`: the pooled endpoint (a PostgreSQL proxy with transaction pooling) that
/// `pgfleet serve` runs beside the API, and `pgfleet proxy` runs on its own.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolerConfig {
    /// Run the pooler inside `pgfleet serve` (connections then get `endpoints.pooled`).
    pub enabled: bool,
    pub listen: SocketAddr,
    /// Host written into pooled connection strings; default `postgres.host`.
    pub host: Option<String>,
    /// Port written into pooled connection strings; default the listening port.
    pub public_port: Option<u16>,
    /// `transaction` (default) or `session`.
    pub mode: PoolModeConfig,
    /// Server connections per database (its connections share them; each may use all).
    pub pool_size: usize,
    /// Clients per database.
    pub max_clients: usize,
    /// Client connections of the whole proxy (counting those still in TLS, startup or
    /// login). Default: three quarters of the file descriptors left after the reserve, two
    /// per client (its socket and a server connection), at most 10000 (a value that does not
    /// fit the open-files limit is lowered, with a warning). `config print` shows the value
    /// derived for this machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_client_connections: Option<usize>,
    /// Refuse clients that do not use TLS.
    pub require_tls: bool,
    /// PEM certificate and key; default a self-signed one kept in `<data_dir>/pooler-tls`.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// Named statements kept prepared on each server connection (transaction mode); past
    /// this, the least recently used one is closed and prepared again when next used.
    pub max_prepared_statements: usize,
    /// How long a client waits for a server connection, in seconds.
    pub query_wait_timeout_secs: u64,
    /// Server connections idle this long are closed, in seconds.
    pub server_idle_timeout_secs: u64,
    /// Server connections this old are closed once their transaction ends, in seconds.
    pub server_lifetime_secs: u64,
    /// A client idle this long inside a transaction is disconnected (0: never), in seconds.
    pub idle_transaction_timeout_secs: u64,
    /// Clients must send their startup packet (after any SSLRequest and TLS handshake)
    /// within this, in seconds; silent sockets are closed.
    pub startup_timeout_secs: u64,
    /// Clients must finish TLS, startup and authentication within this, in seconds.
    pub client_login_timeout_secs: u64,
    /// How long shutdown lets clients finish their transactions, in seconds.
    pub shutdown_grace_secs: u64,
    /// Threads that run client sessions (each its own single-threaded event loop, so the
    /// relay does not bounce between the runtime's workers); 0: on the server's runtime.
    /// Sessions all run on the first until the pooler has 100 of them, then new ones go
    /// to the thread with the fewest: few clients share one loop (cheapest per
    /// transaction), many are spread.
    pub session_threads: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolModeConfig {
    #[default]
    Transaction,
    Session,
}

impl Default for PoolerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 6432)),
            host: None,
            public_port: None,
            mode: PoolModeConfig::Transaction,
            pool_size: 10,
            max_clients: 1000,
            max_client_connections: None,
            require_tls: true,
            tls_cert_file: None,
            tls_key_file: None,
            max_prepared_statements: 200,
            query_wait_timeout_secs: 120,
            server_idle_timeout_secs: 600,
            server_lifetime_secs: 3600,
            idle_transaction_timeout_secs: 0,
            startup_timeout_secs: 5,
            client_login_timeout_secs: 60,
            shutdown_grace_secs: 10,
            session_threads: 2,
        }
    }
}

impl PoolerConfig {
    /// Checks the section; the pool must fit the per-role and per-database `CONNECTION
    /// LIMIT`s, because the pooler's server connections count in both.
    pub(super) fn validate(
        &self,
        role_connection_limit: i32,
        database_connection_limit: i32,
    ) -> Result<(), ConfigError> {
        if self.pool_size == 0
            || self.max_clients == 0
            || self.max_client_connections == Some(0)
            || self.max_prepared_statements == 0
            || self.server_lifetime_secs == 0
            || self.client_login_timeout_secs == 0
            || self.startup_timeout_secs == 0
        {
            return Err(ConfigError::Invalid(
                "pooler: pool_size, max_clients, max_client_connections, max_prepared_statements, \
                 server_lifetime_secs, startup_timeout_secs and client_login_timeout_secs must be \
                 at least 1"
                    .to_string(),
            ));
        }
        if self.session_threads > 64 {
            return Err(ConfigError::Invalid(
                "pooler.session_threads must be at most 64 (0 runs sessions on the server's runtime)"
                    .to_string(),
            ));
        }
        if role_connection_limit >= 0
            && self.pool_size > usize::try_from(role_connection_limit).unwrap_or(0)
        {
            return Err(ConfigError::Invalid(format!(
                "pooler.pool_size ({}) must not exceed role_connection_limit ({})",
                self.pool_size, role_connection_limit
            )));
        }
        if self.pool_size > usize::try_from(database_connection_limit).unwrap_or(0) {
            return Err(ConfigError::Invalid(format!(
                "pooler.pool_size ({}) must not exceed database_connection_limit ({}): the \
                 pooler's server connections count in the database's limit",
                self.pool_size, database_connection_limit
            )));
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return Err(ConfigError::Invalid(
                "pooler: set both tls_cert_file and tls_key_file, or neither".to_string(),
            ));
        }
        Ok(())
    }
}
