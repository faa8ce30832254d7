//! The threads client sessions run on: each an event loop of its own (a current-thread
//! tokio runtime), as many as [`crate::Settings::session_threads`].
//!
//! Why not the caller's multi-threaded runtime: a session is a few microseconds of work per
//! transaction between waits, and there the runtime's workers keep parking and waking one
//! another (a futex wake and two context switches each time) to share such short tasks; on
//! a machine whose cores are busy with PostgreSQL and its clients, those switches cost more
//! than the proxying itself (bench/pooler measured the proxy's CPU per transaction). One
//! loop per thread that owns its sessions and their sockets runs them back to back, as
//! PgBouncer's single loop does. The accept loop runs on the first thread; a client is
//! handed to the threads in turn (its socket moved to that thread's event loop).

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The session threads; stopped (their remaining tasks dropped) by [`Workers::stop`].
pub(crate) struct Workers {
    handles: Vec<Handle>,
    stops: Vec<oneshot::Sender<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    next: AtomicUsize,
}

impl Workers {
    /// Starts `n` (at least one) threads, each running an event loop until stopped.
    pub(crate) fn start(n: usize) -> std::io::Result<Self> {
        let mut workers = Self {
            handles: Vec::new(),
            stops: Vec::new(),
            threads: Vec::new(),
            next: AtomicUsize::new(0),
        };
        for i in 0..n.max(1) {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (stop, stopped) = oneshot::channel::<()>();
            workers.handles.push(rt.handle().clone());
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

    /// The event loop of the next client, in turn; `None` when that is the caller's own
    /// (the client stays where it was accepted, with no hand-over).
    pub(crate) fn elsewhere(&self) -> Option<&Handle> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let next = self.handles.get(i % self.handles.len().max(1))?;
        let here = Handle::try_current().ok().map(|h| h.id());
        (here != Some(next.id())).then_some(next)
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
    async fn clients_go_to_the_threads_in_turn() {
        let workers = std::sync::Arc::new(Workers::start(2).unwrap());
        let w = workers.clone();
        // From the first thread (where the accept loop runs): every other client stays.
        let first = workers.first().unwrap().spawn(async move {
            (0..4)
                .map(|_| w.elsewhere().is_some())
                .collect::<Vec<bool>>()
        });
        assert_eq!(first.await.unwrap(), [false, true, false, true]);
        let (tx, rx) = oneshot::channel();
        workers.elsewhere().unwrap().spawn(async move {
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
    async fn stopping_drops_what_is_left() {
        let workers = Workers::start(1).unwrap();
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
