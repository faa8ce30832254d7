//! The threads client sessions run on: each an event loop of its own (a current-thread
//! tokio runtime), as many as [`crate::Settings::session_threads`], and which of them a new
//! client goes to.
//!
//! Why not the caller's multi-threaded runtime: a session is a few microseconds of work per
//! transaction between waits, and there the runtime's workers keep parking and waking one
//! another (a futex wake and two context switches each time) to share such short tasks; on
//! a machine whose cores are busy with PostgreSQL and its clients, those switches cost more
//! than the proxying itself (bench/pooler measured the proxy's CPU per transaction). One
//! loop per thread that owns its sessions and their sockets runs them back to back, as
//! PgBouncer's single loop does. The accept loop runs on the first thread.
//!
//! **Placement.** A new client stays on the first loop while the proxy has fewer than
//! [`crate::Settings::spread_from`] sessions, and otherwise goes to the loop with the fewest
//! (its socket moved to that thread's event loop). Few clients then share one loop: a
//! server connection released by one session is taken by a session of the same thread (no
//! cross-thread wake-up), and each wait of the loop serves more events. Many clients keep
//! one loop busy enough that a second one pays, at some CPU. bench/pooler, ratios within
//! one run each (2 cores, busy with other builds, so they vary run to run): at 20 clients
//! two loops from the start cost 1.37× PgBouncer's CPU per transaction and 0.81× its tps,
//! one loop 0.86× and 1.02×; at 500 clients these defaults (two loops from 100 sessions,
//! replies batched from 100; the first of five runs without the batching) reached
//! 0.89–1.23× one loop's tps (1.2× in four runs of five) with 0.73–1.20× its p99 and
//! 1.02–1.34× its proxy CPU per transaction, and 0.88–1.04× the tps of the pooler before
//! it had threads of its own (on the multi-threaded runtime), 0.83–1.22× its p99,
//! 1.04–1.26× its CPU per transaction.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The default of [`crate::Settings::spread_from`] and of
/// [`crate::Settings::batch_replies_from`]: well above what a few application servers keep
/// open (bench/pooler's 20 clients stay on one loop), well below where one loop was
/// measured to fall behind (500).
pub(crate) const SPREAD_FROM: usize = 100;

/// The session threads; stopped (their remaining tasks dropped) by [`Workers::stop`].
pub(crate) struct Workers {
    handles: Vec<Handle>,
    /// Sessions on each loop now (decremented by their [`Placed`] when they end).
    sessions: Vec<Arc<AtomicUsize>>,
    spread_from: usize,
    stops: Vec<oneshot::Sender<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// A session counted on its loop until dropped.
pub(crate) struct Placed {
    count: Arc<AtomicUsize>,
}

impl Drop for Placed {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Workers {
    /// Starts `n` (at least one) threads, each running an event loop until stopped; new
    /// clients are spread over them from `spread_from` sessions on.
    pub(crate) fn start(n: usize, spread_from: usize) -> std::io::Result<Self> {
        let mut workers = Self {
            handles: Vec::new(),
            sessions: Vec::new(),
            spread_from,
            stops: Vec::new(),
            threads: Vec::new(),
        };
        for i in 0..n.max(1) {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (stop, stopped) = oneshot::channel::<()>();
            workers.handles.push(rt.handle().clone());
            workers.sessions.push(Arc::new(AtomicUsize::new(0)));
            workers.stops.push(stop);
            let thread = std::thread::Builder::new()
                .name(format!("pooler-{i}"))
                .spawn(move || {
                    let _ = rt.block_on(stopped);
                    // Dropping the runtime here (not in async code) drops what is left on it.
                    drop(rt);
                });
            match thread {
                Ok(t) => workers.threads.push(t),
                Err(e) => {
                    workers.stop_now();
                    return Err(e);
                }
            }
        }
        Ok(workers)
    }

    /// The first thread's event loop (where the accept loop runs).
    pub(crate) fn first(&self) -> Option<&Handle> {
        self.handles.first()
    }

    /// Places a new client (see the module's doc): the count that holds its place, and the
    /// event loop it goes to, `None` when that is the caller's own (the client stays where
    /// it was accepted, with no hand-over).
    pub(crate) fn place(&self) -> Option<(Placed, Option<&Handle>)> {
        let loads = self.sessions.iter().map(|s| s.load(Ordering::Relaxed));
        let total: usize = loads.clone().sum();
        let i = if total < self.spread_from {
            0
        } else {
            // The least loaded, the first of equals.
            loads
                .enumerate()
                .min_by_key(|&(i, load)| (load, i))
                .map_or(0, |(i, _)| i)
        };
        let (next, count) = self.handles.get(i).zip(self.sessions.get(i))?;
        count.fetch_add(1, Ordering::Relaxed);
        let placed = Placed {
            count: count.clone(),
        };
        let here = Handle::try_current().ok().map(|h| h.id());
        Some((placed, (here != Some(next.id())).then_some(next)))
    }

    fn stop_now(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
    }

    /// Stops the threads (what still runs on them is dropped) and waits for them to end.
    pub(crate) async fn stop(mut self) {
        self.stop_now();
        let threads = std::mem::take(&mut self.threads);
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn few_clients_share_the_first_loop_and_many_go_to_the_least_loaded() {
        let workers = std::sync::Arc::new(Workers::start(2, 3).unwrap());
        let w = workers.clone();
        // From the first thread (where the accept loop runs): the first three stay there,
        // then the second loop takes clients until it has as many.
        let first = workers.first().unwrap().spawn(async move {
            let placed: Vec<_> = (0..6).map(|_| w.place().unwrap()).collect();
            let moved: Vec<bool> = placed.iter().map(|(_, h)| h.is_some()).collect();
            drop(placed);
            // Their places are given back when they end.
            let again = w.place().unwrap().1.is_some();
            (moved, again)
        });
        let (moved, again) = first.await.unwrap();
        assert_eq!(moved, [false, false, false, true, true, true]);
        assert!(!again);
        let (tx, rx) = oneshot::channel();
        let (_placed, there) = workers.place().unwrap();
        there.unwrap().spawn(async move {
            let _ = tx.send(std::thread::current().name().map(str::to_string));
        });
        assert_eq!(rx.await.unwrap().as_deref(), Some("pooler-0"));
        std::sync::Arc::try_unwrap(workers)
            .ok()
            .unwrap()
            .stop()
            .await;
    }

    #[tokio::test]
    async fn from_zero_clients_are_spread_at_once() {
        let workers = Workers::start(3, 0).unwrap();
        let placed: Vec<_> = (0..6).map(|_| workers.place().unwrap()).collect();
        let loads: Vec<usize> = workers
            .sessions
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .collect();
        assert_eq!(loads, [2, 2, 2]);
        drop(placed);
        workers.stop().await;
    }

    #[tokio::test]
    async fn stopping_drops_what_is_left() {
        let workers = Workers::start(1, 0).unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        workers.first().unwrap().spawn(async move {
            std::future::pending::<()>().await;
            drop(tx);
        });
        workers.stop().await;
        // The pending task was dropped with its runtime, and `tx` with it.
        assert!(rx.await.is_err());
    }
}
