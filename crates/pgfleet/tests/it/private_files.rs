//! Issue 14, item 1: nothing under the data directory is readable by another local OS user.
//! The real `pgfleet serve` binary with its embedded cluster, a backup taken, then every file
//! read as `nobody`; and the start-up migration of modes on a data directory an older pgfleet
//! left world-readable.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::lifecycle::{data_dir, Server};

const NOBODY: u32 = 65534;
const MIGRATED: &str = "took group and world access off";

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Every path below `dir`, but not into the trees PostgreSQL owns (PGDATA, the socket dir).
/// Paths that vanish meanwhile are left out: the WAL archive's spool and lock files (under
/// `pitr/`) come and go while the server runs.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            assert!(!d.exists(), "cannot list {}", d.display());
            continue;
        };
        for e in entries {
            let Ok(e) = e else { continue };
            let p = e.path();
            out.push(p.clone());
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if p.is_dir() && !(d == dir && (name == "postgres" || name == "run")) {
                stack.push(p);
            }
        }
    }
    out
}

/// `cat` (or `ls` for a directory) as the `nobody` OS user: true when it could read.
fn nobody_can_read(p: &Path) -> bool {
    let tool = if p.is_dir() { "ls" } else { "cat" };
    Command::new(tool)
        .arg(p)
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// The data directory lets only the PostgreSQL OS user's group through (0710), and nothing
/// below it has group or world bits but what PostgreSQL keeps itself; `nobody` reads nothing.
fn assert_private(dir: &Path) {
    let postgres_gid = nix::unistd::User::from_name("postgres")
        .unwrap()
        .expect("the postgres OS user")
        .gid
        .as_raw();
    let root = std::fs::metadata(dir).unwrap();
    assert_eq!(mode(dir), 0o710, "data directory");
    assert_eq!(root.gid(), postgres_gid, "data directory's group");
    for p in walk(dir) {
        let name = p.strip_prefix(dir).unwrap().display().to_string();
        match std::fs::symlink_metadata(&p) {
            Err(_) => continue, // gone meanwhile (see `walk`)
            // A link's own mode is always 0777 and means nothing (pgBackRest's `latest`):
            // what it points to is checked as itself, and `nobody` reads nothing through it.
            Ok(md) if md.file_type().is_symlink() => {
                assert!(!nobody_can_read(&p), "nobody can read through {name}");
                continue;
            }
            Ok(_) => {}
        }
        let m = mode(&p);
        match name.as_str() {
            // PostgreSQL's own trees: 0700, owned by its OS user.
            "postgres" | "run" => assert_eq!(m, 0o700, "{name}"),
            // Like the data directory: the PostgreSQL OS user's group passes through (no
            // listing) to the WAL archive's local repository, `backups/pgbackrest` (pitr).
            "backups" => assert_eq!(m, 0o710, "{name}"),
            _ => assert_eq!(m & 0o077, 0, "{name} has mode {m:o}"),
        }
        assert!(!nobody_can_read(&p), "nobody can read {name}");
    }
    for f in ["server.crt", "server.key"] {
        let p = dir.join("postgres").join(f);
        assert_eq!(mode(&p), 0o600, "{f}");
    }
    // Even with the directory opened up, the files themselves stay closed.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).unwrap();
    for f in [
        "bootstrap.txt",
        "postgres.log",
        "pooler-tls/key.pem",
        "pooler-tls/cert.pem",
    ] {
        assert!(dir.join(f).exists(), "{f} exists");
        assert!(!nobody_can_read(&dir.join(f)), "nobody can read {f}");
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o710)).unwrap();
}

async fn call(s: &Server, method: reqwest::Method, path: &str, token: &str, body: Value) -> Value {
    let r = reqwest::Client::new()
        .request(method, format!("{}{path}", s.base))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

/// A database with a completed local backup, so the backup directory has an archive.
async fn database_with_backup(s: &Server, token: &str) -> String {
    let p = call(
        s,
        reqwest::Method::POST,
        "/v1/projects",
        token,
        json!({"name": "private", "region": "us-east-1"}),
    )
    .await;
    let db = p["data"]["database"]["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let b = call(
            s,
            reqwest::Method::POST,
            &format!("/v1/databases/{db}/backups"),
            token,
            json!({}),
        )
        .await;
        if b["data"]["status"] == "running" {
            break;
        }
        assert!(Instant::now() < deadline, "backup never started: {b}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    loop {
        let list: Value = s
            .get(&format!("/v1/databases/{db}/backups"), token)
            .await
            .json()
            .await
            .unwrap();
        if list["data"][0]["status"] == "completed" {
            return db;
        }
        assert!(Instant::now() < deadline, "backup did not finish: {list}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn start_logging(dir: &Path, log: &Path) -> Server {
    let file = std::fs::File::create(log).unwrap();
    Server::start_with(dir, &[("RUST_LOG", "warn")], Stdio::from(file))
}

#[tokio::test]
async fn nothing_under_the_data_directory_is_readable_by_another_os_user() {
    let dir = data_dir();
    let logs = tempfile::tempdir().unwrap();
    let s = start_logging(dir.path(), &logs.path().join("first.log"));
    let token = s.token();
    database_with_backup(&s, &token).await;
    let archives: Vec<PathBuf> = walk(&dir.path().join("backups"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "dump"))
        .collect();
    assert_eq!(archives.len(), 1, "one archive: {archives:?}");
    assert_eq!(mode(&archives[0]), 0o600);
    // 0710: the PostgreSQL OS user passes through to the WAL archive (`backups/pgbackrest`).
    assert_eq!(mode(&dir.path().join("backups")), 0o710);
    assert_private(dir.path());
    s.terminate();
    let first = std::fs::read_to_string(logs.path().join("first.log")).unwrap();
    assert!(
        !first.contains(MIGRATED),
        "a new data directory needs no migration: {first}"
    );

    // What an older pgfleet left: a listable data directory, world-readable log,
    // certificates, credentials and backups.
    for p in walk(dir.path()) {
        let name = p.strip_prefix(dir.path()).unwrap().display().to_string();
        if name == "postgres" || name == "run" {
            continue;
        }
        let m = if p.is_dir() { 0o755 } else { 0o644 };
        if let Err(e) = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m)) {
            assert!(!p.exists(), "{name}: {e}"); // gone meanwhile (see `walk`)
        }
    }
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let crt = dir.path().join("postgres/server.crt");
    std::fs::set_permissions(&crt, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(nobody_can_read(&dir.path().join("bootstrap.txt")));

    let s = start_logging(dir.path(), &logs.path().join("second.log"));
    assert_private(dir.path());
    s.terminate();
    let second = std::fs::read_to_string(logs.path().join("second.log")).unwrap();
    assert_eq!(second.matches(MIGRATED).count(), 1, "said once: {second}");

    let s = start_logging(dir.path(), &logs.path().join("third.log"));
    s.terminate();
    let third = std::fs::read_to_string(logs.path().join("third.log")).unwrap();
    assert!(
        !third.contains(MIGRATED),
        "nothing left to migrate: {third}"
    );
}
