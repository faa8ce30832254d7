//! Point-in-time recovery through the API (issue 19), on a pgfleet whose embedded cluster
//! archives its WAL with pgBackRest into the local backup store: rows with known commit
//! times, a time T noted, more rows written and deleted; restored to T as a new database and
//! in place, and from another database of the project ("reset from parent") → exactly the
//! rows up to T; another tenant of the same server untouched; a target before the window →
//! 400 (422 on the restore operation, whose contract lists no 400) naming the window;
//! `restoreWindow`, `/readyz`, `/metrics` and the console; the same with the S3 store (the
//! repository in the bucket, s3rver over HTTPS); and a `pgfleet serve` killed while its scratch
//! instance runs finishes the restore after a restart, no scratch instance left.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use pgfleet::config::{ArchivedServerConfig, Config, RegionConfig, S3Config, Secret};
use pgfleet_dataplane::{ClusterSettings, EmbeddedCluster};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::archive::https_s3rver;
use crate::backups_s3::BUCKET;
use crate::browser::{bootstrap, Browser};
use crate::capacity::ClusterDir;
use crate::harness::{connect_tls, wait_ready, TestServer};
use crate::lifecycle::{data_dir, wait_timeout, Server};
use nix::sys::signal::Signal;
use std::os::unix::process::ExitStatusExt as _;

/// A server whose embedded cluster is archived, the archive 5 s behind at most and its
/// window refreshed every second.
async fn archived_server(dir: &Path) -> TestServer {
    archived_server_with(dir, |_| {}).await
}

/// [`archived_server`] with a last say on the configuration.
async fn archived_server_with(dir: &Path, tweak: impl FnOnce(&mut Config)) -> TestServer {
    let path = dir.to_path_buf();
    TestServer::start_with(|c| {
        c.data_dir = path.clone();
        c.regions.insert(
            "us-east-1".to_string(),
            RegionConfig {
                name: None,
                servers: vec![Secret::new("embedded")],
            },
        );
        c.pitr.enabled = true;
        c.pitr.archive_timeout_secs = 5;
        c.pitr.check_every_secs = 1;
        c.backups.check_every_secs = 3600;
        tweak(c);
    })
    .await
}

/// The superuser's password on the second cluster (TCP).
const PASSWORD: &str = "pitr-second-cluster";

/// Waits (at most 120 s: the first base backup) until `db` has a restore window.
pub(crate) async fn wait_window(s: &TestServer, db: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = s.get(&format!("/v1/databases/{db}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let w = &r.body["data"]["restoreWindow"];
        // pgBackRest stamps a base backup's end in whole seconds, up to one ahead of the
        // clock: the window counts once its start has passed.
        if !w.is_null() && parse(&w["earliest"]) < Utc::now() {
            return w.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no restore window: {}; readyz: {}",
            r.body,
            s.get("/readyz").await.body
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub(crate) fn parse(t: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(t.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

/// A project: (its id, its database's id, the database's connection string).
pub(crate) async fn project(s: &TestServer, name: &str) -> (String, String, String) {
    let p = s.post("/v1/projects", json!({"name": name})).await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    let d = &p.body["data"]["database"];
    let id = d["id"].as_str().unwrap().to_string();
    if d["status"] != "ready" {
        wait_ready(s, &id).await;
    }
    (
        p.body["data"]["id"].as_str().unwrap().to_string(),
        id,
        d["connectionString"].as_str().unwrap().to_string(),
    )
}

pub(crate) async fn exec(conn: &str, sql: &str) {
    connect_tls(conn)
        .await
        .unwrap()
        .batch_execute(sql)
        .await
        .unwrap();
}

/// The ids in table `t`, in order.
pub(crate) async fn ids(conn: &str) -> Vec<i32> {
    let c = connect_tls(conn).await.unwrap();
    c.query("SELECT id FROM t ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Writes rows 1..=5, notes T just after their commit, then (a second later) adds 6..=10
/// and deletes 1: T, as RFC 3339.
pub(crate) async fn history(conn: &str) -> String {
    exec(
        conn,
        "CREATE TABLE t (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp()); \
         INSERT INTO t (id) SELECT generate_series(1, 5);",
    )
    .await;
    let c = connect_tls(conn).await.unwrap();
    let t: String = c
        .query_one(
            r#"SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"#,
            &[],
        )
        .await
        .unwrap()
        .get(0);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    exec(
        conn,
        "INSERT INTO t (id) SELECT generate_series(6, 10); DELETE FROM t WHERE id = 1;",
    )
    .await;
    t
}

#[tokio::test]
async fn restore_to_a_time_new_in_place_and_from_parent_leaves_other_tenants_alone() {
    let dir = ClusterDir(data_dir());
    let s = archived_server(dir.0.path()).await;
    let (pid, a, a_conn) = project(&s, "pitr").await;
    let window = wait_window(&s, &a).await;
    // Another tenant of the same server, written after T too.
    let (_, other, other_conn) = project(&s, "other-tenant").await;
    exec(
        &other_conn,
        "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (100);",
    )
    .await;

    let t = history(&a_conn).await;
    exec(&other_conn, "INSERT INTO t VALUES (101);").await;
    assert_eq!(ids(&a_conn).await, vec![2, 3, 4, 5, 6, 7, 8, 9, 10]);

    // The window: from the database's creation (or the base backup) to the archive's last
    // segment; sane against the database and T.
    let got = s.get(&format!("/v1/databases/{a}")).await.body["data"].clone();
    let earliest = parse(&window["earliest"]);
    assert!(earliest >= parse(&got["createdAt"]), "{window} {got}");
    assert!(parse(&window["latest"]) >= earliest, "{window}");
    assert!(earliest < parse(&json!(t)), "{window} {t}");

    // Before the window: 400 on create, 422 on restore (its contract lists no 400), both
    // naming the window.
    let before = "2001-01-01T00:00:00Z";
    let r = s
        .post(
            &format!("/v1/projects/{pid}/databases"),
            json!({"name": "too-old", "source": {"type": "database", "databaseId": a, "timestamp": before}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("restore window"),
        "{}",
        r.body
    );
    let r = s
        .post(
            &format!("/v1/databases/{a}/restore"),
            json!({"source": {"type": "database", "databaseId": a, "timestamp": before}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("restore window"),
        "{}",
        r.body
    );
    // Without a timestamp the restore endpoint refuses the source, as before the extension.
    let r = s
        .post(
            &format!("/v1/databases/{a}/restore"),
            json!({"source": {"type": "database", "databaseId": a}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);

    // A new database as A was at T.
    let r = s
        .post(
            &format!("/v1/projects/{pid}/databases"),
            json!({"name": "as-of", "source": {"type": "database", "databaseId": a, "timestamp": t}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let as_of = r.body["data"]["id"].as_str().unwrap().to_string();
    let as_of_conn = r.body["data"]["connectionString"]
        .as_str()
        .unwrap()
        .to_string();
    wait_ready(&s, &as_of).await;
    assert_eq!(ids(&as_of_conn).await, vec![1, 2, 3, 4, 5]);
    assert_eq!(ids(&a_conn).await, vec![2, 3, 4, 5, 6, 7, 8, 9, 10]);

    // Reset from parent: another database of the project restored in place from A at T.
    let r = s
        .post(
            &format!("/v1/projects/{pid}/databases"),
            json!({"name": "child"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let child = r.body["data"]["id"].as_str().unwrap().to_string();
    let child_conn = r.body["data"]["connectionString"]
        .as_str()
        .unwrap()
        .to_string();
    wait_ready(&s, &child).await;
    // Through the Rust SDK.
    let sdk = pgfleet_client::Client::new(&s.base, &s.token).unwrap();
    let restoring = sdk
        .databases()
        .restore_to_time(&child, &a, &t)
        .await
        .unwrap();
    assert_eq!(restoring.id, child);
    wait_ready(&s, &child).await;
    assert_eq!(ids(&child_conn).await, vec![1, 2, 3, 4, 5]);
    // The console: the point-in-time form bounded by the window restores in place; the
    // admin area lists the archive.
    let (password, ws) = bootstrap(&s);
    let mut b = Browser::new(&s);
    b.sign_in("admin@pgfleet.localhost", &password, "/console")
        .await;
    let page = b.get(&format!("/console/w/{ws}/databases/{a}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("data-testid=\"pitr-form\""),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("type=\"datetime-local\""),
        "{}",
        page.body
    );
    let csrf = page.input("csrf_token");
    // `datetime-local` has whole seconds: the second after T is still before the later writes.
    let at = (parse(&json!(t)) + chrono::Duration::seconds(1))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let r = b
        .post(
            &format!("/console/w/{ws}/databases/{a}/restore-to-time"),
            &[("csrf_token", &csrf), ("at", &at), ("confirm", "pitr")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    wait_ready(&s, &a).await;
    assert_eq!(ids(&a_conn).await, vec![1, 2, 3, 4, 5]);
    // Back to the later state for what follows (written again: the history after T is gone).
    exec(
        &a_conn,
        "INSERT INTO t (id) SELECT generate_series(6, 10); DELETE FROM t WHERE id = 1;",
    )
    .await;
    let admin = b.get(&format!("/console/w/{ws}/replicas")).await;
    assert_eq!(admin.status, StatusCode::OK, "{}", admin.body);
    assert!(
        admin.body.contains("data-testid=\"archive-row\""),
        "{}",
        admin.body
    );

    // A database of another project is not a parent.
    let r = s
        .post(
            &format!("/v1/databases/{other}/restore"),
            json!({"source": {"type": "database", "databaseId": a, "timestamp": t}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);

    // In place: A back to T, through the CLI; its credentials keep working.
    let cli = crate::client_sdk::Cli::new(&s);
    let out = cli
        .run(&["backups", "restore", &a, "--at", "yesterday", "--yes"])
        .await;
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("RFC 3339"), "{out:?}");
    let out = cli
        .run(&["backups", "restore", &a, "--at", &t, "--yes", "--wait"])
        .await
        .ok();
    assert_eq!(out.field("status"), "ready");
    assert!(out.field("restored from").contains(&a), "{out:?}");
    wait_ready(&s, &a).await;
    assert_eq!(ids(&a_conn).await, vec![1, 2, 3, 4, 5]);
    let got = s.get(&format!("/v1/databases/{a}")).await.body["data"].clone();
    assert_eq!(
        got["source"],
        json!({"type": "database", "databaseId": a, "timestamp": got["source"]["timestamp"]})
    );

    // The other tenant of the server kept everything, including what it wrote after T.
    let c = connect_tls(&other_conn).await.unwrap();
    let rows: Vec<i32> = c
        .query("SELECT id FROM t ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(rows, vec![100, 101]);

    // Health: readyz lists the archive, /metrics its age; no scratch instance is left.
    let ready = s.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    assert!(
        ready.body["checks"].as_array().unwrap().iter().any(|c| c
            .as_str()
            .unwrap()
            .starts_with("archive of server embedded")),
        "{}",
        ready.body
    );
    let metrics = s.metrics().await;
    assert!(
        metrics.contains(
            "pgfleet_wal_archive_last_age_seconds{region=\"us-east-1\",server=\"embedded\"}"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("pgfleet_wal_bytes{"), "{metrics}");
    assert_no_scratch(dir.0.path());
    s.stop().await;
}

/// The same with the S3 store: the repository in the `[backups.s3]` bucket (s3rver over
/// HTTPS with a self-signed certificate, `[pitr] s3_verify_tls = false`); restored to T as a
/// new database and in place.
#[tokio::test]
async fn restore_to_a_time_with_the_s3_store() {
    let s3 = https_s3rver().await;
    let dir = ClusterDir(data_dir());
    let endpoint = format!("https://127.0.0.1:{}", s3.port);
    let s = archived_server_with(dir.0.path(), |c| {
        c.backups.s3 = Some(S3Config {
            bucket: BUCKET.to_string(),
            endpoint: Some(endpoint),
            region: "us-east-1".to_string(),
            access_key_id: Some("S3RVER".to_string()),
            secret_access_key: Some(Secret::new("S3RVER")),
            secret_access_key_file: None,
            prefix: "pgfleet".to_string(),
            allow_http: false,
        });
        c.pitr.s3_verify_tls = false;
    })
    .await;
    let (pid, a, a_conn) = project(&s, "pitr-s3").await;
    wait_window(&s, &a).await;
    let t = history(&a_conn).await;
    clone_and_restore_to(&s, &s, (&pid, &a, &a_conn), &t).await;
    // Nothing of the repository in the local backup directory.
    assert!(!dir.0.path().join("backups").join("pgbackrest").exists());
    assert_no_scratch(dir.0.path());
    s.stop().await;
}

/// A region server given as a `postgres://` URL is archived when `[[pitr.servers]]` names
/// its data directory on this machine (here a second local cluster, started with the
/// settings pgfleet asks for): its databases get a window and restore to T.
/// A second PostgreSQL cluster on this machine, a region server that pgfleet archives
/// (`[[pitr.servers]]`, stanza `second`): its port and URL known before pgfleet's
/// configuration is, started with the archive settings that configuration gives.
pub(crate) struct SecondCluster {
    pub(crate) pg: ClusterDir,
    pub(crate) port: u16,
    pub(crate) url: String,
    pub(crate) archived: ArchivedServerConfig,
}

impl SecondCluster {
    pub(crate) fn prepare() -> Self {
        let pg = ClusterDir(data_dir());
        // Prepared once for its port, then again with the archive's settings (which pgfleet
        // builds from the same configuration).
        let port = EmbeddedCluster::prepare(ClusterSettings::new(pg.0.path()))
            .unwrap()
            .port();
        let url =
            format!("postgres://postgres:{PASSWORD}@127.0.0.1:{port}/postgres?sslmode=require");
        let archived = ArchivedServerConfig {
            url: Secret::new(url.clone()),
            stanza: "second".to_string(),
            pgdata: pg.0.path().join("postgres"),
            socket_dir: Some(pg.0.path().join("run")),
            port: Some(port),
            host: None,
            pgbackrest_port: None,
            tls_cert_file: None,
            tls_key_file: None,
            tls_ca_file: None,
            host_socket_dir: None,
            bin_dir: None,
        };
        Self {
            pg,
            port,
            url,
            archived,
        }
    }

    /// pgfleet's settings for it: the region `us-east-1` of this one server, archived, the
    /// archive 5 s behind at most and the window refreshed every second.
    pub(crate) fn configure(&self, c: &mut Config) {
        c.regions.insert(
            "us-east-1".to_string(),
            RegionConfig {
                name: None,
                servers: vec![Secret::new(self.url.clone())],
            },
        );
        c.pitr.servers = vec![self.archived.clone()];
        c.pitr.archive_timeout_secs = 5;
        c.pitr.check_every_secs = 1;
        c.backups.check_every_secs = 3600;
    }

    /// Starts it with the archive settings of pgfleet's configuration `cfg`.
    pub(crate) async fn start(&self, cfg: &Config) -> pgfleet_dataplane::ClusterHandle {
        let (_, archive) = pgfleet::pitr::external_archives(cfg).unwrap().remove(0);
        let cluster = EmbeddedCluster::prepare(ClusterSettings {
            port: Some(self.port),
            extra_settings: archive.postgres_settings(),
            ..ClusterSettings::new(self.pg.0.path())
        })
        .unwrap();
        let handle = cluster.start().await.unwrap();
        set_superuser_password(&handle, PASSWORD).await;
        handle
    }
}

/// Gives the superuser of a started cluster `password` (its TCP logins need one).
pub(crate) async fn set_superuser_password(
    handle: &pgfleet_dataplane::ClusterHandle,
    password: &str,
) {
    let (admin, conn) = handle
        .cluster()
        .admin_config("postgres")
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    admin
        .batch_execute(&format!("ALTER ROLE postgres PASSWORD '{password}'"))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_archived_region_server_restores_to_a_time() {
    let second = SecondCluster::prepare();
    let data = data_dir();
    let configure = |c: &mut Config| {
        c.data_dir = data.path().to_path_buf();
        second.configure(c);
    };
    let mut cfg = Config::default();
    configure(&mut cfg);
    let handle = second.start(&cfg).await;
    let s = TestServer::start_with(configure).await;
    let (pid, a, a_conn) = project(&s, "pitr-region").await;
    wait_window(&s, &a).await;
    let t = history(&a_conn).await;
    clone_and_restore_to(&s, &s, (&pid, &a, &a_conn), &t).await;
    s.stop().await;
    assert_no_scratch_in(&data.path().join("pitr-second").join("scratch"));
    handle.stop().await;
}

/// Written by [`history`]: a new database as `db` was at `t` through `via_clone`, then `db`
/// restored in place to `t` through `via_restore`; both hold exactly the rows up to T.
pub(crate) async fn clone_and_restore_to(
    via_clone: &TestServer,
    via_restore: &TestServer,
    (pid, db, conn): (&str, &str, &str),
    t: &str,
) {
    let r = via_clone
        .post(
            &format!("/v1/projects/{pid}/databases"),
            json!({"name": "as-of", "source": {"type": "database", "databaseId": db, "timestamp": t}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let as_of = r.body["data"]["id"].as_str().unwrap().to_string();
    let as_of_conn = r.body["data"]["connectionString"]
        .as_str()
        .unwrap()
        .to_string();
    wait_ready(via_clone, &as_of).await;
    assert_eq!(ids(&as_of_conn).await, vec![1, 2, 3, 4, 5]);
    let r = via_restore
        .post(
            &format!("/v1/databases/{db}/restore"),
            json!({"source": {"type": "database", "databaseId": db, "timestamp": t}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    wait_ready(via_restore, db).await;
    assert_eq!(ids(conn).await, vec![1, 2, 3, 4, 5]);
}

/// No scratch instance directory under the archive's work directory, and no `postgres`
/// running on one.
fn assert_no_scratch(dir: &Path) {
    assert_no_scratch_in(&dir.join("pitr").join("scratch"));
}

/// No scratch instance under `root`, and no `postgres` running on one.
pub(crate) fn assert_no_scratch_in(root: &Path) {
    let root = root.to_path_buf();
    let left: Vec<_> = std::fs::read_dir(&root)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "scratch instances left: {left:?}");
    let root = root.display().to_string();
    for p in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&cmdline).contains(&root),
            "a scratch postgres still runs: {}",
            String::from_utf8_lossy(&cmdline)
        );
    }
}

/// `GET` through a binary server: the JSON body.
async fn get_json(s: &Server, path: &str, token: &str) -> Value {
    s.get(path, token).await.json().await.unwrap()
}

/// Polls database `id` of a binary server until it is `ready` (at most 180 s: a restore
/// replays WAL after a restart).
async fn binary_wait_ready(s: &Server, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let d = get_json(s, &format!("/v1/databases/{id}"), token).await;
        if d["data"]["status"] == "ready" {
            return d["data"].clone();
        }
        assert!(Instant::now() < deadline, "database {id} not ready: {d}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The settings the binary servers of this test share: a short archive timeout and window
/// refresh.
const FAST_ARCHIVE: [(&str, &str); 2] = [
    ("PGFLEET_PITR__ARCHIVE_TIMEOUT_SECS", "5"),
    ("PGFLEET_PITR__CHECK_EVERY_SECS", "1"),
];

/// `pgfleet serve` dies (failpoint `database.pitr.after_scratch`, an abort as with kill -9)
/// while the scratch instance of an in-place point-in-time restore runs; after a restart the
/// restore finishes (exactly the rows up to T) and no scratch instance is left.
#[tokio::test]
async fn crash_during_a_point_in_time_restore() {
    let dir = ClusterDir(data_dir());
    let path = dir.0.path();
    let mut env = FAST_ARCHIVE.to_vec();
    env.push(("PGFLEET_FAILPOINTS", "database.pitr.after_scratch"));
    let mut s = Server::start_with_env(path, &env);
    let token = s.token();
    let http = reqwest::Client::new();
    let p = s
        .post_json(&http, "/v1/projects", &token, json!({"name": "crash"}))
        .await;
    let db = p["data"]["database"]["id"].as_str().unwrap().to_string();
    let conn = p["data"]["database"]["connectionString"]
        .as_str()
        .unwrap()
        .to_string();
    binary_wait_ready(&s, &token, &db).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let w = get_json(&s, &format!("/v1/databases/{db}"), &token).await["data"]["restoreWindow"]
            .clone();
        // As in `wait_window`: the window's start may be up to a second ahead.
        if !w.is_null() && parse(&w["earliest"]) < Utc::now() {
            break;
        }
        assert!(Instant::now() < deadline, "no restore window");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let t = history(&conn).await;

    // The restore's operation aborts the process once its scratch instance runs: the
    // request may have been answered (recovering) or cut off.
    let sent = http
        .post(format!("{}/v1/databases/{db}/restore", s.base))
        .bearer_auth(&token)
        .json(&json!({"source": {"type": "database", "databaseId": db, "timestamp": t}}))
        .timeout(Duration::from_secs(240))
        .send()
        .await;
    if let Ok(r) = sent {
        let status = r.status();
        let body = r.text().await.unwrap_or_default();
        if status != StatusCode::OK {
            let db_now = get_json(&s, &format!("/v1/databases/{db}"), &token).await;
            panic!("{status}: {body} (T {t}; database {db_now})");
        }
    }
    let status = wait_timeout(&mut s.child, Duration::from_secs(240));
    assert_eq!(status.signal(), Some(Signal::SIGABRT as i32), "{status}");
    drop(s);
    let scratch = path.join("pitr").join("scratch");
    assert!(
        std::fs::read_dir(&scratch).is_ok_and(|mut d| d.next().is_some()),
        "the crash should leave the scratch instance behind"
    );

    // Restarted: the restore finishes, the scratch instance is gone.
    let s = Server::start_with_env(path, &FAST_ARCHIVE);
    let d = binary_wait_ready(&s, &token, &db).await;
    assert_eq!(d["source"]["type"], "database", "{d}");
    assert_eq!(ids(&conn).await, vec![1, 2, 3, 4, 5]);
    assert_no_scratch(path);
    s.terminate();
}
