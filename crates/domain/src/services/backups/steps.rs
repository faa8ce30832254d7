//! The reconciler's steps of backups and restores: take a backup, restore in place (into a
//! scratch database, then swapped), fill a new database from a backup or another database;
//! with a point in time, the dump comes from the archive ([`super::super::pitr`]).

use super::*;
use crate::services::webhooks;
use pgfleet_api_types::webhook::WebhookEventType;

impl Backups<'_> {
    pub(crate) async fn exec_create(&self, op: &OperationRow) -> Result<()> {
        let pool = self.ctx.store().pool();
        let Some(b) = backups::get(pool, &op.resource_id)
            .await?
            .filter(|b| b.status == BackupState::Running)
        else {
            self.ctx.succeed_op(pool, op).await?;
            return Ok(());
        };
        crate::reconciler::note_database(&b.database_id);
        let started = std::time::Instant::now();
        let db = databases::get(pool, &b.database_id)
            .await?
            .ok_or_else(|| DomainError::internal("database of a backup is gone"))?;
        let server = self.ctx.server(db.server_id.as_deref())?;
        let marker = self
            .ctx
            .driver()
            .write_activity(server, &db.pg_database)
            .await?;
        let store = self.backup_store();
        let path = store
            .dump_path(&self.ctx.config().backups.dir, &db.id, &b.id)
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
        let mut tx = self.ctx.store().begin().await?;
        backups::complete(
            &mut *tx,
            &b.id,
            size,
            &location,
            marker,
            self.ctx.clock().now(),
        )
        .await?;
        self.ctx.succeed_op(&mut *tx, op).await?;
        if let Some(done) = backups::get(&mut *tx, &b.id).await? {
            webhooks::emit_backup(self.ctx, &mut tx, &done, WebhookEventType::BackupCompleted)
                .await?;
        }
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
        let mut tx = self.ctx.store().begin().await?;
        backups::fail(&mut *tx, &op.resource_id, error, self.ctx.clock().now()).await?;
        if let Some(failed) = backups::get(&mut *tx, &op.resource_id).await? {
            webhooks::emit_backup(self.ctx, &mut tx, &failed, WebhookEventType::BackupFailed)
                .await?;
        }
        tx.commit().await.map_err(StorageError::from)?;
        Ok(())
    }

    fn scratch_names(db: &DatabaseRow, op: &OperationRow) -> (String, String) {
        let tag: String = op.id.trim_start_matches("op_").chars().take(8).collect();
        (
            format!("{}_r{tag}", db.pg_database),
            format!("{}_o{tag}", db.pg_database),
        )
    }

    pub(crate) async fn exec_restore(&self, op: &OperationRow) -> Result<()> {
        let pool = self.ctx.store().pool();
        let Some(db) = databases::get(pool, &op.resource_id)
            .await?
            .filter(|d| d.status == DatabaseState::Recovering)
        else {
            self.ctx.succeed_op(pool, op).await?;
            return Ok(());
        };
        let from = RestoreFrom::of(pool, op).await?;
        let server = self.ctx.server(db.server_id.as_deref())?;
        let spec = self.ctx.spec(&db);
        let (scratch, retired) = Self::scratch_names(&db, op);
        let started = std::time::Instant::now();
        // A scratch database that a crash left half-filled is dropped and refilled.
        if !self.ctx.driver().database_exists(server, &retired).await?
            || self.ctx.driver().database_exists(server, &scratch).await?
        {
            operations::step(pool, &op.id, "restore", self.ctx.clock().now()).await?;
            self.ctx
                .driver()
                .recreate_database(server, &scratch, &db.owner_role)
                .await?;
            let file = match &from {
                RestoreFrom::Backup(b) => self.fetch(&b.database_id, &b.id).await?,
                RestoreFrom::AsOf {
                    database_id,
                    target,
                } => self.ctx.pitr().dump_as_of(op, database_id, *target).await?,
            };
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
        operations::step(pool, &op.id, "swap", self.ctx.clock().now()).await?;
        self.ctx
            .driver()
            .swap_database(server, &spec, &scratch, &retired)
            .await?;
        let mut tx = self.ctx.store().begin().await?;
        databases::set_status(&mut *tx, &db.id, DatabaseState::Ready).await?;
        self.ctx.succeed_op(&mut *tx, op).await?;
        if let Some(restored) = databases::get(&mut *tx, &db.id).await? {
            webhooks::emit_database(
                self.ctx,
                &mut tx,
                &restored,
                WebhookEventType::DatabaseRestored,
            )
            .await?;
        }
        tx.commit().await.map_err(StorageError::from)?;
        tracing::info!(database = %db.id, from = %from, ms = started.elapsed().as_millis() as u64, "restore completed");
        Ok(())
    }

    /// A restore that gives up leaves the old data in place: drop the scratch copy, back to
    /// `ready`.
    pub(crate) async fn restore_failed(&self, op: &OperationRow) -> Result<()> {
        if let Ok(RestoreFrom::AsOf { database_id, .. }) =
            RestoreFrom::of(self.ctx.store().pool(), op).await
        {
            let src = databases::get(self.ctx.store().pool(), &database_id).await?;
            self.ctx
                .pitr()
                .remove_scratch_of(op, src.and_then(|s| s.server_id).as_deref())
                .await;
        }
        if let Some(db) = databases::get(self.ctx.store().pool(), &op.resource_id).await? {
            let (scratch, _) = Self::scratch_names(&db, op);
            if let Ok(server) = self.ctx.server(db.server_id.as_deref()) {
                if let Err(e) = self
                    .ctx
                    .driver()
                    .drop_database_named(server, &scratch)
                    .await
                {
                    tracing::warn!(error = %e, "could not drop the scratch database of a failed restore");
                }
            }
            databases::set_status(self.ctx.store().pool(), &db.id, DatabaseState::Ready).await?;
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
        let server = self.ctx.server(db.server_id.as_deref())?;
        let (file, temporary) = match source {
            DatabaseSource::Empty => return Ok(()),
            DatabaseSource::Backup {
                database_id,
                backup_id,
            } => {
                let f = self.fetch(&database_id, &backup_id).await?;
                let temporary = f.path.clone();
                (temporary, Some(f))
            }
            DatabaseSource::Database {
                database_id,
                timestamp: Some(raw),
            } => {
                let target = crate::services::pitr::parse_target(&raw)?;
                let f = self.ctx.pitr().dump_as_of(op, &database_id, target).await?;
                (f.path.clone(), Some(f))
            }
            DatabaseSource::Database {
                database_id,
                timestamp: None,
            } => {
                let src = databases::get(self.ctx.store().pool(), &database_id)
                    .await?
                    .ok_or_else(|| DomainError::internal("the database to clone is gone"))?;
                let src_server = self.ctx.server(src.server_id.as_deref())?;
                let dir = self.ctx.config().backups.dir.join("clones");
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
            self.ctx
                .driver()
                .recreate_database(server, &db.pg_database, &db.owner_role)
                .await?;
            self.ctx
                .driver()
                .ensure_database(server, &self.ctx.spec(db))
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
}

/// What an in-place restore loads: a backup, or a database as it was at a time.
enum RestoreFrom {
    Backup(BackupRow),
    AsOf {
        database_id: String,
        target: chrono::DateTime<chrono::Utc>,
    },
}

impl RestoreFrom {
    /// From the operation's payload: `{"backupId"}` or `{"asOf": {"databaseId", "target"}}`.
    async fn of(pool: &sqlx::PgPool, op: &OperationRow) -> Result<Self> {
        if let Some(as_of) = op.payload.get("asOf") {
            let field = |k: &str| as_of.get(k).and_then(|v| v.as_str()).unwrap_or_default();
            return Ok(Self::AsOf {
                database_id: field("databaseId").to_string(),
                target: crate::services::pitr::parse_target(field("target"))?,
            });
        }
        let backup_id = op
            .payload
            .get("backupId")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let b = backups::get(pool, backup_id)
            .await?
            .ok_or_else(|| DomainError::internal("backup to restore is gone"))?;
        Ok(Self::Backup(b))
    }
}

impl std::fmt::Display for RestoreFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Backup(b) => write!(f, "backup {}", b.id),
            Self::AsOf {
                database_id,
                target,
            } => write!(f, "{database_id} as of {}", ts(target)),
        }
    }
}
