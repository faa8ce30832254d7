//! The loop of every periodic job (usage sampler, tenant guard, backup scheduler, expiry
//! sweeper): a tick at once, then one per [`Lease::tick`]; at each tick the replica takes or
//! renews the job's lease and runs a round only when it holds it and the job's last round,
//! on any replica, is one interval old (see [`crate::lease`]). Ends when the shutdown signal
//! changes; a round in progress then is abandoned and the lease given up. Each round runs in
//! a `job` span with its own id, which the operations it plans record ([`crate::request`]).

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};

use tokio::sync::watch;
use tokio::time::{Interval, MissedTickBehavior};
use tracing::Instrument as _;

use super::Ctx;
use crate::lease::{Job, Lease};

/// Shortest interval accepted, so a tiny setting cannot turn a pass into a busy loop.
const MIN_EVERY: Duration = Duration::from_millis(100);

pub(crate) struct Periodic {
    ctx: std::sync::Arc<Ctx>,
    lease: Lease,
    ticker: Interval,
    shutdown: watch::Receiver<bool>,
    /// When the round [`Periodic::next`] last let run started (its lease claim).
    started_at: DateTime<Utc>,
}

impl Periodic {
    /// `job`'s loop on this replica, rounds `every` apart (at least [`MIN_EVERY`]) across
    /// replicas; a late tick delays the next ones rather than bunching them.
    pub(crate) fn new(
        ctx: &std::sync::Arc<Ctx>,
        job: Job,
        every: Duration,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let lease = Lease::new(job, ctx.replica_id(), every.max(MIN_EVERY));
        let mut ticker = tokio::time::interval(lease.tick());
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self {
            ctx: std::sync::Arc::clone(ctx),
            lease,
            ticker,
            shutdown,
            started_at: ctx.clock().now(),
        }
    }

    /// Waits until this replica is to run a round; false once the shutdown signal changed
    /// (or its sender is gone). A failed claim (metadata store down) is logged and retried
    /// at the next tick: no round runs without the lease.
    pub(crate) async fn next(&mut self) -> bool {
        loop {
            tokio::select! {
                _ = self.ticker.tick() => {}
                _ = self.shutdown.changed() => {}
            }
            if self.stopping() {
                self.stop().await;
                return false;
            }
            match self.lease.try_run(self.ctx.store(), self.ctx.clock()).await {
                Ok(Some(at)) => {
                    self.started_at = at;
                    return true;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(job = self.lease.job().name(), error = %e, "periodic job: lease not claimed");
                }
            }
        }
    }

    /// Runs `round`, or abandons it and returns `None` when the shutdown signal changes first.
    /// The round has its own id: it runs in a `job` span (`job`, `round`) and as the current
    /// request ([`crate::request`]), so the operations it plans carry it too.
    pub(crate) async fn run<T>(&mut self, round: impl Future<Output = T>) -> Option<T> {
        let id = crate::ids::new_id(crate::ids::JOB_ROUND, self.ctx.rng());
        let span = tracing::info_span!("job", job = self.lease.job().name(), round = %id);
        let round = crate::request::scope(&id, round).instrument(span);
        // The lease is renewed every tick while the round runs: a round longer than the
        // lease's TTL must not let another replica start the same work meanwhile.
        let (lease, ctx) = (&self.lease, &self.ctx);
        let keep = async {
            let mut ticker = tokio::time::interval(lease.tick());
            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                match lease.renew(ctx.store(), ctx.clock()).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(
                            job = lease.job().name(),
                            "periodic job: another replica took the lease during a round"
                        )
                    }
                    Err(e) => {
                        tracing::warn!(job = lease.job().name(), error = %e, "periodic job: lease not renewed during a round")
                    }
                }
            }
        };
        let r = tokio::select! {
            r = round => Some(r),
            _ = self.shutdown.changed() => None,
            // `keep` never finishes.
            () = keep => None,
        };
        if r.is_none() {
            self.stop().await;
        }
        r
    }

    /// The start of the round [`Periodic::next`] last let run: what the round should stamp
    /// on what it records, so records of successive rounds are an interval apart whichever
    /// replica ran them and however long their work took.
    pub(crate) fn started_at(&self) -> DateTime<Utc> {
        self.started_at
    }

    fn stopping(&self) -> bool {
        // A dropped sender also means stop (`changed` would then return at once forever).
        *self.shutdown.borrow() || self.shutdown.has_changed().is_err()
    }

    /// Gives the lease up so another replica takes the job at its next tick.
    async fn stop(&self) {
        if let Err(e) = self.lease.release(self.ctx.store(), self.ctx.clock()).await {
            tracing::warn!(job = self.lease.job().name(), error = %e, "periodic job: lease not released");
        }
    }
}
