//! The pooled endpoint: a PostgreSQL wire-protocol proxy in front of the tenant databases.
//!
//! Clients connect with the same user and password as for the direct endpoint. The proxy
//! authenticates them itself with SCRAM-SHA-256 against the stored verifier (no password is
//! ever stored or needed), routes them by user name to the connection's database, and lends
//! them server connections from a pool per connection: for one transaction at a time
//! (transaction mode, the default) or for the whole session (session mode). Named prepared
//! statements keep working in transaction mode: the proxy gives each statement a server-side
//! name derived from its text and prepares it on whichever server connection runs it.
//! Session state a client changes in transaction mode never reaches the next client of its
//! server connection: the reported parameters clients set (`TimeZone`, `DateStyle`,
//! `application_name` …) follow each client, anything else (`SET search_path`, `SET ROLE`,
//! `set_config`, `LISTEN`, temporary tables …) makes the proxy reset the connection with
//! `DISCARD ALL`, or close it, before anyone else runs on it (see the `leftover` module).
//!
//! Server connections log in as the connection's own role: over a trusted Unix socket for
//! the embedded cluster, or by answering the server's SCRAM challenge with the key recovered
//! from the client's proof. A pool is closed (and its clients disconnected) when its
//! connection is rotated, deleted or its database goes away; [`Pooler::revalidate`] checks.
//!
//! Bounds that keep a long-running proxy healthy: each server connection keeps at most
//! [`Settings::max_prepared_statements`] (least recently used closed first), lives at most
//! [`Settings::server_lifetime`], and is closed after [`Settings::server_idle_timeout`]; a
//! client must send its startup packet within [`Settings::startup_timeout`], log in within
//! [`Settings::client_login_timeout`] and, when
//! [`Settings::idle_transaction_timeout`] is set, may not sit idle inside a transaction for
//! longer; the proxy takes at most [`Settings::max_client_connections`] (plus
//! [`REFUSAL_SLOTS`] told "too many clients"; more are closed at once) and opens at most
//! as many server connections in all (closing an idle one of any pool to make room), and
//! counts the clients waiting for a server connection. TLS (with the SSLRequest, or
//! direct with the `postgresql` ALPN protocol) can be given a renewed certificate while
//! running ([`Pooler::set_tls`]).
//!
//! Client sessions run on the pooler's own event-loop threads
//! ([`Settings::session_threads`], see the `workers` module), not on the runtime of the
//! process around it: all on the first while the proxy has fewer than
//! [`Settings::spread_from`] sessions, then spread over them.
//!
//! Logs carry a `pooler_client` span (the client's address) for everything a client's
//! session logs, and a `pooler_server` span (server and database) for a server connection's
//! login.

mod accept;
pub mod backend;
pub mod catalog;
mod client;
mod leftover;
mod params;
mod pool;
pub mod proto;
pub mod scram;
mod stream;
mod workers;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

pub use backend::{BackendHost, BackendTarget};
pub use catalog::{Catalog, CatalogError, Route};
use pool::{DbCounters, Pool};
use scram::{ClientKey, Verifier};

/// How long a server connection is lent to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    /// Until the end of each transaction.
    Transaction,
    /// Until the client disconnects.
    Session,
}

/// The proxy's settings.
#[derive(Clone)]
pub struct Settings {
    pub mode: PoolMode,
    /// Server connections per database (shared by its connections, each of which may use
    /// all of them).
    pub pool_size: usize,
    /// Clients per database.
    pub max_clients: usize,
    /// Client connections of the whole proxy (logging in or logged in), and server
    /// connections of the whole proxy (at the cap, an idle one of any pool is closed to make
    /// room, else the client waits as for a pool's connection); up to
    /// [`REFUSAL_SLOTS`] more are told "too many clients" once their TLS and startup are
    /// done, as PostgreSQL does, and beyond those a new connection is closed at once, so file
    /// descriptors are left for server connections.
    pub max_client_connections: usize,
    /// Refuse clients that do not ask for TLS.
    pub require_tls: bool,
    pub connect_timeout: Duration,
    /// Named statements kept prepared on each server connection in transaction mode; past
    /// this, the least recently used is closed (and prepared again when next used).
    pub max_prepared_statements: usize,
    /// How long a client waits for a server connection before it gets an error.
    pub query_wait_timeout: Duration,
    /// Server connections idle this long are closed.
    pub server_idle_timeout: Duration,
    /// A client idle this long inside a transaction is disconnected and its server
    /// connection closed (zero: never).
    pub idle_transaction_timeout: Duration,
    /// Server connections this old are closed when next returned or found idle (backends
    /// grow caches over their life; this bounds it and spreads load after a failover).
    pub server_lifetime: Duration,
    /// A client that has not sent its startup packet (after any SSLRequest and TLS
    /// handshake) within this is disconnected: a silent socket holds a descriptor and a
    /// place under `max_client_connections` for no longer.
    pub startup_timeout: Duration,
    /// A client that has not finished TLS, startup and authentication within this is
    /// disconnected (a stalled client would otherwise hold its socket forever).
    pub client_login_timeout: Duration,
    /// How often open pools are checked against the catalog.
    pub revalidate_every: Duration,
    /// How long shutdown waits for clients to finish their transactions.
    pub shutdown_grace: Duration,
    /// Threads the client sessions run on, each an event loop of its own (see the
    /// `workers` module); 0 runs them on the runtime that calls [`Pooler::serve`].
    pub session_threads: usize,
    /// Sessions the proxy has before new clients are spread over the session threads (the
    /// least loaded gets the next); below, they all stay on the first thread (see the
    /// `workers` module for why).
    pub spread_from: usize,
    /// Sessions the proxy has from which a session lets the others of its event loop run
    /// before it writes a reply to its client, so that the replies of one turn of the loop
    /// reach the clients together (a client process serving many connections is woken once
    /// for several); `usize::MAX`: never.
    pub batch_replies_from: usize,
    /// TLS towards servers that require it (`sslmode=require` semantics).
    pub backend_tls: Option<Arc<rustls::ClientConfig>>,
    /// TLS towards particular servers (by [`BackendTarget::key`]), in place of
    /// `backend_tls`: those whose URL asks for verification (`sslmode=verify-full`, …).
    pub backend_tls_by_server: HashMap<String, Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("mode", &self.mode)
            .field("pool_size", &self.pool_size)
            .field("max_clients", &self.max_clients)
            .field("max_client_connections", &self.max_client_connections)
            .field("max_prepared_statements", &self.max_prepared_statements)
            .field("require_tls", &self.require_tls)
            .field("session_threads", &self.session_threads)
            .field("spread_from", &self.spread_from)
            .field("batch_replies_from", &self.batch_replies_from)
            .finish_non_exhaustive()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            mode: PoolMode::Transaction,
            pool_size: 10,
            max_clients: 1000,
            max_client_connections: 10_000,
            require_tls: true,
            connect_timeout: Duration::from_secs(10),
            max_prepared_statements: 200,
            query_wait_timeout: Duration::from_secs(120),
            server_idle_timeout: Duration::from_secs(600),
            server_lifetime: Duration::from_secs(3600),
            idle_transaction_timeout: Duration::ZERO,
            startup_timeout: Duration::from_secs(5),
            client_login_timeout: Duration::from_secs(60),
            revalidate_every: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(30),
            session_threads: 2,
            spread_from: workers::SPREAD_FROM,
            batch_replies_from: workers::SPREAD_FROM,
            backend_tls: None,
            backend_tls_by_server: HashMap::new(),
        }
    }
}

/// Counters of one database as the proxy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseStats {
    pub database_id: String,
    /// Statements completed (`CommandComplete` messages) since the proxy started.
    pub statements: u64,
    pub transactions: u64,
    pub clients: usize,
    pub server_connections: usize,
    /// Clients waiting now for a server connection.
    pub waiting: usize,
    /// Time clients have waited for a server connection since the proxy started, in µs.
    pub wait_micros: u64,
    /// Server connections reset (`DISCARD ALL`) or closed since the proxy started because a
    /// client left session state on them (see the `leftover` module).
    pub resets: u64,
}

/// Where a client's cancel request goes while it has a server connection.
#[derive(Debug, Clone)]
struct CancelTarget {
    target: Arc<BackendTarget>,
    pid: i32,
    secret: i32,
}

type CancelSlot = Arc<Mutex<Option<CancelTarget>>>;

/// The proxy's TLS: its certificate and the `tls-server-end-point` data of that certificate
/// (when SCRAM-SHA-256-PLUS is offered), kept together so that a connection binds to the
/// certificate its own handshake used, whatever replaces it meanwhile.
struct ServerTls {
    acceptor: tokio_rustls::TlsAcceptor,
    end_point: Option<Vec<u8>>,
}

impl ServerTls {
    /// Also offers the `postgresql` ALPN protocol, which clients using direct TLS
    /// negotiation must ask for (libpq 17 asks for it with an SSLRequest too).
    fn new(tls: Arc<rustls::ServerConfig>, certificate: Option<&[u8]>) -> Arc<Self> {
        let mut config = (*tls).clone();
        config.alpn_protocols = vec![client::ALPN_POSTGRESQL.to_vec()];
        Arc::new(Self {
            end_point: certificate.and_then(scram::tls_server_end_point),
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        })
    }
}

struct Shared {
    settings: Settings,
    catalog: Arc<dyn Catalog>,
    /// The TLS clients get now (replaced by [`Pooler::set_tls`]).
    tls: std::sync::RwLock<Option<Arc<ServerTls>>>,
    /// Login role → its pool.
    pools: Mutex<HashMap<String, Arc<Pool>>>,
    /// Login role → its route (or `None`: unknown) and when it was read. Entries live for
    /// `revalidate_every`, and [`Pooler::revalidate`] drops them all: a new client never
    /// authenticates against a verifier older than the pools' own check.
    routes: Mutex<HashMap<String, (Option<Route>, std::time::Instant)>>,
    counters: Mutex<HashMap<String, Arc<DbCounters>>>,
    /// Client key data (pid) → (secret, where its session currently runs).
    cancels: Mutex<HashMap<i32, (i32, CancelSlot)>>,
    mock_key: [u8; 32],
    shutdown: watch::Sender<bool>,
    active_clients: AtomicUsize,
    /// One permit per open server connection of the whole proxy (held by the connection):
    /// at most `max_client_connections`, so that with its clients the proxy needs at most
    /// two descriptors per client.
    server_slots: Arc<tokio::sync::Semaphore>,
    drained: Notify,
    revalidate_now: Notify,
}

/// The proxy. Cheap to clone.
#[derive(Clone)]
pub struct Pooler {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Pooler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pooler")
            .field("settings", &self.shared.settings)
            .finish_non_exhaustive()
    }
}

impl Pooler {
    /// A proxy answering TLS with `tls` (clients get `N` to an SSL request without it);
    /// `certificate` (DER) enables channel binding when its end-point hash is defined.
    ///
    /// [`Pooler::set_tls`] replaces both later (a renewed certificate).
    pub fn new(
        settings: Settings,
        catalog: Arc<dyn Catalog>,
        tls: Option<Arc<rustls::ServerConfig>>,
        certificate: Option<&[u8]>,
    ) -> Self {
        let server_slots = Arc::new(tokio::sync::Semaphore::new(
            settings.max_client_connections.max(1),
        ));
        let mut mock_key = [0u8; 32];
        rand::Rng::fill(&mut rand::thread_rng(), &mut mock_key[..]);
        Self {
            shared: Arc::new(Shared {
                settings,
                catalog,
                tls: std::sync::RwLock::new(tls.map(|t| ServerTls::new(t, certificate))),
                pools: Mutex::new(HashMap::new()),
                routes: Mutex::new(HashMap::new()),
                counters: Mutex::new(HashMap::new()),
                cancels: Mutex::new(HashMap::new()),
                mock_key,
                shutdown: watch::channel(false).0,
                active_clients: AtomicUsize::new(0),
                server_slots,
                drained: Notify::new(),
                revalidate_now: Notify::new(),
            }),
        }
    }

    /// Serves `tls` (and channel binding to `certificate`) to clients from now on; sessions
    /// already connected keep theirs.
    pub fn set_tls(&self, tls: Arc<rustls::ServerConfig>, certificate: Option<&[u8]>) {
        let next = ServerTls::new(tls, certificate);
        if let Ok(mut current) = self.shared.tls.write() {
            *current = Some(next);
        }
    }

    /// Accepts clients until `stop` resolves, then stops accepting, lets clients finish their
    /// transaction (disconnecting idle ones) for up to the grace period, and returns.
    /// Sessions run on the pooler's own threads ([`Settings::session_threads`]; the
    /// accept loop on the first), or here when there are none.
    pub async fn serve(&self, listener: TcpListener, stop: impl std::future::Future<Output = ()>) {
        let shared = self.shared.clone();
        let revalidator = tokio::spawn(revalidate_loop(shared.clone()));
        let workers = match shared.settings.session_threads {
            0 => None,
            n => match workers::Workers::start(n, shared.settings.spread_from) {
                Ok(w) => Some(Arc::new(w)),
                Err(e) => {
                    tracing::warn!(error = %e, "pooler: no session threads; sessions run on the server's runtime");
                    None
                }
            },
        };
        let on_first = workers
            .as_ref()
            .and_then(|w| Some((w.clone(), w.first()?.clone())));
        match on_first {
            None => accept::accept_loop(shared.clone(), listener, stop, None).await,
            Some((w, first)) => match listener.into_std() {
                Ok(listener) => {
                    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
                    let s = shared.clone();
                    let accepting = first.spawn(async move {
                        match TcpListener::from_std(listener) {
                            Ok(l) => {
                                let stop = async move {
                                    let _ = stop_rx.await;
                                };
                                accept::accept_loop(s, l, stop, Some(&w)).await;
                            }
                            Err(e) => tracing::warn!(error = %e, "pooler: cannot accept"),
                        }
                    });
                    stop.await;
                    let _ = stop_tx.send(());
                    let _ = accepting.await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pooler: cannot accept");
                    stop.await;
                }
            },
        }
        shared.shutdown.send_replace(true);
        let deadline = tokio::time::Instant::now() + shared.settings.shutdown_grace;
        while shared.active_clients.load(Ordering::Acquire) > 0 {
            let wait = shared.drained.notified();
            if shared.active_clients.load(Ordering::Acquire) == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, wait).await.is_err() {
                tracing::warn!(
                    clients = shared.active_clients.load(Ordering::Acquire),
                    "pooler: clients still connected after the shutdown grace period"
                );
                break;
            }
        }
        revalidator.abort();
        let pools: Vec<Arc<Pool>> = match shared.pools.lock() {
            Ok(mut p) => p.drain().map(|(_, v)| v).collect(),
            Err(_) => Vec::new(),
        };
        for p in pools {
            p.close("the pooler is shutting down");
        }
        if let Some(w) = workers.and_then(Arc::into_inner) {
            w.stop().await;
        }
    }

    /// Checks every open pool against the catalog now (after a rotation or deletion made by
    /// this process) instead of at the next periodic check.
    pub fn revalidate(&self) {
        if let Ok(mut r) = self.shared.routes.lock() {
            r.clear();
        }
        self.shared.revalidate_now.notify_one();
    }

    /// Per-database counters.
    pub fn stats(&self) -> Vec<DatabaseStats> {
        let Ok(c) = self.shared.counters.lock() else {
            return Vec::new();
        };
        let mut out: Vec<DatabaseStats> = c
            .iter()
            .map(|(id, c)| DatabaseStats {
                database_id: id.clone(),
                statements: c.statements.load(Ordering::Relaxed),
                transactions: c.transactions.load(Ordering::Relaxed),
                clients: c.clients.load(Ordering::Relaxed),
                server_connections: c.server_connections(),
                waiting: c.waiting.load(Ordering::Relaxed),
                wait_micros: c.wait_micros.load(Ordering::Relaxed),
                resets: c.resets.load(Ordering::Relaxed),
            })
            .collect();
        out.sort_by(|a, b| a.database_id.cmp(&b.database_id));
        out
    }
}

/// Connections beyond `max_client_connections` that are still read up to their startup
/// packet (for at most `startup_timeout`) to be told "too many clients"; more are closed
/// unanswered.
pub const REFUSAL_SLOTS: usize = 32;

/// Most routes kept in memory (the cache is emptied when it grows past this).
const MAX_CACHED_ROUTES: usize = 100_000;

impl Shared {
    /// A client connection ended (or was refused at once).
    fn client_gone(&self) {
        if self.active_clients.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.drained.notify_waiters();
        }
    }

    fn current_tls(&self) -> Option<Arc<ServerTls>> {
        self.tls.read().ok().and_then(|t| t.clone())
    }

    /// A login role's route, from the cache when it is fresh.
    async fn route(&self, role: &str) -> Result<Option<Route>, CatalogError> {
        let ttl = self.settings.revalidate_every;
        if let Ok(cache) = self.routes.lock() {
            if let Some((r, at)) = cache.get(role) {
                if at.elapsed() < ttl {
                    return Ok(r.clone());
                }
            }
        }
        let r = self.catalog.route(role).await?;
        self.remember_route(role, r.clone());
        Ok(r)
    }

    fn remember_route(&self, role: &str, r: Option<Route>) {
        if let Ok(mut cache) = self.routes.lock() {
            if cache.len() >= MAX_CACHED_ROUTES {
                cache.clear();
            }
            cache.insert(role.to_string(), (r, std::time::Instant::now()));
        }
    }

    fn counters_for(&self, database_id: &str) -> Arc<DbCounters> {
        match self.counters.lock() {
            Ok(mut c) => c
                .entry(database_id.to_string())
                .or_insert_with(|| Arc::new(DbCounters::new(self.settings.pool_size)))
                .clone(),
            Err(_) => Arc::new(DbCounters::new(self.settings.pool_size)),
        }
    }

    /// The pool of a route for a client that proved `key`: the open one when it belongs to
    /// the same verifier, else a new one (closing a stale one).
    fn pool_for(&self, route: Route, verifier: Verifier, key: ClientKey) -> Arc<Pool> {
        let counters = self.counters_for(&route.database_id);
        let Ok(mut pools) = self.pools.lock() else {
            return Arc::new(Pool::new(
                route,
                verifier,
                key,
                self.settings.pool_size,
                counters,
            ));
        };
        if let Some(p) = pools.get(&route.role) {
            if !p.is_closed() && p.verifier == verifier && p.route.target == route.target {
                return p.clone();
            }
            p.close("the connection's credentials changed");
        }
        let p = Arc::new(Pool::new(
            route.clone(),
            verifier,
            key,
            self.settings.pool_size,
            counters,
        ));
        pools.insert(route.role, p.clone());
        p
    }

    /// Closes one idle server connection of any pool (at the proxy's cap on server
    /// connections); whether one was.
    fn evict_any_idle(&self) -> bool {
        let pools: Vec<Arc<Pool>> = match self.pools.lock() {
            Ok(p) => p.values().cloned().collect(),
            Err(_) => return false,
        };
        pools.iter().any(|p| p.drop_one_idle())
    }

    /// Closes one idle server connection of another pool of `database_id`; whether one was.
    fn evict_idle(&self, database_id: &str, except_role: &str) -> bool {
        let siblings: Vec<Arc<Pool>> = match self.pools.lock() {
            Ok(p) => p
                .values()
                .filter(|p| p.route.database_id == database_id && p.route.role != except_role)
                .cloned()
                .collect(),
            Err(_) => return false,
        };
        siblings.iter().any(|p| p.drop_one_idle())
    }

    fn register_cancel(&self, slot: CancelSlot) -> (i32, i32) {
        let mut rng = rand::thread_rng();
        loop {
            let pid: i32 = rand::Rng::gen_range(&mut rng, 1..i32::MAX);
            let secret: i32 = rand::Rng::gen(&mut rng);
            if let Ok(mut c) = self.cancels.lock() {
                if let std::collections::hash_map::Entry::Vacant(e) = c.entry(pid) {
                    e.insert((secret, slot));
                    return (pid, secret);
                }
            } else {
                return (pid, secret);
            }
        }
    }

    fn unregister_cancel(&self, pid: i32) {
        if let Ok(mut c) = self.cancels.lock() {
            c.remove(&pid);
        }
    }

    async fn cancel(&self, pid: i32, secret: i32) {
        let target = self.cancels.lock().ok().and_then(|c| {
            c.get(&pid)
                .filter(|(s, _)| *s == secret)
                .and_then(|(_, slot)| slot.lock().ok().and_then(|t| t.clone()))
        });
        if let Some(t) = target {
            if let Err(e) = backend::send_cancel(&t.target, t.pid, t.secret).await {
                tracing::debug!(error = %e, "pooler: cancel request failed");
            }
        }
    }
}

/// Closes pools whose connection was rotated, deleted or moved, and trims idle ones.
async fn revalidate_loop(shared: Arc<Shared>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(shared.settings.revalidate_every) => {}
            () = shared.revalidate_now.notified() => {}
        }
        let pools: Vec<Arc<Pool>> = match shared.pools.lock() {
            Ok(p) => p.values().cloned().collect(),
            Err(_) => continue,
        };
        for p in pools {
            let fresh = shared.catalog.route(&p.route.role).await;
            if let Ok(r) = &fresh {
                shared.remember_route(&p.route.role, r.clone());
            }
            let stale = match fresh {
                Ok(None) => Some("the connection was deleted"),
                Ok(Some(r)) => {
                    let same_verifier = r
                        .verifier
                        .parse::<Verifier>()
                        .map(|v| v == p.verifier)
                        .unwrap_or(false);
                    if !same_verifier {
                        Some("the connection's credentials were rotated")
                    } else if r.target != p.route.target || r.pg_database != p.route.pg_database {
                        Some("the database moved")
                    } else {
                        None
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "pooler: catalog unavailable; keeping pools");
                    None
                }
            };
            let unused = p.trim(
                shared.settings.server_idle_timeout,
                shared.settings.server_lifetime,
            );
            if stale.is_some() || unused {
                p.close(stale.unwrap_or("idle"));
                if let Ok(mut pools) = shared.pools.lock() {
                    if pools.get(&p.route.role).is_some_and(|q| Arc::ptr_eq(q, &p)) {
                        pools.remove(&p.route.role);
                    }
                }
            }
        }
    }
}
