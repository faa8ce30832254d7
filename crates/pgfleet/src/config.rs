//! Configuration, layered: built-in defaults → TOML file (`--config`) → `PGFLEET_*`
//! environment variables (`__` separates nested keys, e.g. `PGFLEET_POSTGRES__PORT`) →
//! command-line flags. Unknown keys are errors. Secrets can come from files (`*_file`) and are
//! redacted wherever the configuration is printed or logged.
//!
//! This module owns the top-level keys, loading and the checks that span sections; each
//! section with limits of its own (`[http]`, `[pooler]`, `[accelerate]`, `[capacity]`,
//! `[backups]`, `[pitr]`, `[usage]`, `[oauth]`, `[tenant]`, `[claimable]`) lives in a submodule beside its defaults and
//! checks, re-exported here.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

mod accelerate;
mod backups;
mod capacity;
mod claimable;
mod http;
mod mcp;
mod oauth;
mod pitr;
mod pooler;
mod sign_in;
mod tenant;
mod usage;
mod webhooks;

pub use accelerate::AccelerateConfig;
pub use backups::{BackupsConfig, S3Config};
pub use capacity::{CapacityConfig, EMBEDDED_SUPERUSER_RESERVED};
pub use claimable::ClaimableConfig;
pub use http::HttpConfig;
pub use mcp::McpConfig;
pub use oauth::OAuthConfig;
pub use pitr::{ArchivedServerConfig, PitrConfig, ServerPlace};
pub use pooler::{PoolModeConfig, PoolerConfig};
pub use sign_in::SignInConfig;
pub use tenant::TenantConfig;
pub use usage::UsageConfig;
pub use webhooks::WebhooksConfig;

/// A secret value: never shown by `Debug` or when the configuration is printed.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

/// The admin's e-mail when none is configured. A syntactically valid address (the
/// reserved `.localhost` TLD): e-mail validators, as some API clients run, refuse a bare
/// `admin@localhost`.
pub const DEFAULT_ADMIN_EMAIL: &str = "admin@pgfleet.localhost";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// Base of the absolute URLs in responses; default `http://<listen>`.
    pub public_url: Option<String>,
    /// Where pgfleet keeps its state (the embedded cluster, bootstrap.txt).
    pub data_dir: PathBuf,
    /// E-mail of the admin user created at first start (default [`DEFAULT_ADMIN_EMAIL`]).
    /// Read only by the first start of a metadata store: an existing admin keeps the
    /// e-mail it was created with whatever this says later.
    pub admin_email: String,
    /// Service token to create at first start instead of a random one.
    pub bootstrap_token: Option<Secret>,
    pub bootstrap_token_file: Option<PathBuf>,
    pub log_format: LogFormat,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// How long in-flight requests may finish after a shutdown signal, in seconds.
    pub shutdown_grace_secs: u64,
    /// How long a create waits for its database before answering `provisioning`, in seconds.
    pub provision_wait_secs: f64,
    /// `CONNECTION LIMIT` of each tenant database: its direct connections and the pooler's
    /// server connections together. Also the connection slots each new database takes from
    /// its workspace's quota and its server's capacity (see `[capacity]`).
    pub database_connection_limit: i32,
    /// `CONNECTION LIMIT` of each connection's role.
    pub role_connection_limit: i32,
    /// Test-only: comma-separated failpoints where the process aborts (see `pgfleet_domain::failpoint`).
    pub failpoints: String,
    pub http: HttpConfig,
    pub postgres: PostgresConfig,
    pub metadata: MetadataConfig,
    pub oauth: OAuthConfig,
    pub backups: BackupsConfig,
    pub pitr: PitrConfig,
    pub usage: UsageConfig,
    pub pooler: PoolerConfig,
    pub accelerate: AccelerateConfig,
    pub capacity: CapacityConfig,
    pub tenant: TenantConfig,
    pub sign_in: SignInConfig,
    pub claimable: ClaimableConfig,
    /// Caps of the MCP server's SQL tools.
    pub mcp: McpConfig,
    pub webhooks: WebhooksConfig,
    /// Region id → servers. Empty: `us-east-1` on the embedded cluster.
    pub regions: BTreeMap<String, RegionConfig>,
}

/// The embedded cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresConfig {
    /// Directory of `postgres` and `initdb`; default `pg_config --bindir`, else the newest
    /// `/usr/lib/postgresql/*/bin`.
    pub bin_dir: Option<PathBuf>,
    /// TCP port; default: chosen free at first start and kept in the data directory.
    pub port: Option<u16>,
    pub listen_addresses: String,
    /// Host written into connection strings.
    pub host: String,
    /// The embedded cluster's `max_connections` (1000). Every tenant database holds
    /// `database_connection_limit` of these slots whether it uses them or not (see
    /// `[capacity]`), so this bounds how many databases the cluster takes; an idle slot costs
    /// PostgreSQL little shared memory.
    pub max_connections: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataConfig {
    /// External metadata database (`postgres://…`); default: the embedded cluster. May list
    /// several hosts, libpq style (`postgres://u:p@h1:5432,h2:5433/db`), tried in order; with
    /// `?target_session_attrs=read-write` only a writable primary is used, so a promoted
    /// standby is found after a failover without a restart. TLS as libpq:
    /// `sslmode=disable|allow|prefer|require|verify-ca|verify-full` (default `prefer`) and
    /// `sslrootcert=<CA file>` (needed by `verify-ca`/`verify-full`; with `require` it makes
    /// the chain verified). A certificate that does not verify stops the start with an error
    /// naming the host.
    pub url: Option<Secret>,
    pub url_file: Option<PathBuf>,
    /// Size of the metadata connection pool (default 16). A quarter of it (at least one) is
    /// how many operations (creates, backups, restores…) this replica runs at once: each may
    /// hold two connections, so API requests always have half the pool.
    pub max_connections: Option<u32>,
    /// Seconds a request waits for a metadata connection before it is answered 503 with
    /// `Retry-After` (default 3, 1..=60): while the store restarts or fails over, requests
    /// fail fast instead of hanging.
    pub acquire_timeout_secs: u64,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        Self {
            url: None,
            url_file: None,
            max_connections: None,
            acquire_timeout_secs: 3,
        }
    }
}

/// Metadata pool size when `metadata.max_connections` is not set.
pub const DEFAULT_METADATA_POOL: u32 = 16;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegionConfig {
    /// Display name; default the contract's name for known ids.
    pub name: Option<String>,
    /// `"embedded"` or superuser URLs `postgres://user:pass@host:port/postgres`, with TLS
    /// settings as libpq reads them (`sslmode`, `sslrootcert`; see `metadata.url`) used by
    /// pgfleet's own sessions, `pg_dump`/`pg_restore` (`PGSSLMODE`, `PGSSLROOTCERT`) and the
    /// pooler's server connections.
    pub servers: Vec<Secret>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            data_dir: default_data_dir(),
            admin_email: DEFAULT_ADMIN_EMAIL.to_string(),
            bootstrap_token: None,
            bootstrap_token_file: None,
            log_format: LogFormat::Text,
            body_limit_bytes: 1 << 20,
            shutdown_grace_secs: 10,
            provision_wait_secs: 5.0,
            database_connection_limit: 20,
            role_connection_limit: 50,
            failpoints: String::new(),
            http: HttpConfig::default(),
            postgres: PostgresConfig::default(),
            metadata: MetadataConfig::default(),
            oauth: OAuthConfig::default(),
            backups: BackupsConfig::default(),
            pitr: PitrConfig::default(),
            usage: UsageConfig::default(),
            mcp: McpConfig::default(),
            pooler: PoolerConfig::default(),
            accelerate: AccelerateConfig::default(),
            capacity: CapacityConfig::default(),
            tenant: TenantConfig::default(),
            sign_in: SignInConfig::default(),
            claimable: ClaimableConfig::default(),
            webhooks: WebhooksConfig::default(),
            regions: BTreeMap::new(),
        }
    }
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            bin_dir: None,
            port: None,
            listen_addresses: "127.0.0.1".to_string(),
            host: "localhost".to_string(),
            max_connections: 1000,
        }
    }
}

/// `$XDG_DATA_HOME/pgfleet`, else `~/.local/share/pgfleet`; as root `/var/lib/pgfleet`,
/// because root's home is closed to the `postgres` user that runs the cluster.
pub fn default_data_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("pgfleet");
    }
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/pgfleet");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/share/pgfleet"),
        None => PathBuf::from("pgfleet-data"),
    }
}

/// Flag values that override everything else (only the ones given).
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
}

/// Environment variables with the prefix that are not configuration keys.
const NOT_CONFIG: &[&str] = &["TOKEN", "API_URL", "CONFIG"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} not found")]
    FileMissing(String),
    #[error("invalid configuration: {0}")]
    Figment(Box<figment::Error>),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Loads the layered configuration.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::FileMissing(path.display().to_string()));
            }
            fig = fig.merge(Toml::file_exact(path));
        }
        fig = fig
            .merge(
                Env::prefixed("PGFLEET_")
                    .split("__")
                    .ignore(NOT_CONFIG)
                    .lowercase(true),
            )
            .merge(Serialized::globals(overrides));
        let mut cfg: Config = fig
            .extract()
            .map_err(|e| ConfigError::Figment(Box::new(e)))?;
        cfg.resolve_files()?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn resolve_files(&mut self) -> Result<(), ConfigError> {
        let read = |p: &Path, key: &str| {
            std::fs::read_to_string(p)
                .map(|s| Secret::new(s.trim()))
                .map_err(|e| {
                    ConfigError::Invalid(format!("{key}: cannot read {}: {e}", p.display()))
                })
        };
        if let Some(p) = &self.bootstrap_token_file {
            self.bootstrap_token = Some(read(p, "bootstrap_token_file")?);
        }
        if let Some(p) = &self.metadata.url_file {
            self.metadata.url = Some(read(p, "metadata.url_file")?);
        }
        if let Some(p) = &self.oauth.key_encryption_key_file {
            self.oauth.key_encryption_key = Some(read(p, "oauth.key_encryption_key_file")?);
        }
        if let Some(s3) = &mut self.backups.s3 {
            if let Some(p) = &s3.secret_access_key_file {
                s3.secret_access_key = Some(read(p, "backups.s3.secret_access_key_file")?);
            }
        }
        Ok(())
    }

    /// Checks the configuration and fills derived defaults (the embedded `us-east-1` region
    /// when no region is configured). Idempotent; `server::start` calls it too.
    pub fn validate(&mut self) -> Result<(), ConfigError> {
        self.oauth.validate()?;
        if !(1..=60).contains(&self.metadata.acquire_timeout_secs) {
            return Err(ConfigError::Invalid(
                "metadata.acquire_timeout_secs must be between 1 and 60".to_string(),
            ));
        }
        if self.regions.is_empty() {
            if self.metadata.url.is_some() {
                return Err(ConfigError::Invalid(
                    "metadata.url is set but no region has servers; add regions.<id>.servers = [\"postgres://…\"] \
                     (or [\"embedded\"])"
                        .to_string(),
                ));
            }
            self.regions.insert(
                "us-east-1".to_string(),
                RegionConfig {
                    name: None,
                    servers: vec![Secret::new("embedded")],
                },
            );
        }
        for (id, r) in &self.regions {
            if id.is_empty()
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(ConfigError::Invalid(format!(
                    "region id {id:?} must be lowercase letters, digits and dashes"
                )));
            }
            for s in &r.servers {
                let v = s.expose();
                if v != "embedded"
                    && !(v.starts_with("postgres://") || v.starts_with("postgresql://"))
                {
                    return Err(ConfigError::Invalid(format!(
                        "regions.{id}.servers: each entry is \"embedded\" or a postgres:// URL"
                    )));
                }
            }
        }
        for srv in &self.pitr.servers {
            let listed = self
                .regions
                .values()
                .any(|r| r.servers.iter().any(|s| s == &srv.url));
            if !listed || srv.url.expose() == "embedded" {
                return Err(ConfigError::Invalid(format!(
                    "pitr.servers: the server of stanza {:?} is not a postgres:// server of regions.*.servers",
                    srv.stanza
                )));
            }
            if srv.host.is_some() && self.backups.s3.is_none() {
                return Err(ConfigError::Invalid(format!(
                    "pitr.servers (stanza {:?}): a server on another machine needs the S3 repository ([backups.s3]): its own archive-push writes the WAL there and cannot reach a directory on this machine",
                    srv.stanza
                )));
            }
        }
        if let Some(u) = &self.public_url {
            url::Url::parse(u)
                .map_err(|e| ConfigError::Invalid(format!("public_url {u:?}: {e}")))?;
        }
        if !(0.0..=300.0).contains(&self.provision_wait_secs) {
            return Err(ConfigError::Invalid(
                "provision_wait_secs must be between 0 and 300".to_string(),
            ));
        }
        if self.database_connection_limit < 1 || self.role_connection_limit < 1 {
            return Err(ConfigError::Invalid(
                "connection limits must be at least 1".to_string(),
            ));
        }
        for point in self
            .failpoints
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            if !pgfleet_domain::failpoint::ALL.contains(&point) {
                return Err(ConfigError::Invalid(format!(
                    "unknown failpoint {point:?}; known: {}",
                    pgfleet_domain::failpoint::ALL.join(", ")
                )));
            }
        }
        self.backups.validate()?;
        self.pitr.validate()?;
        self.pooler
            .validate(self.role_connection_limit, self.database_connection_limit)?;
        self.accelerate.validate()?;
        self.http.validate()?;
        self.validate_capacity()?;
        self.usage.validate()?;
        self.mcp.validate()?;
        self.tenant.validate()?;
        self.sign_in.validate()?;
        self.claimable.validate()?;
        self.webhooks.validate()?;
        if self.body_limit_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "body_limit_bytes must be at least 1024".to_string(),
            ));
        }
        Ok(())
    }

    /// True when the embedded cluster must run: it holds the metadata or serves a region.
    pub fn needs_embedded(&self) -> bool {
        self.metadata.url.is_none()
            || self
                .regions
                .values()
                .any(|r| r.servers.iter().any(|s| s.expose() == "embedded"))
    }

    /// `superuser_reserved_connections` of the embedded cluster: PostgreSQL's default (3, for
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self)
            .unwrap_or_else(|e| format!("# cannot render configuration: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_acquire_timeout_defaults_to_3_is_printed_and_bounded() {
        let mut c = Config::default();
        assert_eq!(c.metadata.acquire_timeout_secs, 3);
        let printed = toml::to_string(&c).unwrap_or_default();
        assert!(printed.contains("acquire_timeout_secs = 3"), "{printed}");
        c.metadata.acquire_timeout_secs = 0;
        assert!(c.validate().is_err());
        c.metadata.acquire_timeout_secs = 61;
        assert!(c.validate().is_err());
    }
}
