//! Configuration, layered: built-in defaults → TOML file (`--config`) → `PGFLEET_*`
//! environment variables (`__` separates nested keys, e.g. `PGFLEET_POSTGRES__PORT`) →
//! command-line flags. Unknown keys are errors. Secrets can come from files (`*_file`) and are
//! redacted wherever the configuration is printed or logged.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};

mod tenant;
use figment::Figment;
use serde::{Deserialize, Serialize};
pub use tenant::TenantConfig;

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
    /// E-mail of the admin user created at first start.
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
    pub usage: UsageConfig,
    pub pooler: PoolerConfig,
    pub capacity: CapacityConfig,
    pub tenant: TenantConfig,
    pub sign_in: SignInConfig,
    /// Region id → servers. Empty: `us-east-1` on the embedded cluster.
    pub regions: BTreeMap<String, RegionConfig>,
}

/// `[http]`: the API's connections. Each holds a file descriptor; see
/// [`crate::descriptors`] for how the caps are derived from the open-files limit.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Connections open at once; past it a new connection is answered `503` and closed.
    /// Default: a quarter of the file descriptors left after the reserve, at most 4096 (a
    /// value that does not fit the open-files limit is lowered, with a warning).
    /// `config print` shows the value derived for this machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// A new connection whose complete request head has not arrived within this (or within
    /// `keep_alive_timeout_secs` if shorter) is closed, in seconds (a silent or trickling
    /// client would otherwise hold its descriptor).
    pub header_read_timeout_secs: u64,
    /// A kept-alive connection whose next request head has not arrived within this is
    /// closed, in seconds.
    pub keep_alive_timeout_secs: u64,
    /// A request body must arrive whole within this after the request head, in seconds
    /// (bodies are at most `body_limit_bytes`); past it the request fails with `400`.
    pub body_read_timeout_secs: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_connections: None,
            header_read_timeout_secs: 5,
            keep_alive_timeout_secs: 15,
            body_read_timeout_secs: 30,
        }
    }
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

/// Backups of tenant databases (a local directory, or S3 with `[backups.s3]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupsConfig {
    /// Where backups are kept (with S3: the staging files); default `<data_dir>/backups`.
    pub dir: Option<PathBuf>,
    /// A database is backed up when its newest backup is older than this and it changed.
    pub interval_secs: u64,
    /// Backups older than this are deleted (the API's `backupRetentionDays`).
    pub retention_days: i64,
    /// How often the scheduler looks, in seconds.
    pub check_every_secs: u64,
    /// When set, archives are kept in this S3-compatible bucket instead of `dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Config>,
}

/// `[backups.s3]`: an S3-compatible object store for backup archives
/// (`<prefix>/<database>/<backup>.dump`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    /// Endpoint of an S3-compatible server (e.g. `http://127.0.0.1:9000`); default AWS.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default = "default_s3_region")]
    pub region: String,
    /// Default: the `AWS_ACCESS_KEY_ID`… environment variables.
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub secret_access_key: Option<Secret>,
    #[serde(default)]
    pub secret_access_key_file: Option<PathBuf>,
    /// Key prefix of the archives.
    #[serde(default = "default_s3_prefix")]
    pub prefix: String,
    /// Allow a plain-HTTP endpoint (a local server).
    #[serde(default)]
    pub allow_http: bool,
}

fn default_s3_region() -> String {
    "us-east-1".to_string()
}

fn default_s3_prefix() -> String {
    "pgfleet".to_string()
}

impl S3Config {
    pub fn options(&self) -> pgfleet_domain::backup_store::S3Options {
        pgfleet_domain::backup_store::S3Options {
            bucket: self.bucket.clone(),
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self
                .secret_access_key
                .as_ref()
                .map(|s| s.expose().to_string()),
            prefix: self.prefix.clone(),
            allow_http: self.allow_http,
        }
    }
}

impl Default for BackupsConfig {
    fn default() -> Self {
        Self {
            dir: None,
            interval_secs: 86_400,
            retention_days: 7,
            check_every_secs: 60,
            s3: None,
        }
    }
}

/// The OAuth 2.0 authorization server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuthConfig {
    /// Base URL of `/authorize`, `/token`… and the tokens' `iss`; default `public_url`.
    pub issuer: Option<String>,
    /// Lifetime of access tokens, in seconds.
    pub access_token_ttl_secs: u64,
    /// Secret that encrypts the token-signing key in the metadata database; default: one
    /// generated into `<data_dir>/secrets/oauth-key-encryption-key`. Servers sharing an
    /// external metadata database must all be given the same one.
    pub key_encryption_key: Option<Secret>,
    pub key_encryption_key_file: Option<PathBuf>,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        Self {
            issuer: None,
            access_token_ttl_secs: 3600,
            key_encryption_key: None,
            key_encryption_key_file: None,
        }
    }
}

impl Config {
    /// The secret encrypting the OAuth signing key: configured, else the one kept in the
    /// data directory (created, mode 0600, at first use).
    pub fn oauth_key_secret(&self) -> anyhow::Result<pgfleet_domain::oauth_keys::KeySecret> {
        use anyhow::Context as _;
        if let Some(s) = &self.oauth.key_encryption_key {
            return Ok(pgfleet_domain::oauth_keys::KeySecret::new(
                s.expose().as_bytes().to_vec(),
            ));
        }
        let dir = self.data_dir.join("secrets");
        let path = dir.join("oauth-key-encryption-key");
        if let Ok(s) = std::fs::read_to_string(&path) {
            return Ok(pgfleet_domain::oauth_keys::KeySecret::new(
                s.trim().as_bytes().to_vec(),
            ));
        }
        crate::private_file::create_dir(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        let value = pgfleet_domain::oauth_keys::KeySecret::generate_text()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        crate::private_file::write(&path, value.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(pgfleet_domain::oauth_keys::KeySecret::new(
            value.into_bytes(),
        ))
    }
}

/// The usage sampler (operations and storage of each database, `GET …/usage`, `/metrics`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UsageConfig {
    /// Seconds between two samples of every ready database.
    pub sample_interval_secs: u64,
    /// Samples older than this many days are pruned.
    pub retention_days: u64,
}

impl Default for UsageConfig {
    fn default() -> Self {
        Self {
            sample_interval_secs: 60,
            retention_days: 400,
        }
    }
}

impl UsageConfig {
    pub fn settings(&self) -> pgfleet_domain::services::usage::UsageSettings {
        pgfleet_domain::services::usage::UsageSettings {
            interval: std::time::Duration::from_secs(self.sample_interval_secs),
            retention: std::time::Duration::from_secs(self.retention_days.saturating_mul(86_400)),
        }
    }
}

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
        }
    }
}

/// `[capacity]`: how connection slots are shared, so one workspace cannot take a whole
/// server. Each database takes `database_connection_limit` slots; a create that does not fit
/// the workspace's quota or any server of its region is refused (400) and creates nothing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CapacityConfig {
    /// Connection slots the databases of one workspace may hold together (the sum of their
    /// `CONNECTION LIMIT`s, on every server).
    pub workspace_connections: u32,
    /// Slots kept free on every server for pgfleet's own sessions (reconciler, usage
    /// sampler, backups and restores, of every replica) and your own tools. The databases
    /// placed on a server hold at most `max_connections` less this less the server's
    /// `superuser_reserved_connections` (superuser sessions take any free slot first, so both
    /// are kept out). The embedded cluster sets `superuser_reserved_connections` to 3
    /// (PostgreSQL's default) plus the metadata pool when the metadata lives there.
    pub reserved_connections: u32,
}

impl Default for CapacityConfig {
    fn default() -> Self {
        Self {
            workspace_connections: 400,
            reserved_connections: 10,
        }
    }
}

/// `[sign_in]`: password hashing bounds and sign-in throttling (the rule:
/// `pgfleet_domain::services::sign_in`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignInConfig {
    /// Passwords hashed (argon2id, about 19 MiB each) at once; default the CPU count, at
    /// most 4.
    pub hash_concurrency: usize,
    /// Sign-ins (and password changes) that may wait for a hash; past this they are answered
    /// 429 with `Retry-After`. Default 4 per hash.
    pub hash_queue: usize,
    /// Failed sign-ins of one client address (an IPv6 address by its /64) before it is
    /// blocked (1 minute, ×4 with each further failure, at most 1 hour; forgotten 24 hours
    /// after the last failure). Raise it when many users share one address.
    pub address_free_failures: u32,
    /// Addresses of reverse proxies in front of pgfleet: a request from one of them is
    /// counted against the right-most `X-Forwarded-For` address that is not one of them.
    /// Default none: the client is always the TCP peer and `X-Forwarded-For` is ignored.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Default for SignInConfig {
    fn default() -> Self {
        let d = pgfleet_domain::services::sign_in::SignInSettings::default();
        Self {
            hash_concurrency: d.hashing.concurrency,
            hash_queue: d.hashing.queue,
            address_free_failures: d.address_free_failures.unsigned_abs(),
            trusted_proxies: d.trusted_proxies,
        }
    }
}

impl SignInConfig {
    pub fn settings(&self) -> pgfleet_domain::services::sign_in::SignInSettings {
        pgfleet_domain::services::sign_in::SignInSettings {
            hashing: pgfleet_domain::hash_gate::HashGateSettings {
                concurrency: self.hash_concurrency,
                queue: self.hash_queue,
            },
            address_free_failures: i32::try_from(self.address_free_failures).unwrap_or(i32::MAX),
            trusted_proxies: self.trusted_proxies.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataConfig {
    /// External metadata database (`postgres://…`); default: the embedded cluster.
    pub url: Option<Secret>,
    pub url_file: Option<PathBuf>,
    /// Size of the metadata connection pool (default 16).
    pub max_connections: Option<u32>,
}

/// Metadata pool size when `metadata.max_connections` is not set.
pub const DEFAULT_METADATA_POOL: u32 = 16;

/// Superuser-only slots of the embedded cluster besides the metadata pool's.
pub const EMBEDDED_SUPERUSER_RESERVED: u32 = 3;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegionConfig {
    /// Display name; default the contract's name for known ids.
    pub name: Option<String>,
    /// `"embedded"` or superuser URLs `postgres://user:pass@host:port/postgres`.
    pub servers: Vec<Secret>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            data_dir: default_data_dir(),
            admin_email: "admin@localhost".to_string(),
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
            usage: UsageConfig::default(),
            pooler: PoolerConfig::default(),
            capacity: CapacityConfig::default(),
            tenant: TenantConfig::default(),
            sign_in: SignInConfig::default(),
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
        if self
            .oauth
            .key_encryption_key
            .as_ref()
            .is_some_and(|k| k.expose().len() < 16)
        {
            return Err(ConfigError::Invalid(
                "oauth.key_encryption_key must be at least 16 characters (32 random bytes, base64, are best)"
                    .to_string(),
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
        if self.oauth.access_token_ttl_secs == 0 || self.oauth.access_token_ttl_secs > 86_400 {
            return Err(ConfigError::Invalid(
                "oauth.access_token_ttl_secs must be 1 to 86400".to_string(),
            ));
        }
        if let Some(u) = &self.oauth.issuer {
            url::Url::parse(u)
                .map_err(|e| ConfigError::Invalid(format!("oauth.issuer {u:?}: {e}")))?;
        }
        if self.backups.retention_days < 1
            || self.backups.interval_secs == 0
            || self.backups.check_every_secs == 0
        {
            return Err(ConfigError::Invalid(
                "backups: retention_days must be at least 1, interval_secs and check_every_secs above 0".to_string(),
            ));
        }
        if let Some(s3) = &self.backups.s3 {
            if s3.bucket.is_empty() {
                return Err(ConfigError::Invalid(
                    "backups.s3.bucket must not be empty".to_string(),
                ));
            }
            if let Some(e) = &s3.endpoint {
                url::Url::parse(e).map_err(|err| {
                    ConfigError::Invalid(format!("backups.s3.endpoint {e:?}: {err}"))
                })?;
            }
            if s3.access_key_id.is_some() != s3.secret_access_key.is_some() {
                return Err(ConfigError::Invalid(
                    "backups.s3: set both access_key_id and secret_access_key, or neither"
                        .to_string(),
                ));
            }
        }
        if self.pooler.pool_size == 0
            || self.pooler.max_clients == 0
            || self.pooler.max_client_connections == Some(0)
            || self.pooler.max_prepared_statements == 0
            || self.pooler.server_lifetime_secs == 0
            || self.pooler.client_login_timeout_secs == 0
            || self.pooler.startup_timeout_secs == 0
        {
            return Err(ConfigError::Invalid(
                "pooler: pool_size, max_clients, max_client_connections, max_prepared_statements, \
                 server_lifetime_secs, startup_timeout_secs and client_login_timeout_secs must be \
                 at least 1"
                    .to_string(),
            ));
        }
        if self.http.max_connections == Some(0)
            || !(1..=3600).contains(&self.http.header_read_timeout_secs)
            || !(1..=3600).contains(&self.http.keep_alive_timeout_secs)
            || !(1..=3600).contains(&self.http.body_read_timeout_secs)
        {
            return Err(ConfigError::Invalid(
                "http: max_connections must be at least 1; header_read_timeout_secs, \
                 keep_alive_timeout_secs and body_read_timeout_secs 1 to 3600"
                    .to_string(),
            ));
        }
        if self.role_connection_limit >= 0
            && self.pooler.pool_size > usize::try_from(self.role_connection_limit).unwrap_or(0)
        {
            return Err(ConfigError::Invalid(format!(
                "pooler.pool_size ({}) must not exceed role_connection_limit ({})",
                self.pooler.pool_size, self.role_connection_limit
            )));
        }
        if self.pooler.pool_size > usize::try_from(self.database_connection_limit).unwrap_or(0) {
            return Err(ConfigError::Invalid(format!(
                "pooler.pool_size ({}) must not exceed database_connection_limit ({}): the \
                 pooler's server connections count in the database's limit",
                self.pooler.pool_size, self.database_connection_limit
            )));
        }
        if i64::from(self.capacity.workspace_connections)
            < i64::from(self.database_connection_limit)
        {
            return Err(ConfigError::Invalid(format!(
                "capacity.workspace_connections ({}) must be at least database_connection_limit \
                 ({}), or no workspace could create a database",
                self.capacity.workspace_connections, self.database_connection_limit
            )));
        }
        if self.needs_embedded() {
            // PostgreSQL refuses to start unless superuser_reserved_connections plus
            // max_wal_senders (10) is below max_connections; and at least one database must
            // fit beside what is kept for pgfleet.
            let su = u64::from(self.embedded_superuser_reserved());
            let kept = su + u64::from(self.capacity.reserved_connections);
            let max = u64::from(self.postgres.max_connections);
            let one_db = u64::try_from(self.database_connection_limit).unwrap_or(0);
            if su + 10 >= max || kept + one_db > max {
                return Err(ConfigError::Invalid(format!(
                    "postgres.max_connections ({max}) leaves no room for tenant databases: {su} \
                     slots are reserved for superusers (3, plus the metadata pool when the \
                     metadata lives in the embedded cluster) and capacity.reserved_connections \
                     ({}) for pgfleet, and one database needs database_connection_limit ({one_db})",
                    self.capacity.reserved_connections
                )));
            }
        }
        if self.pooler.tls_cert_file.is_some() != self.pooler.tls_key_file.is_some() {
            return Err(ConfigError::Invalid(
                "pooler: set both tls_cert_file and tls_key_file, or neither".to_string(),
            ));
        }
        if !(1..=86_400).contains(&self.usage.sample_interval_secs) || self.usage.retention_days < 1
        {
            return Err(ConfigError::Invalid(
                "usage: sample_interval_secs must be 1 to 86400, retention_days at least 1"
                    .to_string(),
            ));
        }
        self.tenant.validate()?;
        if !(1..=256).contains(&self.sign_in.hash_concurrency)
            || self.sign_in.hash_queue > 100_000
            || self.sign_in.address_free_failures == 0
        {
            return Err(ConfigError::Invalid(
                "sign_in: hash_concurrency must be 1 to 256, hash_queue at most 100000, \
                 address_free_failures at least 1"
                    .to_string(),
            ));
        }
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
    /// an administrator's `psql`), plus the metadata pool when the metadata database lives
    /// there (every API request needs it, so its sessions get slots no tenant can take).
    pub fn embedded_superuser_reserved(&self) -> u32 {
        let metadata = if self.metadata.url.is_none() {
            self.metadata
                .max_connections
                .unwrap_or(DEFAULT_METADATA_POOL)
        } else {
            0
        };
        EMBEDDED_SUPERUSER_RESERVED.saturating_add(metadata)
    }

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
    fn backups_s3_section_defaults_secret_file_and_redaction() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("s3-secret");
        std::fs::write(&secret, "very-secret-s3-key\n").unwrap();
        let file = dir.path().join("pgfleet.toml");
        std::fs::write(
            &file,
            format!(
                "[backups.s3]\nbucket = \"bk\"\nendpoint = \"http://127.0.0.1:9000\"\n\
                 access_key_id = \"AKID\"\nsecret_access_key_file = {:?}\nallow_http = true\n",
                secret.display().to_string()
            ),
        )
        .unwrap();
        let cfg = Config::load(Some(&file), &Overrides::default()).unwrap();
        let s3 = cfg.backups.s3.clone().unwrap();
        assert_eq!(s3.region, "us-east-1");
        assert_eq!(s3.prefix, "pgfleet");
        assert_eq!(
            s3.secret_access_key.as_ref().map(Secret::expose),
            Some("very-secret-s3-key")
        );
        let text = cfg.to_toml();
        assert!(
            text.contains("[backups.s3]") && text.contains("<redacted>"),
            "{text}"
        );
        assert!(!text.contains("very-secret-s3-key"), "{text}");

        std::fs::write(&file, "[backups.s3]\nbucket = \"\"\n").unwrap();
        assert!(Config::load(Some(&file), &Overrides::default()).is_err());
        std::fs::write(
            &file,
            "[backups.s3]\nbucket = \"b\"\naccess_key_id = \"A\"\n",
        )
        .unwrap();
        assert!(Config::load(Some(&file), &Overrides::default()).is_err());
        std::fs::write(&file, "[backups.s3]\nbukkit = \"b\"\n").unwrap();
        assert!(Config::load(Some(&file), &Overrides::default()).is_err());
    }

    #[test]
    fn http_section_and_pooler_startup_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgfleet.toml");
        std::fs::write(
            &file,
            "[http]\nmax_connections = 300\nheader_read_timeout_secs = 2\n\
             keep_alive_timeout_secs = 9\n[pooler]\nstartup_timeout_secs = 3\n\
             max_client_connections = 40\n",
        )
        .unwrap();
        let cfg = Config::load(Some(&file), &Overrides::default()).unwrap();
        assert_eq!(cfg.http.max_connections, Some(300));
        assert_eq!(cfg.http.header_read_timeout_secs, 2);
        assert_eq!(cfg.http.keep_alive_timeout_secs, 9);
        assert_eq!(cfg.pooler.startup_timeout_secs, 3);
        assert_eq!(cfg.pooler.max_client_connections, Some(40));
        let text = cfg.to_toml();
        assert!(text.contains("[http]") && text.contains("header_read_timeout_secs = 2"));
        // Unset caps are derived later (from the open-files limit).
        let defaults = Config::load(None, &Overrides::default()).unwrap();
        assert_eq!(defaults.http.max_connections, None);
        assert_eq!(defaults.pooler.max_client_connections, None);
        for bad in [
            "[http]\nmax_connections = 0\n",
            "[http]\nheader_read_timeout_secs = 0\n",
            "[http]\nbody_read_timeout_secs = 0\n",
            "[http]\nkeep_alive_timeout = 5\n",
            "[pooler]\nstartup_timeout_secs = 0\n",
        ] {
            std::fs::write(&file, bad).unwrap();
            assert!(
                Config::load(Some(&file), &Overrides::default()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn oauth_key_encryption_key_from_a_file_hidden_and_long_enough() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("kek");
        std::fs::write(&secret, "a key-encryption secret\n").unwrap();
        let file = dir.path().join("pgfleet.toml");
        std::fs::write(
            &file,
            format!(
                "[oauth]\nkey_encryption_key_file = {:?}\n",
                secret.display().to_string()
            ),
        )
        .unwrap();
        let cfg = Config::load(Some(&file), &Overrides::default()).unwrap();
        assert_eq!(
            cfg.oauth.key_encryption_key.as_ref().map(Secret::expose),
            Some("a key-encryption secret")
        );
        assert!(!cfg.to_toml().contains("key-encryption secret"));
        std::fs::write(&file, "[oauth]\nkey_encryption_key = \"short\"\n").unwrap();
        let e = Config::load(Some(&file), &Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("at least 16 characters"), "{e}");
    }

    #[test]
    fn capacity_section_defaults_validation_and_print() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgfleet.toml");
        std::fs::write(&file, "").unwrap();
        let cfg = Config::load(Some(&file), &Overrides::default()).unwrap();
        assert_eq!(cfg.capacity.workspace_connections, 400);
        assert_eq!(cfg.capacity.reserved_connections, 10);
        assert_eq!(cfg.database_connection_limit, 20);
        // Embedded metadata: its pool is reserved too.
        assert_eq!(cfg.embedded_superuser_reserved(), 19);
        let text = cfg.to_toml();
        assert!(
            text.contains("[capacity]")
                && text.contains("workspace_connections = 400")
                && text.contains("reserved_connections = 10"),
            "{text}"
        );

        std::fs::write(
            &file,
            "[capacity]\nworkspace_connections = 40\nreserved_connections = 5\n\
             [metadata]\nmax_connections = 4\n",
        )
        .unwrap();
        let cfg = Config::load(Some(&file), &Overrides::default()).unwrap();
        assert_eq!(cfg.capacity.workspace_connections, 40);
        assert_eq!(cfg.embedded_superuser_reserved(), 7);

        let refused = |toml: &str, words: &str| {
            std::fs::write(&file, toml).unwrap();
            let e = Config::load(Some(&file), &Overrides::default()).unwrap_err();
            assert!(e.to_string().contains(words), "{toml}: {e}");
        };
        refused("[capacity]\nworkspace_slots = 1\n", "unknown field");
        refused(
            "database_connection_limit = 30\n[capacity]\nworkspace_connections = 20\n",
            "capacity.workspace_connections (20) must be at least database_connection_limit (30)",
        );
        refused(
            "database_connection_limit = 5\n",
            "pooler.pool_size (10) must not exceed database_connection_limit (5)",
        );
        refused(
            "[postgres]\nmax_connections = 48\n",
            "postgres.max_connections (48) leaves no room for tenant databases: 19 slots",
        );
    }
}
