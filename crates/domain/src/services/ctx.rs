//! [`Ctx`]: what every capability of [`super::Services`] shares (the metadata store, the
//! driver, clock and randomness, the configuration, the caches, the signing key, the
//! reconciler's bookkeeping), and the caches themselves ([`ViewCache`]). Capabilities hold
//! an `&Arc<Ctx>`: the `Arc` lets the ones that start background work (an operation run in
//! the background, a periodic job) hand an owned context to the task.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pgfleet_dataplane::{Driver, PgServer};
use pgfleet_storage::Store;

use super::{
    accelerate::Accelerate, auth, pooler, Backups, Capacity, Connections, Databases, Members,
    OAuth, Pooler, Projects, Regions, Replicas, ServicesConfig, Sessions, TenantGuard, Tokens,
    Usage, Workspaces,
};
use crate::regions::Region;
use crate::{Clock, Randomness};

#[derive(Debug)]
pub(crate) struct Ctx {
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
    /// Called after every write this process makes (the pooler, the accelerate endpoint).
    write_hooks: Mutex<Vec<WriteHook>>,
    pooler_stats: std::sync::OnceLock<pooler::PoolerStats>,
    accelerate_stats: std::sync::OnceLock<super::accelerate::AccelerateStats>,
    /// Every argon2 call on a secret someone sent goes through it.
    hash_gate: crate::hash_gate::HashGate,
    /// Random per process: names the usage source of pooler-fed counters, which restart
    /// from zero with the process.
    boot_tag: String,
    /// Random per process: names this replica as the holder of periodic jobs' leases
    /// (see [`crate::lease`]).
    replica_id: String,
    /// Replicas alive at the last count of the registry (every heartbeat); 0 before the
    /// first.
    alive_replicas: std::sync::atomic::AtomicUsize,
}

impl Ctx {
    #[expect(
        clippy::too_many_arguments,
        reason = "one call, in Services::new, that names every part"
    )]
    pub(super) fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        rng: Randomness,
        config: ServicesConfig,
        driver: Arc<dyn Driver>,
        servers: HashMap<String, PgServer>,
        region_servers: HashMap<String, Vec<String>>,
        signer: crate::oauth_keys::Signer,
        hash_gate: crate::hash_gate::HashGate,
        boot_tag: String,
        replica_id: String,
    ) -> Self {
        let op_slots =
            tokio::sync::Semaphore::new(op_slots(store.pool().options().get_max_connections()));
        Self {
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
            write_hooks: Mutex::new(Vec::new()),
            pooler_stats: std::sync::OnceLock::new(),
            accelerate_stats: std::sync::OnceLock::new(),
            hash_gate,
            boot_tag,
            replica_id,
            alive_replicas: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    pub(super) fn alive_replicas(&self) -> &std::sync::atomic::AtomicUsize {
        &self.alive_replicas
    }

    pub(super) fn add_write_hook(&self, hook: Box<dyn Fn() + Send + Sync>) {
        self.write_hooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(WriteHook(hook));
    }

    pub(super) fn pooler_stats(&self) -> &std::sync::OnceLock<pooler::PoolerStats> {
        &self.pooler_stats
    }

    pub(super) fn accelerate_stats(
        &self,
    ) -> &std::sync::OnceLock<super::accelerate::AccelerateStats> {
        &self.accelerate_stats
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    pub(crate) fn rng(&self) -> &Randomness {
        &self.rng
    }

    pub(crate) fn config(&self) -> &ServicesConfig {
        &self.config
    }

    pub(crate) fn configured_regions(&self) -> &[Region] {
        &self.config.regions
    }

    pub(crate) fn driver(&self) -> &dyn Driver {
        self.driver.as_ref()
    }

    pub(crate) fn server(&self, id: Option<&str>) -> crate::Result<&PgServer> {
        id.and_then(|id| self.servers.get(id)).ok_or_else(|| {
            crate::DomainError::internal(format!("database placed on unknown server {id:?}"))
        })
    }

    /// Registered server id → server.
    pub(crate) fn servers(&self) -> &HashMap<String, PgServer> {
        &self.servers
    }

    pub(crate) fn region_server_ids(&self, region: &str) -> &[String] {
        self.region_servers
            .get(region)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub(crate) fn inflight(&self) -> &Mutex<HashSet<String>> {
        &self.inflight
    }

    pub(crate) fn op_slots(&self) -> &tokio::sync::Semaphore {
        &self.op_slots
    }

    pub(crate) fn auth_cache(&self) -> &auth::AuthCache {
        &self.auth_cache
    }

    pub(crate) fn signer(&self) -> &crate::oauth_keys::Signer {
        &self.signer
    }

    /// The bound on password hashing (see [`crate::hash_gate`]).
    pub(crate) fn hash_gate(&self) -> &crate::hash_gate::HashGate {
        &self.hash_gate
    }

    pub(crate) fn view_cache(&self) -> &ViewCache {
        &self.views
    }

    /// Call after any committed write: cached reads are no longer current.
    pub(crate) fn note_write(&self) {
        self.views.bump();
        for hook in self
            .write_hooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            (hook.0)();
        }
    }

    pub(crate) fn boot_tag(&self) -> &str {
        &self.boot_tag
    }

    /// This process's id among the replicas sharing the metadata store (random at start;
    /// the holder of a periodic job's lease in `leases`).
    pub(crate) fn replica_id(&self) -> &str {
        &self.replica_id
    }

    pub(crate) fn kick(&self) -> &tokio::sync::Notify {
        &self.kick
    }
}

/// The capabilities, for the code of another capability (or the reconciler) that needs one.
impl Ctx {
    pub(crate) fn projects(self: &Arc<Self>) -> Projects<'_> {
        Projects { ctx: self }
    }

    pub(crate) fn databases(self: &Arc<Self>) -> Databases<'_> {
        Databases { ctx: self }
    }

    pub(crate) fn connections(self: &Arc<Self>) -> Connections<'_> {
        Connections { ctx: self }
    }

    pub(crate) fn backups(self: &Arc<Self>) -> Backups<'_> {
        Backups { ctx: self }
    }

    pub(crate) fn usage(self: &Arc<Self>) -> Usage<'_> {
        Usage { ctx: self }
    }

    pub(crate) fn tokens(self: &Arc<Self>) -> Tokens<'_> {
        Tokens { ctx: self }
    }

    pub(crate) fn oauth(self: &Arc<Self>) -> OAuth<'_> {
        OAuth { ctx: self }
    }

    pub(crate) fn sessions(self: &Arc<Self>) -> Sessions<'_> {
        Sessions { ctx: self }
    }

    pub(crate) fn members(self: &Arc<Self>) -> Members<'_> {
        Members { ctx: self }
    }

    pub(crate) fn workspaces(self: &Arc<Self>) -> Workspaces<'_> {
        Workspaces { ctx: self }
    }

    pub(crate) fn replicas(self: &Arc<Self>) -> Replicas<'_> {
        Replicas { ctx: self }
    }

    pub(crate) fn regions(self: &Arc<Self>) -> Regions<'_> {
        Regions { ctx: self }
    }

    pub(crate) fn accelerate(self: &Arc<Self>) -> Accelerate<'_> {
        Accelerate { ctx: self }
    }

    pub(crate) fn pitr(self: &Arc<Self>) -> super::Pitr<'_> {
        super::Pitr { ctx: self }
    }

    pub(crate) fn pooler(self: &Arc<Self>) -> Pooler<'_> {
        Pooler { ctx: self }
    }

    pub(crate) fn guard(self: &Arc<Self>) -> TenantGuard<'_> {
        TenantGuard { ctx: self }
    }

    pub(crate) fn capacity(self: &Arc<Self>) -> Capacity<'_> {
        Capacity { ctx: self }
    }

    pub(crate) fn claimable(self: &Arc<Self>) -> super::Claimable<'_> {
        super::Claimable { ctx: self }
    }
}

/// How many operations a process runs at once with a metadata pool of `pool` connections:
/// a quarter of it (each operation may hold two), at least one, so operations take at most
/// half the pool and the API always has the rest.
fn op_slots(pool: u32) -> usize {
    usize::try_from(pool / 4).unwrap_or(1).max(1)
}

/// Called after every write of this process (see [`super::Pooler::on_write`]).
pub(crate) struct WriteHook(pub(super) Box<dyn Fn() + Send + Sync>);

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
