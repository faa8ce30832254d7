//! Wiring of the `prisma+postgres://` endpoint inside `pgfleet serve`: the
//! [`pgfleet_accelerate`] executor behind a [`Backend`] that resolves API keys through the
//! services (hashed, looked up in the metadata store and trusted for [`ROUTE_TTL`]: a
//! rotation or deletion through this process is seen at the next request, through another
//! replica within that second) and lends tokio-postgres
//! connections logged in AS THE CONNECTION'S ROLE: over the embedded cluster's trusted Unix
//! socket without a password (as the pooler does), or to a region server over TCP with
//! SCRAM, TLS verified as the server's URL asks, and the role's password opened from the
//! request's key (sealed under it at create/rotate), kept in a small idle pool per connection
//! (closed after a minute idle) and bounded per database by its `CONNECTION LIMIT`; the
//! listener (plain HTTP on loopback, HTTPS elsewhere or with a configured certificate; served
//! by the shared accept loop of [`crate::http_server`], within the descriptor budget); and
//! the revocation of a rotated or deleted key's open interactive transactions (after every
//! local write, and every few seconds for writes made by other replicas); and the usage
//! counters (queries and transactions per database, read by the usage sampler); per-key
//! limits are shared with the other live replicas (the replica registry's count).

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use pgfleet_accelerate::{Backend, BackendError, Limits, Revoker};
use pgfleet_domain::services::accelerate::{AccelerateCounts, AccelerateRoute};
use pgfleet_domain::Services;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::Client;

use crate::config::Config;

/// How long a request waits for one of its database's connection slots.
const SLOT_WAIT: Duration = Duration::from_secs(10);
/// How long opening a server connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often open interactive transactions are checked against the metadata store (a key
/// rotated through another replica), and idle connections past [`IDLE_TIMEOUT`] closed.
const REVOKE_SWEEP: Duration = Duration::from_secs(2);
/// A request head (the first, after the TLS handshake if any, or the next on a kept-alive
/// connection) must arrive within this; silent sockets are closed.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(15);
/// A request body (at most `accelerate.max_request_bytes`) must arrive whole within this
/// after its head.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle server connections are closed after this: they count in the database's and the
/// role's `CONNECTION LIMIT`, which direct and pooled sessions share.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a resolved API key is trusted without asking the metadata store again. Every
/// write made through this process empties the cache at once (a rotation or deletion here
/// refuses the old key at the next request); a write through another replica is seen
/// within this, like the pooler's `revalidate_every` and the API's credential cache. The
/// sweep that closes a revoked key's open transactions always asks the store.
const ROUTE_TTL: Duration = Duration::from_secs(1);
/// Resolved keys kept at most (the cache is emptied when full).
const ROUTE_CACHE_MAX: usize = 10_000;

/// Idle connections of one connection (login role), each with when it was returned.
struct RolePool {
    idle: Mutex<Vec<(Client, Instant)>>,
}

/// What the backend shares with its connections.
struct Pools {
    /// Connection id → its idle connections.
    roles: Mutex<HashMap<String, Arc<RolePool>>>,
    /// Database id → its connection slots (its `CONNECTION LIMIT`).
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
    idle_max: usize,
    /// Database id → usage counted since this process started.
    counts: Mutex<HashMap<String, AccelerateCounts>>,
    /// SHA-256 of an API key → its route and when it was looked up ([`ROUTE_TTL`]).
    routes: Mutex<HashMap<Vec<u8>, (AccelerateRoute, Instant)>>,
}

/// A lent connection: back to its pool when dropped (unless closed, or the pool is full).
pub struct Pooled {
    client: Option<Client>,
    pool: Arc<RolePool>,
    idle_max: usize,
    _slot: OwnedSemaphorePermit,
}

impl Deref for Pooled {
    type Target = Client;
    fn deref(&self) -> &Client {
        match &self.client {
            Some(c) => c,
            // Only taken in `drop`.
            None => unreachable!("a pooled connection is used after it was returned"),
        }
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            if !client.is_closed() {
                let mut idle = self.pool.idle.lock().unwrap_or_else(|p| p.into_inner());
                if idle.len() < self.idle_max {
                    idle.push((client, Instant::now()));
                }
            }
        }
    }
}

/// The backend over the services.
pub struct ServicesBackend {
    services: Services,
    pools: Arc<Pools>,
}

impl ServicesBackend {
    fn role_pool(&self, connection_id: &str) -> Arc<RolePool> {
        let mut roles = self.pools.roles.lock().unwrap_or_else(|p| p.into_inner());
        roles
            .entry(connection_id.to_owned())
            .or_insert_with(|| {
                Arc::new(RolePool {
                    idle: Mutex::new(Vec::new()),
                })
            })
            .clone()
    }

    fn slots(&self, route: &AccelerateRoute) -> Arc<Semaphore> {
        let mut slots = self.pools.slots.lock().unwrap_or_else(|p| p.into_inner());
        let limit = usize::try_from(route.connection_limit.max(1)).unwrap_or(1);
        slots
            .entry(route.database_id.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(limit)))
            .clone()
    }
}

impl Pools {
    /// Closes idle connections past [`IDLE_TIMEOUT`] and forgets pools left empty (a
    /// deleted connection's).
    fn close_stale_idle(&self) {
        let mut roles = self.roles.lock().unwrap_or_else(|p| p.into_inner());
        roles.retain(|_, pool| {
            let mut idle = pool.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.retain(|(c, since)| !c.is_closed() && since.elapsed() < IDLE_TIMEOUT);
            !idle.is_empty() || Arc::strong_count(pool) > 1
        });
    }
}

/// The embedded cluster's socket directory and port, when the route's server is reached
/// over a Unix socket (trusted: the role logs in without its password).
fn unix_socket(route: &AccelerateRoute) -> Option<(std::path::PathBuf, u16)> {
    let host = route.server.admin.get_hosts().first()?;
    let port = route
        .server
        .admin
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432);
    match host {
        tokio_postgres::config::Host::Unix(dir) => Some((dir.clone(), port)),
        tokio_postgres::config::Host::Tcp(_) => None,
    }
}

impl ServicesBackend {
    /// The key's route from the metadata store, never from the cache.
    async fn resolve_fresh(&self, api_key: &str) -> Result<AccelerateRoute, BackendError> {
        match self.services.accelerate().resolve(api_key).await {
            Ok(Some(route)) => match &route.unavailable {
                Some(status) => Err(BackendError::Unavailable(format!(
                    "The database is {status}; retry when it is ready."
                ))),
                None => Ok(route),
            },
            Ok(None) => Err(BackendError::UnknownKey),
            Err(e) => {
                tracing::warn!(error = %e, "accelerate: could not look an API key up");
                Err(BackendError::Unavailable(
                    "pgfleet cannot reach its metadata store; retry in a moment.".into(),
                ))
            }
        }
    }
}

impl Backend for ServicesBackend {
    type Target = AccelerateRoute;
    type Conn = Pooled;

    async fn resolve(&self, api_key: &str) -> Result<AccelerateRoute, BackendError> {
        let hash = pgfleet_auth::hash_token(api_key);
        {
            let routes = self.pools.routes.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((route, at)) = routes.get(&hash) {
                if at.elapsed() < ROUTE_TTL {
                    return Ok(route.clone());
                }
            }
        }
        let route = self.resolve_fresh(api_key).await?;
        let mut routes = self.pools.routes.lock().unwrap_or_else(|p| p.into_inner());
        if routes.len() >= ROUTE_CACHE_MAX {
            routes.clear();
        }
        routes.insert(hash, (route.clone(), Instant::now()));
        Ok(route)
    }

    async fn connect(&self, route: &AccelerateRoute) -> Result<Pooled, BackendError> {
        let slot = tokio::time::timeout(SLOT_WAIT, self.slots(route).acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| {
                BackendError::Unavailable(format!(
                    "All {} connections of this database are busy; retry later.",
                    route.connection_limit
                ))
            })?;
        let pool = self.role_pool(&route.connection_id);
        let reused = {
            let mut idle = pool.idle.lock().unwrap_or_else(|p| p.into_inner());
            let mut found = None;
            while let Some((c, since)) = idle.pop() {
                if !c.is_closed() && since.elapsed() < IDLE_TIMEOUT {
                    found = Some(c);
                    break;
                }
            }
            found
        };
        let client = match reused {
            Some(c) => c,
            None => open(route).await?,
        };
        Ok(Pooled {
            client: Some(client),
            pool,
            idle_max: self.pools.idle_max,
            _slot: slot,
        })
    }

    fn count_query(&self, route: &AccelerateRoute, in_transaction: bool) {
        let mut counts = self.pools.counts.lock().unwrap_or_else(|p| p.into_inner());
        let c = counts.entry(route.database_id.clone()).or_default();
        c.queries += 1;
        if !in_transaction {
            c.transactions += 1;
        }
    }

    fn count_transaction(&self, route: &AccelerateRoute) {
        let mut counts = self.pools.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts
            .entry(route.database_id.clone())
            .or_default()
            .transactions += 1;
    }

    fn replicas(&self) -> usize {
        self.services.replicas().alive_count()
    }

    async fn cancel(&self, route: &AccelerateRoute, token: tokio_postgres::CancelToken) {
        if let Err(e) = route.server.cancel(&token).await {
            tracing::debug!(error = %e, "accelerate: cancel failed");
        }
    }
}

/// A new server connection as the route's role, in a UTC session: over the embedded
/// cluster's trusted Unix socket without a password, or over TCP (TLS as the server's URL
/// asks) with the role's password opened from the key.
async fn open(route: &AccelerateRoute) -> Result<Client, BackendError> {
    let mut config = match unix_socket(route) {
        Some((dir, port)) => {
            let mut c = tokio_postgres::Config::new();
            c.host_path(dir)
                .port(port)
                .user(&route.role)
                .dbname(&route.pg_database);
            c
        }
        None => {
            let Some(password) = &route.password else {
                return Err(BackendError::Unavailable(
                    "This API key was issued before the prisma+postgres endpoint could reach \
                     this database's server; rotate the connection for a new key."
                        .into(),
                ));
            };
            route
                .server
                .role_config(&route.role, password.expose(), &route.pg_database)
        }
    };
    config
        .application_name("pgfleet-accelerate")
        .options("-c TimeZone=UTC")
        .connect_timeout(CONNECT_TIMEOUT);
    route.server.connect(config).await.map_err(|e| {
        tracing::warn!(error = %e, database = %route.database_id, "accelerate: cannot open a server connection");
        BackendError::Unavailable("The database does not accept connections now; retry later.".into())
    })
}

/// The endpoint's limits from `[accelerate]`.
fn limits(cfg: &Config) -> Limits {
    let a = &cfg.accelerate;
    Limits {
        query_timeout: Duration::from_millis(a.query_timeout_ms),
        max_transaction_timeout: Duration::from_millis(a.max_transaction_timeout_ms),
        max_request_bytes: a.max_request_bytes,
        max_concurrent_queries: a.max_concurrent_queries,
    }
}

/// Host written into `prisma+postgres://` strings.
pub fn public_host(cfg: &Config) -> String {
    cfg.accelerate
        .host
        .clone()
        .unwrap_or_else(|| cfg.postgres.host.clone())
}

/// Binds the endpoint's port (port 0 picks a free one).
pub async fn bind(cfg: &Config) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(cfg.accelerate.listen)
        .await
        .with_context(|| format!("accelerate: cannot listen on {}", cfg.accelerate.listen))
}

/// The running endpoint.
#[derive(Debug)]
pub struct RunningAccelerate {
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningAccelerate {
    /// Stops accepting and lets requests in flight finish (bounded by the caller).
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(true);
        }
        let _ = self.task.await;
    }
}

/// Closes the open transactions of keys that no longer resolve.
async fn revoke_stale(backend: &ServicesBackend, revoker: &Revoker) {
    for key in revoker.keys_with_transactions() {
        if let Err(BackendError::UnknownKey) = backend.resolve_fresh(&key).await {
            tracing::info!("accelerate: closing the transactions of a revoked API key");
            revoker.revoke(&key).await;
        }
    }
}

/// Starts the endpoint on a bound listener.
pub fn start(
    cfg: &Config,
    services: &Services,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<RunningAccelerate> {
    let addr = listener.local_addr()?;
    let tls = if cfg.accelerate.uses_tls() {
        Some(tls_acceptor(cfg)?)
    } else {
        None
    };
    let pools = Arc::new(Pools {
        roles: Mutex::new(HashMap::new()),
        slots: Mutex::new(HashMap::new()),
        idle_max: cfg.accelerate.idle_connections,
        counts: Mutex::new(HashMap::new()),
        routes: Mutex::new(HashMap::new()),
    });
    let stats = pools.clone();
    services.accelerate().set_stats(move || {
        stats
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    });
    let backend = ServicesBackend {
        services: services.clone(),
        pools: pools.clone(),
    };
    let (app, revoker) = pgfleet_accelerate::router_with_revoker(backend, limits(cfg));
    let checker = Arc::new(ServicesBackend {
        services: services.clone(),
        pools,
    });
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let wake = Arc::new(tokio::sync::Notify::new());
    let hook = wake.clone();
    let cached = checker.pools.clone();
    services.accelerate().on_write(move || {
        cached
            .routes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        hook.notify_one();
    });
    let mut sweep_stop = stop_rx.clone();
    let sweeper = tokio::spawn(async move {
        loop {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(REVOKE_SWEEP) => {}
                _ = sweep_stop.changed() => return,
            }
            revoke_stale(&checker, &revoker).await;
            checker.pools.close_stale_idle();
        }
    });
    let options = crate::http_server::Listener {
        limits: crate::http_server::Limits {
            max_connections: cfg
                .accelerate
                .max_connections
                .unwrap_or(crate::descriptors::ACCELERATE_DEFAULT_CEILING),
            header_read_timeout: HEADER_READ_TIMEOUT,
            keep_alive_timeout: HEADER_READ_TIMEOUT,
            body_read_timeout: BODY_READ_TIMEOUT,
        },
        tls,
        name: "accelerate",
        cap_setting: "accelerate.max_connections",
    };
    let task = tokio::spawn(async move {
        let stopped = async move {
            let _ = stop_rx.changed().await;
        };
        crate::http_server::serve_with(listener, app, options, stopped).await;
        sweeper.abort();
    });
    tracing::info!(%addr, "accelerate endpoint listening");
    Ok(RunningAccelerate {
        addr,
        stop: Some(stop_tx),
        task,
    })
}

/// The endpoint's TLS: the configured certificate, else a self-signed one generated once
/// into `<data_dir>/accelerate-tls`; HTTP/1.1 over ALPN.
fn tls_acceptor(cfg: &Config) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    let a = &cfg.accelerate;
    let (cert, key) = match (&a.tls_cert_file, &a.tls_key_file) {
        (Some(c), Some(k)) => (
            std::fs::read_to_string(c).with_context(|| format!("reading {}", c.display()))?,
            std::fs::read_to_string(k).with_context(|| format!("reading {}", k.display()))?,
        ),
        _ => crate::pooler::self_signed(&cfg.data_dir.join("accelerate-tls"), &public_host(cfg))?,
    };
    let mut config = pgfleet_dataplane::tls::server_config(&cert, &key)
        .map_err(|e| anyhow::anyhow!("accelerate TLS: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
