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
//! A `database` source with a `timestamp` (point-in-time recovery, [`super::pitr`]) is the
//! same flow with the dump made from the server's archive as of that time.
//!
//! Taking a backup and restoring are writes ([`WriteAccess`]); every database involved is
//! loaded through [`super::databases::Databases::visible`], so a caller limited to one
//! project can neither read nor restore from another project's backups.
//!
//! Staging files a crash leaves under `backups.dir` (`<database>/<backup>.dump.partial`,
//! `downloads/<backup>-<pid>-<n>.dump`, `clones/<operation>.dump`) are removed by
//! [`Backups::clean_staging`], which the scheduler runs at start and on each tick.

mod schedule;
mod steps;

pub use schedule::STAGING_STALE_AFTER;

use crate::access::{WorkspaceAccess, WriteAccess};
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
use crate::{DomainError, Principal, Result};

/// Backups and restores of databases, on demand and on a schedule. Obtained from [`super::Services::backups`].
#[derive(Debug, Clone, Copy)]
pub struct Backups<'a> {
    pub(super) ctx: &'a std::sync::Arc<super::Ctx>,
}

impl Backups<'_> {
    pub(crate) fn view(b: &BackupRow) -> Backup {
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
        self.ctx.config().backups.tools.as_ref().ok_or_else(|| {
            DomainError::internal("pg_dump/pg_restore not found; install the postgresql packages or set postgres.bin_dir")
        })
    }

    fn backup_store(&self) -> &BackupStore {
        &self.ctx.config().backups.store
    }

    /// A local file with the archive of a backup (downloaded for S3; call
    /// [`Fetched::cleanup`] when done).
    async fn fetch(&self, database_id: &str, backup_id: &str) -> Result<Fetched> {
        self.backup_store()
            .fetch(&self.ctx.config().backups.dir, database_id, backup_id)
            .await
            .map_err(DomainError::internal)
    }

    /// `GET /v1/databases/{id}/backups` (newest first; `limit` default 25).
    pub async fn list(
        &self,
        access: &WorkspaceAccess,
        database_id: &str,
        limit: Option<&str>,
    ) -> Result<BackupList> {
        let p = access.principal();
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
        let db = self.ctx.databases().visible(p, database_id).await?;
        let mut rows = backups::list(self.ctx.store().pool(), &db.id, limit + 1).await?;
        let has_more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        Ok(BackupList {
            data: rows.iter().map(Self::view).collect(),
            meta: BackupsMeta {
                backup_retention_days: self.ctx.config().backups.retention_days,
            },
            pagination: BackupsPagination {
                has_more,
                limit: Some(limit),
            },
        })
    }

    /// `POST /v1/databases/{id}/backups`: starts a backup now (202, `running`).
    pub async fn create(&self, access: &WriteAccess, database_id: &str) -> Result<Backup> {
        let p = access.principal();
        let db = self.ctx.databases().visible(p, database_id).await?;
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
        Ok(Self::view(&row))
    }

    async fn record_backup(&self, database_id: &str, trigger: BackupTrigger) -> Result<BackupRow> {
        let mut tx = self.ctx.store().begin().await?;
        let (row, op) = self.insert_backup(&mut tx, database_id, trigger).await?;
        self.ctx.commit_intent(tx, [op], Run::Background).await?;
        Ok(row)
    }

    /// A scheduled backup of `database_id`, unless its newest backup is no longer `seen`, the
    /// one the round read (another round, or a manual backup, got there first). Decided under
    /// the database's schedule lock, so overlapping rounds never back a database up twice.
    async fn record_scheduled_backup(&self, database_id: &str, seen: Option<&str>) -> Result<()> {
        let mut tx = self.ctx.store().begin().await?;
        let latest = backups::lock_schedule_and_latest(&mut tx, database_id).await?;
        if latest.as_ref().map(|b| b.id.as_str()) != seen {
            return Ok(());
        }
        let (_, op) = self
            .insert_backup(&mut tx, database_id, BackupTrigger::Scheduled)
            .await?;
        self.ctx.commit_intent(tx, [op], Run::Background).await
    }

    /// A `running` backup row, inside the caller's transaction, and the operation that takes
    /// it (for [`Ctx::commit_intent`]).
    async fn insert_backup(
        &self,
        tx: &mut sqlx::PgConnection,
        database_id: &str,
        trigger: BackupTrigger,
    ) -> Result<(BackupRow, Planned)> {
        let row = backups::insert(
            &mut *tx,
            &new_id(BACKUP, self.ctx.rng()),
            database_id,
            trigger,
            self.ctx.clock().now(),
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
        let source = self.ctx.databases().visible(p, database_id).await?;
        let b = backups::get(self.ctx.store().pool(), backup_id)
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
            .fetch(&self.ctx.config().backups.dir, &b.database_id, &b.id)
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
    pub async fn restore(
        &self,
        access: &WriteAccess,
        target_id: &str,
        source_db: &str,
        backup_id: &str,
    ) -> Result<Database> {
        let p = access.principal();
        let target = self.ctx.databases().visible(p, target_id).await?;
        let (_, backup) = self.usable_backup(p, source_db, backup_id).await?;
        let source = serde_json::json!({"type": "backup", "databaseId": backup.database_id, "backupId": backup.id});
        let payload = serde_json::json!({ "backupId": backup.id });
        self.start_restore(access, target_id, &target.id, source, payload)
            .await
    }

    /// `POST /v1/databases/{target}/restore` with a `database` source (pgfleet extension):
    /// `target_id` as `source_db` (itself, or another database of its project) was at
    /// `timestamp`; `recovering` until done. Without a timestamp: 422, as before the
    /// extension. A time outside the source's window: 400 naming it (the restore operation
    /// lists 422 only, which `pgfleet_http::statuses` answers instead).
    pub async fn restore_as_of(
        &self,
        access: &WriteAccess,
        target_id: &str,
        source_db: &str,
        timestamp: Option<&str>,
    ) -> Result<Database> {
        let p = access.principal();
        let Some(raw) = timestamp else {
            return Err(DomainError::unprocessable(
                "A database source needs a timestamp to restore to (point-in-time recovery)",
                Some("Send source.timestamp, or restore from a backup.".to_string()),
            ));
        };
        let target = self.ctx.databases().visible(p, target_id).await?;
        let source = self.ctx.databases().visible(p, source_db).await?;
        if source.project_id != target.project_id {
            return Err(DomainError::unprocessable(
                format!(
                    "Database {} is not in the project of database {}",
                    source.id, target.id
                ),
                Some(
                    "Restore from the target itself or another database of its project."
                        .to_string(),
                ),
            ));
        }
        let at = crate::services::pitr::parse_target(raw)?;
        self.ctx.pitr().check_target(&source, at).await?;
        // Full precision (not `ts`, milliseconds): a commit in the same millisecond as the
        // target must stay in.
        let stamp = at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        let recorded =
            serde_json::json!({"type": "database", "databaseId": source.id, "timestamp": stamp});
        let payload = serde_json::json!({ "asOf": { "databaseId": source.id, "target": stamp } });
        self.start_restore(access, target_id, &target.id, recorded, payload)
            .await
    }

    /// Both restores' intent: if the target is ready, marks it `recovering` from `source`
    /// and commits its restore operation (with `payload`), then answers it as it is now.
    async fn start_restore(
        &self,
        access: &WriteAccess,
        target_id: &str,
        id: &str,
        source: serde_json::Value,
        payload: serde_json::Value,
    ) -> Result<Database> {
        let mut tx = self.ctx.store().begin().await?;
        let current = databases::get(&mut *tx, id)
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
        databases::start_recovery(&mut *tx, id, &source).await?;
        let op = Planned::new(OperationKind::DatabaseRestore, id).with_payload(payload);
        // The operation's own bookkeeping notes the write when it finishes, so the re-read
        // below is not served from the cache.
        self.ctx.commit_intent(tx, [op], Run::Wait).await?;
        self.ctx.databases().get(access, target_id).await
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
                timestamp: None,
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
            DatabaseSource::Database {
                database_id,
                timestamp,
            } => {
                let src = self.ctx.databases().visible(p, database_id).await?;
                if let Some(raw) = timestamp {
                    let target = crate::services::pitr::parse_target(raw)?;
                    self.ctx.pitr().check_target(&src, target).await?;
                }
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
}
