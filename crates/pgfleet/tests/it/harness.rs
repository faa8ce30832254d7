//! Test harness: a shared PostgreSQL cluster, a template metadata database, and in-process
//! pgfleet servers on port 0 with an HTTP client; and the helpers more than one test module
//! uses (waiting for a database or a backup, checksums of test data, requests with another
//! token, superuser sessions on an embedded cluster, `psql`), kept here once.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use pgfleet::config::{Config, MetadataConfig, RegionConfig, Secret};
use pgfleet::server::{self, Deps, Running};
use pgfleet_dataplane::{ClusterSettings, EmbeddedCluster};
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub struct TestCluster {
    pub socket_dir: PathBuf,
    pub port: u16,
    /// The server log (`pg_ctl -l`).
    pub log_file: PathBuf,
}

impl TestCluster {
    /// Superuser URL over the Unix socket.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres@localhost/{db}?host={}&port={}",
            self.socket_dir.display(),
            self.port
        )
    }

    pub async fn admin(&self, db: &str) -> tokio_postgres::Client {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host_path(&self.socket_dir)
            .port(self.port)
            .user("postgres")
            .dbname(db);
        let (client, conn) = cfg
            .connect(tokio_postgres::NoTls)
            .await
            .expect("connect to test cluster");
        tokio::spawn(conn);
        client
    }
}

static CLUSTER: OnceLock<TestCluster> = OnceLock::new();
const TEMPLATE_DB: &str = "pgfleet_template";

/// The cluster shared by all tests of this run; started on first use, stopped and removed
/// by a watchdog when the test process exits.
pub fn cluster() -> &'static TestCluster {
    CLUSTER.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("pgfleet-it-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let settings = ClusterSettings {
            max_connections: 500,
            ..ClusterSettings::new(&root)
        };
        let c = EmbeddedCluster::prepare(settings).expect("prepare test cluster");
        let mut cmd = std::process::Command::new(c.bin_dir().join("pg_ctl"));
        cmd.arg("start")
            .arg("-w")
            .arg("-D")
            .arg(c.pgdata())
            .arg("-l")
            .arg(c.pgdata().join("test-cluster.log"))
            .args([
                "-o",
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            ])
            .current_dir(c.pgdata());
        c.run_as().apply(&mut cmd);
        let out = cmd.output().expect("pg_ctl start");
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Watchdog: when this test process is gone, stop the cluster and remove its files.
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
             kill -QUIT $(head -1 {pgdata}/postmaster.pid) 2>/dev/null; sleep 1; rm -rf {root}",
            pid = std::process::id(),
            pgdata = c.pgdata().display(),
            root = root.display()
        );
        // Not waited for on purpose: it outlives this process.
        #[expect(
            clippy::zombie_processes,
            reason = "the watchdog outlives the test process"
        )]
        let _watchdog = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn watchdog");
        let tc = TestCluster {
            socket_dir: c.socket_dir(),
            port: c.port(),
            log_file: c.pgdata().join("test-cluster.log"),
        };
        // Migrate the template once, on a throwaway runtime in its own thread (we may be
        // called from inside a test's runtime).
        let (socket_dir, port, log_file) = (tc.socket_dir.clone(), tc.port, tc.log_file.clone());
        std::thread::spawn(move || {
            let tc = TestCluster {
                socket_dir,
                port,
                log_file,
            };
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let admin = tc.admin("postgres").await;
                admin
                    .batch_execute(&format!("CREATE DATABASE {TEMPLATE_DB}"))
                    .await
                    .unwrap();
                let pool = sqlx::PgPool::connect(&tc.url(TEMPLATE_DB)).await.unwrap();
                pgfleet_storage::MIGRATOR.run(&pool).await.unwrap();
                pool.close().await;
            });
        })
        .join()
        .expect("template migration");
        tc
    })
}

static NEXT_DB: AtomicU32 = AtomicU32::new(0);

/// A fresh metadata database for one test, copied from the migrated template.
pub async fn fresh_metadata_db() -> String {
    let c = cluster();
    let name = format!(
        "meta_{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::SeqCst)
    );
    let admin = c.admin("postgres").await;
    // Copies of one template can collide on its lock for an instant; retry.
    for attempt in 0..50 {
        match admin
            .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}"))
            .await
        {
            Ok(()) => return name,
            Err(e) if attempt < 49 && e.to_string().contains("being accessed by other users") => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("create {name}: {e}"),
        }
    }
    unreachable!()
}

/// A pgfleet server on port 0 with its own metadata database, using the shared cluster as
/// the `us-east-1` region.
pub struct TestServer {
    pub running: Option<Running>,
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
    _data_dir: tempfile::TempDir,
}

pub const TEST_TOKEN_PREFIX: &str = "pgfst_test_";

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::try_start_with(tweak).await.expect("server starts")
    }

    /// Like `start_with`, returning the error of a server that refuses to start.
    pub async fn try_start_with(tweak: impl FnOnce(&mut Config)) -> anyhow::Result<Self> {
        let c = cluster();
        let metadata_db = fresh_metadata_db().await;
        let data_dir = tempfile::tempdir().unwrap();
        let token = format!("{TEST_TOKEN_PREFIX}{}", uuid_like());
        let mut cfg = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data_dir.path().to_path_buf(),
            bootstrap_token: Some(Secret::new(token.clone())),
            metadata: MetadataConfig {
                url: Some(Secret::new(c.url(&metadata_db))),
                ..Default::default()
            },
            ..Config::default()
        };
        cfg.regions.insert(
            "us-east-1".to_string(),
            RegionConfig {
                name: None,
                servers: vec![Secret::new(c.url("postgres"))],
            },
        );
        cfg.pooler.listen = "127.0.0.1:0".parse().unwrap();
        cfg.accelerate.listen = "127.0.0.1:0".parse().unwrap();
        tweak(&mut cfg);
        let running = server::start(cfg, Deps::default()).await?;
        let base = format!("http://{}", running.addr);
        Ok(Self {
            running: Some(running),
            base,
            token,
            http: reqwest::Client::new(),
            _data_dir: data_dir,
        })
    }

    pub fn services(&self) -> &pgfleet_domain::Services {
        &self.running.as_ref().unwrap().services
    }

    /// The name of this server's metadata database on the shared cluster (a replica points
    /// its `metadata.url` at it).
    pub fn metadata_db(&self) -> String {
        self.services()
            .store()
            .pool()
            .connect_options()
            .get_database()
            .unwrap()
            .to_string()
    }

    /// A request with the bootstrap token.
    pub fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.token)
    }

    pub async fn get(&self, path: &str) -> Resp {
        Resp::from(self.req(Method::GET, path).send().await.unwrap()).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        Resp::from(
            self.req(Method::POST, path)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// A new project's database and a connection (named `pooled`) to it, both checked
    /// created: (the database id, the connection's `data`).
    pub async fn database_with_connection(&self, project: &str) -> (String, Value) {
        let p = self
            .post("/v1/projects", serde_json::json!({"name": project}))
            .await;
        assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
        let db = p.body["data"]["database"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        // Under load the create may answer before its database is ready (after its own
        // 5 s wait); a connection made then is usable only once the database is.
        if p.body["data"]["database"]["status"] != "ready" {
            wait_ready(self, &db).await;
        }
        let c = self
            .post(
                &format!("/v1/databases/{db}/connections"),
                serde_json::json!({"name": "pooled"}),
            )
            .await;
        assert_eq!(c.status, StatusCode::OK, "{}", c.body);
        (db, c.body["data"].clone())
    }

    /// Another workspace (`wksp_<key>`, named `name`) and a service token of it
    /// (`stk_<key>`, named `name` in lowercase, whose value is `token`), written straight to
    /// the metadata store: the workspace id.
    pub async fn workspace_with_token(&self, key: &str, name: &str, token: &str) -> String {
        let pool = self.services().store().pool();
        let now = chrono::Utc::now();
        let ws = format!("wksp_{key}");
        pgfleet_storage::workspaces::insert(pool, &ws, name, now)
            .await
            .unwrap();
        pgfleet_storage::tokens::insert(
            pool,
            &pgfleet_storage::tokens::NewServiceToken {
                id: &format!("stk_{key}"),
                workspace_id: &ws,
                name: &name.to_lowercase(),
                token_hash: &pgfleet_auth::hash_token(token),
                value_hint: "0000",
                created_by_user_id: None,
                created_at: now,
                expires_at: None,
                project_id: None,
                read_only: false,
            },
        )
        .await
        .unwrap();
        ws
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let r = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.text().await.unwrap()
    }

    pub async fn delete(&self, path: &str) -> Resp {
        Resp::from(self.req(Method::DELETE, path).send().await.unwrap()).await
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.unwrap();
        }
    }
}

/// The pooled connection string of a connection's `data`.
pub fn pooled_url(conn: &Value) -> String {
    conn["endpoints"]["pooled"]["connectionString"]
        .as_str()
        .unwrap_or_else(|| panic!("no pooled connection string in {conn}"))
        .to_string()
}

/// A response read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    pub async fn from(r: reqwest::Response) -> Self {
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Self {
            status,
            headers,
            body,
        }
    }

    /// Asserts the contract's error shape and code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        let e = &self.body["error"];
        assert_eq!(e["code"], code, "body: {}", self.body);
        assert!(
            e["message"].as_str().is_some_and(|m| !m.is_empty()),
            "message missing: {}",
            self.body
        );
        let keys: Vec<&String> = self.body.as_object().unwrap().keys().collect();
        assert_eq!(keys, vec!["error"], "only `error` at top level");
        assert!(self.headers.contains_key("x-request-id"));
    }
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:x}{:08x}", n, NEXT_DB.fetch_add(1, Ordering::SeqCst))
}

/// A TLS connector for tokio-postgres with `sslmode=require` semantics (the cluster's
/// certificate is self-signed): the one pgfleet itself uses.
pub fn tls_connector() -> tokio_postgres_rustls::MakeRustlsConnect {
    pgfleet_dataplane::tls::require_connector().expect("TLS connector")
}

/// Connects to a tenant database with a connection string as the API returns it
/// (`postgresql://u:p@host:port/db?sslmode=require`), over TLS, within 5 seconds.
pub async fn connect_tls(
    conn_string: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let mut cfg: tokio_postgres::Config = conn_string.parse()?;
    cfg.connect_timeout(Duration::from_secs(5));
    let (client, conn) = cfg.connect(tls_connector()).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// Runs the real `psql` with a connection string (no password from the environment, no
/// `.psqlrc`); returns (success, stdout trimmed, stderr).
pub async fn psql(conn: &str, sql: &str) -> (bool, String, String) {
    let out = tokio::process::Command::new("psql")
        .env("PGCONNECT_TIMEOUT", "5")
        .env_remove("PGPASSWORD")
        .env_remove("PGSERVICE")
        .args([
            "-X",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            conn,
            "-c",
            sql,
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("run psql");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// A request with another bearer token and a JSON body.
pub async fn send_as(s: &TestServer, token: &str, method: Method, path: &str, body: Value) -> Resp {
    let r = s
        .http
        .request(method, format!("{}{path}", s.base))
        .bearer_auth(token)
        .json(&body);
    Resp::from(r.send().await.unwrap()).await
}
/// A superuser session on database `db` of the embedded cluster of data directory `dir`,
/// over its Unix socket.
pub async fn embedded_superuser(dir: &Path, db: &str) -> tokio_postgres::Client {
    let file = dir.join("cluster.json");
    let recorded: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let port = u16::try_from(recorded["port"].as_u64().unwrap()).unwrap();
    let mut cfg = tokio_postgres::Config::new();
    cfg.host_path(dir.join("run"))
        .port(port)
        .user("postgres")
        .dbname(db)
        .connect_timeout(Duration::from_secs(5));
    let (client, conn) = cfg
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to the embedded cluster ({db}): {e}"));
    tokio::spawn(conn);
    client
}
/// `(count, md5 of all rows)` of table `t`.
pub async fn checksum(conn: &str) -> (i64, String) {
    let c = connect_tls(conn).await.unwrap();
    let row = c
        .query_one("SELECT count(*), md5(coalesce(string_agg(id::text || ':' || v, ',' ORDER BY id), '')) FROM t", &[])
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// Waits (at most 60 s) until database `id` is `ready`; its `data`.
pub async fn wait_ready(s: &TestServer, id: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = s.get(&format!("/v1/databases/{id}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        if r.body["data"]["status"] == "ready" {
            return r.body["data"].clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "database {id} not ready: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (at most 60 s) until backup `backup` of `db` is no longer `running`.
pub async fn wait_backup(s: &TestServer, db: &str, backup: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = s.get(&format!("/v1/databases/{db}/backups")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        if let Some(b) = r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["id"] == backup)
        {
            if b["status"] != "running" {
                return b.clone();
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "backup {backup} did not finish"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Takes a backup of `db` now and waits for it to complete; its id.
pub async fn backup_now(s: &TestServer, db: &str) -> String {
    let r = s
        .post(
            &format!("/v1/databases/{db}/backups"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["data"]["status"], "running");
    let id = r.body["data"]["id"].as_str().unwrap().to_string();
    let b = wait_backup(s, db, &id).await;
    assert_eq!(b["status"], "completed", "{b}");
    assert!(b["size"].as_i64().unwrap() > 0);
    id
}

/// A database created with a source: its credentials, once ready.
pub async fn create_from(s: &TestServer, project: &str, body: Value) -> (String, String) {
    let r = s
        .post(&format!("/v1/projects/{project}/databases"), body)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["data"]["id"].as_str().unwrap().to_string();
    let conn = r.body["data"]["connectionString"]
        .as_str()
        .unwrap()
        .to_string();
    wait_ready(s, &id).await;
    (id, conn)
}

/// Waits until `check` holds (checked every 50 ms, for up to 20 s); panics with `what`.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
