//! Issue 14, item 5: one workspace cannot take the whole server.
//!
//! Through tenants' own SQL sessions against a real, small embedded cluster: a workspace at
//! its quota, with every database at its limit, leaves another workspace able to create and
//! connect and pgfleet able to work (create databases, back up); a region with no capacity
//! left refuses a create with the contract's error shape and creates nothing (no row, no
//! database on the server). Concurrent creates never exceed a workspace's quota, and a
//! transfer into a workspace at its quota is refused.

use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use pgfleet::config::{RegionConfig, Secret};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio_postgres::error::SqlState;

use crate::harness::{
    backup_now, connect_tls, embedded_superuser, send_as, wait_ready, Resp, TestServer,
};
use crate::lifecycle::{data_dir, postmaster_pid};

/// The data directory of a test's own embedded cluster; its postmaster is stopped when the
/// test ends, also when it fails before the server is stopped.
pub(crate) struct ClusterDir(pub(crate) tempfile::TempDir);

impl Drop for ClusterDir {
    fn drop(&mut self) {
        let Some(pid) = postmaster_pid(self.0.path()) else {
            return;
        };
        let pgdata = self.0.path().join("postgres").display().to_string();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&pgdata) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGQUIT);
        }
    }
}

/// Another workspace and a service token of it, written straight to the metadata store:
/// the token.
async fn workspace(s: &TestServer, name: &str) -> String {
    let value = format!("pgfst_capacity_{name}_token_for_tests_0000000000");
    s.workspace_with_token(&format!("capacity{name}"), name, &value)
        .await;
    value
}

/// Waits (at most 60 s) until the database is `ready`, as seen with `token`.
async fn wait_ready_as(s: &TestServer, token: &str, db: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = send_as(
            s,
            token,
            Method::GET,
            &format!("/v1/databases/{db}"),
            json!({}),
        )
        .await;
        if r.body["data"]["status"] == "ready" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", r.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A created database: its id and direct connection string.
fn created(r: &Resp, path: &str) -> (String, String) {
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let d = &r.body["data"][path];
    let d = if d.is_null() { &r.body["data"] } else { d };
    (
        d["id"].as_str().unwrap().to_string(),
        d["connectionString"].as_str().unwrap().to_string(),
    )
}

/// Opens direct sessions until the server refuses one; returns the open ones and the refusal.
async fn fill(conn: &str) -> (Vec<tokio_postgres::Client>, tokio_postgres::Error) {
    let mut open = Vec::new();
    for _ in 0..50 {
        match connect_tls(conn).await {
            Ok(c) => {
                c.simple_query("SELECT 1").await.unwrap();
                open.push(c);
            }
            Err(e) => return (open, e),
        }
    }
    panic!("50 sessions and none refused");
}

#[track_caller]
fn assert_database_full(e: &tokio_postgres::Error) {
    let db = e
        .as_db_error()
        .unwrap_or_else(|| panic!("not a server error: {e:?}"));
    assert_eq!(db.code(), &SqlState::TOO_MANY_CONNECTIONS, "{db:?}");
    assert!(
        db.message().contains("too many connections for database"),
        "{db:?}"
    );
}

/// (rows in `databases`, rows in `projects`, rows in `operations`) of the metadata store.
async fn metadata_counts(s: &TestServer) -> (i64, i64, i64) {
    let (d, p, o): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM databases), (SELECT count(*) FROM projects), \
                (SELECT count(*) FROM operations)",
    )
    .fetch_one(s.services().store().pool())
    .await
    .unwrap();
    (d, p, o)
}

async fn tenant_databases_on(server: &tokio_postgres::Client) -> i64 {
    server
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'd\\_%'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn one_workspace_at_its_quota_leaves_the_server_to_others_and_to_pgfleet() {
    let dir = ClusterDir(data_dir());
    let path = dir.0.path().to_path_buf();
    // 29 slots, 3 superuser-only and 8 kept for pgfleet (its reconciler, backups, sampler, and
    // this test's superuser sessions): capacity 18. Databases of 5, workspaces of 10.
    let s = TestServer::start_with(|c| {
        c.data_dir = path.clone();
        c.regions.insert(
            "us-east-1".to_string(),
            RegionConfig {
                name: None,
                servers: vec![Secret::new("embedded")],
            },
        );
        c.postgres.max_connections = 29;
        c.capacity.reserved_connections = 8;
        c.capacity.workspace_connections = 10;
        c.database_connection_limit = 5;
        c.pooler.pool_size = 2;
        // No scheduled backup may take one of a database's slots while the test counts them.
        c.backups.check_every_secs = 3600;
        // Nor a base backup of the WAL archive (pgBackRest's sessions).
        c.pitr.enabled = false;
        c.usage.sample_interval_secs = 1;
    })
    .await;
    let server = embedded_superuser(&path, "postgres").await;
    let setting = |name: &'static str| {
        let server = &server;
        async move {
            let row = server
                .query_one(&format!("SHOW {name}"), &[])
                .await
                .unwrap();
            row.get::<_, String>(0)
        }
    };
    assert_eq!(setting("max_connections").await, "29");
    assert_eq!(setting("superuser_reserved_connections").await, "3");
    let (capacity,): (Option<i32>,) = sqlx::query_as("SELECT connection_capacity FROM pg_servers")
        .fetch_one(s.services().store().pool())
        .await
        .unwrap();
    assert_eq!(capacity, Some(18));

    // Workspace A takes its whole quota: two databases of 5.
    let r = s.post("/v1/projects", json!({"name": "a"})).await;
    let (a1, a1_conn) = created(&r, "database");
    let pa = r.body["data"]["id"].as_str().unwrap().to_string();
    let r = s
        .post(
            &format!("/v1/projects/{pa}/databases"),
            json!({"name": "a2"}),
        )
        .await;
    let (a2, a2_conn) = created(&r, "");
    wait_ready(&s, &a1).await;
    wait_ready(&s, &a2).await;

    // A third is refused by the quota, and nothing is created.
    let before = metadata_counts(&s).await;
    let r = s
        .post("/v1/databases", json!({"projectId": pa, "name": "a3"}))
        .await;
    r.assert_error(400, "bad_request");
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("10 of its 10 connection slots"),
        "{message}"
    );
    assert!(r.body["error"]["hint"].is_string());
    assert_eq!(metadata_counts(&s).await, before);
    assert_eq!(tenant_databases_on(&server).await, 2);

    // A's tenants open direct sessions until refused: 5 per database, 10 in all.
    let (a1_open, e) = fill(&a1_conn).await;
    assert_database_full(&e);
    let (a2_open, e) = fill(&a2_conn).await;
    assert_database_full(&e);
    assert_eq!((a1_open.len(), a2_open.len()), (5, 5));

    // Another workspace still creates a database (pgfleet's own sessions do the work) and
    // connects to it.
    let b = workspace(&s, "b").await;
    let r = send_as(&s, &b, Method::POST, "/v1/projects", json!({"name": "b"})).await;
    let (b1, b1_conn) = created(&r, "database");
    let pb = r.body["data"]["id"].as_str().unwrap().to_string();
    wait_ready_as(&s, &b, &b1).await;
    // pgfleet uses its whole share of the server (8 superuser sessions: its own, topped up by
    // this test's), and B's tenant still gets every slot of its database: the server as a
    // whole refuses nobody ("too many connections for database", not "remaining connection
    // slots are reserved").
    let superusers: i64 = server
        .query_one(
            "SELECT count(*) FROM pg_stat_activity a JOIN pg_roles r ON r.oid = a.usesysid \
             WHERE r.rolsuper AND a.backend_type = 'client backend'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let mut share = Vec::new();
    for _ in superusers..8 {
        share.push(embedded_superuser(&path, "postgres").await);
    }
    let (b1_open, e) = fill(&b1_conn).await;
    assert_database_full(&e);
    assert_eq!(b1_open.len(), 5);

    // Every tenant database is at its limit (15 sessions): pgfleet still backs up A's.
    backup_now(&s, &a1).await;

    // The region has 18 - 15 = 3 slots left: B's next database (5) does not fit, although B's
    // quota would allow it. Refused with the contract's error; no row, no database.
    let before = metadata_counts(&s).await;
    let r = send_as(
        &s,
        &b,
        Method::POST,
        &format!("/v1/projects/{pb}/databases"),
        json!({"name": "b2"}),
    )
    .await;
    r.assert_error(400, "bad_request");
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("Region us-east-1 has no capacity left") && message.contains("3 free"),
        "{message}"
    );
    let r = send_as(
        &s,
        &b,
        Method::POST,
        "/v1/databases",
        json!({"projectId": pb}),
    )
    .await;
    r.assert_error(400, "bad_request");
    let r = send_as(&s, &b, Method::POST, "/v1/projects", json!({"name": "b3"})).await;
    r.assert_error(400, "bad_request");
    assert_eq!(metadata_counts(&s).await, before);
    assert_eq!(tenant_databases_on(&server).await, 3);
    let r = send_as(&s, &b, Method::GET, "/v1/projects", json!({})).await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1, "{}", r.body);

    // /metrics shows how full the server is.
    let (server_id,): (String,) = sqlx::query_as("SELECT id FROM pg_servers")
        .fetch_one(s.services().store().pool())
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = s.metrics().await;
        let value = |kind: &str| {
            text.lines()
                .find(|l| {
                    l.starts_with("pgfleet_server_connection_slots{")
                        && l.contains(&format!("server=\"{server_id}\""))
                        && l.contains(&format!("kind=\"{kind}\""))
                })
                .and_then(|l| l.rsplit(' ').next())
                .map(str::to_string)
        };
        if value("capacity").as_deref() == Some("18") && value("assigned").as_deref() == Some("15")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // With every tenant slot taken, pgfleet's superuser sessions still get in.
    let extra = embedded_superuser(&path, "postgres").await;
    extra.simple_query("SELECT 1").await.unwrap();
    drop((a1_open, a2_open, b1_open, share, extra, a2));
    s.stop().await;
    drop(dir);
}

#[tokio::test]
async fn concurrent_creates_on_two_replicas_stay_within_the_workspace_quota() {
    let tweak = |c: &mut pgfleet::config::Config| {
        c.database_connection_limit = 5;
        c.capacity.workspace_connections = 15;
        c.pooler.pool_size = 2;
        // Replicas of one metadata store share the key that encrypts its signing key.
        c.oauth.key_encryption_key = Some(Secret::new("capacity test key-encryption secret"));
    };
    let s = TestServer::start_with(tweak).await;
    // A second replica on the same metadata store.
    let metadata = s.metadata_db();
    let replica = TestServer::start_with(|c| {
        tweak(c);
        c.metadata.url = Some(Secret::new(crate::harness::cluster().url(&metadata)));
        // Two live replicas need a backup store both see (declared shared here).
        c.backups.shared_dir = true;
    })
    .await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let http = s.http.clone();
        let base = if i % 2 == 0 { &s.base } else { &replica.base };
        let url = format!("{base}/v1/projects");
        let token = s.token.clone();
        tasks.push(tokio::spawn(async move {
            Resp::from(
                http.post(url)
                    .bearer_auth(token)
                    .json(&json!({"name": format!("p{i}")}))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }));
    }
    let mut created = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        if r.status == StatusCode::CREATED {
            created.push(r.body["data"]["id"].as_str().unwrap().to_string());
        } else {
            r.assert_error(400, "bad_request");
        }
    }
    assert_eq!(created.len(), 3);
    let (held,): (i64,) = sqlx::query_as("SELECT sum(connection_limit)::bigint FROM databases")
        .fetch_one(s.services().store().pool())
        .await
        .unwrap();
    assert_eq!(held, 15);
    // The refused creates left no project behind either.
    let (d, p, _) = metadata_counts(&s).await;
    assert_eq!((d, p), (3, 3));
    replica.stop().await;

    // Deleting a project gives its database's slots back once it is dropped.
    let deleted = &created[0];
    let r = s.delete(&format!("/v1/projects/{deleted}")).await;
    assert!(r.status.is_success(), "{}", r.body);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while metadata_counts(&s).await.0 != 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the database is not dropped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = s.post("/v1/projects", json!({"name": "again"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    s.stop().await;
}

#[tokio::test]
async fn pooled_server_connections_count_in_the_database_limit() {
    let s = TestServer::start_with(|c| {
        c.database_connection_limit = 5;
        c.pooler.pool_size = 2;
    })
    .await;
    let r = s.post("/v1/projects", json!({"name": "pooled"})).await;
    let (db, direct) = created(&r, "database");
    wait_ready(&s, &db).await;
    let pooled = r.body["data"]["database"]["connections"][0]["endpoints"]["pooled"]
        ["connectionString"]
        .as_str()
        .unwrap()
        .to_string();
    // Two pooled clients inside transactions hold the pool's two server connections.
    let mut holding = Vec::new();
    for _ in 0..2 {
        let c = connect_tls(&pooled).await.unwrap();
        c.batch_execute("BEGIN; SELECT 1").await.unwrap();
        holding.push(c);
    }
    // They count in the database's limit: 5 - 2 direct sessions are left.
    let (open, e) = fill(&direct).await;
    assert_database_full(&e);
    assert_eq!(open.len(), 3);
    drop((holding, open));
    s.stop().await;
}

#[tokio::test]
async fn a_transfer_into_a_workspace_at_its_quota_is_refused() {
    let s = TestServer::start_with(|c| {
        c.database_connection_limit = 5;
        c.capacity.workspace_connections = 10;
        c.pooler.pool_size = 2;
    })
    .await;
    let b = workspace(&s, "full").await;
    for name in ["b1", "b2"] {
        let r = send_as(&s, &b, Method::POST, "/v1/projects", json!({"name": name})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let db = r.body["data"]["database"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        wait_ready_as(&s, &b, &db).await;
    }
    let r = s.post("/v1/projects", json!({"name": "moving"})).await;
    let (db, _) = created(&r, "database");
    let pid = r.body["data"]["id"].as_str().unwrap().to_string();
    wait_ready(&s, &db).await;

    let r = s
        .post(
            &format!("/v1/projects/{pid}/transfer"),
            json!({"recipientAccessToken": b}),
        )
        .await;
    r.assert_error(409, "conflict");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("10 of its 10 connection slots"),
        "{}",
        r.body
    );
    // Still ours.
    assert_eq!(
        s.get(&format!("/v1/projects/{pid}")).await.status,
        StatusCode::OK
    );

    // A project without databases holds no slots: it moves.
    let r = s
        .post(
            "/v1/projects",
            json!({"name": "empty", "createDatabase": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let empty = r.body["data"]["id"].as_str().unwrap().to_string();
    let r = s
        .post(
            &format!("/v1/projects/{empty}/transfer"),
            json!({"recipientAccessToken": b}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    s.stop().await;
}

/// A database placed by an older pgfleet (limit 100, before slots were counted) is brought
/// to the configured limit when a server starts on the store, and the tenant guard applies
/// it on the Postgres server: the quota and capacity figures then hold for it too.
#[tokio::test]
async fn older_databases_are_brought_down_to_the_configured_limit() {
    let tweak = |c: &mut pgfleet::config::Config| {
        c.tenant.check_every_secs = 86_400;
        c.oauth.key_encryption_key = Some(Secret::new("capacity test key-encryption secret"));
    };
    let s = TestServer::start_with(tweak).await;
    let t = crate::tenant_limits::tenant(&s, "older").await;
    let limit = s.services().config().database_connection_limit;
    let pool = s.services().store().pool().clone();
    sqlx::query("UPDATE databases SET connection_limit = 100 WHERE id = $1")
        .bind(&t.db_id)
        .execute(&pool)
        .await
        .unwrap();
    let metadata = s.metadata_db();
    // A server (a replica, or the next start) on the same store.
    let next = TestServer::start_with(|c| {
        tweak(c);
        c.metadata.url = Some(Secret::new(crate::harness::cluster().url(&metadata)));
        // Two live replicas need a backup store both see (declared shared here).
        c.backups.shared_dir = true;
    })
    .await;
    let (stored,): (i32,) = sqlx::query_as("SELECT connection_limit FROM databases WHERE id = $1")
        .bind(&t.db_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, limit);
    let admin = crate::harness::cluster().admin("postgres").await;
    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{}\" CONNECTION LIMIT 100",
            t.pg_database
        ))
        .await
        .unwrap();
    // The servers' own first passes (at start) may hold the guard's lock a moment.
    let mut tries = 0;
    while !next.services().guard().pass().await.unwrap().ran {
        tries += 1;
        assert!(tries < 100, "the guard pass never got its lock");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let on_server: i32 = admin
        .query_one(
            "SELECT datconnlimit FROM pg_database WHERE datname = $1",
            &[&t.pg_database],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(on_server, limit);
    next.stop().await;
    s.stop().await;
}
