//! Point-in-time recovery above the engine (issue 19): which servers are archived (one
//! [`Archive`] per server, built by the binary from `[pitr]` and the backup store), the
//! restorable window of each database (from the `pitr_windows` rows the periodic job keeps,
//! so every replica answers the same without running pgBackRest per request), the check of a
//! restore target against it, and archiving health for `/readyz`, `/metrics` and the console.
//!
//! - [`job`]: the periodic job, once per interval across replicas (its lease): stanza, base
//!   backups on the schedule, `expire`, the window refresh, stale scratch instances;
//! - [`restore`]: the reconciler's step that makes a dump of a database as it was at a time
//!   (scratch instance at the target, `pg_dump`, scratch removed), which the restore-from-dump
//!   steps of [`super::backups`] then load (in place, or into a new database).

mod job;
mod restore;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use pgfleet_api_types::database::RestoreWindow;
use pgfleet_api_types::ts;
use pgfleet_dataplane::archive::Archive;
use pgfleet_storage::pitr::{self, PitrWindowRow};
use pgfleet_storage::DatabaseRow;

use crate::{DomainError, Result};

/// Archiving settings of the services (from `[pitr]`).
#[derive(Debug, Clone)]
pub struct PitrSettings {
    /// Server config key (`embedded`, …) → its archive. A server not here is not archived.
    pub archives: HashMap<String, Archive>,
    /// A full base backup at least this often.
    pub full_every: Duration,
    /// An incremental base backup at least this often.
    pub incr_every: Duration,
    /// Rounds of the periodic job (window refresh, due base backups), across replicas.
    pub check_every: Duration,
    /// `archive_timeout`: the archive is stale past twice this.
    pub archive_timeout: Duration,
    /// `pg_wal` above this many bytes is reported.
    pub wal_alert_bytes: i64,
}

impl Default for PitrSettings {
    fn default() -> Self {
        Self {
            archives: HashMap::new(),
            full_every: Duration::from_secs(86_400),
            incr_every: Duration::from_secs(3_600),
            check_every: Duration::from_secs(30),
            archive_timeout: Duration::from_secs(60),
            wal_alert_bytes: 1 << 30,
        }
    }
}

/// One archived server's health, as the job last recorded it.
#[derive(Debug, Clone)]
pub struct ArchiveHealth {
    pub server_id: String,
    /// How the configuration names the server (`embedded`, …).
    pub server: String,
    pub region: String,
    pub earliest: Option<DateTime<Utc>>,
    pub last_archived_at: Option<DateTime<Utc>>,
    /// Seconds since `last_archived_at` (now).
    pub last_archived_age_secs: Option<f64>,
    pub failed_count: i64,
    pub wal_bytes: i64,
    pub last_full_at: Option<DateTime<Utc>>,
    pub last_incr_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub checked_at: Option<DateTime<Utc>>,
    /// What is wrong, for `/readyz` and the console (empty: archiving is healthy).
    pub problems: Vec<String>,
}

/// Point-in-time recovery. Obtained from [`super::Services::pitr`].
#[derive(Debug, Clone, Copy)]
pub struct Pitr<'a> {
    pub(super) ctx: &'a std::sync::Arc<super::Ctx>,
}

/// A database's window from its server's row: `None` when the server has no base backup
/// yet. `earliest` is the later of the oldest base backup and the database's creation;
/// `latest` the last archived WAL, never before `earliest` (a database created since the
/// last segment can be restored to its creation).
pub(crate) fn window_of(
    db: &DatabaseRow,
    row: &PitrWindowRow,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let earliest = row.earliest?.max(db.created_at);
    let latest = row.last_archived_at.unwrap_or(earliest).max(earliest);
    Some((earliest, latest))
}

/// Parses an RFC 3339 `timestamp` of a restore source.
pub(crate) fn parse_target(raw: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            DomainError::bad_request(format!(
                "timestamp {raw:?} is not an RFC 3339 time (e.g. 2026-01-31T12:00:00Z)"
            ))
        })
}

impl Pitr<'_> {
    fn settings(&self) -> &PitrSettings {
        &self.ctx.config().pitr
    }

    /// The archive of a server (by registered id), if it is archived.
    pub(crate) fn archive_of(&self, server_id: Option<&str>) -> Option<&Archive> {
        let server = self.ctx.server(server_id).ok()?;
        self.settings().archives.get(&server.key)
    }

    /// Every server's window row, by server id (one small read).
    pub(crate) async fn rows(&self) -> Result<HashMap<String, PitrWindowRow>> {
        if self.settings().archives.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(pitr::list(self.ctx.store().pool())
            .await?
            .into_iter()
            .filter(|r| self.archive_of(Some(&r.server_id)).is_some())
            .map(|r| (r.server_id.clone(), r))
            .collect())
    }

    /// The `restoreWindow` of a database, given the rows of [`Pitr::rows`].
    pub(crate) fn view(
        &self,
        db: &DatabaseRow,
        rows: &HashMap<String, PitrWindowRow>,
    ) -> Option<RestoreWindow> {
        let row = rows.get(db.server_id.as_deref()?)?;
        window_of(db, row).map(|(earliest, latest)| RestoreWindow {
            earliest: ts(&earliest),
            latest: ts(&latest),
        })
    }

    /// Checks that `target` can be restored for `db`: its server is archived and the target
    /// is inside its window (or after `latest` but not in the future: the restore then waits
    /// for the archive). Out of the window: 400 naming it.
    pub(crate) async fn check_target(&self, db: &DatabaseRow, target: DateTime<Utc>) -> Result<()> {
        if self.archive_of(db.server_id.as_deref()).is_none() {
            return Err(DomainError::unprocessable(
                format!(
                    "Database {} is on a server whose WAL is not archived: it cannot be restored to a point in time",
                    db.id
                ),
                Some("Restore from a backup instead.".to_string()),
            ));
        }
        let row = match db.server_id.as_deref() {
            Some(id) => pitr::get(self.ctx.store().pool(), id).await?,
            None => None,
        };
        let Some((earliest, latest)) = row.as_ref().and_then(|r| window_of(db, r)) else {
            return Err(DomainError::unprocessable(
                format!(
                    "Database {} has no restore window yet: its server's first base backup has not completed",
                    db.id
                ),
                Some("Retry in a few minutes.".to_string()),
            ));
        };
        let now = self.ctx.clock().now();
        if target < earliest || target > now {
            return Err(DomainError::bad_request_hint(
                format!(
                    "timestamp {} is outside the restore window of database {}: {} to {} (or up to now)",
                    ts(&target),
                    db.id,
                    ts(&earliest),
                    ts(&latest)
                ),
                "Choose a time inside restoreWindow.",
            ));
        }
        Ok(())
    }

    /// Archiving health of every archived server (for `/readyz`, `/metrics`, the console).
    pub async fn health(&self) -> Result<Vec<ArchiveHealth>> {
        if self.settings().archives.is_empty() {
            return Ok(Vec::new());
        }
        let rows = pitr::list(self.ctx.store().pool()).await?;
        let now = self.ctx.clock().now();
        let s = self.settings();
        let mut out = Vec::new();
        for region in self.ctx.configured_regions() {
            for id in self.ctx.region_server_ids(&region.id) {
                let Ok(server) = self.ctx.server(Some(id)) else {
                    continue;
                };
                if !s.archives.contains_key(&server.key) {
                    continue;
                }
                let row = rows.iter().find(|r| &r.server_id == id);
                let age = row
                    .and_then(|r| r.last_archived_at)
                    .map(|t| (now - t).num_milliseconds().max(0) as f64 / 1000.0);
                let mut problems = Vec::new();
                match row {
                    None => problems.push("not checked yet".to_string()),
                    Some(r) => {
                        if let Some(e) = &r.last_error {
                            problems.push(format!("failing: {e}"));
                        }
                        let stale = 2.0 * s.archive_timeout.as_secs_f64();
                        match age {
                            Some(a) if a > stale => problems.push(format!(
                                "last WAL archived {a:.0} s ago (more than twice archive_timeout)"
                            )),
                            None => problems.push("no WAL archived yet".to_string()),
                            _ => {}
                        }
                        if r.last_failed_at > r.last_archived_at {
                            problems.push(format!(
                                "archive_command failing ({} failures)",
                                r.failed_count
                            ));
                        }
                        if r.wal_bytes > s.wal_alert_bytes {
                            problems.push(format!(
                                "pg_wal holds {} bytes (alert above {})",
                                r.wal_bytes, s.wal_alert_bytes
                            ));
                        }
                    }
                }
                out.push(ArchiveHealth {
                    server_id: id.clone(),
                    server: server.key.clone(),
                    region: region.id.clone(),
                    earliest: row.and_then(|r| r.earliest),
                    last_archived_at: row.and_then(|r| r.last_archived_at),
                    last_archived_age_secs: age,
                    failed_count: row.map_or(0, |r| r.failed_count),
                    wal_bytes: row.map_or(0, |r| r.wal_bytes),
                    last_full_at: row.and_then(|r| r.last_full_at),
                    last_incr_at: row.and_then(|r| r.last_incr_at),
                    last_error: row.and_then(|r| r.last_error.clone()),
                    checked_at: row.map(|r| r.checked_at),
                    problems,
                });
            }
        }
        Ok(out)
    }
}

/// The archive metrics in the Prometheus text format, from the recorded health (every
/// replica shows the same): `pgfleet_wal_archive_last_age_seconds{server}`,
/// `pgfleet_wal_bytes{server}`, `pgfleet_wal_archive_failures_total{server}` (the server's
/// `pg_stat_archiver.failed_count`) and `pgfleet_wal_archive_ok{server}`.
pub fn render_metrics(health: &[ArchiveHealth]) -> String {
    let mut out = String::new();
    let mut family =
        |name: &str, kind: &str, help: &str, value: &dyn Fn(&ArchiveHealth) -> Option<String>| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for h in health {
                if let Some(v) = value(h) {
                    out.push_str(&format!(
                        "{name}{{region=\"{}\",server=\"{}\"}} {v}\n",
                        h.region,
                        h.server.replace('\\', "\\\\").replace('"', "\\\"")
                    ));
                }
            }
        };
    family(
        "pgfleet_wal_archive_last_age_seconds",
        "gauge",
        "Seconds since the server's last WAL segment reached the archive (the recovery point).",
        &|h| h.last_archived_age_secs.map(|a| format!("{a:.3}")),
    );
    family(
        "pgfleet_wal_bytes",
        "gauge",
        "Bytes in the server's pg_wal (WAL not yet archived piles up there; see pitr.wal_alert_bytes).",
        &|h| Some(h.wal_bytes.to_string()),
    );
    family(
        "pgfleet_wal_archive_failures_total",
        "counter",
        "Failed archive_command runs of the server (pg_stat_archiver.failed_count).",
        &|h| Some(h.failed_count.to_string()),
    );
    family(
        "pgfleet_wal_archive_ok",
        "gauge",
        "1 while the server's archiving is healthy, 0 while /readyz reports a problem.",
        &|h| Some(u8::from(h.problems.is_empty()).to_string()),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn db(created: DateTime<Utc>) -> DatabaseRow {
        DatabaseRow {
            seq: 1,
            id: "db_1".into(),
            project_id: "proj_1".into(),
            name: "d".into(),
            region_id: "us-east-1".into(),
            server_id: Some("srv_1".into()),
            status: pgfleet_storage::DatabaseState::Ready,
            is_default: true,
            pg_database: "d".into(),
            owner_role: "o".into(),
            connection_limit: 10,
            source: None,
            branch_id: None,
            logical_id: None,
            default_connection_id: None,
            created_at: created,
        }
    }

    fn row(earliest: Option<DateTime<Utc>>, last: Option<DateTime<Utc>>) -> PitrWindowRow {
        PitrWindowRow {
            server_id: "srv_1".into(),
            earliest,
            last_archived_at: last,
            last_failed_at: None,
            failed_count: 0,
            wal_bytes: 0,
            last_full_at: None,
            last_incr_at: None,
            last_error: None,
            checked_at: Utc.timestamp_opt(0, 0).unwrap(),
        }
    }

    #[test]
    fn window_starts_at_the_later_of_base_backup_and_creation() {
        let t = |s| Utc.timestamp_opt(s, 0).unwrap();
        // Older database: the oldest base backup bounds it.
        assert_eq!(
            window_of(&db(t(10)), &row(Some(t(100)), Some(t(200)))),
            Some((t(100), t(200)))
        );
        // Newer database: its creation.
        assert_eq!(
            window_of(&db(t(150)), &row(Some(t(100)), Some(t(200)))),
            Some((t(150), t(200)))
        );
        // Created after the last archived segment: just its creation.
        assert_eq!(
            window_of(&db(t(300)), &row(Some(t(100)), Some(t(200)))),
            Some((t(300), t(300)))
        );
        // No base backup yet: no window.
        assert_eq!(window_of(&db(t(10)), &row(None, Some(t(200)))), None);
    }

    #[test]
    fn metrics_name_each_archived_server() {
        let h = ArchiveHealth {
            server_id: "srv_1".into(),
            server: "embedded".into(),
            region: "us-east-1".into(),
            earliest: None,
            last_archived_at: None,
            last_archived_age_secs: Some(12.5),
            failed_count: 2,
            wal_bytes: 4096,
            last_full_at: None,
            last_incr_at: None,
            last_error: None,
            checked_at: None,
            problems: vec!["x".into()],
        };
        let text = render_metrics(&[h]);
        for line in [
            "pgfleet_wal_archive_last_age_seconds{region=\"us-east-1\",server=\"embedded\"} 12.500",
            "pgfleet_wal_bytes{region=\"us-east-1\",server=\"embedded\"} 4096",
            "pgfleet_wal_archive_failures_total{region=\"us-east-1\",server=\"embedded\"} 2",
            "pgfleet_wal_archive_ok{region=\"us-east-1\",server=\"embedded\"} 0",
            "# TYPE pgfleet_wal_archive_failures_total counter",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        assert_eq!(
            render_metrics(&[])
                .lines()
                .filter(|l| !l.starts_with('#'))
                .count(),
            0
        );
    }

    #[test]
    fn targets_parse_as_rfc3339_only() {
        assert!(parse_target("2026-01-31T12:00:00Z").is_ok());
        assert!(parse_target("2026-01-31T12:00:00.123+02:00").is_ok());
        assert!(parse_target("yesterday").is_err());
        assert!(parse_target("2026-01-31").is_err());
    }
}
