//! The reconciler's point-in-time step: a dump of a database as it was at a target time,
//! made from a scratch instance (the server's archive restored at the target, only that
//! database, into a private socket-only `postgres` named after the operation), which is
//! removed whatever happens (the engine first switches the server's WAL out and waits for
//! the archive to hold it, so a target up to now restores). The restore-from-dump steps of `services::backups` load the
//! dump (into a scratch database swapped in, or into a new database), so a point-in-time
//! restore has the same intent, `recovering` state and crash safety as a backup restore.
//!
//! Crash safety: every step is idempotent. A crash while the scratch instance runs leaves it
//! behind; the resumed operation restores it again under the same name (the engine removes
//! a leftover of that name first), and a scratch instance whose operation is finished or
//! gone is removed at the next start and by the periodic job ([`super::job`]).

use std::path::PathBuf;
use std::time::Instant;

use chrono::{DateTime, Utc};
use pgfleet_dataplane::archive::ScratchRequest;
use pgfleet_storage::{databases, operations, OperationRow};

use super::Pitr;
use crate::backup_store::Fetched;
use crate::{DomainError, Result};

impl Pitr<'_> {
    /// Dumps `source_id` as it was at `target` into `clones/<operation>.dump` under
    /// `backups.dir` (a staging file `clean_staging` removes once the operation is over).
    pub(crate) async fn dump_as_of(
        &self,
        op: &OperationRow,
        source_id: &str,
        target: DateTime<Utc>,
    ) -> Result<Fetched> {
        let pool = self.ctx.store().pool();
        let src = databases::get(pool, source_id)
            .await?
            .ok_or_else(|| DomainError::internal("the database to restore from is gone"))?;
        let archive = self
            .archive_of(src.server_id.as_deref())
            .ok_or_else(|| DomainError::internal("the source's server is no longer archived"))?;
        operations::step(pool, &op.id, "pitr.scratch", self.ctx.clock().now()).await?;
        let started = Instant::now();
        let scratch = archive
            .restore_scratch(&ScratchRequest {
                name: op.id.clone(),
                pg_database: src.pg_database.clone(),
                target,
            })
            .await?;
        crate::failpoint::hit("database.pitr.after_scratch");
        let dir = self.ctx.config().backups.dir.join("clones");
        let file: PathBuf = dir.join(format!("{}.dump", op.id));
        let dumped = async {
            crate::backup_store::create_private_dir(&dir)
                .await
                .map_err(|e| DomainError::internal(format!("{}: {e}", dir.display())))?;
            self.ctx
                .backups()
                .tools()?
                .dump(&scratch.server, &src.pg_database, &file)
                .await?;
            Ok::<_, DomainError>(())
        }
        .await;
        // Removed whether or not the dump worked: a retry restores a fresh one.
        let removed = scratch.remove(archive).await;
        dumped?;
        removed?;
        tracing::info!(database = %src.id, target = %target, ms = started.elapsed().as_millis() as u64, "pitr: database dumped as of the target");
        Ok(Fetched::temporary(file))
    }

    /// Removes the scratch instance of an operation that gave up (nothing there is fine).
    pub(crate) async fn remove_scratch_of(&self, op: &OperationRow, source_server: Option<&str>) {
        if let Some(archive) = self.archive_of(source_server) {
            if let Err(e) = archive.remove_scratch(&op.id).await {
                tracing::warn!(operation = %op.id, error = %e, "pitr: cannot remove a scratch instance");
            }
        }
    }
}
