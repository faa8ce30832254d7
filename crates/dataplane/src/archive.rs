//! Continuous WAL archiving and point-in-time recovery of a PostgreSQL server, through
//! pgBackRest (Debian's `pgbackrest` package): one stanza per server, the repository in the
//! configured backup store (a local directory or the S3-compatible store).
//!
//! What this module owns:
//! - the pgBackRest configuration of a server (a private `pgbackrest.conf`, spool/log/lock
//!   directories; S3 secrets only in the environment of the processes that need them);
//! - the `postgresql.conf` settings that turn archiving on (`archive_mode`, an asynchronous
//!   `archive-push` as `archive_command`, `archive_timeout` for the recovery point);
//! - base backups, retention (`expire`), the repository's view of what can be restored;
//! - restoring one database of the archive into a *scratch instance* (a private, socket-only
//!   `postgres` started on a restored data directory, recovered to a target time and
//!   promoted), from which the caller copies the database out; the scratch instance is always
//!   removed, also when a crash left one behind ([`Archive::remove_stale_scratch`]).
//!
//! A server is either on this machine (pgBackRest reads its data directory, connects over
//! its socket) or on another one ([`RemoteHost`]: pgBackRest's TLS server on that host runs
//! what needs the data directory; the host pushes its own WAL to the S3 repository).
//!
//! Layout of `work_dir` (0700, owned by the PostgreSQL OS user): `pgbackrest.conf` (0600),
//! `spool/` (asynchronous archive-push), `log/`, `lock/`, `scratch/<name>/`, and for a remote
//! server `tls/` (private copies of the client certificate, key and CA). Submodules:
//! `config` (the file, the settings, running `pgbackrest`), `info` (its JSON), `scratch`,
//! `remote` (the TLS client side and the database host's guide).
//!
//! Nothing here knows about the metadata store: which server is archived, when base backups
//! run (once across replicas, under a lease) and which operation owns a scratch instance is
//! decided by the domain.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::osuser::RunAs;
use crate::{PgServer, Result};

mod config;
mod info;
mod remote;
mod scratch;

pub use remote::RemoteHost;

/// Where the pgBackRest repository of a server lives.
#[derive(Clone)]
pub enum Repo {
    /// `repo1-type=posix` at this path (private to the PostgreSQL OS user).
    Local { path: PathBuf },
    /// `repo1-type=s3`. pgBackRest speaks S3 over HTTPS only; `verify_tls = false` for a
    /// local test server with a self-signed certificate.
    S3 {
        bucket: String,
        /// Host name of the endpoint (no scheme).
        endpoint: String,
        port: u16,
        region: String,
        /// Key prefix of the repository (`repo1-path`), e.g. `/pgbackrest`.
        path: String,
        verify_tls: bool,
        access_key_id: String,
        /// Passed to pgBackRest in the environment only (`PGBACKREST_REPO1_S3_KEY_SECRET`).
        secret_access_key: String,
    },
}

impl std::fmt::Debug for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Repo::Local { path } => f.debug_struct("Local").field("path", path).finish(),
            Repo::S3 {
                bucket, endpoint, ..
            } => f
                .debug_struct("S3")
                .field("bucket", bucket)
                .field("endpoint", endpoint)
                .finish_non_exhaustive(),
        }
    }
}

/// Archiving settings of one server.
#[derive(Debug, Clone)]
pub struct ArchiveSettings {
    /// The pgBackRest stanza (one per server, e.g. the server's key).
    pub stanza: String,
    pub repo: Repo,
    /// Private working directory: `pgbackrest.conf`, spool, log, lock, scratch instances.
    pub work_dir: PathBuf,
    /// The `pgbackrest` executable.
    pub pgbackrest: PathBuf,
    /// The PostgreSQL server binaries (for scratch instances).
    pub bin_dir: PathBuf,
    /// The server's data directory (pgBackRest's `pg1-path`; on the remote host if `remote`).
    pub pgdata: PathBuf,
    /// The server's socket directory and port (pgBackRest's `pg1-socket-path`, `pg1-port`;
    /// on the remote host if `remote`: its `pgbackrest server` connects through them).
    pub socket_dir: PathBuf,
    pub port: u16,
    /// `Some`: the server is on another machine, reached through its `pgbackrest server`.
    pub remote: Option<RemoteHost>,
    /// OS user that runs PostgreSQL, and so archive-push and every pgBackRest command.
    pub run_as: RunAs,
    /// Base backups and WAL older than this are expired (the restorable window).
    pub retention_days: u32,
    /// `archive_timeout`: the longest the archive lags behind an idle server (≤ 60 s).
    pub archive_timeout_secs: u32,
}

/// One base backup in the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseBackup {
    pub label: String,
    pub kind: BaseBackupKind,
    pub started_at: DateTime<Utc>,
    /// From this time on, the backup plus archived WAL can restore the server.
    pub stopped_at: DateTime<Utc>,
    pub size_bytes: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseBackupKind {
    Full,
    Incremental,
}

/// What the repository can restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoInfo {
    /// Oldest first.
    pub backups: Vec<BaseBackup>,
}

/// The full backups to expire for a window starting at `window_start`: those older than the
/// newest full backup that ended before it (which is kept: the window's start restores from
/// it). Oldest first.
fn expired_fulls(info: &RepoInfo, window_start: DateTime<Utc>) -> Vec<String> {
    let fulls: Vec<&BaseBackup> = info
        .backups
        .iter()
        .filter(|b| b.kind == BaseBackupKind::Full)
        .collect();
    let Some(anchor) = fulls.iter().rposition(|b| b.stopped_at <= window_start) else {
        return Vec::new();
    };
    fulls[..anchor].iter().map(|b| b.label.clone()).collect()
}

impl RepoInfo {
    /// The earliest time a restore can target: the end of the oldest base backup (plus the
    /// second pgBackRest's whole-second stop time may hide).
    pub fn earliest(&self) -> Option<DateTime<Utc>> {
        self.backups
            .iter()
            .map(|b| b.stopped_at + chrono::Duration::seconds(1))
            .min()
    }
}

/// The server's archiver, from `pg_stat_archiver` and the size of `pg_wal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiverStatus {
    /// When the last WAL segment reached the repository (`None`: nothing archived yet).
    pub last_archived_at: Option<DateTime<Utc>>,
    pub last_failed_at: Option<DateTime<Utc>>,
    pub failed_count: i64,
    /// Bytes in `pg_wal` (WAL that cannot be archived piles up here).
    pub wal_bytes: i64,
}

/// A restore of one database into a scratch instance.
#[derive(Debug, Clone)]
pub struct ScratchRequest {
    /// Names the scratch instance (its directory under `work_dir/scratch/`): the owning
    /// operation's id, so a restart finds and removes what a crash left.
    pub name: String,
    /// The database to restore (the others of the cluster are left out: `--db-include`).
    pub pg_database: String,
    /// Recover up to this time (inclusive), then promote.
    pub target: DateTime<Utc>,
}

/// A running scratch instance holding the restored database; reach it through
/// [`ScratchInstance::server`] (superuser over its private Unix socket), then
/// [`ScratchInstance::remove`] it.
#[derive(Debug)]
pub struct ScratchInstance {
    pub name: String,
    pub dir: PathBuf,
    pub server: PgServer,
}

/// One server's archive.
#[derive(Debug, Clone)]
pub struct Archive {
    settings: ArchiveSettings,
    /// Bound on a scratch instance's recovery (replaying WAL takes time).
    scratch_timeout: Duration,
}

impl Archive {
    pub fn new(settings: ArchiveSettings) -> Self {
        Self {
            settings,
            scratch_timeout: Duration::from_secs(15 * 60),
        }
    }

    /// How long [`Archive::restore_scratch`] waits for recovery to reach the target.
    pub fn with_scratch_timeout(mut self, timeout: Duration) -> Self {
        self.scratch_timeout = timeout;
        self
    }

    /// The server is on another machine, reached through its `pgbackrest server`.
    pub fn with_remote(mut self, remote: Option<RemoteHost>) -> Self {
        self.settings.remote = remote;
        self
    }

    pub fn settings(&self) -> &ArchiveSettings {
        &self.settings
    }

    /// `postgresql.conf` lines that turn archiving on (for the embedded cluster's
    /// `extra_settings`; an external server's operator sets the same). Values are quoted for
    /// the file. The `archive_command` reads the file [`Archive::prepare`] writes.
    pub fn postgres_settings(&self) -> Vec<(String, String)> {
        config::postgres_settings(&self.settings)
    }

    /// Environment the postmaster (and so `archive_command`) needs: the S3 secret.
    pub fn postmaster_env(&self) -> Vec<(String, String)> {
        config::secret_env(&self.settings)
    }

    /// For a remote server: what its operator sets on the database host (`postgresql.conf`,
    /// the `pgbackrest.conf` of `pgbackrest server` and `archive-push`, certificates), as
    /// text to log. `None` for a server on this machine. Holds no secret.
    pub fn remote_guide(&self) -> Option<String> {
        let r = self.settings.remote.as_ref()?;
        Some(remote::operator_guide(&self.settings, r))
    }

    /// Creates the work directories (and a local repository), copies a remote server's TLS
    /// files and writes `pgbackrest.conf`. Blocking and quick; call it before the server starts archiving (the embedded
    /// cluster's start) so the first `archive-push` finds its configuration.
    pub fn prepare(&self) -> Result<()> {
        config::write(&self.settings)
    }

    /// Writes the configuration and creates the stanza if missing (idempotent); checks that
    /// archiving works (`pgbackrest check`: a WAL switch that must reach the repository).
    /// The server must be running with [`Archive::postgres_settings`].
    pub async fn ensure_stanza(&self) -> Result<()> {
        self.prepare()?;
        let json = config::run(&self.settings, &config::args(["info", "--output=json"])).await?;
        // Once created, stanza-create would only contend for the lock the asynchronous
        // archive-push holds.
        if !info::stanza_exists(&json)? {
            config::run(&self.settings, &config::args(["stanza-create"])).await?;
        }
        config::run(&self.settings, &config::args(["check"])).await?;
        Ok(())
    }

    /// Takes a base backup (online, from the running server) and answers it as the
    /// repository lists it. An incremental one without a full one before it becomes full
    /// (pgBackRest's rule; `kind` of the answer says which).
    pub async fn base_backup(&self, kind: BaseBackupKind) -> Result<BaseBackup> {
        let before = self.info().await?;
        let kind = match kind {
            BaseBackupKind::Full => "--type=full",
            BaseBackupKind::Incremental => "--type=incr",
        };
        config::run(&self.settings, &config::args(["backup", kind])).await?;
        let after = self.info().await?;
        after
            .backups
            .into_iter()
            .filter(|b| !before.backups.iter().any(|o| o.label == b.label))
            .max_by_key(|b| b.stopped_at)
            .ok_or_else(|| {
                crate::DataplaneError::Setup(format!(
                    "pgbackrest backup (stanza {}) finished but the repository lists no new backup",
                    self.settings.stanza
                ))
            })
    }

    /// The repository's base backups.
    pub async fn info(&self) -> Result<RepoInfo> {
        let json = config::run(&self.settings, &config::args(["info", "--output=json"])).await?;
        info::parse(&json)
    }

    /// Expires base backups and WAL past the retention window (`retention_days` before
    /// `now`, the injected clock's time): every full backup older than the newest full
    /// backup that ended before the window starts goes, with its incremental backups and the
    /// WAL only they needed; that newest one stays, since restoring the window's first
    /// second needs it. pgBackRest's own time-based expiry (same window, its own clock) runs
    /// first. Returns the labels of the backup sets expired here.
    pub async fn expire(&self, now: DateTime<Utc>) -> Result<Vec<String>> {
        config::run(&self.settings, &config::args(["expire"])).await?;
        let info = self.info().await?;
        let window_start =
            now - chrono::Duration::days(i64::from(self.settings.retention_days.max(1)));
        let doomed = expired_fulls(&info, window_start);
        for label in &doomed {
            let set = format!("--set={label}");
            config::run(&self.settings, &config::args(["expire", set.as_str()])).await?;
            tracing::info!(stanza = %self.settings.stanza, %label, "pitr: base backup expired (past the retention window)");
        }
        if !doomed.is_empty() {
            // Expiring a set leaves the archive, and pgBackRest's time-based archive
            // retention follows its own clock (nothing is older than the window by it): WAL is
            // kept for exactly the full backups that remain, so what only the expired ones
            // needed goes.
            let remaining = info
                .backups
                .iter()
                .filter(|b| b.kind == BaseBackupKind::Full)
                .count()
                .saturating_sub(doomed.len())
                .max(1);
            let keep = format!("--repo1-retention-archive={remaining}");
            config::run(
                &self.settings,
                &config::args([
                    "expire",
                    "--repo1-retention-archive-type=full",
                    keep.as_str(),
                ]),
            )
            .await?;
        }
        Ok(doomed)
    }

    /// The archiver's state, read from the running server (`pg_stat_archiver`, and the size
    /// of `pg_wal` from `pg_ls_waldir()`).
    pub async fn archiver_status(&self, server: &PgServer) -> Result<ArchiverStatus> {
        let c = server.admin_client(None).await?;
        let row = c
            .query_one(
                "SELECT (extract(epoch FROM a.last_archived_time) * 1e6)::bigint, \
                        (extract(epoch FROM a.last_failed_time) * 1e6)::bigint, a.failed_count, \
                        (SELECT coalesce(sum(size), 0)::bigint FROM pg_ls_waldir()) \
                 FROM pg_stat_archiver a",
                &[],
            )
            .await?;
        Ok(ArchiverStatus {
            last_archived_at: row
                .get::<_, Option<i64>>(0)
                .and_then(DateTime::from_timestamp_micros),
            last_failed_at: row
                .get::<_, Option<i64>>(1)
                .and_then(DateTime::from_timestamp_micros),
            failed_count: row.get(2),
            wal_bytes: row.get(3),
        })
    }

    /// Makes the repository hold all WAL written up to now, with a commit after now in it
    /// (recovery to a time stops at the first commit past the target, and fails if the WAL
    /// ends before one): `txid_current()` and `pg_switch_wal()` on the server, then waits
    /// (bounded, 2 min) until that segment is archived. [`Archive::restore_scratch`] does it
    /// first; call it alone to wait for a target a moment ago to become restorable. Does
    /// nothing when the server cannot be reached.
    pub async fn archive_through_now(&self) -> Result<()> {
        scratch::archive_through_now(self).await
    }

    /// Restores `req.pg_database` as it was at `req.target` into a scratch instance and
    /// starts it. Idempotent per `req.name`: a leftover of the same name is removed first.
    /// Before restoring, WAL written up to now is pushed to the repository (a WAL switch on
    /// the server, when reachable), so a target a moment ago is covered. See the `scratch`
    /// module for which backup set and databases are restored.
    pub async fn restore_scratch(&self, req: &ScratchRequest) -> Result<ScratchInstance> {
        let made = scratch::restore(self, req).await;
        if made.is_err() {
            // Never leave a half-made instance behind; the first error is the one to report.
            if let Err(e) = scratch::remove(self, &req.name).await {
                tracing::warn!(error = %e, name = %req.name, "removing a failed scratch instance");
            }
        }
        made
    }

    /// Stops and deletes a scratch instance by name (idempotent: nothing there is fine).
    pub async fn remove_scratch(&self, name: &str) -> Result<()> {
        scratch::remove(self, name).await
    }

    /// Stops and deletes every scratch instance whose name is not in `keep` (after a
    /// crash); answers how many were removed.
    pub async fn remove_stale_scratch(&self, keep: &[String]) -> Result<usize> {
        scratch::remove_stale(self, keep).await
    }
}

impl ScratchInstance {
    /// Stops the instance and deletes its directory.
    pub async fn remove(self, archive: &Archive) -> Result<()> {
        archive.remove_scratch(&self.name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(label: &str, kind: BaseBackupKind, stop_h: i64) -> BaseBackup {
        let at = DateTime::from_timestamp(1_764_763_200 + stop_h * 3600, 0).unwrap_or_default();
        BaseBackup {
            label: label.to_string(),
            kind,
            started_at: at,
            stopped_at: at,
            size_bytes: 1,
        }
    }

    #[test]
    fn fulls_older_than_the_one_covering_the_window_start_expire() {
        use BaseBackupKind::{Full, Incremental};
        let info = RepoInfo {
            backups: vec![
                backup("f0", Full, 0),
                backup("f0i", Incremental, 1),
                backup("f1", Full, 24),
                backup("f2", Full, 48),
                backup("f2i", Incremental, 49),
            ],
        };
        let h = |n: i64| info.backups[0].stopped_at + chrono::Duration::hours(n);
        // The window starts before every backup: nothing goes.
        assert!(expired_fulls(&info, h(-1)).is_empty());
        // Between f0 and f1: f0 covers the start and stays.
        assert!(expired_fulls(&info, h(10)).is_empty());
        // Between f1 and f2: f1 covers the start; f0 (and its incremental) go.
        assert_eq!(expired_fulls(&info, h(30)), vec!["f0".to_string()]);
        // After f2: only f2 stays.
        assert_eq!(
            expired_fulls(&info, h(100)),
            vec!["f0".to_string(), "f1".to_string()]
        );
    }
}
