//! The WAL position of a running server as a point-in-time restore needs it: forcing the
//! current segment out (`pg_switch_wal`) and reading which segment the archiver last
//! delivered (`pg_stat_archiver`), so a restore to a time after the archive's last segment
//! can wait until that time is archived. (The archive itself, pgBackRest, is
//! [`crate::archive`].)

use crate::{PgServer, Result};

/// Ends the current WAL segment (so the archiver takes it now rather than at
/// `archive_timeout`) and answers the name of the last segment holding WAL written up to
/// now: once the archiver has delivered it, everything committed before this call is in the
/// archive.
pub async fn switch_wal(server: &PgServer) -> Result<String> {
    let c = server.admin_client(None).await?;
    // pg_walfile_name of the switch point names the segment it ends (a boundary belongs to
    // the segment before it), also when there was nothing to switch.
    let row = c
        .query_one("SELECT pg_walfile_name(pg_switch_wal())", &[])
        .await?;
    Ok(row.get(0))
}

/// Whether the archiver has delivered the segment `wal_file` (or a later one): segment
/// names of one timeline sort in WAL order.
pub async fn archived_through(server: &PgServer, wal_file: &str) -> Result<bool> {
    let c = server.admin_client(None).await?;
    let row = c
        .query_one(
            "SELECT coalesce(last_archived_wal >= $1, false) FROM pg_stat_archiver",
            &[&wal_file],
        )
        .await?;
    Ok(row.get(0))
}
