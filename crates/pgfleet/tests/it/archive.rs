//! The WAL archive engine (`pgfleet_dataplane::archive`) against a real embedded cluster and
//! pgBackRest: archiving on, a base backup, rows with known times, a time T, more writes and
//! deletes; a database restored to T into a scratch instance holds exactly the rows up to T
//! and no other database's data; a database created after the base backup restores too (by
//! WAL replay, the others left out); scratch instances are removed, also stale ones. The
//! same against the S3-compatible store (s3rver over HTTPS with a self-signed certificate).
//! Retention: seen from a week later (the clock is an argument), the older base backups and
//! the WAL only they needed are expired from the repository.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use pgfleet_dataplane::archive::{
    Archive, ArchiveSettings, BaseBackupKind, Repo, ScratchInstance, ScratchRequest,
};
use pgfleet_dataplane::osuser::RunAs;
use pgfleet_dataplane::{ClusterHandle, ClusterSettings, EmbeddedCluster, PgServer};

use crate::backups_s3::{S3Server, BUCKET};
use crate::capacity::ClusterDir;

/// An embedded cluster archiving into `repo`, its stanza created.
pub(crate) struct ArchivedCluster {
    pub(crate) archive: Archive,
    pub(crate) handle: ClusterHandle,
    pub(crate) server: PgServer,
    _dir: ClusterDir,
}

pub(crate) async fn archived_cluster(repo: impl FnOnce(&Path) -> Repo) -> ArchivedCluster {
    let dir = tempfile::Builder::new()
        .prefix("pgfleet-pitr-")
        .tempdir()
        .unwrap();
    // The postgres OS user must pass through to the cluster, the repository and work_dir.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = dir.path().to_path_buf();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bin_dir = PathBuf::from("/usr/lib/postgresql/15/bin");
    let archive = Archive::new(ArchiveSettings {
        stanza: "embedded".to_string(),
        repo: repo(&root),
        work_dir: root.join("pitr"),
        pgbackrest: PathBuf::from("/usr/bin/pgbackrest"),
        bin_dir: bin_dir.clone(),
        pgdata: root.join("postgres"),
        socket_dir: root.join("run"),
        port,
        remote: None,
        run_as: RunAs::detect().unwrap(),
        retention_days: 7,
        archive_timeout_secs: 60,
    })
    .with_scratch_timeout(Duration::from_secs(120));
    archive.prepare().unwrap();
    let settings = ClusterSettings {
        bin_dir: Some(bin_dir),
        port: Some(port),
        max_connections: 50,
        extra_settings: archive.postgres_settings(),
        postmaster_env: archive.postmaster_env(),
        ..ClusterSettings::new(&root)
    };
    let handle = tokio::task::spawn_blocking(move || EmbeddedCluster::prepare(settings))
        .await
        .unwrap()
        .unwrap()
        .start()
        .await
        .unwrap();
    let server = PgServer::from_url(
        "test",
        &format!(
            "postgres://postgres@localhost/postgres?host={}&port={port}",
            root.join("run").display()
        ),
    )
    .unwrap();
    archive.ensure_stanza().await.unwrap();
    // Idempotent.
    archive.ensure_stanza().await.unwrap();
    ArchivedCluster {
        archive,
        handle,
        server,
        _dir: ClusterDir(dir),
    }
}

async fn exec(server: &PgServer, db: Option<&str>, sql: &str) {
    let c = server.admin_client(db).await.unwrap();
    c.batch_execute(sql).await.unwrap();
}

/// Inserts rows `ids` into `db`.t, one transaction each.
async fn insert(server: &PgServer, db: &str, ids: std::ops::RangeInclusive<i32>) {
    let c = server.admin_client(Some(db)).await.unwrap();
    for id in ids {
        c.execute("INSERT INTO t (id) VALUES ($1)", &[&id])
            .await
            .unwrap();
    }
}

async fn server_now(server: &PgServer) -> DateTime<Utc> {
    let c = server.admin_client(None).await.unwrap();
    let micros: i64 = c
        .query_one(
            "SELECT (extract(epoch FROM clock_timestamp()) * 1e6)::bigint",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    DateTime::from_timestamp_micros(micros).unwrap()
}

async fn ids(server: &PgServer, db: &str) -> Vec<i32> {
    let c = server.admin_client(Some(db)).await.unwrap();
    c.query("SELECT id FROM t ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The data of `db` cannot be read on `server` (restored as zeroed files, or not there).
async fn unreadable(server: &PgServer, db: &str) {
    let readable = match server.admin_client(Some(db)).await {
        Ok(c) => c.query("SELECT id FROM t", &[]).await.is_ok(),
        Err(_) => false,
    };
    assert!(!readable, "{db} is readable in the scratch instance");
}

fn postmaster_pid(scratch: &ScratchInstance) -> i32 {
    std::fs::read_to_string(scratch.dir.join("pgdata/postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

/// The scenario of the issue, against one repository.
async fn restore_to_a_time(c: &ArchivedCluster) {
    let (s, a) = (&c.server, &c.archive);
    for db in ["pitr_a", "pitr_b"] {
        exec(s, None, &format!("CREATE DATABASE {db}")).await;
        exec(
            s,
            Some(db),
            "CREATE TABLE t (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())",
        )
        .await;
    }
    let full = a.base_backup(BaseBackupKind::Full).await.unwrap();
    assert_eq!(full.kind, BaseBackupKind::Full);
    let info = a.info().await.unwrap();
    assert!(info.backups.iter().any(|b| b.label == full.label));
    let earliest = info.earliest().unwrap();
    // The window starts in the second after the backup's end (pgBackRest's resolution).
    while server_now(s).await <= earliest {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    insert(s, "pitr_a", 1..=5).await;
    insert(s, "pitr_b", 1..=3).await;
    let t = server_now(s).await;
    assert!(t >= earliest, "T {t} before the window {earliest}");
    tokio::time::sleep(Duration::from_millis(20)).await;
    insert(s, "pitr_a", 6..=8).await;
    exec(s, Some("pitr_a"), "DELETE FROM t WHERE id IN (1, 2)").await;

    let scratch = a
        .restore_scratch(&ScratchRequest {
            name: "op-a".to_string(),
            pg_database: "pitr_a".to_string(),
            target: t,
        })
        .await
        .unwrap();
    assert_eq!(ids(&scratch.server, "pitr_a").await, vec![1, 2, 3, 4, 5]);
    unreadable(&scratch.server, "pitr_b").await;
    let dir = scratch.dir.clone();
    let pid = postmaster_pid(&scratch);
    scratch.remove(a).await.unwrap();
    assert!(!dir.exists(), "scratch directory left behind");
    assert!(!running(pid), "scratch postmaster still running");
    // The live databases are untouched.
    assert_eq!(ids(s, "pitr_a").await, vec![3, 4, 5, 6, 7, 8]);
    assert_eq!(ids(s, "pitr_b").await, vec![1, 2, 3]);

    // A database created after the newest base backup: replayed from WAL, the others left out.
    exec(s, None, "CREATE DATABASE pitr_c").await;
    exec(
        s,
        Some("pitr_c"),
        "CREATE TABLE t (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())",
    )
    .await;
    insert(s, "pitr_c", 1..=4).await;
    let t2 = server_now(s).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    exec(s, Some("pitr_c"), "DELETE FROM t WHERE id = 4").await;
    insert(s, "pitr_c", 10..=11).await;
    let left = a
        .restore_scratch(&ScratchRequest {
            name: "op-c".to_string(),
            pg_database: "pitr_c".to_string(),
            target: t2,
        })
        .await
        .unwrap();
    assert_eq!(ids(&left.server, "pitr_c").await, vec![1, 2, 3, 4]);
    unreadable(&left.server, "pitr_a").await;
    unreadable(&left.server, "pitr_b").await;

    // Left behind as if by a crash: removed unless kept.
    let (dir, pid) = (left.dir.clone(), postmaster_pid(&left));
    drop(left);
    assert_eq!(
        a.remove_stale_scratch(&["op-c".to_string()]).await.unwrap(),
        0
    );
    assert!(dir.exists());
    assert_eq!(a.remove_stale_scratch(&[]).await.unwrap(), 1);
    assert!(!dir.exists(), "stale scratch directory left behind");
    assert!(!running(pid), "stale scratch postmaster still running");
    a.remove_scratch("op-c").await.unwrap();

    // A crash in the middle of a restore: the directory and a process still writing into it
    // (pgbackrest restore with its --pg1-path) are both gone after the clean-up.
    let crashed = a.settings().work_dir.join("scratch/op-crashed/pgdata");
    std::fs::create_dir_all(&crashed).unwrap();
    let mut writer = std::process::Command::new("sh")
        .args(["-c", "sleep 600; :", "pgbackrest"])
        .arg(format!("--pg1-path={}", crashed.display()))
        .spawn()
        .unwrap();
    // Until the child has exec'd, its command line is this test's: wait for the real one
    // (a loaded machine can take a while between fork and exec).
    let flag = format!("--pg1-path={}", crashed.display());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !std::fs::read(format!("/proc/{}/cmdline", writer.id()))
        .is_ok_and(|c| c.split(|b| *b == 0).any(|arg| arg == flag.as_bytes()))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(a.remove_stale_scratch(&[]).await.unwrap(), 1);
    assert!(!crashed.parent().unwrap().exists());
    let pid = writer.id() as i32;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while running(pid) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let killed = !running(pid);
    // Reaped either way (and stopped if the clean-up missed it).
    let _ = writer.kill();
    let _ = writer.wait();
    assert!(
        killed,
        "the process on the crashed scratch instance was not killed"
    );

    // A target before the archive starts is refused with the window in the message.
    let e = a
        .restore_scratch(&ScratchRequest {
            name: "op-early".to_string(),
            pg_database: "pitr_a".to_string(),
            target: earliest - chrono::Duration::hours(1),
        })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("the archive starts at"), "{e}");

    let status = a.archiver_status(s).await.unwrap();
    assert!(status.last_archived_at.is_some(), "{status:?}");
    assert_eq!(status.failed_count, 0, "{status:?}");
    assert!(status.wal_bytes > 0, "{status:?}");
    let incr = a.base_backup(BaseBackupKind::Incremental).await.unwrap();
    assert_eq!(incr.kind, BaseBackupKind::Incremental);
    assert!(a.expire(Utc::now()).await.unwrap().is_empty());
    assert_eq!(a.info().await.unwrap().backups.len(), 2, "within retention");
}

/// The WAL segment names in a local repository's archive, sorted.
fn archived_segments(repo: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let archive = repo.join("archive/embedded");
    for version in std::fs::read_dir(&archive).unwrap() {
        let version = version.unwrap().path();
        if !version.is_dir() {
            continue;
        }
        for dir in std::fs::read_dir(&version).unwrap() {
            let dir = dir.unwrap().path();
            if !dir.is_dir() {
                continue;
            }
            for f in std::fs::read_dir(&dir).unwrap() {
                let name = f.unwrap().file_name().to_string_lossy().into_owned();
                // `<24 hex digits>-<sha1>.gz`; `.history`/`.backup` files aside.
                if name.len() > 24 && name.as_bytes()[24] == b'-' {
                    out.push(name[..24].to_string());
                }
            }
        }
    }
    out.sort();
    out
}

/// Retention, enforced: a week after a second full backup, the first full backup (with its
/// incremental) and the WAL only it needed are gone; a target in the expired part is
/// refused; the window starts at the kept backup, which still restores.
async fn retention_expires_backups_and_wal(c: &ArchivedCluster, repo: &Path) {
    let (s, a) = (&c.server, &c.archive);
    let before = a.info().await.unwrap();
    let old_earliest = before.earliest().unwrap();
    let segments_before = archived_segments(repo);
    assert!(!segments_before.is_empty());
    insert(s, "pitr_b", 100..=102).await;
    let kept = a.base_backup(BaseBackupKind::Full).await.unwrap();
    insert(s, "pitr_b", 103..=104).await;
    // Seen from eight days later (the clock is injected; retention is 7 days): the window
    // starts after `kept` ended, so `kept` covers its start and everything older goes.
    let later = kept.stopped_at + chrono::Duration::days(8);
    let expired = a.expire(later).await.unwrap();
    let fulls_before: Vec<String> = before
        .backups
        .iter()
        .filter(|b| b.kind == BaseBackupKind::Full)
        .map(|b| b.label.clone())
        .collect();
    assert_eq!(expired, fulls_before);
    let after = a.info().await.unwrap();
    assert_eq!(
        after
            .backups
            .iter()
            .map(|b| b.label.as_str())
            .collect::<Vec<_>>(),
        vec![kept.label.as_str()],
        "only the backup covering the window's start is left"
    );
    let new_earliest = after.earliest().unwrap();
    assert!(new_earliest > old_earliest);
    let segments_after = archived_segments(repo);
    assert!(
        segments_after.len() < segments_before.len(),
        "WAL before the kept backup is expired: {} segments before, {} after",
        segments_before.len(),
        segments_after.len()
    );
    assert!(
        segments_after.first() > segments_before.first(),
        "the oldest segment is gone"
    );
    // Idempotent: nothing more goes.
    assert!(a.expire(later).await.unwrap().is_empty());
    // The expired part of the window is refused; the kept backup still restores.
    let e = a
        .restore_scratch(&ScratchRequest {
            name: "op-expired".to_string(),
            pg_database: "pitr_b".to_string(),
            target: old_earliest,
        })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("the archive starts at"), "{e}");
    while server_now(s).await <= new_earliest {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let t = server_now(s).await;
    let scratch = a
        .restore_scratch(&ScratchRequest {
            name: "op-kept".to_string(),
            pg_database: "pitr_b".to_string(),
            target: t,
        })
        .await
        .unwrap();
    assert_eq!(
        ids(&scratch.server, "pitr_b").await,
        vec![1, 2, 3, 100, 101, 102, 103, 104]
    );
    scratch.remove(a).await.unwrap();
}

#[tokio::test]
async fn local_repository_restores_one_database_to_a_time() {
    let c = archived_cluster(|root| Repo::Local {
        path: root.join("repo"),
    })
    .await;
    restore_to_a_time(&c).await;
    let repo = c.archive.settings().work_dir.with_file_name("repo");
    retention_expires_backups_and_wal(&c, &repo).await;
    // The repository is the PostgreSQL OS user's and private.
    let mode = std::fs::metadata(&repo).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let conf = c.archive.settings().work_dir.join("pgbackrest.conf");
    let mode = std::fs::metadata(&conf).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    c.handle.stop().await;
}

/// s3rver over HTTPS (pgBackRest speaks S3 over HTTPS only) with a self-signed certificate.
pub(crate) async fn https_s3rver() -> S3Server {
    S3Server::start_https().await
}

pub(crate) fn s3_repo(s3: &S3Server) -> Repo {
    Repo::S3 {
        bucket: BUCKET.to_string(),
        endpoint: "127.0.0.1".to_string(),
        port: s3.port,
        region: "us-east-1".to_string(),
        path: "/pgfleet/pgbackrest".to_string(),
        verify_tls: false,
        access_key_id: "S3RVER".to_string(),
        secret_access_key: "S3RVER".to_string(),
    }
}

#[tokio::test]
async fn s3_repository_restores_one_database_to_a_time() {
    let s3 = https_s3rver().await;
    let c = archived_cluster(|_| s3_repo(&s3)).await;
    restore_to_a_time(&c).await;
    // The secret is in no file pgfleet wrote.
    let conf =
        std::fs::read_to_string(c.archive.settings().work_dir.join("pgbackrest.conf")).unwrap();
    assert!(!conf.contains("S3RVER"), "{conf}");
    let pgfleet_conf =
        std::fs::read_to_string(c.archive.settings().pgdata.join("pgfleet.conf")).unwrap();
    assert!(!pgfleet_conf.contains("S3RVER"));
    c.handle.stop().await;
}
