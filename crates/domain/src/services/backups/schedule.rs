//! The backup scheduler: backups of changed databases, retention, and the removal of
//! staging files a crash left behind.

use super::*;

impl Backups<'_> {
    /// Backs up changed databases whose newest backup is older than the interval, prunes
    /// backups past retention and removes stale staging files: one round per `tick` across
    /// the replicas sharing the metadata store (see [`crate::lease`]), until `shutdown`
    /// turns true.
    pub fn spawn_scheduler(
        &self,
        shutdown: watch::Receiver<bool>,
        tick: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let ctx = std::sync::Arc::clone(self.ctx);
        tokio::spawn(async move {
            // At start on every replica, whether or not it holds the lease: the staging
            // files of a crash of this process may be in a directory only it sees (with the
            // S3 store, `backups.dir` holds staging files only and need not be shared).
            if let Err(e) = ctx.backups().clean_staging().await {
                tracing::warn!(error = %e, "cleaning backup staging files");
            }
            let mut periodic = Periodic::new(&ctx, Job::BackupScheduler, tick, shutdown);
            while periodic.next().await {
                let round = async {
                    if let Err(e) = ctx.backups().clean_staging().await {
                        tracing::warn!(error = %e, "cleaning backup staging files");
                    }
                    if let Err(e) = ctx.backups().tick().await {
                        tracing::warn!(error = %e, "backup scheduler");
                    }
                };
                if periodic.run(round).await.is_none() {
                    return;
                }
            }
        })
    }

    /// Removes the staging files under `backups.dir` that no operation can still use, and
    /// returns how many it removed. Only files named as pgfleet names them are touched; the
    /// archives of the local store (`<database>/<backup>.dump`) never are.
    ///
    /// The backups directory may be shared by replicas with one metadata store, and this
    /// runs while requests and operations run, so a file is judged by the metadata, never
    /// by which process wrote it:
    ///
    /// - `clones/<operation>.dump` (a clone's dump): removed once that operation is
    ///   finished or unknown. It is written only while the operation runs, and an open
    ///   operation resumed after a crash dumps into the same file again.
    /// - `<database>/<backup>.dump.partial` (an archive being written): removed once that
    ///   backup is no longer `running`; a running one is resumed and rewrites it.
    /// - `downloads/<backup>-<pid>-<n>.dump` (an S3 archive fetched for `pg_restore`):
    ///   removed when untouched for [`STAGING_STALE_AFTER`] and no open operation restores
    ///   that backup. The age is needed because the readability check of a restore request
    ///   downloads too, without an operation; it takes seconds, not an hour.
    pub async fn clean_staging(&self) -> Result<usize> {
        let dir = &self.ctx.config().backups.dir;
        let mut removed = 0;
        for entry in list_dir(dir).await? {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let path = entry.path();
            match name.as_str() {
                "clones" => {
                    for f in list_dir(&path).await? {
                        let Some(op_id) = staged_name(&f, crate::ids::OPERATION, ".dump") else {
                            continue;
                        };
                        let open = operations::get(self.ctx.store().pool(), &op_id)
                            .await?
                            .is_some_and(|op| op.state.is_open());
                        if !open {
                            removed += remove_staging(&f.path()).await;
                        }
                    }
                }
                "downloads" => {
                    for f in list_dir(&path).await? {
                        let Some(stem) = staged_name(&f, BACKUP, ".dump") else {
                            continue;
                        };
                        let Some((backup_id, _)) = stem.split_once('-') else {
                            continue;
                        };
                        if untouched_for(&f, STAGING_STALE_AFTER).await
                            && !operations::backup_in_use(self.ctx.store().pool(), backup_id)
                                .await?
                        {
                            removed += remove_staging(&f.path()).await;
                        }
                    }
                }
                _ if crate::ids::looks_like(&name, crate::ids::DATABASE) => {
                    for f in list_dir(&path).await? {
                        let Some(backup_id) = staged_name(&f, BACKUP, ".dump.partial") else {
                            continue;
                        };
                        let running = backups::get(self.ctx.store().pool(), &backup_id)
                            .await?
                            .is_some_and(|b| b.status == BackupState::Running);
                        if !running {
                            removed += remove_staging(&f.path()).await;
                        }
                    }
                }
                _ => {}
            }
        }
        if removed > 0 {
            tracing::info!(removed, dir = %dir.display(), "stale backup staging files removed");
        }
        Ok(removed)
    }

    /// One round of the scheduler (public for tests).
    pub async fn tick(&self) -> Result<()> {
        let now = self.ctx.clock().now();
        let interval = chrono::Duration::from_std(self.ctx.config().backups.interval)
            .unwrap_or(chrono::Duration::days(1));
        let latest: std::collections::HashMap<String, BackupRow> =
            backups::latest_per_database(self.ctx.store().pool())
                .await?
                .into_iter()
                .map(|b| (b.database_id.clone(), b))
                .collect();
        let ready = databases::all_ready(self.ctx.store().pool()).await?;
        for db in ready {
            let due = match latest.get(&db.id) {
                None => true,
                Some(b) if b.status == BackupState::Running => false,
                Some(b) => b.created_at + interval <= now,
            };
            if !due {
                continue;
            }
            if let Some(b) = latest.get(&db.id) {
                let server = self.ctx.server(db.server_id.as_deref())?;
                let marker = self
                    .ctx
                    .driver()
                    .write_activity(server, &db.pg_database)
                    .await?;
                if b.activity_marker == Some(marker) {
                    continue; // nothing written since the last backup
                }
            }
            let seen = latest.get(&db.id).map(|b| b.id.as_str());
            self.record_scheduled_backup(&db.id, seen).await?;
        }
        let cutoff = now - chrono::Duration::days(self.ctx.config().backups.retention_days);
        for b in backups::older_than(self.ctx.store().pool(), cutoff).await? {
            if let Err(e) = self.backup_store().delete(&b.database_id, &b.id).await {
                tracing::warn!(error = %e, backup = %b.id, "cannot remove an expired backup");
                continue;
            }
            backups::delete(self.ctx.store().pool(), &b.id).await?;
            tracing::info!(backup = %b.id, "expired backup pruned");
        }
        Ok(())
    }
}

/// A download staging file untouched this long, whose backup no open operation restores, is
/// a crash's leftover (see [`Backups::clean_staging`]).
pub const STAGING_STALE_AFTER: Duration = Duration::from_secs(3600);

/// The entries of a directory; none when it does not exist.
async fn list_dir(dir: &std::path::Path) -> Result<Vec<tokio::fs::DirEntry>> {
    let mut out = Vec::new();
    let mut rd = match tokio::fs::read_dir(dir).await {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(DomainError::internal(format!("{}: {e}", dir.display()))),
    };
    while let Some(entry) = rd
        .next_entry()
        .await
        .map_err(|e| DomainError::internal(format!("{}: {e}", dir.display())))?
    {
        out.push(entry);
    }
    Ok(out)
}

/// The name of a regular file `<prefix>…<suffix>` without the suffix; `None` for anything
/// else, which is left alone.
fn staged_name(entry: &tokio::fs::DirEntry, prefix: &str, suffix: &str) -> Option<String> {
    let name = entry.file_name().into_string().ok()?;
    let stem = name.strip_suffix(suffix)?;
    (stem.starts_with(prefix) && stem.len() > prefix.len()).then(|| stem.to_string())
}

/// The file was last modified at least `age` ago by the OS clock (file times come from the
/// OS clock, not the services' injectable one). Unknown times count as recent.
async fn untouched_for(entry: &tokio::fs::DirEntry, age: Duration) -> bool {
    let Ok(meta) = entry.metadata().await else {
        return false;
    };
    meta.is_file()
        && meta
            .modified()
            .ok()
            .and_then(|m| std::time::SystemTime::now().duration_since(m).ok())
            .is_some_and(|d| d >= age)
}

/// Removes one staging file; 1 when removed, 0 otherwise (a failure is logged).
async fn remove_staging(path: &std::path::Path) -> usize {
    match tokio::fs::remove_file(path).await {
        Ok(()) => 1,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => {
            tracing::warn!(error = %e, path = %path.display(), "cannot remove a staging file");
            0
        }
    }
}
