//! The replica registry: every `pgfleet serve` sharing the metadata store registers at start
//! ([`Replicas::register`]), refreshes its row every [`HEARTBEAT`] and marks it
//! stopped on a clean stop ([`Replicas::spawn_heartbeat`]). A replica is alive while
//! it has not stopped and was seen within [`ALIVE_WINDOW`] (three heartbeats): one that
//! crashed is gone after that. Every replica reads the same rows, so all agree on the list
//! (`pgfleet admin replicas`, the console's replicas page for server administrators,
//! `pgfleet_replicas` in `/metrics`) and on how many are alive ([`Replicas::alive_count`],
//! counted every heartbeat: limits shared across replicas divide by it).
//!
//! Registration happens under the registry's lock on the metadata store (a transaction-level
//! advisory lock): a replica that must be the only one alive ([`Replicas::register_alone`],
//! one with a per-machine backup directory) looks at the registry and registers in one
//! transaction, so of two replicas starting at the same moment exactly one registers and the
//! other sees it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use pgfleet_storage::replicas::{self, ReplicaRow};
use pgfleet_storage::Store;
use tokio::sync::watch;
use tracing::Instrument as _;

use crate::access::ServerAdmin;

/// How often a replica refreshes its row.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// A replica not seen for this long is gone.
pub const ALIVE_WINDOW: Duration = Duration::from_secs(6);
/// Rows of replicas gone for this long are deleted when the registry is read.
const FORGET_AFTER: chrono::Duration = chrono::Duration::days(7);

/// Whether a registered replica is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaState {
    /// Not stopped and seen within [`ALIVE_WINDOW`].
    Alive,
    /// Stopped cleanly, or not seen for [`ALIVE_WINDOW`].
    Gone,
}

impl ReplicaState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicaState::Alive => "alive",
            ReplicaState::Gone => "gone",
        }
    }
}

/// A registered replica and its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    pub id: String,
    pub version: String,
    /// The API address it listens on.
    pub address: String,
    pub started_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub state: ReplicaState,
}

fn state_of(row: &ReplicaRow, now: DateTime<Utc>) -> ReplicaState {
    let window = chrono::Duration::from_std(ALIVE_WINDOW).unwrap_or(chrono::Duration::MAX);
    if row.stopped_at.is_none() && row.last_seen_at >= now - window {
        ReplicaState::Alive
    } else {
        ReplicaState::Gone
    }
}

/// Every registered replica with its state at `now`, newest first (for commands that have a
/// store but no [`Services`]).
pub async fn list(store: &Store, now: DateTime<Utc>) -> crate::Result<Vec<Replica>> {
    let rows = replicas::list(store.pool(), now - FORGET_AFTER).await?;
    Ok(rows.into_iter().map(|r| replica_at(r, now)).collect())
}

fn replica_at(r: ReplicaRow, now: DateTime<Utc>) -> Replica {
    let state = state_of(&r, now);
    Replica {
        id: r.id,
        version: r.version,
        address: r.address,
        started_at: r.started_at,
        last_seen_at: r.last_seen_at,
        stopped_at: r.stopped_at,
        state,
    }
}

/// The registry of pgfleet replicas sharing the metadata store. Obtained from [`super::Services::replicas`].
#[derive(Debug, Clone, Copy)]
pub struct Replicas<'a> {
    pub(super) ctx: &'a std::sync::Arc<super::Ctx>,
}

impl Replicas<'_> {
    /// Replicas alive at the last count (at registration and every [`HEARTBEAT`]), this one
    /// included: at least 1. For limits shared across replicas (the `prisma+postgres://`
    /// endpoint's per-key concurrent queries), without a query to the store.
    pub fn alive_count(&self) -> usize {
        self.ctx
            .alive_replicas()
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(1)
    }

    /// Every registered replica (this one included once registered), newest first.
    pub async fn list(&self) -> crate::Result<Vec<Replica>> {
        list(self.ctx.store(), self.ctx.clock().now()).await
    }

    /// [`Replicas::list`] for the console: only a server administrator sees them (the
    /// check is [`crate::access::Access::server_admin_of`]'s, required as its capability).
    pub async fn list_for(&self, _admin: &ServerAdmin) -> crate::Result<Vec<Replica>> {
        self.list().await
    }

    /// Registers this replica (its [`Ctx::replica_id`]) as running `version` with its
    /// API at `address`.
    pub async fn register(&self, version: &str, address: &str) -> crate::Result<()> {
        self.register_under_lock(version, address, false)
            .await
            .map(|_| ())
    }

    /// Registers this replica unless another one is alive: then returns that one and
    /// registers nothing. A replica that looks alive but no longer heartbeats (crashed — this
    /// very machine's last run, restarted at once) is waited out, up to its alive window; one
    /// whose heartbeat advances (or that appears) meanwhile is returned. The look and the
    /// registration are one transaction under the registry's lock.
    pub async fn register_alone(
        &self,
        version: &str,
        address: &str,
    ) -> crate::Result<Option<Replica>> {
        self.register_under_lock(version, address, true).await
    }

    async fn register_under_lock(
        &self,
        version: &str,
        address: &str,
        alone: bool,
    ) -> crate::Result<Option<Replica>> {
        let deadline = tokio::time::Instant::now() + ALIVE_WINDOW + HEARTBEAT;
        let mut first: Option<Vec<Replica>> = None;
        loop {
            let mut tx = self.ctx.store().begin().await?;
            replicas::lock_registry(&mut tx).await?;
            if alone {
                let now = self.ctx.clock().now();
                let others: Vec<Replica> = replicas::all(&mut *tx)
                    .await?
                    .into_iter()
                    .map(|r| replica_at(r, now))
                    .filter(|r| r.state == ReplicaState::Alive && r.id != self.ctx.replica_id())
                    .collect();
                let seen = first.get_or_insert_with(|| others.clone());
                let beating = others.iter().find(|r| {
                    seen.iter()
                        .find(|f| f.id == r.id)
                        .is_none_or(|f| r.last_seen_at > f.last_seen_at)
                });
                if let Some(other) = beating {
                    return Ok(Some(other.clone()));
                }
                if !others.is_empty() && tokio::time::Instant::now() < deadline {
                    // Not holding the lock while waiting: the others' heartbeats do not take it.
                    drop(tx);
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
            }
            replicas::register(
                &mut *tx,
                self.ctx.replica_id(),
                version,
                address,
                self.ctx.clock().now(),
            )
            .await?;
            tx.commit()
                .await
                .map_err(pgfleet_storage::StorageError::from)?;
            self.count().await;
            return Ok(None);
        }
    }

    /// Refreshes this replica's row every [`HEARTBEAT`] (and the `pgfleet_replicas` gauge)
    /// until the shutdown signal changes; then marks it stopped, so the others see it gone at
    /// once. A failed heartbeat (metadata store down) is logged and retried.
    pub fn spawn_heartbeat(
        &self,
        mut shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let ctx = std::sync::Arc::clone(self.ctx);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(HEARTBEAT);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = shutdown.changed() => {}
                }
                if *shutdown.borrow() || shutdown.has_changed().is_err() {
                    break;
                }
                let store = ctx.store().pool();
                let id = ctx.replica_id();
                if let Err(e) = replicas::heartbeat(store, id, ctx.clock().now()).await {
                    tracing::warn!(error = %e, "replica heartbeat failed");
                    continue;
                }
                ctx.replicas().count().await;
            }
            let now = ctx.clock().now();
            if let Err(e) = replicas::mark_stopped(ctx.store().pool(), ctx.replica_id(), now).await
            {
                tracing::warn!(error = %e, "could not mark this replica stopped; it is gone after the alive window");
            }
        }
        .instrument(tracing::info_span!("job", job = "replica_heartbeat")))
    }

    async fn count(&self) {
        match self.list().await {
            Ok(all) => {
                let alive = all
                    .iter()
                    .filter(|r| r.state == ReplicaState::Alive)
                    .count();
                crate::metrics::record_replicas(alive, all.len() - alive);
                self.ctx
                    .alive_replicas()
                    .store(alive, std::sync::atomic::Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, "could not count the replicas"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seen_ago_secs: i64, stopped: bool, now: DateTime<Utc>) -> ReplicaRow {
        ReplicaRow {
            id: "replica_x".into(),
            version: "0".into(),
            address: "127.0.0.1:1".into(),
            started_at: now,
            last_seen_at: now - chrono::Duration::seconds(seen_ago_secs),
            stopped_at: stopped.then_some(now),
        }
    }

    #[test]
    fn alive_within_three_heartbeats_and_not_stopped() {
        let now = Utc::now();
        assert_eq!(state_of(&row(0, false, now), now), ReplicaState::Alive);
        assert_eq!(state_of(&row(6, false, now), now), ReplicaState::Alive);
        assert_eq!(state_of(&row(7, false, now), now), ReplicaState::Gone);
        assert_eq!(state_of(&row(0, true, now), now), ReplicaState::Gone);
    }
}
