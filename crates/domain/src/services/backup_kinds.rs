//! Backups as the web console shows them: each with what started it (the schedule or a
//! user, on demand), and one backup's current state for the console's live status. The
//! `/v1` API's backup shape is the contract's and does not carry the trigger.

use crate::access::WorkspaceAccess;
use pgfleet_api_types::backup::Backup;
use pgfleet_storage::backups;

use crate::{DomainError, Result};

/// What started a backup (stored in `backups.trigger`).
pub use pgfleet_storage::BackupTrigger;

/// The newest backups of a database with their triggers, at most this many.
const CONSOLE_BACKUPS: i64 = 25;

use super::backups::Backups;

impl Backups<'_> {
    /// The newest backups of a database the principal may see, newest first, with what
    /// started each.
    pub async fn list_with_trigger(
        &self,
        access: &WorkspaceAccess,
        database_id: &str,
    ) -> Result<Vec<(Backup, BackupTrigger)>> {
        let p = access.principal();
        let db = self.ctx.databases().visible(p, database_id).await?;
        let rows = backups::list(self.ctx.store().pool(), &db.id, CONSOLE_BACKUPS).await?;
        Ok(rows.iter().map(|b| (Self::view(b), b.trigger)).collect())
    }

    /// One backup of a database the principal may see (404 when it is not that database's).
    pub async fn get(
        &self,
        access: &WorkspaceAccess,
        database_id: &str,
        backup_id: &str,
    ) -> Result<Backup> {
        let p = access.principal();
        let db = self.ctx.databases().visible(p, database_id).await?;
        match backups::get(self.ctx.store().pool(), backup_id).await? {
            Some(b) if b.database_id == db.id => Ok(Self::view(&b)),
            _ => Err(DomainError::not_found("backup", backup_id)),
        }
    }
}
