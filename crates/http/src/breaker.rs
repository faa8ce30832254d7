//! The circuit breaker for metadata outages: once a request finds the metadata store
//! unreachable, further requests are answered 503 + `Retry-After` at once instead of each one
//! waiting out the pool's acquire timeout (`metadata.acquire_timeout_secs`), until a probe
//! reaches the store again.
//!
//! * Closed (normal): requests run. A response marked [`MetadataDown`] (a 503 whose cause was
//!   the metadata store, not a region's Postgres server) opens the breaker once a ping on a
//!   connection outside the pool confirms the store does not answer: a pool that is only
//!   busy (every connection lent under load, the store fine) does not open it (one check at a
//!   time; the others wait for its answer).
//! * Open: guarded routes answer 503 `unavailable` with `Retry-After` without touching the
//!   store. One probe task per process pings the store every [`PROBE_EVERY`] (each ping bounded
//!   by [`PROBE_TIMEOUT`]); the first ping that answers closes the breaker.
//!
//! The state is this process's alone, on purpose: each replica probes the store on its own
//! and opens and closes its own breaker, so nothing about it is shared through the store it
//! guards (which is down while it matters). `/healthz` and `/metrics` are never guarded;
//! `/metrics` shows the state as `pgfleet_metadata_available` (1 closed, 0 open).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use pgfleet_domain::metadata_probe::MetadataProbe;

use crate::error::{ApiError, MetadataDown, UNAVAILABLE_RETRY_AFTER_SECS};
use crate::AppState;

/// How often the probe pings the store while the breaker is open.
pub const PROBE_EVERY: Duration = Duration::from_millis(500);
/// How long one probe ping may take before it counts as a failure.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
struct BreakerState {
    open: bool,
    /// A probe task is running (at most one at a time).
    probing: bool,
}

/// The breaker of this process; cheap to clone (shared state).
#[derive(Clone, Debug)]
pub struct MetadataBreaker {
    store: MetadataProbe,
    state: Arc<Mutex<BreakerState>>,
    /// Held while a request checks whether the store really is down.
    checking: Arc<tokio::sync::Mutex<()>>,
}

impl MetadataBreaker {
    /// A closed breaker guarding `store`.
    pub fn new(store: MetadataProbe) -> Self {
        Self {
            store,
            state: Arc::new(Mutex::new(BreakerState::default())),
            checking: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BreakerState> {
        // The state is two booleans, valid after any panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// True while requests are answered 503 without trying the store.
    pub fn is_open(&self) -> bool {
        self.lock().open
    }

    /// A request found the store unreachable: unless a ping outside the pool answers (a busy
    /// pool, not an outage), open, and start the probe unless one runs.
    pub async fn trip(&self) {
        if self.is_open() {
            return;
        }
        let _one_check = self.checking.lock().await;
        if self.is_open() {
            return;
        }
        let answered = matches!(
            tokio::time::timeout(PROBE_TIMEOUT, self.store.ping_outside_pool()).await,
            Ok(Ok(()))
        );
        if answered {
            return;
        }
        let start_probe = {
            let mut s = self.lock();
            if !s.open {
                tracing::warn!(
                    "metadata store unreachable: answering 503 at once until it answers again"
                );
            }
            s.open = true;
            !std::mem::replace(&mut s.probing, true)
        };
        if start_probe {
            tokio::spawn(self.clone().probe());
        }
    }

    /// Pings until the store answers, then closes. Runs until then even if the breaker was
    /// closed meanwhile; only one runs at a time.
    async fn probe(self) {
        loop {
            tokio::time::sleep(PROBE_EVERY).await;
            let answered = matches!(
                tokio::time::timeout(PROBE_TIMEOUT, self.store.ping()).await,
                Ok(Ok(()))
            );
            if answered || self.store.is_closed() {
                let mut s = self.lock();
                s.probing = false;
                s.open = false;
                tracing::info!("metadata store answers again: requests are served");
                return;
            }
        }
    }
}

/// Middleware of the API routes: fails fast (JSON error) while open, trips on a response
/// marked [`MetadataDown`].
pub async fn guard_api(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.breaker.is_open() {
        return unavailable().into_response();
    }
    observe(&state.breaker, next.run(req).await).await
}

/// Middleware of the browser pages: as [`guard_api`], answering an error page.
pub async fn guard_pages(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.breaker.is_open() {
        let api = unavailable();
        return crate::pages::unavailable_page(api.message, api.hint).into_response();
    }
    observe(&state.breaker, next.run(req).await).await
}

async fn observe(breaker: &MetadataBreaker, res: Response) -> Response {
    if res.extensions().get::<MetadataDown>().is_some() {
        breaker.trip().await;
    }
    res
}

fn unavailable() -> ApiError {
    ApiError {
        retry_after_secs: Some(UNAVAILABLE_RETRY_AFTER_SECS),
        ..ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The metadata store is not reachable right now",
        )
        .with_hint("Retry in a moment.")
    }
}
