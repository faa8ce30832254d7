//! Scratch instances: one database of the archive restored to a target time into a private
//! directory `work_dir/scratch/<name>/` (0700, the PostgreSQL OS user's), started as a
//! socket-only `postgres` (`listen_addresses=''`, the socket in that directory, archiving
//! off, its own `pg_hba.conf`), recovered up to the target and promoted; then stopped and
//! deleted by name, also when a crash of pgfleet left one behind.
//!
//! Which backup set and which databases: the newest base backup that ended before the
//! target. If it holds the database, only that database is restored (`--db-include`); if the
//! database was created after that backup, `--db-include` cannot name it, so every *other*
//! user database of the set is left out instead (`--db-exclude`) and the database itself is
//! recreated by WAL replay. Either way no other tenant's data is restored (pgBackRest writes
//! sparse, zeroed files in their place).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::config::{self, args, plain_name};
use super::{info, Archive, ScratchInstance, ScratchRequest};
use crate::files::{create_dir, tail, write_owned};
use crate::sslmode::ClientTls;
use crate::{DataplaneError, PgServer, Result};

/// Databases every cluster has; `--db-exclude` refuses them.
const SYSTEM_DATABASES: [&str; 3] = ["postgres", "template0", "template1"];

/// How long WAL written up to now may take to reach the repository.
const ARCHIVE_WAIT: Duration = Duration::from_secs(120);

fn dir_of(a: &Archive, name: &str) -> Result<PathBuf> {
    Ok(config::scratch_root(&a.settings).join(plain_name(name)?))
}

fn too(why: String) -> DataplaneError {
    DataplaneError::Setup(why)
}

pub(super) async fn restore(a: &Archive, req: &ScratchRequest) -> Result<ScratchInstance> {
    let s = &a.settings;
    let dir = dir_of(a, &req.name)?;
    if req.target > Utc::now() {
        return Err(too(format!(
            "cannot restore to {}: it is in the future",
            req.target.to_rfc3339()
        )));
    }
    remove(a, &req.name).await?;
    config::write(s)?;
    let started = Instant::now();
    archive_through_now(a).await?;
    let archived = started.elapsed();

    let repo = a.info().await?;
    // pgBackRest reports whole seconds: a backup that stopped at :05 may have stopped at
    // :05.9, and recovery cannot stop before the backup's end.
    let Some(set) = repo
        .backups
        .iter()
        .rev()
        .find(|b| b.stopped_at + chrono::Duration::seconds(1) <= req.target)
    else {
        return Err(too(format!(
            "cannot restore to {}: the archive starts at {}",
            req.target.to_rfc3339(),
            repo.earliest()
                .map(|e| e.to_rfc3339())
                .unwrap_or_else(|| "no base backup yet".to_string())
        )));
    };
    let json = config::run(
        s,
        &args([
            "info".to_string(),
            "--output=json".to_string(),
            format!("--set={}", set.label),
        ]),
    )
    .await?;
    let select = match info::databases(&json)? {
        Some(dbs) if dbs.iter().any(|d| d == &req.pg_database) => {
            vec![format!("--db-include={}", req.pg_database)]
        }
        // Created after this backup: leave out everything else, replay creates it.
        Some(dbs) => dbs
            .iter()
            .filter(|d| !SYSTEM_DATABASES.contains(&d.as_str()))
            .map(|d| format!("--db-exclude={d}"))
            .collect(),
        None => {
            let why = format!(
                "pgbackrest info does not list the databases of backup {}; cannot restore one database",
                set.label
            );
            return Err(too(why));
        }
    };

    create_dir(&dir, 0o700)?;
    s.run_as.own(&dir)?;
    let pgdata = dir.join("pgdata");
    create_dir(&pgdata, 0o700)?;
    s.run_as.own(&pgdata)?;
    // sun_path is 108 bytes; postgres appends "/.s.PGSQL.NNNNN".
    if dir.as_os_str().len() + 16 > 107 {
        return Err(too(format!(
            "the scratch directory path is too long for a Unix socket ({}); choose a shorter work directory",
            dir.display()
        )));
    }

    let mut restore_args = vec![
        "restore".to_string(),
        format!("--pg1-path={}", pgdata.display()),
        format!("--set={}", set.label),
        "--type=time".to_string(),
        format!("--target={}", target_text(req.target)),
        "--target-action=promote".to_string(),
        "--archive-mode=off".to_string(),
    ];
    let local = config::local_only(s);
    if !local.is_empty() {
        restore_args.push(local.to_string());
    }
    restore_args.extend(select);
    config::run(s, &args(restore_args)).await?;
    let restored = started.elapsed();

    let hba = dir.join("pg_hba.conf");
    write_owned(
        &s.run_as,
        &hba,
        b"# Scratch instance: its socket directory is 0700, only its OS user and root reach it.\nlocal all all trust\n",
        0o600,
    )?;
    let port = free_port()?;
    let mut child = spawn(a, &dir, &pgdata, &hba, port)?;
    let mut admin = tokio_postgres::Config::new();
    admin
        .host_path(&dir)
        .port(port)
        .user(crate::cluster::SUPERUSER)
        .dbname(&req.pg_database)
        .application_name("pgfleet")
        .connect_timeout(Duration::from_secs(5));
    let deadline = Instant::now() + a.scratch_timeout;
    let log = dir.join("postgres.log");
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let lines = tail(&log, 10);
            let why = if lines.contains("recovery ended before configured recovery target") {
                format!(
                    "the archive does not reach {} yet (its newest WAL is older)",
                    req.target.to_rfc3339()
                )
            } else {
                format!("postgres exited during recovery ({status})")
            };
            return Err(too(format!(
                "restoring {} to {}: {why}; last log lines:\n{lines}",
                req.pg_database,
                req.target.to_rfc3339()
            )));
        }
        if let Ok((client, conn)) = admin.connect(tokio_postgres::NoTls).await {
            let task = tokio::spawn(conn);
            let promoted = client
                .query_one("SELECT NOT pg_is_in_recovery()", &[])
                .await
                .map(|r| r.get::<_, bool>(0))
                .unwrap_or(false);
            drop(client);
            let _ = task.await;
            if promoted {
                break;
            }
        }
        if Instant::now() > deadline {
            let _ = child.start_kill();
            return Err(too(format!(
                "restoring {} to {}: not recovered within {:?}; last log lines:\n{}",
                req.pg_database,
                req.target.to_rfc3339(),
                a.scratch_timeout,
                tail(&log, 10)
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::info!(
        name = %req.name,
        database = %req.pg_database,
        backup = %set.label,
        archive_ms = archived.as_millis() as u64,
        restore_ms = (restored - archived).as_millis() as u64,
        recovery_ms = (started.elapsed() - restored).as_millis() as u64,
        "scratch instance recovered to its target"
    );
    // The postmaster outlives this handle (tokio reaps it once it exits); it is stopped
    // by name, from its pid file.
    drop(child);
    Ok(ScratchInstance {
        name: req.name.clone(),
        dir,
        server: PgServer {
            key: format!("scratch:{}", req.name),
            region: String::new(),
            admin,
            tls: ClientTls::disabled(),
            public_host: "localhost".to_string(),
            public_port: port,
        },
    })
}

/// `recovery_target_time` in UTC with microseconds (PostgreSQL's resolution).
fn target_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string()
}

fn free_port() -> Result<u16> {
    // Only the socket's file name uses it (no TCP listener), but keep it unlike any other.
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| DataplaneError::io("127.0.0.1:0", e))?;
    Ok(l.local_addr()
        .map_err(|e| DataplaneError::io("127.0.0.1:0", e))?
        .port())
}

fn spawn(
    a: &Archive,
    dir: &Path,
    pgdata: &Path,
    hba: &Path,
    port: u16,
) -> Result<tokio::process::Child> {
    let s = &a.settings;
    let log = dir.join("postgres.log");
    let file = {
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&log)
            .map_err(|e| DataplaneError::io(&log, e))?
    };
    let err = file.try_clone().map_err(|e| DataplaneError::io(&log, e))?;
    // Command-line settings win over the restored postgresql.conf, pgfleet.conf and the
    // postgresql.auto.conf pgBackRest wrote (whose recovery target settings are kept).
    // archive-get checks the instance it serves against `pg1-path`; synchronous, so
    // concurrent scratch instances share no spool or lock.
    let restore_command = config::pgbackrest_command(
        s,
        &format!(
            "{} {} --archive-async=n archive-get %f \"%p\"",
            config::sh_quote(&format!("--pg1-path={}", pgdata.display())),
            config::local_only(s),
        ),
    );
    let settings = [
        format!("port={port}"),
        "listen_addresses=".to_string(),
        format!("unix_socket_directories={}", dir.display()),
        "unix_socket_permissions=0700".to_string(),
        format!("hba_file={}", hba.display()),
        "ssl=off".to_string(),
        "archive_mode=off".to_string(),
        // No connections until promoted; it also waives the "at least the primary's
        // max_connections" rule of hot standby, so the instance stays small.
        "hot_standby=off".to_string(),
        "max_connections=20".to_string(),
        "superuser_reserved_connections=3".to_string(),
        "shared_buffers=64MB".to_string(),
        // Throwaway: a crash means it is removed, never reused, so durability buys nothing
        // and costs the restore its flushes (replay and the end-of-recovery checkpoint).
        "fsync=off".to_string(),
        "synchronous_commit=off".to_string(),
        "full_page_writes=off".to_string(),
        "logging_collector=off".to_string(),
        "cluster_name=pgfleet-scratch".to_string(),
        format!("restore_command={restore_command}"),
    ];
    let mut cmd = std::process::Command::new(s.bin_dir.join("postgres"));
    cmd.arg("-D").arg(pgdata);
    for kv in &settings {
        cmd.arg("-c").arg(kv);
    }
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LC_ALL", "C")
        .envs(config::secret_env(s))
        .stdin(Stdio::null())
        .stdout(Stdio::from(file))
        .stderr(Stdio::from(err));
    s.run_as.apply(&mut cmd);
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(false);
    cmd.spawn()
        .map_err(|e| DataplaneError::io(s.bin_dir.join("postgres"), e))
}

/// Makes the archive hold all WAL written up to now, with a commit in it after now:
/// recovery to a time stops at the first commit past it and fails if the WAL ends first.
/// Skipped (with a log line) when the server cannot be reached: then what is archived is
/// all there is.
pub(super) async fn archive_through_now(a: &Archive) -> Result<()> {
    let s = &a.settings;
    let connected = match &s.remote {
        // On another machine: the admin connection pgfleet has for it (TCP, its URL's TLS).
        Some(r) => r.admin.admin_client(None).await.map_err(|e| e.to_string()),
        None => {
            let mut cfg = tokio_postgres::Config::new();
            cfg.host_path(&s.socket_dir)
                .port(s.port)
                .user(crate::cluster::SUPERUSER)
                .dbname("postgres")
                .application_name("pgfleet")
                .connect_timeout(Duration::from_secs(5));
            match cfg.connect(tokio_postgres::NoTls).await {
                Ok((client, conn)) => {
                    tokio::spawn(conn);
                    Ok(client)
                }
                Err(e) => Err(e.to_string()),
            }
        }
    };
    let client = match connected {
        Ok(client) => client,
        Err(e) => {
            tracing::warn!(error = %e, stanza = %s.stanza, "server unreachable: restoring from what is archived");
            return Ok(());
        }
    };
    client.simple_query("SELECT txid_current()").await?;
    let segment: String = client
        .query_one("SELECT pg_walfile_name(pg_switch_wal())", &[])
        .await?
        .get(0);
    let deadline = Instant::now() + ARCHIVE_WAIT;
    loop {
        let row = client
            .query_one(
                "SELECT coalesce(last_archived_wal, ''), coalesce(last_failed_wal, '') FROM pg_stat_archiver",
                &[],
            )
            .await?;
        let (archived, failed): (String, String) = (row.get(0), row.get(1));
        // Same timeline: segment names compare in WAL order.
        if archived.len() == segment.len() && archived >= segment {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(too(format!(
                "WAL segment {segment} did not reach the archive within {ARCHIVE_WAIT:?} \
                 (last archived {archived:?}, last failed {failed:?}): is the repository reachable?"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Stops the postmaster of a scratch instance (immediate shutdown: it is deleted next)
/// and deletes its directory.
pub(super) async fn remove(a: &Archive, name: &str) -> Result<()> {
    let dir = dir_of(a, name)?;
    if !dir.exists() {
        return Ok(());
    }
    let pgdata = dir.join("pgdata");
    if let Some(pid) = postmaster_of(&pgdata) {
        let target = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGQUIT);
        let deadline = Instant::now() + Duration::from_secs(30);
        while alive(pid) {
            if Instant::now() > deadline {
                let _ = nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGKILL);
                tokio::time::sleep(Duration::from_millis(200)).await;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // What a crash of pgfleet can leave writing into the directory: a `pgbackrest restore`
    // (or the postmaster, before its pid file) still running; killed so the removal sticks.
    let stragglers = processes_on(&pgdata);
    for pid in &stragglers {
        tracing::warn!(pid, name, "killing a process left on a scratch instance");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while stragglers.iter().any(|p| alive(*p)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let d = dir.clone();
    tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&d))
        .await
        .map_err(|e| too(format!("removing {}: {e}", dir.display())))?
        .map_err(|e| DataplaneError::io(&dir, e))
}

/// The running postmaster of a data directory, if its pid file names one that is really
/// a postgres on that directory (a recycled pid is left alone).
fn postmaster_of(pgdata: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(pgdata.join("postmaster.pid")).ok()?;
    let pid = text.lines().next()?.trim().parse::<i32>().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    (cmdline.contains("postgres") && cmdline.contains(&pgdata.display().to_string())).then_some(pid)
}

/// Processes (other than this one) with `pgdata` as an argument: `postgres -D <pgdata>`,
/// `pgbackrest … --pg1-path=<pgdata> …`.
fn processes_on(pgdata: &Path) -> Vec<i32> {
    let path = pgdata.display().to_string();
    let flag = format!("--pg1-path={path}");
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    c.split(|b| *b == 0)
                        .any(|arg| arg == path.as_bytes() || arg == flag.as_bytes())
                })
                .unwrap_or(false)
        })
        .filter(|pid| alive(*pid))
        .collect()
}

/// Running (a zombie waiting to be reaped has exited).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z"),
        Err(_) => false,
    }
}

pub(super) async fn remove_stale(a: &Archive, keep: &[String]) -> Result<usize> {
    let root = config::scratch_root(&a.settings);
    let entries = match std::fs::read_dir(&root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(DataplaneError::io(&root, e)),
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if keep.contains(&name) {
            continue;
        }
        if plain_name(&name).is_err() {
            tracing::warn!(path = %entry.path().display(), "not a scratch instance; left alone");
            continue;
        }
        tracing::warn!(name = %name, "removing a scratch instance left by an interrupted restore");
        remove(a, &name).await?;
        removed += 1;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_on_a_directory_are_found() {
        let dir = std::env::temp_dir().join(format!("pgfleet-scratch-test-{}", std::process::id()));
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30; :", "pgbackrest"])
            .arg(format!("--pg1-path={}", dir.display()))
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let found = processes_on(&dir);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(found, vec![child.id() as i32]);
    }
}
