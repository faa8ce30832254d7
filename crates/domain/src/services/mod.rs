//! [`Services`]: the one object handlers call, split by capability. `Services` holds the
//! shared context ([`ctx`]) and hands out one small struct per capability, each in its own
//! module with its own tests: [`projects`], [`databases`], [`connections`], [`backups`],
//! [`usage`], [`service_tokens`] (service tokens and the authentication of API credentials),
//! [`oauth`] (the authorization server), [`sessions`] (console sign-in and sessions),
//! [`members`], [`workspaces`], [`replicas`], [`regions`], [`pooler`], [`accelerate`] (the
//! `prisma+postgres://` endpoint's keys and routes), [`pitr`] (point-in-time recovery: windows,
//! archiving job and health), [`claimable`] (temporary databases of the `create-db` CLI,
//! their claim and their reaper), [`sql`] (an agent's SQL against a tenant database),
//! [`webhooks`] (signed webhooks: endpoints, the event outbox and its delivery worker) and
//! the tenant [`guard`]. This module owns
//! the configuration the services need ([`ServicesConfig`]). No resource URL is built here:
//! views leave `url` empty ([`unlocated`]) for http to fill.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use pgfleet_dataplane::Driver;
use pgfleet_storage::Store;

use crate::regions::Region;
use crate::{Clock, Randomness};

pub mod accelerate;
mod auth;
pub mod backup_kinds;
pub mod backups;
pub(crate) mod capacity;
pub mod claimable;
pub mod connections;
pub(crate) mod ctx;
pub mod databases;
pub mod guard;
pub mod members;
pub mod oauth;
mod periodic;
pub mod pitr;
pub mod pooler;
pub mod projects;
pub mod regions;
pub mod replicas;
pub mod service_tokens;
pub mod sessions;
pub mod sign_in;
pub mod sql;
pub mod usage;
pub mod webhooks;
pub mod workspaces;

pub use accelerate::Accelerate;
pub use backups::Backups;
pub(crate) use capacity::Capacity;
pub use claimable::Claimable;
pub use connections::Connections;
pub(crate) use ctx::Ctx;
pub use ctx::VIEW_TTL;
pub use databases::Databases;
pub use guard::TenantGuard;
pub use members::Members;
pub use oauth::OAuth;
pub use pitr::Pitr;
pub use pooler::Pooler;
pub use projects::Projects;
pub use regions::Regions;
pub use replicas::Replicas;
pub use service_tokens::Tokens;
pub use sessions::Sessions;
pub use usage::Usage;
pub use webhooks::Webhooks;
pub use workspaces::Workspaces;

/// How long another replica may accept a deleted service token (deployment guides and tests
/// name it).
pub use auth::AUTH_CACHE_TTL;

/// The `url` of a wire type as the services return it: empty. Where a resource lives is an
/// HTTP matter: `pgfleet_http::located` fills every `url` from the resource's id.
pub(crate) fn unlocated() -> String {
    String::new()
}

/// Settings the services need from the configuration.
#[derive(Debug, Clone)]
pub struct ServicesConfig {
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
    /// Continuous archiving and point-in-time restores (`[pitr]`): no archive, no window.
    pub pitr: pitr::PitrSettings,
    /// Set when the pooler runs: connections then carry `endpoints.pooled`.
    pub pooled: Option<pooler::PooledEndpoint>,
    /// Set when the `prisma+postgres://` endpoint runs: connections then carry
    /// `endpoints.accelerate`, and creates and rotations issue an API key.
    pub accelerate: Option<accelerate::AccelerateEndpoint>,
    /// Password hashing bounds and sign-in throttling.
    pub sign_in: sign_in::SignInSettings,
    /// Claimable temporary databases (`[claimable]`, off by default).
    pub claimable: claimable::ClaimableSettings,
    /// Caps of the MCP SQL tools.
    pub sql: sql::SqlSettings,
    /// Webhook endpoints and their delivery (`[webhooks]`).
    pub webhooks: webhooks::WebhookSettings,
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
    /// Defaults, with `issuer` the base of the OAuth endpoints and the tokens' `iss` (the
    /// server's public address unless configured otherwise).
    pub fn new(issuer: impl Into<String>, regions: Vec<Region>) -> Self {
        let issuer: String = issuer.into();
        Self {
            oauth: OAuthSettings {
                issuer: issuer.trim_end_matches('/').to_string(),
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
            pitr: pitr::PitrSettings::default(),
            regions,
            provision_wait: Duration::from_secs(5),
            database_connection_limit: 20,
            role_connection_limit: 50,
            workspace_connections: 400,
            reserved_connections: 10,
            tenant: TenantSettings::default(),
            pooled: None,
            accelerate: None,
            sign_in: sign_in::SignInSettings::default(),
            claimable: claimable::ClaimableSettings::default(),
            sql: sql::SqlSettings::default(),
            webhooks: webhooks::WebhookSettings::default(),
        }
    }
}

/// The one object handlers call: a cheap clone of the shared [`Ctx`], with one accessor per
/// capability (`services.backups().create(…)`): everything about backups is in
/// [`backups`], about OAuth in [`oauth`], and so on.
#[derive(Debug, Clone)]
pub struct Services {
    ctx: Arc<Ctx>,
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
        let mut config = config;
        while config.oauth.issuer.ends_with('/') {
            config.oauth.issuer.pop();
        }
        let services = Self {
            ctx: Arc::new(Ctx::new(
                store,
                clock,
                rng,
                config,
                driver,
                servers,
                region_servers,
                signer,
                hash_gate,
                boot_tag,
                replica_id,
            )),
        };
        services.capacity().record_server_capacities().await;
        Ok(services)
    }

    /// Readiness: the metadata store and every Postgres server of every region answer.
    /// Returns what was checked, or what failed; the WAL archive of each archived server is
    /// listed among the checks (`…: ok` or `…: WARNING <problems>`) without failing them.
    pub async fn readiness(&self) -> Result<Vec<String>, Vec<String>> {
        let mut ok = Vec::new();
        let mut failed = Vec::new();
        match tokio::time::timeout(Duration::from_secs(3), self.store().ping()).await {
            Ok(Ok(())) => ok.push("metadata".to_string()),
            Ok(Err(e)) => failed.push(format!("metadata store: {e}")),
            Err(_) => failed.push("metadata store: timed out".to_string()),
        }
        for region in self.ctx.configured_regions() {
            for server in &region.servers {
                let what = format!("region {} server {}", region.id, server.key);
                match tokio::time::timeout(Duration::from_secs(3), server.ping()).await {
                    Ok(Ok(())) => ok.push(what),
                    Ok(Err(e)) => failed.push(format!("{what}: {e}")),
                    Err(_) => failed.push(format!("{what}: timed out")),
                }
            }
        }
        // Archiving problems are reported, not a reason to take the replica out of service:
        // requests are served whatever the archive's state.
        if let Ok(Ok(archives)) =
            tokio::time::timeout(Duration::from_secs(3), self.pitr().health()).await
        {
            for a in archives {
                let what = format!("archive of server {}", a.server);
                if a.problems.is_empty() {
                    ok.push(format!("{what}: ok"));
                } else {
                    ok.push(format!("{what}: WARNING {}", a.problems.join("; ")));
                }
            }
        }
        if failed.is_empty() {
            Ok(ok)
        } else {
            Err(failed)
        }
    }

    pub fn store(&self) -> &Store {
        self.ctx.store()
    }

    pub fn clock(&self) -> &dyn Clock {
        self.ctx.clock()
    }

    pub fn rng(&self) -> &Randomness {
        self.ctx.rng()
    }

    pub fn config(&self) -> &ServicesConfig {
        self.ctx.config()
    }

    /// The bound on password hashing (see [`crate::hash_gate`]).
    pub fn hash_gate(&self) -> &crate::hash_gate::HashGate {
        self.ctx.hash_gate()
    }

    /// Call after any committed write: cached reads are no longer current.
    pub fn note_write(&self) {
        self.ctx.note_write();
    }

    /// This process's id among the replicas sharing the metadata store (random at start;
    /// the holder of a periodic job's lease in `leases`).
    pub fn replica_id(&self) -> &str {
        self.ctx.replica_id()
    }

    /// Waits until no operation runs in this process (at most `limit`), so a shutdown does
    /// not cut one off between its steps and its bookkeeping.
    pub async fn wait_idle(&self, limit: Duration) {
        self.ctx.wait_idle(limit).await;
    }

    /// The reconciler's background loop: runs due operations until `shutdown` turns true.
    pub fn spawn_reconciler(
        &self,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        self.ctx.spawn_reconciler(shutdown)
    }

    /// The access decisions: what a caller may do to a workspace.
    pub fn access(&self) -> crate::access::Access<'_> {
        crate::access::Access { ctx: &self.ctx }
    }

    pub fn projects(&self) -> Projects<'_> {
        self.ctx.projects()
    }

    pub fn databases(&self) -> Databases<'_> {
        self.ctx.databases()
    }

    pub fn connections(&self) -> Connections<'_> {
        self.ctx.connections()
    }

    pub fn backups(&self) -> Backups<'_> {
        self.ctx.backups()
    }

    pub fn usage(&self) -> Usage<'_> {
        self.ctx.usage()
    }

    pub fn tokens(&self) -> Tokens<'_> {
        self.ctx.tokens()
    }

    pub fn oauth(&self) -> OAuth<'_> {
        self.ctx.oauth()
    }

    pub fn sessions(&self) -> Sessions<'_> {
        self.ctx.sessions()
    }

    pub fn members(&self) -> Members<'_> {
        self.ctx.members()
    }

    pub fn workspaces(&self) -> Workspaces<'_> {
        self.ctx.workspaces()
    }

    pub fn replicas(&self) -> Replicas<'_> {
        self.ctx.replicas()
    }

    pub fn regions(&self) -> Regions<'_> {
        self.ctx.regions()
    }

    pub fn pooler(&self) -> Pooler<'_> {
        self.ctx.pooler()
    }

    pub fn pitr(&self) -> Pitr<'_> {
        self.ctx.pitr()
    }

    pub fn accelerate(&self) -> Accelerate<'_> {
        self.ctx.accelerate()
    }

    pub fn guard(&self) -> TenantGuard<'_> {
        self.ctx.guard()
    }

    pub fn sql(&self) -> sql::Sql<'_> {
        sql::Sql { ctx: &self.ctx }
    }

    pub(crate) fn capacity(&self) -> Capacity<'_> {
        self.ctx.capacity()
    }

    pub fn claimable(&self) -> Claimable<'_> {
        self.ctx.claimable()
    }

    pub fn webhooks(&self) -> Webhooks<'_> {
        Webhooks { ctx: &self.ctx }
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
