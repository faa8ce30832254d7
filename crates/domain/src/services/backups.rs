//! Backups: on demand and on a schedule (skipped when the database did not change), kept
//! for `retention_days`; restore in place (into a scratch database, then swapped, so a
//! failure leaves the old data intact); and the data of new databases created from a backup
//! or cloned from another database.
//!
//! The backup store ([`crate::backup_store`]) is a local directory
//! (`<data-dir>/backups/<database>/<backup>.dump`) or an S3-compatible bucket
//! (`<prefix>/<database>/<backup>.dump`, staged through local files); every archive is checked
//! with `pg_restore --list` before it counts as completed.
//!
//! Staging files a crash leaves under `backups.dir` (`<database>/<backup>.dump.partial`,
//! `downloads/<backup>-<pid>-<n>.dump`, `clones/<operation>.dump`) are removed by
//! [`Services::clean_backup_staging`], which the scheduler runs at start and on each tick.

use std::time::Duration;

use pgfleet_api_types::backup::{Backup, BackupList, BackupsMeta, BackupsPagination};
use pgfleet_api_types::database::{Database, DatabaseSource};
use pgfleet_api_types::ts;
use pgfleet_dataplane::PgTools;
use pgfleet_storage::backups::{self, BackupRow};
use pgfleet_storage::{
    databases, operations, BackupState, BackupTrigger, DatabaseRow, DatabaseState, OperationKind,
    OperationRow, StorageError,
};
use tokio::sync::watch;

use super::periodic::Periodic;
use crate::backup_store::{BackupStore, Fetched, StoreError};
use crate::ids::{new_id, BACKUP};
use crate::intent::{Planned, Run};
use crate::lease::Job;
use crate::{DomainError, Principal, Result, Services};

impl Services {
    pub(crate) fn backup_view(b: &BackupRow) -> Backup {
        Backup {
            id: b.id.clone(),
            backup_type: b.kind.clone(),
            created_at: ts(&b.created_at),
            size: b.size_bytes,
            status: b.status.to_string(),
            kind: "backup".to_string(),
        }
    }

    pub(crate) fn tools(&self) -> Result<&PgTools> {
        self.config().backups.tools.as_ref().ok_or_else(|| {
            DomainError::internal("pg_dump/pg_restore not found; install the postgresql packages or set postgres.bin_dir")
        })
    }

    fn backup_store(&self) -> &BackupStore {
        &self.config().backups.store
    }

    /// A local file with the archive of a backup (downloaded for S3; call
    /// [`Fetched::cleanup`] when done).
    async fn fetch_backup(&self, database_id: &str, backup_id: &str) -> Result<Fetched> {
        self.backup_store()
            .fetch(&self.config().backups.dir, database_id, backup_id)
            .await
            .map_err(DomainError::internal)
    }

    /// `GET /v1/databases/{id}/backups` (newest first; `limit` default 25).
    pub async fn backups_list(
        &self,
        p: &Principal,
        database_id: &str,
        limit: Option<&str>,
    ) -> Result<BackupList> {
        let limit = match limit {
            None => 25,
            Some(raw) => match raw.parse::<i64>() {
                Ok(n) if (1..=100).contains(&n) => n,
                _ => {
                    return Err(DomainError::unprocessable(
                        format!("limit must be a whole number from 1 to 100, got {raw:?}"),
                        None,
                    ))
                }
            },
        };
        let db = self.visible_database(p, database_id).await?;
        let mut rows = backups::list(self.store().pool(), &db.id, limit + 1).await?;
        let has_more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        Ok(BackupList {
            data: rows.iter().map(Self::backup_view).collect(),
            meta: BackupsMeta {
                backup_retention_days: self.config().backups.retention_days,
            },
            pagination: BackupsPagination {
                has_more,
                limit: Some(limit),
            },
        })
    }

    /// `POST /v1/databases/{id}/backups`: starts a backup now (202, `running`).
    pub async fn backup_create(&self, p: &Principal, database_id: &str) -> Result<Backup> {
        let db = self.visible_database(p, database_id).await?;
        if db.status != DatabaseState::Ready {
            return Err(DomainError::conflict(
                format!(
                    "Database {} is {}; back it up when it is ready",
                    db.id, db.status
                ),
                None,
            ));
        }
        let row = self.record_backup(&db.id, BackupTrigger::OnDemand).await?;
        Ok(Self::backup_view(&row))
    }

    async fn record_backup(&self, database_id: &str, trigger: BackupTrigger) -> Result<BackupRow> {
        let mut tx = self.store().begin().await?;
        let (row, op) = self.insert_backup(&mut tx, database_id, trigger).await?;
        self.commit_intent(tx, [op], Run::Background).await?;
        Ok(row)
    }

    /// A scheduled backup of `database_id`, unless its newest backup is no longer `seen`, the
    /// one the round read (another round, or a manual backup, got there first). Decided under
    /// the database's schedule lock, so overlapping rounds never back a database up twice.
    async fn record_scheduled_backup(&self, database_id: &str, seen: Option<&str>) -> Result<()> {
        let mut tx = self.store().begin().await?;
        let latest = backups::lock_schedule_and_latest(&mut tx, database_id).await?;
        if latest.as_ref().map(|b| b.id.as_str()) != seen {
            return Ok(());
        }
        let (_, op) = self
            .insert_backup(&mut tx, database_id, BackupTrigger::Scheduled)
            .await?;
        self.commit_intent(tx, [op], Run::Background).await
    }

    /// A `running` backup row, inside the caller's transaction, and the operation that takes
    /// it (for [`Services::commit_intent`]).
    async fn insert_backup(
        &self,
        tx: &mut sqlx::PgConnection,
        database_id: &str,
        trigger: BackupTrigger,
    ) -> Result<(BackupRow, Planned)> {
        let row = backups::insert(
            &mut *tx,
            &new_id(BACKUP, self.rng()),
            database_id,
            trigger,
            self.clock().now(),
        )
        .await?;
        let op = Planned::new(OperationKind::BackupCreate, &row.id);
        Ok((row, op))
    }

    /// A completed backup of a database of this workspace, checked readable; 404 / 422.
    pub(crate) async fn usable_backup(
        &self,
        p: &Principal,
        database_id: &str,
        backup_id: &str,
    ) -> Result<(DatabaseRow, BackupRow)> {
        let source = self.visible_database(p, database_id).await?;
        let b = backups::get(self.store().pool(), backup_id)
            .await?
            .filter(|b| b.database_id == source.id)
            .ok_or_else(|| DomainError::not_found("Backup", backup_id))?;
        if b.status != BackupState::Completed {
            return Err(DomainError::unprocessable(
                format!(
                    "Backup {backup_id} is {}; only completed backups can be restored",
                    b.status
                ),
                None,
            ));
        }
        let tools = self.tools()?;
        let readable = match self
            .backup_store()
            .fetch(&self.config().backups.dir, &b.database_id, &b.id)
            .await
        {
            Ok(file) => {
                let ok = tools.verify(&file.path).await.is_ok();
                file.cleanup().await;
                ok
            }
            Err(StoreError::NotFound(_)) => false,
            Err(e) => return Err(DomainError::internal(e)),
        };
        if !readable {
            return Err(DomainError::unprocessable(
                format!("Backup {backup_id} is not readable (missing or corrupted archive)"),
                Some("Choose another backup.".to_string()),
            ));
        }
        Ok((source, b))
    }

    /// `POST /v1/databases/{target}/restore`: `recovering` until done.
    pub async fn database_restore(
        &self,
        p: &Principal,
        target_id: &str,
        source_db: &str,
        backup_id: &str,
    ) -> Result<Database> {
        let target = self.visible_database(p, target_id).await?;
        let (_, backup) = self.usable_backup(p, source_db, backup_id).await?;
        let mut tx = self.store().begin().await?;
        let current = databases::get(&mut *tx, &target.id)
            .await?
            .ok_or_else(|| DomainError::not_found("Database", target_id))?;
        if current.status != DatabaseState::Ready {
            return Err(DomainError::conflict(
                format!(
                    "Database {target_id} is {} and cannot be restored now",
                    current.status
                ),
                Some("Retry when it is ready.".to_string()),
            ));
        }
        sqlx::query("UPDATE databases SET status = 'recovering', source = $2 WHERE id = $1 AND status = 'ready'")
            .bind(&target.id)
            .bind(serde_json::json!({"type": "backup", "databaseId": backup.database_id, "backupId": backup.id}))
            .execute(&mut *tx)
            .await
            .map_err(StorageError::from)?;
        let op = Planned::new(OperationKind::DatabaseRestore, &target.id)
            .with_payload(serde_json::json!({ "backupId": backup.id }));
        // The operation's own bookkeeping notes the write when it finishes, so the re-read
        // below is not served from the cache.
        self.commit_intent(tx, [op], Run::Wait).await?;
        self.database_get(p, target_id).await
    }

    /// Validates a create's `source`/`fromDatabase` and returns what to store as `source`.
    pub(crate) async fn resolve_source(
        &self,
        p: &Principal,
        source: Option<&DatabaseSource>,
        from: Option<(&str, Option<&str>)>,
    ) -> Result<Option<serde_json::Value>> {
        let source = match (source, from) {
            (Some(_), Some(_)) => {
                return Err(DomainError::bad_request(
                    "Send source or fromDatabase, not both",
                ))
            }
            (Some(s), None) => s.clone(),
            (None, Some((id, Some(b)))) => DatabaseSource::Backup {
                database_id: id.to_string(),
                backup_id: b.to_string(),
            },
            (None, Some((id, None))) => DatabaseSource::Database {
                database_id: id.to_string(),
            },
            (None, None) => DatabaseSource::Empty,
        };
        match &source {
            DatabaseSource::Empty => {}
            DatabaseSource::Backup {
                database_id,
                backup_id,
            } => {
                self.usable_backup(p, database_id, backup_id).await?;
            }
            DatabaseSource::Database { database_id } => {
                let src = self.visible_database(p, database_id).await?;
                if src.status != DatabaseState::Ready {
                    return Err(DomainError::conflict(
                        format!(
                            "Database {database_id} is {}; clone it when it is ready",
                            src.status
                        ),
                        None,
                    ));
                }
            }
        }
        Ok(Some(
            serde_json::to_value(&source).map_err(DomainError::internal)?,
        ))
    }

    // ----- reconciler steps -----

    pub(crate) async fn exec_backup_create(&self, op: &OperationRow) -> Result<()> {
        let pool = self.store().pool();
        let Some(b) = backups::get(pool, &op.resource_id)
            .await?
            .filter(|b| b.status == BackupState::Running)
        else {
            self.succeed_op(pool, op).await?;
            return Ok(());
        };
        crate::reconciler::note_database(&b.database_id);
        let started = std::time::Instant::now();
        let db = databases::get(pool, &b.database_id)
            .await?
            .ok_or_else(|| DomainError::internal("database of a backup is gone"))?;
        let server = self.server(db.server_id.as_deref())?;
        let marker = self
            .driver()
            .write_activity(server, &db.pg_database)
            .await?;
        let store = self.backup_store();
        let path = store
            .dump_path(&self.config().backups.dir, &db.id, &b.id)
            .await
            .map_err(DomainError::internal)?;
        let partial = path.with_extension("dump.partial");
        self.tools()?
            .dump(server, &db.pg_database, &partial)
            .await?;
        self.tools()?.verify(&partial).await?;
        crate::failpoint::hit("backup.after_dump");
        let (location, size) = store
            .commit(&path, &db.id, &b.id)
            .await
            .map_err(DomainError::internal)?;
        let size = i64::try_from(size).unwrap_or(i64::MAX);
        let mut tx = self.store().begin().await?;
        backups::complete(&mut *tx, &b.id, size, &location, marker, self.clock().now()).await?;
        self.succeed_op(&mut *tx, op).await?;
        tx.commit().await.map_err(StorageError::from)?;
        crate::metrics::record_backup(
            BackupState::Completed.as_str(),
            started.elapsed().as_secs_f64(),
        );
        tracing::info!(backup = %b.id, database = %db.id, bytes = size, ms = started.elapsed().as_millis() as u64, "backup completed");
        Ok(())
    }

    /// When a backup operation gives up.
    pub(crate) async fn backup_failed(&self, op: &OperationRow, error: &str) -> Result<()> {
        backups::fail(
            self.store().pool(),
            &op.resource_id,
            error,
            self.clock().now(),
        )
        .await?;
        Ok(())
    }

    fn scratch_names(db: &DatabaseRow, op: &OperationRow) -> (String, String) {
        let tag: String = op.id.trim_start_matches("op_").chars().take(8).collect();
        (
            format!("{}_r{tag}", db.pg_database),
            format!("{}_o{tag}", db.pg_database),
        )
    }

    pub(crate) async fn exec_database_restore(&self, op: &OperationRow) -> Result<()> {
        let pool = self.store().pool();
        let Some(db) = databases::get(pool, &op.resource_id)
            .await?
            .filter(|d| d.status == DatabaseState::Recovering)
        else {
            self.succeed_op(pool, op).await?;
            return Ok(());
        };
        let backup_id = op
            .payload
            .get("backupId")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let b = backups::get(pool, backup_id)
            .await?
            .ok_or_else(|| DomainError::internal("backup to restore is gone"))?;
        let server = self.server(db.server_id.as_deref())?;
        let spec = self.spec(&db);
        let (scratch, retired) = Self::scratch_names(&db, op);
        let started = std::time::Instant::now();
        // A scratch database that a crash left half-filled is dropped and refilled.
        if !self.driver().database_exists(server, &retired).await?
            || self.driver().database_exists(server, &scratch).await?
        {
            operations::step(pool, &op.id, "restore", self.clock().now()).await?;
            self.driver()
                .recreate_database(server, &scratch, &db.owner_role)
                .await?;
            let file = self.fetch_backup(&b.database_id, &b.id).await?;
            let restored = match self.tools() {
                Ok(tools) => tools
                    .restore(server, &scratch, &db.owner_role, &file.path)
                    .await
                    .map_err(DomainError::from),
                Err(e) => Err(e),
            };
            file.cleanup().await;
            restored?;
        }
        crate::failpoint::hit("database.restore.before_swap");
        operations::step(pool, &op.id, "swap", self.clock().now()).await?;
        self.driver()
            .swap_database(server, &spec, &scratch, &retired)
            .await?;
        let mut tx = self.store().begin().await?;
        databases::set_status(&mut *tx, &db.id, DatabaseState::Ready).await?;
        self.succeed_op(&mut *tx, op).await?;
        tx.commit().await.map_err(StorageError::from)?;
        tracing::info!(database = %db.id, backup = %b.id, ms = started.elapsed().as_millis() as u64, "restore completed");
        Ok(())
    }

    /// A restore that gives up leaves the old data in place: drop the scratch copy, back to
    /// `ready`.
    pub(crate) async fn restore_failed(&self, op: &OperationRow) -> Result<()> {
        if let Some(db) = databases::get(self.store().pool(), &op.resource_id).await? {
            let (scratch, _) = Self::scratch_names(&db, op);
            if let Ok(server) = self.server(db.server_id.as_deref()) {
                if let Err(e) = self.driver().drop_database_named(server, &scratch).await {
                    tracing::warn!(error = %e, "could not drop the scratch database of a failed restore");
                }
            }
            databases::set_status(self.store().pool(), &db.id, DatabaseState::Ready).await?;
        }
        Ok(())
    }

    /// Fills a new database from its `source` (backup or another database). Idempotent: the
    /// database is recreated empty first.
    pub(crate) async fn fill_from_source(&self, db: &DatabaseRow, op: &OperationRow) -> Result<()> {
        let Some(source) = db
            .source
            .clone()
            .and_then(|s| serde_json::from_value::<DatabaseSource>(s).ok())
        else {
            return Ok(());
        };
        let server = self.server(db.server_id.as_deref())?;
        let (file, temporary) = match source {
            DatabaseSource::Empty => return Ok(()),
            DatabaseSource::Backup {
                database_id,
                backup_id,
            } => {
                let f = self.fetch_backup(&database_id, &backup_id).await?;
                let temporary = f.path.clone();
                (temporary, Some(f))
            }
            DatabaseSource::Database { database_id } => {
                let src = databases::get(self.store().pool(), &database_id)
                    .await?
                    .ok_or_else(|| DomainError::internal("the database to clone is gone"))?;
                let src_server = self.server(src.server_id.as_deref())?;
                let dir = self.config().backups.dir.join("clones");
                crate::backup_store::create_private_dir(&dir)
                    .await
                    .map_err(|e| DomainError::internal(format!("{}: {e}", dir.display())))?;
                let file = dir.join(format!("{}.dump", op.id));
                self.tools()?
                    .dump(src_server, &src.pg_database, &file)
                    .await?;
                (file.clone(), Some(Fetched::temporary(file)))
            }
        };
        let result = async {
            self.driver()
                .recreate_database(server, &db.pg_database, &db.owner_role)
                .await?;
            self.driver()
                .ensure_database(server, &self.spec(db))
                .await?;
            self.tools()?
                .restore(server, &db.pg_database, &db.owner_role, &file)
                .await?;
            Ok(())
        }
        .await;
        if let Some(f) = temporary {
            f.cleanup().await;
        }
        result
    }

    // ----- schedule and retention -----

    /// Backs up changed databases whose newest backup is older than the interval, prunes
    /// backups past retention and removes stale staging files: one round per `tick` across
    /// the replicas sharing the metadata store (see [`crate::lease`]), until `shutdown`
    /// turns true.
    pub fn spawn_backup_scheduler(
        &self,
        shutdown: watch::Receiver<bool>,
        tick: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            // At start on every replica, whether or not it holds the lease: the staging
            // files of a crash of this process may be in a directory only it sees (with the
            // S3 store, `backups.dir` holds staging files only and need not be shared).
            if let Err(e) = this.clean_backup_staging().await {
                tracing::warn!(error = %e, "cleaning backup staging files");
            }
            let mut periodic = Periodic::new(&this, Job::BackupScheduler, tick, shutdown);
            while periodic.next().await {
                let round = async {
                    if let Err(e) = this.clean_backup_staging().await {
                        tracing::warn!(error = %e, "cleaning backup staging files");
                    }
                    if let Err(e) = this.backup_tick().await {
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
    pub async fn clean_backup_staging(&self) -> Result<usize> {
        let dir = &self.config().backups.dir;
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
                        let open = operations::get(self.store().pool(), &op_id)
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
                            && !operations::backup_in_use(self.store().pool(), backup_id).await?
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
                        let running = backups::get(self.store().pool(), &backup_id)
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
    pub async fn backup_tick(&self) -> Result<()> {
        let now = self.clock().now();
        let interval = chrono::Duration::from_std(self.config().backups.interval)
            .unwrap_or(chrono::Duration::days(1));
        let latest: std::collections::HashMap<String, BackupRow> =
            backups::latest_per_database(self.store().pool())
                .await?
                .into_iter()
                .map(|b| (b.database_id.clone(), b))
                .collect();
        let ready: Vec<DatabaseRow> = sqlx::query_as(&format!(
            "SELECT {} FROM databases d WHERE d.status = 'ready'",
            databases::COLUMNS
        ))
        .fetch_all(self.store().pool())
        .await
        .map_err(StorageError::from)?;
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
                let server = self.server(db.server_id.as_deref())?;
                let marker = self
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
        let cutoff = now - chrono::Duration::days(self.config().backups.retention_days);
        for b in backups::older_than(self.store().pool(), cutoff).await? {
            if let Err(e) = self.backup_store().delete(&b.database_id, &b.id).await {
                tracing::warn!(error = %e, backup = %b.id, "cannot remove an expired backup");
                continue;
            }
            backups::delete(self.store().pool(), &b.id).await?;
            tracing::info!(backup = %b.id, "expired backup pruned");
        }
        Ok(())
    }
}

/// A download staging file untouched this long, whose backup no open operation restores, is
/// a crash's leftover (see [`Services::clean_backup_staging`]).
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
