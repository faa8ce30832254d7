//! The `prisma+postgres://` endpoint end to end over HTTP (reqwest, the requests Prisma
//! Client sends): the API key shown once in create answers and absent from reads, queries
//! running as the connection's role in a UTC session, rotation and deletion refusing the old
//! key at once (and closing its open interactive transaction), unknown keys refused, the
//! regions lists, the per-key limits answered with Prisma's error codes (a statement of an
//! interactive transaction past the query timeout cancelled), HTTPS with a
//! configured certificate, the endpoint off, and the CLI printing the string once.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{cluster, eventually, TestServer};

/// A `$queryRaw` plan as Prisma Client 7 sends it (`tests/fixtures/accelerate/raw.json`).
pub(crate) fn raw_query(sql: &str) -> Value {
    json!({
        "operation": "queryRaw",
        "plan": {"type": "query", "args": {"type": "rawSql", "sql": sql, "args": [], "argTypes": []}},
        "params": {}
    })
}

/// An `$executeRaw` plan.
pub(crate) fn raw_execute(sql: &str) -> Value {
    json!({
        "operation": "executeRaw",
        "plan": {"type": "execute", "args": {"type": "rawSql", "sql": sql, "args": [], "argTypes": []}},
        "params": {}
    })
}

/// The endpoint's base URL and the key of a `prisma+postgres://` string.
pub(crate) fn split(accel: &str) -> (String, String) {
    let url = url::Url::parse(accel).unwrap();
    assert_eq!(url.scheme(), "prisma+postgres", "{accel}");
    let key = url
        .query_pairs()
        .find(|(k, _)| k == "api_key")
        .map(|(_, v)| v.to_string())
        .unwrap();
    let base = format!("http://{}:{}", url.host_str().unwrap(), url.port().unwrap());
    (base, key)
}

pub(crate) struct Endpoint {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
}

impl Endpoint {
    pub(crate) fn of(s: &TestServer) -> Self {
        let addr = s.running.as_ref().unwrap().accelerate_addr.unwrap();
        Self {
            http: reqwest::Client::new(),
            base: format!("http://{addr}"),
        }
    }

    pub(crate) async fn post(&self, key: &str, path: &str, body: &Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub(crate) async fn query(&self, key: &str, body: &Value) -> (StatusCode, Value) {
        self.post(key, "/query", body).await
    }
}

/// The connection's `prisma+postgres://` string from a create or rotate answer.
pub(crate) fn accel_string(conn: &Value) -> String {
    conn["endpoints"]["accelerate"]["connectionString"]
        .as_str()
        .unwrap_or_else(|| panic!("no accelerate string: {conn}"))
        .to_string()
}

pub(crate) fn assert_unauthorized((status, body): (StatusCode, Value)) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["code"], "P6002", "{body}");
}

#[tokio::test]
async fn key_is_shown_once_and_runs_queries_as_the_connections_role() {
    let s = TestServer::start().await;
    let addr = s.running.as_ref().unwrap().accelerate_addr.unwrap();
    let p = s.post("/v1/projects", json!({"name": "accel"})).await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    let db = &p.body["data"]["database"];
    let default = &db["connections"][0];
    let accel = accel_string(default);
    assert!(
        accel.starts_with(&format!(
            "prisma+postgres://localhost:{}/?api_key=pgfa_",
            addr.port()
        )),
        "{accel}"
    );
    assert_eq!(default["kind"], "postgres");
    assert_eq!(
        default["endpoints"]["accelerate"]["port"],
        json!(addr.port())
    );
    // The deprecated strings stay direct Postgres URLs; apiKeys carry no accelerate string.
    assert!(db["connectionString"]
        .as_str()
        .unwrap()
        .starts_with("postgresql://"));
    assert!(db["apiKeys"][0]["endpoints"]["accelerate"]
        .get("connectionString")
        .is_none());

    // Reads list the endpoint without the key.
    let id = default["id"].as_str().unwrap();
    let got = s.get(&format!("/v1/connections/{id}")).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    assert_eq!(
        got.body["data"]["endpoints"]["accelerate"],
        json!({"host": "localhost", "port": addr.port()})
    );
    let db_id = db["id"].as_str().unwrap();
    let list = s.get(&format!("/v1/connections?databaseId={db_id}")).await;
    assert!(!list.body.to_string().contains("pgfa_"), "{}", list.body);
    let whole = s.get(&format!("/v1/databases/{db_id}")).await;
    assert!(!whole.body.to_string().contains("pgfa_"), "{}", whole.body);

    // A created connection gets its own key.
    let c = s
        .post(
            &format!("/v1/databases/{db_id}/connections"),
            json!({"name": "app"}),
        )
        .await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.body);
    let (base, key) = split(&accel_string(&c.body["data"]));
    assert_eq!(base, format!("http://localhost:{}", addr.port()));
    let e = Endpoint::of(&s);

    // The connection-info route Prisma Client calls first.
    let info = e
        .http
        .get(format!("{}/connection-info", e.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), StatusCode::OK);
    assert_eq!(
        info.json::<Value>().await.unwrap(),
        json!({"provider": "postgres", "connectionInfo": {"supportsRelationJoins": true}})
    );

    // A query plan runs as the connection's role, in UTC.
    let (status, body) = e
        .query(
            &key,
            &raw_query(
                "SELECT session_user::text AS who, current_user::text AS acting, \
                 current_setting('TimeZone') AS tz",
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let role = c.body["data"]["endpoints"]["direct"]["connectionString"]
        .as_str()
        .map(|u| url::Url::parse(u).unwrap().username().to_string())
        .unwrap();
    let row = &body["data"]["rows"][0];
    assert_eq!(row[0], json!(role), "{body}");
    // Logged in as the connection's role, acting as the database's owner (as every
    // session of a connection does), in UTC.
    assert!(row[1].as_str().unwrap().starts_with("d_"), "{body}");
    assert_eq!(row[2], "UTC", "{body}");
    let (status, body) = e
        .query(&key, &raw_execute("CREATE TABLE t (id int PRIMARY KEY)"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = e
        .query(&key, &raw_execute("INSERT INTO t VALUES (1), (2)"))
        .await;
    assert_eq!(
        (status, &body["data"]),
        (StatusCode::OK, &json!(2)),
        "{body}"
    );

    // Unknown and missing keys.
    assert_unauthorized(e.query("pgfa_not-a-key", &raw_query("SELECT 1")).await);
    assert_unauthorized(e.query("", &raw_query("SELECT 1")).await);
    let none = e
        .http
        .post(format!("{}/query", e.base))
        .json(&raw_query("SELECT 1"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);

    // The regions the endpoint serves.
    let r = s.get("/v1/regions/accelerate").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"][0]["id"], "us-east-1", "{}", r.body);
    let r = s.get("/v1/regions?product=accelerate").await;
    assert_eq!(r.body["data"][0]["product"], "accelerate", "{}", r.body);
    s.stop().await;
}

/// Sessions of `role` idle inside a transaction.
pub(crate) async fn open_transactions_of(role: &str) -> i64 {
    let admin = cluster().admin("postgres").await;
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND state LIKE 'idle in transaction%'",
            &[&role],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn rotation_and_deletion_refuse_the_old_key_at_once() {
    let s = TestServer::start().await;
    let (_db, conn) = s.database_with_connection("accel-rotate").await;
    let id = conn["id"].as_str().unwrap().to_string();
    let role = url::Url::parse(
        conn["endpoints"]["direct"]["connectionString"]
            .as_str()
            .unwrap(),
    )
    .unwrap()
    .username()
    .to_string();
    let (_, old) = split(&accel_string(&conn));
    let e = Endpoint::of(&s);
    let (status, body) = e.query(&old, &raw_execute("CREATE TABLE t (id int)")).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // An interactive transaction open with the old key, a row written in it.
    let (status, body) = e
        .post(
            &old,
            "/transaction/start",
            &json!({"maxWait": 2000, "timeout": 60000}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let tx = body["id"].as_str().unwrap().to_string();
    let (status, body) = e
        .post(
            &old,
            &format!("/transaction/{tx}/query"),
            &raw_execute("INSERT INTO t VALUES (1)"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(open_transactions_of(&role).await, 1);

    let r = s
        .req(
            reqwest::Method::POST,
            &format!("/v1/connections/{id}/rotate"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let rotated: Value = r.json().await.unwrap();
    let (_, new) = split(&accel_string(&rotated["data"]));
    assert_ne!(new, old);

    // The old key is refused at once, for queries and for its open transaction, which is
    // rolled back long before its own timeout.
    assert_unauthorized(e.query(&old, &raw_query("SELECT 1")).await);
    assert_unauthorized(
        e.post(&old, &format!("/transaction/{tx}/commit"), &json!({}))
            .await,
    );
    eventually("the old key's transaction is rolled back", || async {
        open_transactions_of(&role).await == 0
    })
    .await;
    let (status, body) = e
        .query(&new, &raw_query("SELECT count(*)::int AS n FROM t"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["rows"], json!([[0]]), "{body}");

    // Deleting the connection kills the new key too.
    assert_eq!(
        s.delete(&format!("/v1/connections/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_unauthorized(e.query(&new, &raw_query("SELECT 1")).await);
    s.stop().await;
}

#[tokio::test]
async fn limits_answer_prisma_errors() {
    let s = TestServer::start_with(|c| {
        c.accelerate.max_request_bytes = 4096;
        c.accelerate.max_concurrent_queries = 1;
        c.accelerate.query_timeout_ms = 5000;
    })
    .await;
    let (_db, conn) = s.database_with_connection("accel-limits").await;
    let (_, key) = split(&accel_string(&conn));
    let e = Endpoint::of(&s);

    // A body over max_request_bytes: 413 P6005.
    let big = raw_query(&format!("SELECT '{}'", "x".repeat(8192)));
    let (status, body) = e.query(&key, &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["code"], "P6005", "{body}");

    // A second query while the key's one slot is taken: 429 P5011.
    let slow = {
        let http = e.http.clone();
        let url = format!("{}/query", e.base);
        let key = key.clone();
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth(key)
                .json(&raw_execute("SELECT pg_sleep(1.5)"))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = e.query(&key, &raw_query("SELECT 1 AS one")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["code"], "P5011", "{body}");
    assert_eq!(slow.await.unwrap(), StatusCode::OK);
    let (status, body) = e.query(&key, &raw_query("SELECT 1 AS one")).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A plan past the query timeout.
    let (status, body) = e.query(&key, &raw_execute("SELECT pg_sleep(10)")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "Query timeout exceeded", "{body}");
    s.stop().await;
}

/// Sessions of `role` running a statement that contains `text`.
async fn running_statements_of(role: &str, text: &str) -> i64 {
    let admin = cluster().admin("postgres").await;
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND state = 'active' \
             AND strpos(query, $2) > 0",
            &[&role, &text],
        )
        .await
        .unwrap()
        .get(0)
}

/// A statement of an interactive transaction past the query timeout is answered as the
/// reference answers it and cancelled in the database (the transaction stays open, aborted,
/// until rolled back or its own timeout).
#[tokio::test]
async fn a_transaction_statement_past_the_query_timeout_is_cancelled() {
    let s = TestServer::start_with(|c| c.accelerate.query_timeout_ms = 1000).await;
    let (_db, conn) = s.database_with_connection("accel-tx-timeout").await;
    let role = url::Url::parse(
        conn["endpoints"]["direct"]["connectionString"]
            .as_str()
            .unwrap(),
    )
    .unwrap()
    .username()
    .to_string();
    let (_, key) = split(&accel_string(&conn));
    let e = Endpoint::of(&s);
    let (status, body) = e
        .post(
            &key,
            "/transaction/start",
            &json!({"maxWait": 2000, "timeout": 30000}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let tx = body["id"].as_str().unwrap().to_string();
    let started = std::time::Instant::now();
    let (status, body) = e
        .post(
            &key,
            &format!("/transaction/{tx}/query"),
            &raw_execute("SELECT pg_sleep(20) /* tx-timeout */"),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body, json!({"error": "Query timeout exceeded"}));
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    // Cancelled, not left running for 20 s; the transaction is still open (aborted).
    assert_eq!(running_statements_of(&role, "tx-timeout").await, 0);
    assert_eq!(open_transactions_of(&role).await, 1);
    let (status, body) = e
        .post(
            &key,
            &format!("/transaction/{tx}/query"),
            &raw_query("SELECT 1 AS one"),
        )
        .await;
    assert_ne!(status, StatusCode::OK, "an aborted transaction: {body}");
    let (status, body) = e
        .post(&key, &format!("/transaction/{tx}/rollback"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(open_transactions_of(&role).await, 0);
    let (status, body) = e.query(&key, &raw_query("SELECT 1 AS one")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    s.stop().await;
}

#[tokio::test]
async fn off_means_no_endpoint_no_key_and_no_regions() {
    let s = TestServer::start_with(|c| c.accelerate.enabled = false).await;
    assert!(s.running.as_ref().unwrap().accelerate_addr.is_none());
    let (_db, conn) = s.database_with_connection("accel-off").await;
    assert!(conn["endpoints"].get("accelerate").is_none(), "{conn}");
    let r = s.get("/v1/regions/accelerate").await;
    assert_eq!(r.body["data"], json!([]), "{}", r.body);
    let r = s.get("/v1/regions?product=accelerate").await;
    assert_eq!(r.body["data"], json!([]), "{}", r.body);
    s.stop().await;
}

#[tokio::test]
async fn the_cli_prints_the_prisma_postgres_string_once_and_the_endpoint() {
    let s = TestServer::start().await;
    let (db, _conn) = s.database_with_connection("accel-cli").await;
    let port = s.running.as_ref().unwrap().accelerate_addr.unwrap().port();
    let home = tempfile::tempdir().unwrap();
    let cli = |args: Vec<String>| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_pgfleet"));
        cmd.env_remove("PGFLEET_API_URL")
            .env_remove("PGFLEET_TOKEN")
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path())
            .args(["--api-url", &s.base, "--token", &s.token])
            .args(args)
            .stdin(std::process::Stdio::null());
        cmd
    };
    let out = cli(vec![
        "connections".into(),
        "create".into(),
        "--database".into(),
        db.clone(),
    ])
    .output()
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("prisma+postgres string"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.contains(&format!(
            "prisma+postgres://localhost:{port}/?api_key=pgfa_"
        )),
        "{line}"
    );
    let list = cli(vec!["connections".into(), "list".into()])
        .output()
        .await
        .unwrap();
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(!listed.contains("pgfa_"), "{listed}");
    s.stop().await;
}

#[tokio::test]
async fn a_configured_certificate_serves_https() {
    let dir = tempfile::tempdir().unwrap();
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.key_pair.serialize_pem()).unwrap();
    let s = TestServer::start_with(|c| {
        c.accelerate.tls_cert_file = Some(cert.clone());
        c.accelerate.tls_key_file = Some(key.clone());
    })
    .await;
    let (_db, conn) = s.database_with_connection("accel-tls").await;
    let (_, api_key) = split(&accel_string(&conn));
    let addr = s.running.as_ref().unwrap().accelerate_addr.unwrap();
    let https = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let r = https
        .post(format!("https://127.0.0.1:{}/query", addr.port()))
        .bearer_auth(&api_key)
        .json(&raw_query("SELECT 1 AS one"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"]["rows"], json!([[1]]), "{body}");
    // Plain HTTP is not answered on a TLS listener.
    let plain = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/query", addr.port()))
        .bearer_auth(&api_key)
        .json(&raw_query("SELECT 1 AS one"))
        .send()
        .await;
    assert!(plain.map(|r| !r.status().is_success()).unwrap_or(true));
    s.stop().await;
}

#[tokio::test]
async fn queries_are_counted_like_the_poolers() {
    let s = TestServer::start_with(|c| c.usage.sample_interval_secs = 1).await;
    let (db, conn) = s.database_with_connection("accel-usage").await;
    let (_, key) = split(&accel_string(&conn));
    let e = Endpoint::of(&s);
    for _ in 0..2 {
        let (status, body) = e.query(&key, &raw_query("SELECT 1 AS one")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // An interactive transaction of two queries: two statements, one transaction.
    let (status, body) = e
        .post(
            &key,
            "/transaction/start",
            &json!({"maxWait": 2000, "timeout": 5000}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let tx = body["id"].as_str().unwrap().to_string();
    for _ in 0..2 {
        let (status, body) = e
            .post(
                &key,
                &format!("/transaction/{tx}/query"),
                &raw_query("SELECT 1 AS one"),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = e
        .post(&key, &format!("/transaction/{tx}/commit"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let statements = format!(r#"pgfleet_pooler_statements_total{{database_id="{db}"}} 4"#);
    let transactions = format!(r#"pgfleet_pooler_transactions_total{{database_id="{db}"}} 3"#);
    eventually("the endpoint's counts in /metrics", || async {
        let m = s.metrics().await;
        m.contains(&statements) && m.contains(&transactions)
    })
    .await;
    s.stop().await;
}
