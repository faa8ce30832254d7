//! The periodic PITR job: for every archived server, once per `check_every` across replicas
//! (the [`Job::PitrArchiver`] lease, so one replica runs base backups per server): the
//! stanza while the server has no base backup yet, a full base backup
//! when none is newer than `full_every`, else an incremental one when the newest is older
//! than `incr_every`, then `expire` (the retention window), then the window and the
//! archiver's health into `pitr_windows`. Scratch instances no open operation owns (a
//! crash's leftovers) are removed at start on every replica and in each round.

use chrono::{DateTime, Utc};
use pgfleet_dataplane::archive::{Archive, BaseBackupKind, RepoInfo};
use pgfleet_dataplane::PgServer;
use pgfleet_storage::pitr::{self, PitrWindowRow};
use tokio::sync::watch;

use super::Pitr;
use crate::lease::Job;
use crate::services::periodic::Periodic;
use crate::Result;

/// Which base backup is due, if any, given the repository and the schedule.
pub(crate) fn due_backup(
    info: &RepoInfo,
    now: DateTime<Utc>,
    full_every: std::time::Duration,
    incr_every: std::time::Duration,
) -> Option<BaseBackupKind> {
    let age = |t: DateTime<Utc>| (now - t).to_std().unwrap_or_default();
    let last_full = info
        .backups
        .iter()
        .filter(|b| b.kind == BaseBackupKind::Full)
        .map(|b| b.stopped_at)
        .max();
    match last_full {
        None => Some(BaseBackupKind::Full),
        Some(t) if age(t) >= full_every => Some(BaseBackupKind::Full),
        Some(_) => {
            let newest = info.backups.iter().map(|b| b.stopped_at).max()?;
            (age(newest) >= incr_every).then_some(BaseBackupKind::Incremental)
        }
    }
}

impl Pitr<'_> {
    /// Starts the job (nothing to do without an archived server): one round per
    /// `check_every` across replicas, until `shutdown` turns true.
    pub fn spawn_job(
        &self,
        shutdown: watch::Receiver<bool>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        if self.settings().archives.is_empty() {
            return None;
        }
        let ctx = std::sync::Arc::clone(self.ctx);
        let every = self.settings().check_every;
        Some(tokio::spawn(async move {
            // On every replica, lease or not: the scratch instances of this process's crash
            // are in its own work directory.
            ctx.pitr().remove_stale_scratch().await;
            let mut periodic = Periodic::new(&ctx, Job::PitrArchiver, every, shutdown);
            while periodic.next().await {
                let at = periodic.started_at();
                let round = async {
                    ctx.pitr().remove_stale_scratch().await;
                    ctx.pitr().round(at).await;
                };
                if periodic.run(round).await.is_none() {
                    return;
                }
            }
        }))
    }

    /// Removes the scratch instances no open operation owns, on every archived server.
    pub(crate) async fn remove_stale_scratch(&self) {
        let keep = match pitr::open_operation_ids(self.ctx.store().pool()).await {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(error = %e, "pitr: cannot list open operations");
                return;
            }
        };
        for (key, archive) in &self.settings().archives {
            match archive.remove_stale_scratch(&keep).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(server = %key, removed = n, "pitr: removed stale scratch instances")
                }
                Err(e) => {
                    tracing::warn!(server = %key, error = %e, "pitr: cannot remove stale scratch instances")
                }
            }
        }
    }

    /// One round over every archived server.
    pub async fn round(&self, at: DateTime<Utc>) {
        let servers: Vec<(String, PgServer)> = self
            .ctx
            .servers()
            .iter()
            .filter(|(_, s)| self.settings().archives.contains_key(&s.key))
            .map(|(id, s)| (id.clone(), s.clone()))
            .collect();
        for (id, server) in servers {
            let Some(archive) = self.settings().archives.get(&server.key) else {
                continue;
            };
            if let Err(e) = self.refresh(&id, &server, archive, at).await {
                tracing::warn!(server = %server.key, error = %e, "pitr: cannot record the window");
            }
        }
    }

    /// Runs what is due on one server and records its window and health.
    async fn refresh(
        &self,
        server_id: &str,
        server: &PgServer,
        archive: &Archive,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let pool = self.ctx.store().pool();
        let prev = pitr::get(pool, server_id).await?;
        let mut row = prev.clone().unwrap_or(PitrWindowRow {
            server_id: server_id.to_string(),
            earliest: None,
            last_archived_at: None,
            last_failed_at: None,
            failed_count: 0,
            wal_bytes: 0,
            last_full_at: None,
            last_incr_at: None,
            last_error: None,
            checked_at: at,
        });
        let s = self.settings();
        let work = async {
            // Until the first base backup: once there is one, the stanza exists, and
            // `pgbackrest check` (a WAL switch per round) would only add segments to a
            // failing archive.
            let needs_stanza = prev.as_ref().is_none_or(|p| p.earliest.is_none());
            if needs_stanza {
                archive.ensure_stanza().await?;
            }
            let mut info = archive.info().await?;
            if let Some(kind) =
                due_backup(&info, self.ctx.clock().now(), s.full_every, s.incr_every)
            {
                let b = archive.base_backup(kind).await?;
                tracing::info!(server = %server.key, label = %b.label, kind = ?kind, "pitr: base backup taken");
                archive.expire(self.ctx.clock().now()).await?;
                info = archive.info().await?;
            }
            let status = archive.archiver_status(server).await?;
            Ok::<_, pgfleet_dataplane::DataplaneError>((info, status))
        };
        match work.await {
            // A repository that lists no base backup after listing one (read while it was
            // being written, or wiped) must not take the window away from one round to the
            // next: kept, and reported.
            Ok((info, _)) if info.backups.is_empty() && row.earliest.is_some() => {
                tracing::warn!(server = %server.key, "pitr: the repository lists no base backup");
                row.last_error = Some("the repository lists no base backup".to_string());
            }
            Ok((info, status)) => {
                row.earliest = info.earliest();
                let newest = |k: BaseBackupKind| {
                    info.backups
                        .iter()
                        .filter(|b| b.kind == k)
                        .map(|b| b.stopped_at)
                        .max()
                };
                row.last_full_at = newest(BaseBackupKind::Full);
                row.last_incr_at = newest(BaseBackupKind::Incremental);
                row.last_archived_at = status.last_archived_at;
                row.last_failed_at = status.last_failed_at;
                row.failed_count = status.failed_count;
                row.wal_bytes = status.wal_bytes;
                row.last_error = None;
            }
            Err(e) => {
                tracing::warn!(server = %server.key, error = %e, "pitr: archiving round failed");
                row.last_error = Some(e.to_string());
            }
        }
        row.checked_at = self.ctx.clock().now();
        pitr::upsert(pool, &row).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use pgfleet_dataplane::archive::BaseBackup;
    use std::time::Duration;

    fn backup(kind: BaseBackupKind, stop: i64) -> BaseBackup {
        BaseBackup {
            label: format!("b{stop}"),
            kind,
            started_at: Utc.timestamp_opt(stop - 1, 0).unwrap(),
            stopped_at: Utc.timestamp_opt(stop, 0).unwrap(),
            size_bytes: 1,
        }
    }

    #[test]
    fn full_first_then_daily_incremental_hourly() {
        let (day, hour) = (Duration::from_secs(86_400), Duration::from_secs(3_600));
        let now = |s| Utc.timestamp_opt(s, 0).unwrap();
        let none = RepoInfo { backups: vec![] };
        assert_eq!(
            due_backup(&none, now(0), day, hour),
            Some(BaseBackupKind::Full)
        );
        let one = RepoInfo {
            backups: vec![backup(BaseBackupKind::Full, 1_000)],
        };
        assert_eq!(due_backup(&one, now(1_000 + 60), day, hour), None);
        assert_eq!(
            due_backup(&one, now(1_000 + 3_600), day, hour),
            Some(BaseBackupKind::Incremental)
        );
        assert_eq!(
            due_backup(&one, now(1_000 + 86_400), day, hour),
            Some(BaseBackupKind::Full)
        );
        let two = RepoInfo {
            backups: vec![
                backup(BaseBackupKind::Full, 1_000),
                backup(BaseBackupKind::Incremental, 4_000),
            ],
        };
        assert_eq!(due_backup(&two, now(4_000 + 60), day, hour), None);
    }
}
