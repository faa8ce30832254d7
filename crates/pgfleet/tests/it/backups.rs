//! Backups on real data: backed up, restored into a new database and in place, cloned;
//! row counts and checksums equal; retention pruning; the scheduler skips unchanged
//! databases; a corrupted archive is refused with 422 and nothing changes; staging files
//! left by a crash are removed, those still in use are kept.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{
    backup_now, checksum, connect_tls, create_from, wait_ready, Resp, TestServer,
};

#[tokio::test]
async fn backup_restore_clone_and_prune_on_real_data() {
    let s = TestServer::start().await;
    let p = s.post("/v1/projects", json!({"name": "bk"})).await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    let pid = p.body["data"]["id"].as_str().unwrap().to_string();
    let a = p.body["data"]["database"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let a_conn = p.body["data"]["database"]["connectionString"]
        .as_str()
        .unwrap()
        .to_string();
    {
        let c = connect_tls(&a_conn).await.unwrap();
        c.batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY, v text); \
             INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g;",
        )
        .await
        .unwrap();
    }
    let original = checksum(&a_conn).await;
    assert_eq!(original.0, 5000);

    let list = s.get(&format!("/v1/databases/{a}/backups")).await;
    assert_eq!(list.body["meta"]["backupRetentionDays"], 7);
    assert_eq!(
        list.body["pagination"],
        json!({"hasMore": false, "limit": 25})
    );
    let b1 = backup_now(&s, &a).await;
    let listed = s.get(&format!("/v1/databases/{a}/backups")).await.body["data"][0].clone();
    assert_eq!(listed["id"], b1.as_str());
    assert_eq!(listed["backupType"], "full");
    assert_eq!(listed["type"], "backup");

    // Into a new database, three ways; each with its own credentials; the source untouched.
    let (_, from_backup) = create_from(&s, &pid, json!({"name": "from-backup", "source": {"type": "backup", "databaseId": a, "backupId": b1}})).await;
    assert_eq!(checksum(&from_backup).await, original);
    let (clone_id, clone) = create_from(
        &s,
        &pid,
        json!({"name": "clone", "source": {"type": "database", "databaseId": a}}),
    )
    .await;
    assert_eq!(checksum(&clone).await, original);
    let (_, legacy) = create_from(
        &s,
        &pid,
        json!({"name": "legacy", "fromDatabase": {"id": a, "backupId": b1}}),
    )
    .await;
    assert_eq!(checksum(&legacy).await, original);
    assert_ne!(clone, a_conn);
    let got = s.get(&format!("/v1/databases/{clone_id}")).await;
    assert_eq!(
        got.body["data"]["source"],
        json!({"type": "database", "databaseId": a})
    );
    assert_eq!(checksum(&a_conn).await, original);

    // In place: change A, restore; its credentials keep working, old sessions end.
    let before = connect_tls(&a_conn).await.unwrap();
    before
        .batch_execute("DELETE FROM t WHERE id > 100; UPDATE t SET v = 'x';")
        .await
        .unwrap();
    assert_ne!(checksum(&a_conn).await, original);
    let r = s
        .post(
            &format!("/v1/databases/{a}/restore"),
            json!({"source": {"type": "backup", "databaseId": a, "backupId": b1}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        ["recovering", "ready"].contains(&r.body["data"]["status"].as_str().unwrap()),
        "{}",
        r.body
    );
    assert_eq!(
        r.body["data"]["source"],
        json!({"type": "backup", "databaseId": a, "backupId": b1})
    );
    wait_ready(&s, &a).await;
    assert_eq!(checksum(&a_conn).await, original);
    assert!(
        before.simple_query("SELECT 1").await.is_err(),
        "old session must be terminated"
    );
    // No scratch database of this one is left behind (the cluster is shared with tests
    // running in parallel, so only names derived from this database count).
    let pg_database: (String,) = sqlx::query_as("SELECT pg_database FROM databases WHERE id = $1")
        .bind(&a)
        .fetch_one(s.services().store().pool())
        .await
        .unwrap();
    let admin = crate::harness::cluster().admin("postgres").await;
    let leftovers = admin
        .query(
            "SELECT datname FROM pg_database WHERE datname ~ ('^' || $1 || '_[ro][a-z0-9]{8}$')",
            &[&pg_database.0],
        )
        .await
        .unwrap();
    assert!(
        leftovers.is_empty(),
        "scratch databases left: {}",
        leftovers.len()
    );

    // Errors: unknown backup 404, wrong source type 422 (the operation lists 422, not 400),
    // unknown target 404.
    s.post(
        &format!("/v1/databases/{a}/restore"),
        json!({"source": {"type": "backup", "databaseId": a, "backupId": "bkp_nope"}}),
    )
    .await
    .assert_error(404, "not_found");
    s.post(
        &format!("/v1/databases/{a}/restore"),
        json!({"source": {"type": "database", "databaseId": a}}),
    )
    .await
    .assert_error(422, "validation_error");
    s.post(
        "/v1/databases/db_nope/restore",
        json!({"source": {"type": "backup", "databaseId": a, "backupId": b1}}),
    )
    .await
    .assert_error(404, "not_found");
    s.get("/v1/databases/db_nope/backups")
        .await
        .assert_error(404, "not_found");
    s.get(&format!("/v1/databases/{a}/backups?limit=0"))
        .await
        .assert_error(422, "validation_error");

    // A corrupted archive: refused with 422, nothing changes.
    let b2 = backup_now(&s, &a).await;
    let path: (String,) = sqlx::query_as("SELECT location FROM backups WHERE id = $1")
        .bind(&b2)
        .fetch_one(s.services().store().pool())
        .await
        .unwrap();
    let mut bytes = std::fs::read(&path.0).unwrap();
    for b in bytes.iter_mut().take(64) {
        *b = 0x42;
    }
    std::fs::write(&path.0, bytes).unwrap();
    let r = s
        .post(
            &format!("/v1/databases/{a}/restore"),
            json!({"source": {"type": "backup", "databaseId": a, "backupId": b2}}),
        )
        .await;
    r.assert_error(422, "validation_error");
    assert_eq!(
        s.get(&format!("/v1/databases/{a}")).await.body["data"]["status"],
        "ready"
    );
    assert_eq!(checksum(&a_conn).await, original);
    // Creating a database from it: the operation lists 400, not 422.
    s.post(
        &format!("/v1/projects/{pid}/databases"),
        json!({"source": {"type": "backup", "databaseId": a, "backupId": b2}}),
    )
    .await
    .assert_error(400, "bad_request");

    // Retention: a backup past retention is pruned, file and row.
    sqlx::query("UPDATE backups SET created_at = now() - interval '8 days' WHERE id = $1")
        .bind(&b2)
        .execute(s.services().store().pool())
        .await
        .unwrap();
    s.services().backups().tick().await.unwrap();
    assert!(!std::path::Path::new(&path.0).exists());
    let ids: Vec<String> = s.get(&format!("/v1/databases/{a}/backups")).await.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect();
    assert!(ids.contains(&b1) && !ids.contains(&b2), "{ids:?}");
    s.stop().await;
}

#[tokio::test]
async fn scheduler_backs_up_changed_databases_only() {
    let s = TestServer::start_with(|c| {
        c.backups.interval_secs = 1;
        c.backups.check_every_secs = 3600;
    })
    .await;
    let p = s.post("/v1/projects", json!({"name": "sched"})).await;
    let db = p.body["data"]["database"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let conn = p.body["data"]["database"]["connectionString"]
        .as_str()
        .unwrap()
        .to_string();
    let count = |s: &TestServer| {
        let pool = s.services().store().pool().clone();
        let db = db.clone();
        async move {
            let n: (i64,) = sqlx::query_as(
                "SELECT count(*) FROM backups WHERE database_id = $1 AND trigger = 'scheduled'",
            )
            .bind(&db)
            .fetch_one(&pool)
            .await
            .unwrap();
            n.0
        }
    };
    let settle = |s: &TestServer| {
        let pool = s.services().store().pool().clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let n: (i64,) =
                    sqlx::query_as("SELECT count(*) FROM backups WHERE status = 'running'")
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                if n.0 == 0 {
                    break;
                }
                assert!(Instant::now() < deadline);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    // First tick: never backed up → backed up.
    s.services().backups().tick().await.unwrap();
    settle(&s).await;
    assert_eq!(count(&s).await, 1);
    // Nothing written since: skipped even though the interval has passed.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    s.services().backups().tick().await.unwrap();
    settle(&s).await;
    assert_eq!(count(&s).await, 1);
    // A write: the next tick backs up again.
    let c = connect_tls(&conn).await.unwrap();
    c.batch_execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1);")
        .await
        .unwrap();
    drop(c);
    // pg_stat counters are flushed by the backend at the end of its session.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.services().backups().tick().await.unwrap();
    settle(&s).await;
    assert_eq!(count(&s).await, 2);
    let _ = Resp::from;
    s.stop().await;
}

/// Writes `path` (and its directory), last modified `age` ago.
fn staging_file(path: &std::path::Path, age: Duration) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, b"partial archive").unwrap();
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(std::time::SystemTime::now() - age).unwrap();
}

#[tokio::test]
async fn stale_staging_files_are_removed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let old = Duration::from_secs(2 * 3600);
    let gone = [
        root.join("clones/op_crashedclone.dump"),
        root.join("downloads/bkp_crashed-4242-0.dump"),
        root.join("db_crashed/bkp_crashed.dump.partial"),
    ];
    let kept = [
        // Recent: a restore request's readability check may be reading it.
        root.join("downloads/bkp_recent-4242-1.dump"),
        // Not named as pgfleet names staging files, or a local store's archive.
        root.join("downloads/notes.txt"),
        root.join("clones/keep.me"),
        root.join("db_crashed/bkp_archive.dump"),
        root.join("elsewhere/bkp_crashed.dump.partial"),
    ];
    for f in gone.iter().chain(&kept[1..]) {
        staging_file(f, old);
    }
    staging_file(&kept[0], Duration::ZERO);
    let s = TestServer::start_with(|c| {
        c.backups.dir = Some(root.clone());
        // One round at start only: the direct calls below are then the only other ones.
        c.backups.check_every_secs = 3600;
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while gone.iter().any(|f| f.exists()) {
        assert!(Instant::now() < deadline, "staging files left: {gone:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for f in &kept {
        assert!(f.exists(), "{} was removed", f.display());
    }

    // Files of open operations stay, however old, until the operation is finished. The rows
    // are due far in the future so that the reconciler leaves them alone.
    let pool = s.services().store().pool().clone();
    sqlx::query(
        "INSERT INTO operations (id, kind, resource_id, state, payload, next_attempt_at, created_at, updated_at)
         VALUES ('op_openclone', 'database.create', 'db_nope', 'running', '{}', now() + interval '1 day', now(), now()),
                ('op_openrestore', 'database.restore', 'db_nope', 'running', '{\"backupId\": \"bkp_busy\"}',
                 now() + interval '1 day', now(), now())",
    )
    .execute(&pool)
    .await
    .unwrap();
    let clone = root.join("clones/op_openclone.dump");
    let download = root.join("downloads/bkp_busy-4242-2.dump");
    staging_file(&clone, old);
    staging_file(&download, old);
    assert_eq!(s.services().backups().clean_staging().await.unwrap(), 0);
    assert!(clone.exists() && download.exists());
    sqlx::query(
        "UPDATE operations SET state = 'succeeded' WHERE id IN ('op_openclone', 'op_openrestore')",
    )
    .execute(&pool)
    .await
    .unwrap();
    // The scheduler's own cleanup round may remove them first (it runs on its interval).
    assert!(s.services().backups().clean_staging().await.unwrap() <= 2);
    assert!(!clone.exists() && !download.exists());
    for f in &kept {
        assert!(f.exists(), "{} was removed", f.display());
    }
    s.stop().await;
}
