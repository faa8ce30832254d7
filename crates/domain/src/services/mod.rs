//! [`Services`]: the one object handlers call. Each file below adds the operations of one
//! resource.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pgfleet_dataplane::{Driver, PgServer};
use pgfleet_storage::Store;

use crate::regions::Region;
use crate::{Clock, Randomness};

mod auth;
pub mod backup_kinds;
mod backups;
mod capacity;
mod connections;
mod databases;
pub mod guard;
pub mod members;
pub mod oauth;
mod periodic;
pub mod pooler;
mod projects;
mod regions;
pub mod replicas;
mod service_tokens;
pub mod sessions;
pub mod sign_in;
pub mod usage;
mod workspaces;

/// How long another replica may accept a deleted service token (deployment guides and tests
/// name it).
pub use auth::AUTH_CACHE_TTL;

/// Settings the services need from the configuration.
#[derive(Debug, Clone)]
pub struct ServicesConfig {
    /// Base of absolute resource URLs, without a trailing slash (e.g. `http://127.0.0.1:8080`).
    pub public_url: String,
    /// Every region the API lists, available or not.
    pub regions: Vec<Region>,
    /// How long a create waits for provisioning before answering `provisioning`.
    pub provision_wait: Duration,
    /// `CONNECTION LIMIT` of each tenant database.
    pub database_connection_limit: i32,
    /// `CONNECTION LIMIT` of each connection's login role.
    pub role_connection_limit: i32,
    /// Connection slots a workspace's databases may hold together (sum of their limits).
    pub workspace_connections: i64,
    /// Slots kept free on every server for pgfleet's own sessions and tools (see
    /// [`crate::capacity::server_capacity`]).
    pub reserved_connections: u32,
    /// Limits and storage quota of every tenant database, and how often they are checked.
    pub tenant: TenantSettings,
    pub oauth: OAuthSettings,
    pub backups: BackupSettings,
    /// Set when the pooler runs: connections then carry `endpoints.pooled`.
    pub pooled: Option<pooler::PooledEndpoint>,
    /// Password hashing bounds and sign-in throttling.
    pub sign_in: sign_in::SignInSettings,
}

/// What pgfleet imposes on tenant databases (see [`guard`]).
#[derive(Debug, Clone)]
pub struct TenantSettings {
    /// Database-level `temp_file_limit` and timeouts.
    pub limits: pgfleet_dataplane::TenantLimits,
    /// Size (`pg_database_size`) past which a database is read-only; `None`: no quota.
    pub storage_quota_bytes: Option<i64>,
    /// Time between two passes of the tenant guard (drift and quota).
    pub check_every: Duration,
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            limits: pgfleet_dataplane::TenantLimits::default(),
            storage_quota_bytes: None,
            check_every: Duration::from_secs(60),
        }
    }
}

/// Backups: where they go, how often, how long they are kept.
#[derive(Debug, Clone)]
pub struct BackupSettings {
    /// Local directory: the archives of the local store; the staging files of S3.
    pub dir: std::path::PathBuf,
    /// Where archives are kept (default: the local directory `dir`).
    pub store: crate::backup_store::BackupStore,
    /// A database is backed up when its newest backup is older than this (and it changed).
    pub interval: Duration,
    pub retention_days: i64,
    /// `pg_dump`/`pg_restore`; `None` when no PostgreSQL binaries were found (backups then
    /// fail with a clear error).
    pub tools: Option<pgfleet_dataplane::PgTools>,
}

/// The authorization server's settings.
#[derive(Debug, Clone)]
pub struct OAuthSettings {
    /// `iss` of access tokens and base of the OAuth endpoints (no trailing slash).
    pub issuer: String,
    pub access_token_ttl: Duration,
    /// Encrypts the token-signing key at rest; required to start.
    pub key_secret: Option<crate::oauth_keys::KeySecret>,
}

impl ServicesConfig {
    pub fn new(public_url: impl Into<String>, regions: Vec<Region>) -> Self {
        let public_url: String = public_url.into();
        Self {
            oauth: OAuthSettings {
                issuer: public_url.trim_end_matches('/').to_string(),
                access_token_ttl: Duration::from_secs(3600),
                key_secret: None,
            },
            backups: BackupSettings {
                dir: std::path::PathBuf::from("backups"),
                store: crate::backup_store::BackupStore::Local {
                    dir: std::path::PathBuf::from("backups"),
                },
                interval: Duration::from_secs(86_400),
                retention_days: 7,
                tools: None,
            },
            public_url,
            regions,
            provision_wait: Duration::from_secs(5),
            database_connection_limit: 20,
            role_connection_limit: 50,
            workspace_connections: 400,
            reserved_connections: 10,
            tenant: TenantSettings::default(),
            pooled: None,
            sign_in: sign_in::SignInSettings::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Services {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    clock: Arc<dyn Clock>,
    rng: Randomness,
    config: ServicesConfig,
    driver: Arc<dyn Driver>,
    /// Registered server id → server.
    servers: HashMap<String, PgServer>,
    /// Region id → ids of its servers.
    region_servers: HashMap<String, Vec<String>>,
    /// Operations being executed by this process (or waiting for an `op_slots` permit).
    inflight: Mutex<HashSet<String>>,
    /// Operations executed at once by this process. Each holds a metadata connection (its
    /// resource lock) for its whole run and takes another for its steps: unbounded, a burst
    /// of operations took the whole pool and API requests waited out the acquire timeout
    /// (503). See [`op_slots`].
    op_slots: tokio::sync::Semaphore,
    /// Wakes the reconciler loop.
    kick: tokio::sync::Notify,
    auth_cache: auth::AuthCache,
    views: ViewCache,
    signer: crate::oauth_keys::Signer,
    write_hook: std::sync::OnceLock<WriteHook>,
    pooler_stats: std::sync::OnceLock<pooler::PoolerStats>,
    /// Every argon2 call on a secret someone sent goes through it.
    hash_gate: crate::hash_gate::HashGate,
    /// Random per process: names the usage source of pooler-fed counters, which restart
    /// from zero with the process.
    boot_tag: String,
    /// Random per process: names this replica as the holder of periodic jobs' leases
    /// (see [`crate::lease`]).
    replica_id: String,
}

/// How many operations a process runs at once with a metadata pool of `pool` connections:
/// a quarter of it (each operation may hold two), at least one, so operations take at most
/// half the pool and the API always has the rest.
fn op_slots(pool: u32) -> usize {
    usize::try_from(pool / 4).unwrap_or(1).max(1)
}

/// Called after every write of this process (see [`Services::on_write`]).
pub(crate) struct WriteHook(Box<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for WriteHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteHook")
    }
}

/// Recently built database views, for the hottest read (`GET /v1/databases/{id}`).
///
/// The rule: every write made through this process (an API request that is not a GET, a
/// reconciler step) bumps `generation` after it commits, and an entry is served only while
/// the generation it was filled under is current and it is younger than [`VIEW_TTL`]. A
/// reader records the generation before it reads the store, so a fill that raced with a
/// write is never served. Another replica's writes are seen within the TTL.
#[derive(Debug, Default)]
pub(crate) struct ViewCache {
    generation: std::sync::atomic::AtomicU64,
    entries: Mutex<HashMap<String, CachedView>>,
}

#[derive(Debug, Clone)]
struct CachedView {
    workspace_id: String,
    view: pgfleet_api_types::database::Database,
    generation: u64,
    at: std::time::Instant,
}

/// How long a cached view may be served without a write of this process invalidating it.
pub const VIEW_TTL: Duration = Duration::from_secs(1);

impl ViewCache {
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    fn bump(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        if let Ok(mut e) = self.entries.lock() {
            e.clear();
        }
    }

    pub(crate) fn get(
        &self,
        workspace_id: &str,
        id: &str,
    ) -> Option<pgfleet_api_types::database::Database> {
        let g = self.generation();
        let e = self.entries.lock().ok()?;
        e.get(id)
            .filter(|c| {
                c.generation == g && c.workspace_id == workspace_id && c.at.elapsed() < VIEW_TTL
            })
            .map(|c| c.view.clone())
    }

    pub(crate) fn put(
        &self,
        workspace_id: &str,
        view: pgfleet_api_types::database::Database,
        generation: u64,
    ) {
        if generation != self.generation() {
            return;
        }
        if let Ok(mut e) = self.entries.lock() {
            if e.len() >= 10_000 {
                e.clear();
            }
            e.insert(
                view.id.clone(),
                CachedView {
                    workspace_id: workspace_id.to_string(),
                    view,
                    generation,
                    at: std::time::Instant::now(),
                },
            );
        }
    }
}

impl Services {
    /// Builds the services and registers every configured Postgres server in the metadata
    /// store (a server that does not answer now is still registered; `/readyz` reports it).
    pub async fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        rng: Randomness,
        config: ServicesConfig,
        driver: Arc<dyn Driver>,
    ) -> crate::Result<Self> {
        let mut config = config;
        while config.public_url.ends_with('/') {
            config.public_url.pop();
        }
        let mut servers = HashMap::new();
        let mut region_servers: HashMap<String, Vec<String>> = HashMap::new();
        for region in &config.regions {
            for server in &region.servers {
                let new_id = crate::ids::new_id(crate::ids::SERVER, &rng);
                let row = pgfleet_storage::servers::upsert(
                    store.pool(),
                    &new_id,
                    &region.id,
                    &server.key,
                    clock.now(),
                )
                .await?;
                if let Err(e) = driver.harden_server(server).await {
                    tracing::warn!(server = %server.key, error = %e, "could not prepare a Postgres server");
                }
                region_servers
                    .entry(region.id.clone())
                    .or_default()
                    .push(row.id.clone());
                servers.insert(row.id, server.clone());
            }
        }
        let key_secret = config.oauth.key_secret.as_ref().ok_or_else(|| {
            crate::DomainError::internal("no key-encryption secret for the OAuth signing key")
        })?;
        let signer =
            crate::oauth_keys::Signer::load_or_create(&store, clock.now(), key_secret).await?;
        let boot_tag = crate::ids::new_id("boot", &rng);
        let replica_id = crate::ids::new_id("replica", &rng);
        let hash_gate = crate::hash_gate::HashGate::start(config.sign_in.hashing)?;
        while config.oauth.issuer.ends_with('/') {
            config.oauth.issuer.pop();
        }
        let op_slots =
            tokio::sync::Semaphore::new(op_slots(store.pool().options().get_max_connections()));
        let services = Self {
            inner: Arc::new(Inner {
                op_slots,
                signer,
                store,
                clock,
                rng,
                config,
                driver,
                servers,
                region_servers,
                inflight: Mutex::new(HashSet::new()),
                kick: tokio::sync::Notify::new(),
                auth_cache: auth::AuthCache::default(),
                views: ViewCache::default(),
                write_hook: std::sync::OnceLock::new(),
                pooler_stats: std::sync::OnceLock::new(),
                hash_gate,
                boot_tag,
                replica_id,
            }),
        };
        services.record_server_capacities().await;
        Ok(services)
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn clock(&self) -> &dyn Clock {
        self.inner.clock.as_ref()
    }

    pub fn rng(&self) -> &Randomness {
        &self.inner.rng
    }

    pub fn config(&self) -> &ServicesConfig {
        &self.inner.config
    }

    pub fn regions(&self) -> &[Region] {
        &self.inner.config.regions
    }

    pub(crate) fn driver(&self) -> &dyn Driver {
        self.inner.driver.as_ref()
    }

    pub(crate) fn server(&self, id: Option<&str>) -> crate::Result<&PgServer> {
        id.and_then(|id| self.inner.servers.get(id)).ok_or_else(|| {
            crate::DomainError::internal(format!("database placed on unknown server {id:?}"))
        })
    }

    pub(crate) fn region_server_ids(&self, region: &str) -> &[String] {
        self.inner
            .region_servers
            .get(region)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub(crate) fn inflight(&self) -> &Mutex<HashSet<String>> {
        &self.inner.inflight
    }

    pub(crate) fn op_slots(&self) -> &tokio::sync::Semaphore {
        &self.inner.op_slots
    }

    pub(crate) fn auth_cache(&self) -> &auth::AuthCache {
        &self.inner.auth_cache
    }

    pub(crate) fn signer(&self) -> &crate::oauth_keys::Signer {
        &self.inner.signer
    }

    /// The bound on password hashing (see [`crate::hash_gate`]).
    pub fn hash_gate(&self) -> &crate::hash_gate::HashGate {
        &self.inner.hash_gate
    }

    pub(crate) fn view_cache(&self) -> &ViewCache {
        &self.inner.views
    }

    /// Call after any committed write: cached reads are no longer current.
    pub fn note_write(&self) {
        self.inner.views.bump();
        if let Some(hook) = self.inner.write_hook.get() {
            (hook.0)();
        }
    }

    pub(crate) fn boot_tag(&self) -> &str {
        &self.inner.boot_tag
    }

    /// This process's id among the replicas sharing the metadata store (random at start;
    /// the holder of a periodic job's lease in `leases`).
    pub fn replica_id(&self) -> &str {
        &self.inner.replica_id
    }

    pub(crate) fn kick(&self) -> &tokio::sync::Notify {
        &self.inner.kick
    }

    /// Readiness: the metadata store and every Postgres server of every region answer.
    /// Returns what was checked, or what failed.
    pub async fn readiness(&self) -> Result<Vec<String>, Vec<String>> {
        let mut ok = Vec::new();
        let mut failed = Vec::new();
        match tokio::time::timeout(Duration::from_secs(3), self.store().ping()).await {
            Ok(Ok(())) => ok.push("metadata".to_string()),
            Ok(Err(e)) => failed.push(format!("metadata store: {e}")),
            Err(_) => failed.push("metadata store: timed out".to_string()),
        }
        for region in self.regions() {
            for server in &region.servers {
                let what = format!("region {} server {}", region.id, server.key);
                match tokio::time::timeout(Duration::from_secs(3), server.ping()).await {
                    Ok(Ok(())) => ok.push(what),
                    Ok(Err(e)) => failed.push(format!("{what}: {e}")),
                    Err(_) => failed.push(format!("{what}: timed out")),
                }
            }
        }
        if failed.is_empty() {
            Ok(ok)
        } else {
            Err(failed)
        }
    }

    /// Absolute URL of an API path (`/v1/...`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.inner.config.public_url, path)
    }
}

pub(crate) use crate::names::validate_name;

/// `logicalId`: 1 to 255 printable characters (no spaces, nothing [`crate::names`] refuses).
pub(crate) fn validate_logical_id(id: &str) -> crate::Result<()> {
    crate::names::validate_visible("logicalId", id)?;
    if id.is_empty() || id.len() > 255 || id.chars().any(char::is_whitespace) {
        return Err(crate::DomainError::bad_request(
            "logicalId must be 1 to 255 characters without spaces",
        ));
    }
    Ok(())
}
