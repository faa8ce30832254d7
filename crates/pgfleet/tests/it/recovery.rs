//! Crash recovery with the real binary: for each failpoint of
//! `pgfleet_domain::failpoint::ALL`, a `pgfleet serve` started with `PGFLEET_FAILPOINTS`
//! aborts in the middle of a request; the next start on the same data directory (without the
//! failpoint) finishes the operation, and PostgreSQL and the metadata agree again.
//!
//! The embedded cluster outlives the aborted process, so between the two starts the tests
//! look at it through its Unix socket to check the crash happened where the failpoint says.

use std::collections::BTreeSet;
use std::future::Future;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::embedded_superuser;
use crate::lifecycle::{
    assert_no_postgres, data_dir, pgfleet, postmaster_pid, wait_timeout, Server,
};

/// How long recovery may take after the restart, and how often it is polled.
const RECOVERY_WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(200);

/// A data directory whose PostgreSQL is stopped when the test ends, even if it fails while
/// the cluster is orphaned (after an abort, before the restart).
struct DataDir(tempfile::TempDir);

impl DataDir {
    fn new() -> Self {
        Self(data_dir())
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let Some(pid) = postmaster_pid(self.path()) else {
            return;
        };
        let pgdata = self.path().join("postgres").display().to_string();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if !String::from_utf8_lossy(&cmdline).contains(&pgdata) {
            return;
        }
        let _ = kill(Pid::from_raw(pid), Signal::SIGQUIT);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The HTTP API of one running server, with the bootstrap service token.
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    fn of(s: &Server) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            base: s.base.clone(),
            token: s.token(),
        }
    }

    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut rb = self.req(method.clone(), path);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, v)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, None).await
    }

    /// POST expecting success (200 or 201); returns `data`.
    async fn post_ok(&self, path: &str, body: Value) -> Value {
        let (status, v) = self.call(Method::POST, path, Some(body)).await;
        assert!(matches!(status, 200 | 201), "POST {path}: {status} {v}");
        v["data"].clone()
    }

    /// Waits until a database is `ready` (a create answers before that when it is slow).
    async fn wait_ready(&self, db_id: &str) {
        let path = format!("/v1/databases/{db_id}");
        eventually("database ready", || async {
            let (status, v) = self.get(&path).await;
            if status == 200 && v["data"]["status"] == "ready" {
                Ok(())
            } else {
                Err(format!("{status} {v}"))
            }
        })
        .await;
    }
}

/// Sends a request that hits the active failpoint: no response arrives, and the process
/// dies by SIGABRT. Returns once it has exited.
async fn crash(mut s: Server, rb: reqwest::RequestBuilder) {
    match rb.send().await {
        Ok(r) => {
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            panic!("expected the server to abort mid-request, got {status}: {text}");
        }
        Err(e) => assert!(
            !e.is_timeout(),
            "expected a connection error from the abort, got a timeout: {e}"
        ),
    }
    let status = wait_timeout(&mut s.child, Duration::from_secs(30));
    assert_eq!(
        status.signal(),
        Some(Signal::SIGABRT as i32),
        "pgfleet should die by SIGABRT, exited with {status}"
    );
    drop(s);
}

/// Polls `check` every [`POLL`] until it succeeds or [`RECOVERY_WAIT`] has passed.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + RECOVERY_WAIT;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(e) if Instant::now() >= deadline => {
                panic!("{what}: not reached within {RECOVERY_WAIT:?}; last: {e}")
            }
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// Superuser sessions on the embedded cluster (over its Unix socket): `postgres` for the
/// catalogs, `pgfleet` for the metadata.
struct Pg {
    catalog: tokio_postgres::Client,
    meta: tokio_postgres::Client,
}

impl Pg {
    async fn connect(dir: &Path) -> Self {
        Self {
            catalog: embedded_superuser(dir, "postgres").await,
            meta: embedded_superuser(dir, "pgfleet").await,
        }
    }

    async fn database_exists(&self, name: &str) -> bool {
        self.catalog
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await
            .unwrap()
            .is_some()
    }

    async fn role_exists(&self, name: &str) -> bool {
        self.catalog
            .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&name])
            .await
            .unwrap()
            .is_some()
    }

    /// `(rolcanlogin, rolpassword)` of a role.
    async fn role(&self, name: &str) -> Option<(bool, Option<String>)> {
        self.catalog
            .query_opt(
                "SELECT rolcanlogin, rolpassword FROM pg_authid WHERE rolname = $1",
                &[&name],
            )
            .await
            .unwrap()
            .map(|r| (r.get(0), r.get(1)))
    }

    /// `(pg_database, owner_role, status)` of a database row.
    async fn database_row(&self, id: &str) -> Option<(String, String, String)> {
        self.meta
            .query_opt(
                "SELECT pg_database, owner_role, status FROM databases WHERE id = $1",
                &[&id],
            )
            .await
            .unwrap()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
    }

    /// `(role_name, status, scram_verifier)` of a connection row.
    async fn connection_row(&self, id: &str) -> Option<(String, String, String)> {
        self.meta
            .query_opt(
                "SELECT role_name, status, scram_verifier FROM connections WHERE id = $1",
                &[&id],
            )
            .await
            .unwrap()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
    }

    /// `kind resource_id state` of every operation not `succeeded`.
    async fn unfinished_operations(&self) -> Vec<String> {
        self.meta
            .query(
                "SELECT kind || ' ' || resource_id || ' ' || state || coalesce(' ' || error, '') \
                 FROM operations WHERE state <> 'succeeded' ORDER BY seq",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// Waits until every operation has succeeded (the reconciler finished what the crash
    /// left); the API shows a delete as done (404) as soon as it is recorded.
    async fn wait_operations_done(&self) {
        eventually("every operation succeeded", || async {
            let open = self.unfinished_operations().await;
            if open.is_empty() {
                Ok(())
            } else {
                Err(format!("unfinished operations {open:?}"))
            }
        })
        .await;
    }

    /// Asserts exactly one open operation, of `kind` on `resource` (the crash left it).
    async fn assert_one_open(&self, kind: &str, resource: &str) {
        let open = self.unfinished_operations().await;
        assert_eq!(open.len(), 1, "open operations: {open:?}");
        assert!(
            open[0].starts_with(&format!("{kind} {resource} "))
                && (open[0].contains(" running") || open[0].contains(" pending")),
            "open operations: {open:?}"
        );
    }

    async fn names(client: &tokio_postgres::Client, sql: &str) -> BTreeSet<String> {
        client
            .query(sql, &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// PostgreSQL and the metadata agree: every tenant database (`d_…`), owner role
    /// (`d_…_owner`) and login role (`u_…`) has its metadata row, and every row its object.
    async fn assert_invariant(&self) {
        let c = &self.catalog;
        let m = &self.meta;
        let pg_dbs = Self::names(
            c,
            r"SELECT datname::text FROM pg_database WHERE datname LIKE 'd\_%'",
        )
        .await;
        let meta_dbs = Self::names(m, "SELECT pg_database FROM databases").await;
        assert_eq!(pg_dbs, meta_dbs, "pg_database (left) vs databases (right)");

        let pg_owners = Self::names(
            c,
            r"SELECT rolname::text FROM pg_roles WHERE rolname LIKE 'd\_%'",
        )
        .await;
        let meta_owners = Self::names(m, "SELECT owner_role FROM databases").await;
        assert_eq!(
            pg_owners, meta_owners,
            "owner roles in pg_roles (left) vs databases.owner_role (right)"
        );

        let pg_logins = Self::names(
            c,
            r"SELECT rolname::text FROM pg_roles WHERE rolname LIKE 'u\_%'",
        )
        .await;
        let meta_logins = Self::names(m, "SELECT role_name FROM connections").await;
        assert_eq!(
            pg_logins, meta_logins,
            "login roles in pg_roles (left) vs connections (right)"
        );
        let not_login = Self::names(
            c,
            r"SELECT rolname::text FROM pg_roles WHERE rolname LIKE 'u\_%' AND NOT rolcanlogin",
        )
        .await;
        assert!(
            not_login.is_empty(),
            "u_ roles without LOGIN: {not_login:?}"
        );
    }

    /// Asserts the role's password in PostgreSQL is the verifier the metadata holds.
    async fn assert_password_matches(&self, conn_id: &str) {
        let (role, _, verifier) = self.connection_row(conn_id).await.unwrap();
        let (login, password) = self.role(&role).await.unwrap();
        assert!(login, "{role} cannot log in");
        assert_eq!(
            password.as_deref(),
            Some(verifier.as_str()),
            "password of {role} differs from connections.scram_verifier"
        );
    }
}

/// `psql "<conn>" -c "select 1"`: `Ok` when it printed 1, else its stderr.
async fn psql(conn: &str) -> Result<(), String> {
    let (ok, out, err) = crate::harness::psql(conn, "select 1").await;
    if ok && out == "1" {
        Ok(())
    } else {
        Err(format!("psql: {out}{err}"))
    }
}

async fn assert_connects(conn: &str) {
    if let Err(e) = psql(conn).await {
        panic!("psql could not connect: {e}");
    }
}

async fn assert_refused(conn: &str) {
    assert!(
        psql(conn).await.is_err(),
        "psql connected with credentials that should no longer work"
    );
}

/// Rotates a connection and proves the new password works; returns the connection string.
async fn rotate_and_connect(api: &Api, conn_id: &str) -> String {
    let rotated = api
        .post_ok(&format!("/v1/connections/{conn_id}/rotate"), json!({}))
        .await;
    let conn = rotated["connectionString"]
        .as_str()
        .unwrap_or_else(|| panic!("no connectionString: {rotated}"))
        .to_string();
    assert!(conn.contains("sslmode=require"), "{conn}");
    assert_connects(&conn).await;
    conn
}

/// Creates project `x` with its default database and waits until it is ready; returns
/// `(project id, database id, default connection id, connection string)`.
async fn project_ready(api: &Api) -> (String, String, String, String) {
    let p = api.post_ok("/v1/projects", json!({"name": "x"})).await;
    let db = &p["database"];
    let ids = (
        p["id"].as_str().unwrap().to_string(),
        db["id"].as_str().unwrap().to_string(),
        db["defaultConnectionId"].as_str().unwrap().to_string(),
        db["connectionString"].as_str().unwrap().to_string(),
    );
    api.wait_ready(&ids.1).await;
    ids
}

/// Ends a phase: clean shutdown, and no PostgreSQL left behind.
fn stop(s: Server, dir: &Path) {
    s.terminate();
    assert_no_postgres(dir);
}

/// `POST /v1/projects` aborts at `point`; the next start finishes the project's database.
async fn project_create_recovers(point: &str) {
    let dir = DataDir::new();
    let s = Server::start_with_env(dir.path(), &[("PGFLEET_FAILPOINTS", point)]);
    let api = Api::of(&s);
    crash(
        s,
        api.req(Method::POST, "/v1/projects")
            .json(&json!({"name": "x"})),
    )
    .await;

    // The orphaned cluster shows where the crash happened.
    {
        let pg = Pg::connect(dir.path()).await;
        let row = pg
            .meta
            .query_one("SELECT id, status, pg_database FROM databases", &[])
            .await
            .unwrap();
        let (db_id, status, pg_db): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        assert_eq!(status, "provisioning");
        pg.assert_one_open("database.create", &db_id).await;
        assert!(pg.database_exists(&pg_db).await, "{point}: no database yet");
        let role: String = pg
            .meta
            .query_one("SELECT role_name FROM connections", &[])
            .await
            .unwrap()
            .get(0);
        let role_expected = point != "database.create.after_database";
        assert_eq!(
            pg.role_exists(&role).await,
            role_expected,
            "{point}: login role"
        );
    }

    let s = Server::start(dir.path());
    let api = Api::of(&s);
    let (project_id, db) = eventually("project and ready database in the API", || async {
        let (status, projects) = api.get("/v1/projects").await;
        let named: Vec<&Value> = projects["data"]
            .as_array()
            .map(|a| a.iter().filter(|p| p["name"] == "x").collect())
            .unwrap_or_default();
        let [project] = named.as_slice() else {
            return Err(format!("{status} projects named x: {projects}"));
        };
        let pid = project["id"].as_str().unwrap().to_string();
        let (status, dbs) = api.get(&format!("/v1/databases?projectId={pid}")).await;
        match dbs["data"].as_array().map(Vec::as_slice) {
            Some([db]) if db["status"] == "ready" => Ok((pid, db.clone())),
            _ => Err(format!("{status} databases: {dbs}")),
        }
    })
    .await;
    assert_eq!(db["isDefault"], true, "{db}");
    assert_eq!(db["project"]["id"], project_id.as_str());
    let db_id = db["id"].as_str().unwrap();
    let conn_id = db["defaultConnectionId"].as_str().unwrap();

    let pg = Pg::connect(dir.path()).await;
    let (pg_db, owner, status) = pg.database_row(db_id).await.unwrap();
    assert_eq!(status, "ready");
    assert!(pg.database_exists(&pg_db).await, "database {pg_db}");
    assert!(pg.role_exists(&owner).await, "owner role {owner}");
    let (role, conn_status, _) = pg.connection_row(conn_id).await.unwrap();
    assert_eq!(conn_status, "active");
    assert_eq!(
        pg.role(&role).await.map(|r| r.0),
        Some(true),
        "login {role}"
    );
    assert_eq!(pg.unfinished_operations().await, Vec::<String>::new());

    // The password was only in the response that never arrived: rotate, then connect.
    rotate_and_connect(&api, conn_id).await;
    pg.assert_password_matches(conn_id).await;
    pg.assert_invariant().await;
    drop(pg);
    stop(s, dir.path());
}

#[tokio::test]
async fn crash_after_database_is_created() {
    project_create_recovers("database.create.after_database").await;
}

#[tokio::test]
async fn crash_after_login_role_is_created() {
    project_create_recovers("database.create.after_role").await;
}

#[tokio::test]
async fn crash_before_database_is_ready() {
    project_create_recovers("database.create.before_ready").await;
}

#[tokio::test]
async fn crash_after_database_is_dropped() {
    let dir = DataDir::new();
    // The failpoint fires only in a delete: creating works normally.
    let s = Server::start_with_env(
        dir.path(),
        &[("PGFLEET_FAILPOINTS", "database.delete.after_drop")],
    );
    let api = Api::of(&s);
    let (project_id, default_db, _, _) = project_ready(&api).await;
    let second = api
        .post_ok(
            &format!("/v1/projects/{project_id}/databases"),
            json!({"name": "second"}),
        )
        .await;
    let db_id = second["id"].as_str().unwrap().to_string();
    let second_conn = second["connectionString"].as_str().unwrap().to_string();
    api.wait_ready(&db_id).await;

    let (pg_db, owner, login) = {
        let pg = Pg::connect(dir.path()).await;
        let (pg_db, owner, _) = pg.database_row(&db_id).await.unwrap();
        let conn_id = second["defaultConnectionId"].as_str().unwrap();
        let (login, _, _) = pg.connection_row(conn_id).await.unwrap();
        (pg_db, owner, login)
    };
    assert_connects(&second_conn).await;
    crash(
        s,
        api.req(Method::DELETE, &format!("/v1/databases/{db_id}")),
    )
    .await;

    {
        let pg = Pg::connect(dir.path()).await;
        let (_, _, status) = pg.database_row(&db_id).await.unwrap();
        assert_eq!(status, "deleting");
        pg.assert_one_open("database.delete", &db_id).await;
        assert!(
            !pg.database_exists(&pg_db).await,
            "dropped before the crash"
        );
    }

    let s = Server::start(dir.path());
    let api = Api::of(&s);
    eventually("database 404", || async {
        match api.get(&format!("/v1/databases/{db_id}")).await {
            (404, _) => Ok(()),
            (status, v) => Err(format!("{status} {v}")),
        }
    })
    .await;
    let pg = Pg::connect(dir.path()).await;
    pg.wait_operations_done().await;
    assert!(pg.database_row(&db_id).await.is_none());
    assert!(!pg.database_exists(&pg_db).await, "database {pg_db}");
    assert!(!pg.role_exists(&owner).await, "owner role {owner}");
    assert!(!pg.role_exists(&login).await, "login role {login}");
    assert_eq!(pg.unfinished_operations().await, Vec::<String>::new());
    // The project and its default database are untouched.
    let (status, v) = api.get(&format!("/v1/databases/{default_db}")).await;
    assert_eq!(
        (status, &v["data"]["status"]),
        (200, &json!("ready")),
        "{v}"
    );
    let (status, _) = api.get(&format!("/v1/projects/{project_id}")).await;
    assert_eq!(status, 200);
    assert_refused(&second_conn).await;
    pg.assert_invariant().await;
    drop(pg);
    stop(s, dir.path());
}

#[tokio::test]
async fn crash_after_connection_role_is_created() {
    let dir = DataDir::new();
    let s = Server::start_with_env(
        dir.path(),
        &[("PGFLEET_FAILPOINTS", "connection.create.after_role")],
    );
    let api = Api::of(&s);
    let (_, db_id, _, _) = project_ready(&api).await;
    crash(
        s,
        api.req(Method::POST, &format!("/v1/databases/{db_id}/connections"))
            .json(&json!({"name": "second"})),
    )
    .await;

    let (conn_id, role) = {
        let pg = Pg::connect(dir.path()).await;
        let row = pg
            .meta
            .query_one(
                "SELECT id, role_name, status FROM connections WHERE name = 'second'",
                &[],
            )
            .await
            .unwrap();
        let (id, role, status): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        assert_eq!(status, "creating");
        pg.assert_one_open("connection.create", &id).await;
        assert!(pg.role_exists(&role).await, "role created before the crash");
        (id, role)
    };

    let s = Server::start(dir.path());
    let api = Api::of(&s);
    let pg = Pg::connect(dir.path()).await;
    pg.wait_operations_done().await;
    let (status, v) = api.get(&format!("/v1/databases/{db_id}/connections")).await;
    assert_eq!(status, 200, "{v}");
    let listed = v["data"]
        .as_array()
        .is_some_and(|a| a.iter().any(|c| c["id"] == conn_id.as_str()));
    assert!(listed, "connection {conn_id} not listed: {v}");
    let (status, v) = api.get(&format!("/v1/connections/{conn_id}")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["name"], "second");
    let (_, conn_status, _) = pg.connection_row(&conn_id).await.unwrap();
    assert_eq!(conn_status, "active");
    assert_eq!(
        pg.role(&role).await.map(|r| r.0),
        Some(true),
        "login {role}"
    );
    rotate_and_connect(&api, &conn_id).await;
    pg.assert_password_matches(&conn_id).await;
    pg.assert_invariant().await;
    drop(pg);
    stop(s, dir.path());
}

#[tokio::test]
async fn crash_after_password_is_rotated() {
    let dir = DataDir::new();
    let s = Server::start_with_env(
        dir.path(),
        &[("PGFLEET_FAILPOINTS", "connection.rotate.after_password")],
    );
    let api = Api::of(&s);
    let (_, _, conn_id, old_conn) = project_ready(&api).await;
    assert_connects(&old_conn).await;
    let old_verifier = {
        let pg = Pg::connect(dir.path()).await;
        pg.connection_row(&conn_id).await.unwrap().2
    };
    crash(
        s,
        api.req(Method::POST, &format!("/v1/connections/{conn_id}/rotate")),
    )
    .await;

    {
        let pg = Pg::connect(dir.path()).await;
        pg.assert_one_open("connection.rotate", &conn_id).await;
        let (_, _, verifier) = pg.connection_row(&conn_id).await.unwrap();
        assert_ne!(verifier, old_verifier, "the rotation was recorded");
        pg.assert_password_matches(&conn_id).await;
    }

    let s = Server::start(dir.path());
    let api = Api::of(&s);
    let pg = Pg::connect(dir.path()).await;
    pg.wait_operations_done().await;
    pg.assert_password_matches(&conn_id).await;
    // The old password stopped working with the rotation whose answer was lost.
    assert_refused(&old_conn).await;
    rotate_and_connect(&api, &conn_id).await;
    pg.assert_password_matches(&conn_id).await;
    pg.assert_invariant().await;
    drop(pg);
    stop(s, dir.path());
}

#[tokio::test]
async fn crash_after_connection_role_is_dropped() {
    let dir = DataDir::new();
    let s = Server::start_with_env(
        dir.path(),
        &[("PGFLEET_FAILPOINTS", "connection.delete.after_drop")],
    );
    let api = Api::of(&s);
    let (_, db_id, default_conn, _) = project_ready(&api).await;
    let created = api
        .post_ok(
            &format!("/v1/databases/{db_id}/connections"),
            json!({"name": "second"}),
        )
        .await;
    let conn_id = created["id"].as_str().unwrap().to_string();
    let conn = created["connectionString"].as_str().unwrap().to_string();
    assert_connects(&conn).await;
    crash(
        s,
        api.req(Method::DELETE, &format!("/v1/connections/{conn_id}")),
    )
    .await;

    let role = {
        let pg = Pg::connect(dir.path()).await;
        let (role, status, _) = pg.connection_row(&conn_id).await.unwrap();
        assert_eq!(status, "deleting");
        pg.assert_one_open("connection.delete", &conn_id).await;
        assert!(!pg.role_exists(&role).await, "dropped before the crash");
        role
    };

    let s = Server::start(dir.path());
    let api = Api::of(&s);
    eventually("connection 404", || async {
        match api.get(&format!("/v1/connections/{conn_id}")).await {
            (404, _) => Ok(()),
            (status, v) => Err(format!("{status} {v}")),
        }
    })
    .await;
    let pg = Pg::connect(dir.path()).await;
    pg.wait_operations_done().await;
    assert!(pg.connection_row(&conn_id).await.is_none());
    assert!(!pg.role_exists(&role).await, "login role {role}");
    assert_eq!(pg.unfinished_operations().await, Vec::<String>::new());
    assert_refused(&conn).await;
    // The default connection is untouched.
    rotate_and_connect(&api, &default_conn).await;
    pg.assert_invariant().await;
    drop(pg);
    stop(s, dir.path());
}

/// Every failpoint of the code has a test above, or in `pitr` for `database.pitr.*` (a new
/// one must get its own).
#[test]
fn every_failpoint_is_covered() {
    let covered = [
        "database.create.after_database",
        "database.create.after_role",
        "database.create.before_ready",
        "database.delete.after_drop",
        "connection.create.after_role",
        "connection.rotate.after_password",
        "connection.delete.after_drop",
        "database.restore.before_swap",
        "backup.after_dump",
        // crate::pitr::crash_during_a_point_in_time_restore
        "database.pitr.after_scratch",
    ];
    let all: BTreeSet<&str> = pgfleet_domain::failpoint::ALL.iter().copied().collect();
    assert_eq!(all, covered.into_iter().collect::<BTreeSet<_>>());
}

#[test]
fn unknown_failpoint_is_refused() {
    let dir = DataDir::new();
    let out = pgfleet(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ])
    .env("PGFLEET_FAILPOINTS", "not.a.failpoint")
    .stdin(std::process::Stdio::null())
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exited with {}", out.status);
    assert!(
        stderr.contains("not.a.failpoint") && stderr.contains("unknown failpoint"),
        "{stderr}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("pgfleet listening on"),
        "it must not serve"
    );
    assert_no_postgres(dir.path());
}

/// Rows and a checksum of table `t` through a tenant connection string.
async fn table_sum(conn: &str) -> (i64, String) {
    let c = crate::harness::connect_tls(conn).await.unwrap();
    let r = c
        .query_one(
            "SELECT count(*), md5(coalesce(string_agg(id::text, ',' ORDER BY id), '')) FROM t",
            &[],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1))
}

async fn backup_status(api: &Api, db: &str, backup: &str) -> Option<String> {
    let (_, v) = api.get(&format!("/v1/databases/{db}/backups")).await;
    v["data"]
        .as_array()?
        .iter()
        .find(|b| b["id"] == backup)
        .and_then(|b| b["status"].as_str().map(String::from))
}

/// Killed between the dump and its bookkeeping: after restart the backup is finished (or
/// marked failed), no partial archive is left, the database is intact.
#[tokio::test]
async fn crash_during_backup() {
    let dir = DataDir::new();
    let mut s = Server::start_with_env(dir.path(), &[("PGFLEET_FAILPOINTS", "backup.after_dump")]);
    let api = Api::of(&s);
    let (_, db, _, conn) = project_ready(&api).await;
    crate::harness::connect_tls(&conn)
        .await
        .unwrap()
        .batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 500);",
        )
        .await
        .unwrap();
    let before = table_sum(&conn).await;
    // The backup is accepted (202), then the process dies in the background.
    let (status, v) = api
        .call(
            Method::POST,
            &format!("/v1/databases/{db}/backups"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 202, "{v}");
    let backup = v["data"]["id"].as_str().unwrap().to_string();
    let exit = wait_timeout(&mut s.child, Duration::from_secs(30));
    assert_eq!(exit.signal(), Some(Signal::SIGABRT as i32), "{exit}");
    drop(s);

    let s = Server::start(dir.path());
    let api = Api::of(&s);
    let status = eventually("backup finished", || async {
        match backup_status(&api, &db, &backup).await {
            Some(st) if st != "running" => Ok(st),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert!(
        ["completed", "failed"].contains(&status.as_str()),
        "{status}"
    );
    let partials: Vec<_> = walk(&dir.path().join("backups"))
        .into_iter()
        .filter(|p| p.ends_with(".partial"))
        .collect();
    assert!(partials.is_empty(), "{partials:?}");
    assert_eq!(table_sum(&conn).await, before);
    let pg = Pg::connect(dir.path()).await;
    pg.wait_operations_done().await;
    pg.assert_invariant().await;
    drop(pg);
    stop(s, dir.path());
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

/// Killed after the restore filled the scratch database, before the swap: after restart the
/// restore is finished, the data is the backup's, no scratch database is left, the
/// credentials still work.
#[tokio::test]
async fn crash_during_restore() {
    let dir = DataDir::new();
    let s = Server::start_with_env(
        dir.path(),
        &[("PGFLEET_FAILPOINTS", "database.restore.before_swap")],
    );
    let api = Api::of(&s);
    let (_, db, _, conn) = project_ready(&api).await;
    let c = crate::harness::connect_tls(&conn).await.unwrap();
    c.batch_execute(
        "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 300);",
    )
    .await
    .unwrap();
    let original = table_sum(&conn).await;
    let (status, v) = api
        .call(
            Method::POST,
            &format!("/v1/databases/{db}/backups"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 202, "{v}");
    let backup = v["data"]["id"].as_str().unwrap().to_string();
    eventually("backup completed", || async {
        match backup_status(&api, &db, &backup).await.as_deref() {
            Some("completed") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    c.batch_execute("DELETE FROM t WHERE id > 10")
        .await
        .unwrap();
    drop(c);
    crash(
        s,
        api.req(Method::POST, &format!("/v1/databases/{db}/restore"))
            .json(&json!({"source": {"type": "backup", "databaseId": db, "backupId": backup}})),
    )
    .await;
    {
        let pg = Pg::connect(dir.path()).await;
        let (_, _, status) = pg.database_row(&db).await.unwrap();
        assert_eq!(status, "recovering");
        // The half-done scratch copy belongs to the database's owner, yet its tenant cannot
        // open sessions on it (they would count in no limit of its workspace).
        let scratch: String = pg
            .catalog
            .query_one(
                "SELECT datname::text FROM pg_database WHERE datname ~ '_r[a-z0-9]{8}$'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        let (base, _) = conn.split_once('?').unwrap();
        let (base, _) = base.rsplit_once('/').unwrap();
        let e = crate::harness::connect_tls(&format!("{base}/{scratch}?sslmode=require"))
            .await
            .expect_err("a tenant session on the scratch database");
        let e = e.as_db_error().expect("refused by the server");
        assert_eq!(
            e.code(),
            &tokio_postgres::error::SqlState::TOO_MANY_CONNECTIONS,
            "{e:?}"
        );
    }

    let s = Server::start(dir.path());
    let api = Api::of(&s);
    api.wait_ready(&db).await;
    assert_eq!(table_sum(&conn).await, original);
    let pg = Pg::connect(dir.path()).await;
    pg.wait_operations_done().await;
    let scratch = pg
        .catalog
        .query(
            "SELECT datname FROM pg_database WHERE datname ~ '_[ro][a-z0-9]{8}$'",
            &[],
        )
        .await
        .unwrap();
    assert!(scratch.is_empty(), "scratch databases left behind");
    pg.assert_invariant().await;
    drop(pg);
    stop(s, dir.path());
}
