//! One pool per connection (login role): its idle server connections, the permits that cap
//! how many it lends at once, and (shared per database) the slots that cap how many server
//! connections the database has open (and, for the whole proxy, `Shared::server_slots`);
//! how many exist, its clients, and its counters. A pool belongs to one verifier; when the
//! connection is rotated or deleted the pool is closed and its clients are disconnected.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore, TryAcquireError};

use crate::backend::{BackendError, ConnectSpec, ServerConn};
use crate::catalog::Route;
use crate::leftover::Leftover;
use crate::scram::{ClientKey, Verifier};

/// Counters of one database, shared by its pools, and the slots that cap its server
/// connections (`pool_size` per database, whichever of its connections opens them).
#[derive(Debug)]
pub struct DbCounters {
    pub statements: AtomicU64,
    pub transactions: AtomicU64,
    pub clients: AtomicUsize,
    /// Clients waiting now for a server connection.
    pub waiting: AtomicUsize,
    /// Time clients have spent waiting for a server connection, in µs.
    pub wait_micros: AtomicU64,
    /// Server connections reset or closed because a client left session state on them.
    pub resets: AtomicU64,
    /// One permit per open server connection of the database (held by the connection).
    slots: Arc<Semaphore>,
    size: usize,
}

/// A client waiting for a server connection, counted in [`DbCounters`] until dropped
/// (served, timed out or gone).
struct Waiting<'a> {
    counters: &'a DbCounters,
    since: Instant,
}

impl<'a> Waiting<'a> {
    fn start(counters: &'a DbCounters) -> Self {
        counters.waiting.fetch_add(1, Ordering::Relaxed);
        Self {
            counters,
            since: Instant::now(),
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.counters.waiting.fetch_sub(1, Ordering::Relaxed);
        let waited = u64::try_from(self.since.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.counters
            .wait_micros
            .fetch_add(waited, Ordering::Relaxed);
    }
}

impl DbCounters {
    pub fn new(pool_size: usize) -> Self {
        let size = pool_size.max(1);
        Self {
            statements: AtomicU64::new(0),
            transactions: AtomicU64::new(0),
            clients: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            wait_micros: AtomicU64::new(0),
            resets: AtomicU64::new(0),
            slots: Arc::new(Semaphore::new(size)),
            size,
        }
    }

    /// Open server connections of the database: the slots they hold.
    pub fn server_connections(&self) -> usize {
        self.size - self.slots.available_permits()
    }
}

pub struct Pool {
    pub route: Route,
    /// `route.target`, shared with cancel slots without copying.
    pub target: Arc<crate::backend::BackendTarget>,
    pub verifier: Verifier,
    key: ClientKey,
    idle: Mutex<Vec<ServerConn>>,
    permits: Arc<Semaphore>,
    pub clients: AtomicUsize,
    params: Mutex<Option<Vec<(String, String)>>>,
    /// `Some(reason)` once the pool is closed.
    closed: watch::Sender<Option<&'static str>>,
    pub counters: Arc<DbCounters>,
    last_active: Mutex<Instant>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("role", &self.route.role)
            .finish_non_exhaustive()
    }
}

/// A place under the proxy's cap on server connections (each holds a file descriptor): a
/// free one, or one freed by closing an idle connection of any pool, or the next one
/// released (for up to `query_wait_timeout`).
async fn proxy_slot(shared: &crate::Shared) -> Result<OwnedSemaphorePermit, AcquireError> {
    let slots = shared.server_slots.clone();
    let deadline = tokio::time::Instant::now() + shared.settings.query_wait_timeout;
    loop {
        if let Ok(s) = slots.clone().try_acquire_owned() {
            return Ok(s);
        }
        if shared.evict_any_idle() {
            continue;
        }
        let wait = tokio::time::Instant::now() + Duration::from_millis(20);
        match tokio::time::timeout_at(wait.min(deadline), slots.clone().acquire_owned()).await {
            Ok(Ok(s)) => return Ok(s),
            Ok(Err(_)) => return Err(AcquireError::Closed),
            Err(_) if tokio::time::Instant::now() >= deadline => return Err(AcquireError::Timeout),
            Err(_) => {}
        }
    }
}

/// A server connection checked out of a pool; the permit goes back when it is dropped.
pub struct Lease {
    pub conn: ServerConn,
    permit: OwnedSemaphorePermit,
}

#[derive(Debug, thiserror::Error)]
pub enum AcquireError {
    #[error("timed out waiting for a server connection")]
    Timeout,
    #[error("the pool is closed")]
    Closed,
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl Pool {
    pub fn new(
        route: Route,
        verifier: Verifier,
        key: ClientKey,
        size: usize,
        counters: Arc<DbCounters>,
    ) -> Self {
        Self {
            target: Arc::new(route.target.clone()),
            route,
            verifier,
            key,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(size.max(1))),
            clients: AtomicUsize::new(0),
            params: Mutex::new(None),
            closed: watch::channel(None).0,
            counters,
            last_active: Mutex::new(Instant::now()),
        }
    }

    pub fn closed(&self) -> watch::Receiver<Option<&'static str>> {
        self.closed.subscribe()
    }

    pub fn is_closed(&self) -> bool {
        self.closed.borrow().is_some()
    }

    /// Disconnects the pool's clients (at their next read) and drops its idle connections.
    pub fn close(&self, reason: &'static str) {
        self.closed.send_replace(Some(reason));
        self.permits.close();
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    /// Counts a client in (this pool's and its database's); returns the database's count.
    pub fn client_joined(&self) -> usize {
        self.clients.fetch_add(1, Ordering::AcqRel);
        self.counters.clients.fetch_add(1, Ordering::AcqRel) + 1
    }

    pub fn client_left(&self) {
        self.clients.fetch_sub(1, Ordering::AcqRel);
        self.counters.clients.fetch_sub(1, Ordering::AcqRel);
    }

    /// The parameters reported to clients at startup, once a server connection has existed.
    pub fn params(&self) -> Option<Vec<(String, String)>> {
        self.params.lock().ok().and_then(|p| p.clone())
    }

    /// Closes one idle connection (the oldest), freeing a slot of the database for a
    /// sibling pool; whether there was one.
    pub fn drop_one_idle(&self) -> bool {
        let dropped = match self.idle.lock() {
            Ok(mut idle) if !idle.is_empty() => Some(idle.remove(0)),
            _ => None,
        };
        dropped.is_some()
    }

    /// A slot of the database for a new server connection: a free one, or one freed by
    /// closing an idle connection of another connection (login role) of the same database,
    /// or the next one released.
    async fn slot(&self, shared: &crate::Shared) -> Result<OwnedSemaphorePermit, AcquireError> {
        let slots = self.counters.slots.clone();
        let deadline = tokio::time::Instant::now() + shared.settings.query_wait_timeout;
        loop {
            if let Ok(s) = slots.clone().try_acquire_owned() {
                return Ok(s);
            }
            if shared.evict_idle(&self.route.database_id, &self.route.role) {
                continue;
            }
            // A sibling's connection that is lent now is idle (and evictable) later, while
            // holding its slot: wait a little for a released slot, then look again.
            let wait = tokio::time::Instant::now() + Duration::from_millis(20);
            let _waiting = Waiting::start(&self.counters);
            match tokio::time::timeout_at(wait.min(deadline), slots.clone().acquire_owned()).await {
                Ok(Ok(s)) => return Ok(s),
                Ok(Err(_)) => return Err(AcquireError::Closed),
                Err(_) if tokio::time::Instant::now() >= deadline => {
                    return Err(AcquireError::Timeout)
                }
                Err(_) => {}
            }
        }
    }

    /// Checks out a server connection: an idle one that still looks alive, or a new one.
    pub async fn acquire(&self, shared: &crate::Shared) -> Result<Lease, AcquireError> {
        let settings = &shared.settings;
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(TryAcquireError::Closed) => return Err(AcquireError::Closed),
            Err(TryAcquireError::NoPermits) => {
                let _waiting = Waiting::start(&self.counters);
                tokio::time::timeout(
                    settings.query_wait_timeout,
                    self.permits.clone().acquire_owned(),
                )
                .await
                .map_err(|_| AcquireError::Timeout)?
                .map_err(|_| AcquireError::Closed)?
            }
        };
        if let Ok(mut t) = self.last_active.lock() {
            *t = Instant::now();
        }
        loop {
            let candidate = match self.idle.lock() {
                Ok(mut idle) => idle.pop(),
                Err(_) => None,
            };
            let Some(mut conn) = candidate else { break };
            // A terminated backend has sent its FATAL error and closed: checked every time
            // (at most one non-blocking read), since a kill can come at any moment.
            if conn.created.elapsed() < settings.server_lifetime && conn.looks_alive() {
                return Ok(Lease { conn, permit });
            }
        }
        let spec = ConnectSpec {
            target: &self.route.target,
            role: &self.route.role,
            database: &self.route.pg_database,
            key: Some(&self.key),
            verifier: &self.verifier,
            tls: settings
                .backend_tls_by_server
                .get(&self.route.target.key)
                .or(settings.backend_tls.as_ref()),
            timeout: settings.connect_timeout,
        };
        let slot = self.slot(shared).await?;
        let proxy_slot = proxy_slot(shared).await?;
        let mut conn = ServerConn::connect(&spec).await?;
        conn.slot = Some(slot);
        conn.proxy_slot = Some(proxy_slot);
        if let Ok(mut p) = self.params.lock() {
            if p.is_none() {
                *p = Some(conn.params.clone());
            }
        }
        Ok(Lease { conn, permit })
    }

    /// Returns a connection: kept for the next transaction when `reusable`, else closed.
    pub fn release(&self, lease: Lease, reusable: bool) {
        let Lease { mut conn, permit } = lease;
        if reusable && !self.is_closed() {
            conn.last_used = Instant::now();
            if let Ok(mut idle) = self.idle.lock() {
                idle.push(conn);
            }
        }
        drop(permit);
    }

    /// Returns a connection lent for a transaction, as what its clients may have left on
    /// the session requires (see [`crate::leftover`]): kept as is; reset with `DISCARD ALL`
    /// first, in a task of its own so that the client's replies do not wait (the connection
    /// and its permit stay taken until the reset is done, so no one gets it before); or
    /// closed.
    pub fn give_back(self: &Arc<Self>, lease: Lease) {
        match lease.conn.leftover {
            Leftover::None => self.release(lease, true),
            Leftover::Resettable => {
                self.counters.resets.fetch_add(1, Ordering::Relaxed);
                let pool = self.clone();
                let mut lease = lease;
                tokio::spawn(async move {
                    let ok = lease.conn.reset().await;
                    pool.release(lease, ok);
                });
            }
            Leftover::Permanent => {
                self.counters.resets.fetch_add(1, Ordering::Relaxed);
                self.release(lease, false);
            }
        }
    }

    /// Closes connections idle for longer than `max_idle` or older than `lifetime`; returns
    /// whether the pool has been unused (no client, no connection) for `max_idle`.
    pub fn trim(&self, max_idle: Duration, lifetime: Duration) -> bool {
        let remaining = match self.idle.lock() {
            Ok(mut idle) => {
                idle.retain(|c| c.last_used.elapsed() < max_idle && c.created.elapsed() < lifetime);
                idle.len()
            }
            Err(_) => 0,
        };
        let quiet = self
            .last_active
            .lock()
            .map(|t| t.elapsed() >= max_idle)
            .unwrap_or(false);
        remaining == 0 && self.clients.load(Ordering::Relaxed) == 0 && quiet
    }
}
