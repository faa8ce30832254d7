//! Once per interval across replicas: every periodic job names itself with a [`Job`] and runs
//! a round only when its [`Lease`] says so. Several `pgfleet serve` replicas may share one
//! metadata store; without this each would back up, sample and sweep on its own.
//!
//! The rule, kept in the `leases` table (`pgfleet_storage::leases`): a replica runs a round
//! when, in one statement, it takes or renews the job's lease (free, expired, or its own) and
//! the job's last round, on any replica, started at least one interval ago. The holder renews
//! the lease at every tick, so it keeps the job (and the sampler its in-memory readings); a
//! replica that dies stops renewing and another takes the job over once the lease expires,
//! within [`Lease::ttl`] plus one tick. The holder keeps renewing while a round runs
//! ([`Lease::renew`]), so a round longer than the TTL (a base backup of a large cluster) is
//! not started again by another replica meanwhile. The start of a round is recorded, not its
//! end.
//!
//! Time is each replica's injected [`Clock`]; replicas' clocks must agree to well within the
//! lease's TTL (a few seconds at least), which NTP gives.

use std::time::Duration;

use chrono::{DateTime, Utc};

use pgfleet_storage::leases::{self, Claim, ClaimTimes};
use pgfleet_storage::Store;

use crate::Clock;

/// Every periodic job. A job added later gets a variant here, so it cannot run without a
/// lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Job {
    /// Usage samples (`services::usage`).
    UsageSampler,
    /// Drift repair and storage quota (`services::guard`).
    TenantGuard,
    /// Scheduled backups, retention and backup staging cleanup (`services::backups`).
    BackupScheduler,
    /// Expired sessions, codes, tokens and throttles (`services::sessions`).
    ExpirySweeper,
    /// Base backups, retention and the restorable window of archived servers
    /// (`services::pitr`).
    PitrArchiver,
    /// Expired unclaimed temporary databases (`services::claimable`).
    ClaimableReaper,
}

impl Job {
    /// The job's key in the `leases` table.
    pub fn name(self) -> &'static str {
        match self {
            Job::UsageSampler => "usage_sampler",
            Job::TenantGuard => "tenant_guard",
            Job::BackupScheduler => "backup_scheduler",
            Job::ExpirySweeper => "expiry_sweeper",
            Job::PitrArchiver => "pitr_archiver",
            Job::ClaimableReaper => "claimable_reaper",
        }
    }
}

/// Shortest and longest lease: three intervals, within these bounds.
const MIN_TTL: Duration = Duration::from_secs(3);
const MAX_TTL: Duration = Duration::from_secs(60);

/// One replica's view of one job's lease.
#[derive(Debug, Clone)]
pub struct Lease {
    job: Job,
    replica: String,
    interval: Duration,
    ttl: Duration,
}

impl Lease {
    /// The lease of `job` for the replica `replica`, whose rounds are `interval` apart.
    pub fn new(job: Job, replica: impl Into<String>, interval: Duration) -> Self {
        let ttl = interval.saturating_mul(3).clamp(MIN_TTL, MAX_TTL);
        Self {
            job,
            replica: replica.into(),
            interval,
            ttl,
        }
    }

    pub fn job(&self) -> Job {
        self.job
    }

    /// How long a lease lasts without renewal: a dead holder is replaced within this plus
    /// one [`Self::tick`].
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// How often a replica asks: the interval, or a third of the TTL when that is shorter,
    /// so the holder renews well before its lease expires.
    pub fn tick(&self) -> Duration {
        self.interval.min(self.ttl / 3)
    }

    /// How much sooner than one interval a round may still count as due: ticks are not
    /// exact, and a round due at tick time must not slip by a whole tick.
    fn slack(&self) -> Duration {
        (self.interval / 10).min(self.tick() / 2)
    }

    /// Takes or renews the lease now; the round's start time when this replica is to run a
    /// round (recorded before this returns: rounds on any replica are at least an interval
    /// less the slack apart in these times), `None` when not.
    pub async fn try_run(
        &self,
        store: &Store,
        clock: &dyn Clock,
    ) -> crate::Result<Option<DateTime<Utc>>> {
        let now = clock.now();
        let times = ClaimTimes {
            now,
            expires_at: now + chrono_duration(self.ttl),
            due_if_last_run_before: now - chrono_duration(self.interval - self.slack()),
        };
        let mut conn = store
            .pool()
            .acquire()
            .await
            .map_err(pgfleet_storage::StorageError::from)?;
        let claim = leases::claim(&mut conn, self.job.name(), &self.replica, times).await?;
        Ok((claim == Claim::Run).then_some(now))
    }

    /// Keeps the lease while a round runs (called every tick by the periodic loop): renewed
    /// when this replica still holds it (or it expired and nobody took it), never a new
    /// round. False when another replica holds it now.
    pub async fn renew(&self, store: &Store, clock: &dyn Clock) -> crate::Result<bool> {
        let now = clock.now();
        let times = ClaimTimes {
            now,
            expires_at: now + chrono_duration(self.ttl),
            // No round started this far back (and PostgreSQL's timestamptz holds it; its
            // range starts at 4713 BC, chrono's minimum is far earlier): only the lease is
            // renewed.
            due_if_last_run_before: DateTime::<Utc>::UNIX_EPOCH,
        };
        let mut conn = store
            .pool()
            .acquire()
            .await
            .map_err(pgfleet_storage::StorageError::from)?;
        let claim = leases::claim(&mut conn, self.job.name(), &self.replica, times).await?;
        Ok(claim != Claim::Elsewhere)
    }

    /// Gives the lease up (at shutdown) so another replica need not wait for it to expire.
    pub async fn release(&self, store: &Store, clock: &dyn Clock) -> crate::Result<()> {
        leases::release(store.pool(), self.job.name(), &self.replica, clock.now()).await?;
        Ok(())
    }
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_and_tick_follow_the_interval_within_bounds() {
        let l = Lease::new(Job::UsageSampler, "r", Duration::from_secs(1));
        assert_eq!(l.ttl(), Duration::from_secs(3));
        assert_eq!(l.tick(), Duration::from_secs(1));
        let l = Lease::new(Job::BackupScheduler, "r", Duration::from_secs(3600));
        assert_eq!(l.ttl(), Duration::from_secs(60));
        assert_eq!(l.tick(), Duration::from_secs(20));
        assert_eq!(l.slack(), Duration::from_secs(10));
    }
}
