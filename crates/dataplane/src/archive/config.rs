//! pgBackRest's configuration of one server and how its commands run: the private
//! `pgbackrest.conf` (no secret in it), the directories it names, the `postgresql.conf`
//! settings that push WAL, and a runner that starts `pgbackrest` as the PostgreSQL OS user
//! with a clean environment plus the S3 secret.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;

use super::{ArchiveSettings, Repo};
use crate::files::{create_dir, escape_conf, write_owned};
use crate::{DataplaneError, Result};

/// Paths under `work_dir`.
pub(super) fn conf_file(s: &ArchiveSettings) -> PathBuf {
    s.work_dir.join("pgbackrest.conf")
}

pub(super) fn scratch_root(s: &ArchiveSettings) -> PathBuf {
    s.work_dir.join("scratch")
}

/// A stanza is a file and section name for pgBackRest: keep it to a safe alphabet.
fn check_stanza(stanza: &str) -> Result<()> {
    let ok = !stanza.is_empty()
        && stanza.len() <= 64
        && stanza
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(DataplaneError::Setup(format!(
            "pgBackRest stanza {stanza:?}: use only letters, digits, '-' and '_' (at most 64)"
        )))
    }
}

/// The text of `pgbackrest.conf`.
pub(super) fn conf_text(s: &ArchiveSettings) -> String {
    let w = &s.work_dir;
    let mut g = vec![
        format!("spool-path={}", w.join("spool").display()),
        format!("log-path={}", w.join("log").display()),
        format!("lock-path={}", w.join("lock").display()),
        // Errors reach pgfleet on stderr; the rest goes to the log directory.
        "log-level-console=off".to_string(),
        // A remote server's connection failures are warnings ("unable to check pg1: …")
        // before the error that ends the command: keep them in what pgfleet reports.
        format!(
            "log-level-stderr={}",
            if s.remote.is_some() { "warn" } else { "error" }
        ),
        "log-level-file=info".to_string(),
        // The process umask (pgfleet's and the postmaster's: 0077) rather than pgBackRest's
        // own 0000 with 0750/0640 modes: nothing it writes is readable by the group.
        "neutral-umask=n".to_string(),
        // WAL is pushed by a background process so archive_command returns fast; a segment
        // counts as archived (pg_stat_archiver) only once it is in the repository.
        "archive-async=y".to_string(),
        // Base backups start with an immediate checkpoint rather than waiting for one.
        "start-fast=y".to_string(),
        // lz4: far cheaper on CPU than the default gzip, for WAL and backups alike.
        "compress-type=lz4".to_string(),
        "process-max=2".to_string(),
        // Time-based retention: full backups (and the WAL they need) older than the window go.
        "repo1-retention-full-type=time".to_string(),
        format!("repo1-retention-full={}", s.retention_days.max(1)),
    ];
    match &s.repo {
        Repo::Local { path } => {
            g.push("repo1-type=posix".to_string());
            g.push(format!("repo1-path={}", path.display()));
        }
        Repo::S3 {
            bucket,
            endpoint,
            port,
            region,
            path,
            verify_tls,
            ..
        } => {
            g.push("repo1-type=s3".to_string());
            g.push(format!("repo1-path={path}"));
            g.push(format!("repo1-s3-bucket={bucket}"));
            g.push(format!("repo1-s3-endpoint={endpoint}"));
            g.push(format!("repo1-storage-port={port}"));
            g.push(format!("repo1-s3-region={region}"));
            // Path-style requests: S3-compatible servers rarely have per-bucket host names.
            g.push("repo1-s3-uri-style=path".to_string());
            if !verify_tls {
                g.push("repo1-storage-verify-tls=n".to_string());
            }
        }
    }
    let mut text = String::from(
        "# Managed by pgfleet; rewritten at every start. The S3 key and secret are never here:\n\
         # they reach pgBackRest in its environment only.\n[global]\n",
    );
    for l in g {
        text.push_str(&l);
        text.push('\n');
    }
    text.push_str(&format!(
        "\n[{stanza}]\npg1-path={pgdata}\npg1-socket-path={sock}\npg1-port={port}\npg1-user={user}\n",
        stanza = s.stanza,
        pgdata = s.pgdata.display(),
        sock = s.socket_dir.display(),
        port = s.port,
        user = crate::cluster::SUPERUSER,
    ));
    if let Some(r) = &s.remote {
        text.push_str(&super::remote::conf_lines(s, r));
    }
    text
}

/// Creates `work_dir` and the directories pgBackRest writes to (0700, owned by the
/// PostgreSQL OS user), the local repository, and writes `pgbackrest.conf` (0600, same owner).
pub(super) fn write(s: &ArchiveSettings) -> Result<()> {
    check_stanza(&s.stanza)?;
    super::remote::check_repo(s)?;
    if s.archive_timeout_secs == 0 || s.archive_timeout_secs > 60 {
        return Err(DataplaneError::Setup(format!(
            "archive_timeout of {} s: it must be between 1 and 60 (the recovery point is at most that far behind)",
            s.archive_timeout_secs
        )));
    }
    let mut dirs = vec![
        s.work_dir.clone(),
        s.work_dir.join("spool"),
        s.work_dir.join("log"),
        s.work_dir.join("lock"),
        scratch_root(s),
    ];
    if let Repo::Local { path } = &s.repo {
        dirs.push(path.clone());
    }
    for d in &dirs {
        create_dir(d, 0o700)?;
        s.run_as.own(d)?;
    }
    s.run_as.check_traversable(&s.work_dir.join("spool"))?;
    if let Repo::Local { path } = &s.repo {
        s.run_as.check_traversable(&path.join("archive"))?;
    }
    if let Some(r) = &s.remote {
        super::remote::write_tls(s, r)?;
    }
    write_owned(&s.run_as, &conf_file(s), conf_text(s).as_bytes(), 0o600)
}

/// For commands that only need the repository (`restore`, `archive-get` of a scratch
/// instance): a remote server's `pg1-host` must not apply (they run on this machine).
pub(super) fn local_only(s: &ArchiveSettings) -> &'static str {
    if s.remote.is_some() {
        "--reset-pg1-host"
    } else {
        ""
    }
}

/// Quotes a word for `/bin/sh` (PostgreSQL runs `archive_command` through it).
pub(super) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The `archive_command` (and, with `archive-get`, the scratch instance's `restore_command`).
pub(super) fn pgbackrest_command(s: &ArchiveSettings, tail: &str) -> String {
    format!(
        "{exe} {conf} --stanza={stanza} {tail}",
        exe = sh_quote(&s.pgbackrest.display().to_string()),
        conf = sh_quote(&format!("--config={}", conf_file(s).display())),
        stanza = s.stanza,
    )
}

/// `postgresql.conf` lines (values quoted for the file) that turn archiving on (for a remote
/// server: what its operator sets there).
pub(super) fn postgres_settings(s: &ArchiveSettings) -> Vec<(String, String)> {
    let quoted = |v: &str| format!("'{}'", escape_conf(v));
    vec![
        ("wal_level".to_string(), "replica".to_string()),
        ("archive_mode".to_string(), "on".to_string()),
        (
            "archive_command".to_string(),
            quoted(&match &s.remote {
                // The database host's own pgbackrest.conf (its default path) names the repository.
                Some(_) => format!("pgbackrest --stanza={} archive-push %p", s.stanza),
                None => pgbackrest_command(s, "archive-push %p"),
            }),
        ),
        (
            "archive_timeout".to_string(),
            format!("{}", s.archive_timeout_secs.clamp(1, 60)),
        ),
    ]
}

/// The environment pgBackRest needs beyond the file: the S3 credentials.
pub(super) fn secret_env(s: &ArchiveSettings) -> Vec<(String, String)> {
    match &s.repo {
        Repo::Local { .. } => Vec::new(),
        Repo::S3 {
            access_key_id,
            secret_access_key,
            ..
        } => vec![
            ("PGBACKREST_REPO1_S3_KEY".to_string(), access_key_id.clone()),
            (
                "PGBACKREST_REPO1_S3_KEY_SECRET".to_string(),
                secret_access_key.clone(),
            ),
        ],
    }
}

/// Runs `pgbackrest --config=… --stanza=… <args>` as the PostgreSQL OS user; answers stdout.
pub(super) async fn run(s: &ArchiveSettings, args: &[OsString]) -> Result<String> {
    let mut cmd = std::process::Command::new(&s.pgbackrest);
    cmd.arg(format!("--config={}", conf_file(s).display()))
        .arg(format!("--stanza={}", s.stanza))
        .args(args)
        .current_dir(&s.work_dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LC_ALL", "C")
        .envs(secret_env(s))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    s.run_as.apply(&mut cmd);
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true);
    let what = args
        .iter()
        .map(|a| a.to_string_lossy().to_string())
        .find(|a| !a.starts_with("--"))
        .unwrap_or_default();
    let out = cmd
        .output()
        .await
        .map_err(|e| DataplaneError::io(&s.pgbackrest, e))?;
    if !out.status.success() {
        return Err(DataplaneError::Setup(format!(
            "pgbackrest {what} (stanza {}) failed ({}): {}",
            s.stanza,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

/// `args` as `OsString`s.
pub(super) fn args<I, A>(items: I) -> Vec<OsString>
where
    I: IntoIterator<Item = A>,
    A: Into<OsString>,
{
    items.into_iter().map(Into::into).collect()
}

/// Whether a path is below `root` without `..` tricks (scratch names come from callers).
pub(super) fn plain_name(name: &str) -> Result<&str> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(name)
    } else {
        Err(DataplaneError::Setup(format!(
            "scratch instance name {name:?}: use only letters, digits, '-' and '_'"
        )))
    }
}
