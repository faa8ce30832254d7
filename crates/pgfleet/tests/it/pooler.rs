//! The pooled endpoint end to end: psql and tokio-postgres through the proxy, prepared
//! statements across pooled transactions, 500 clients over 10 server connections, a server
//! connection killed mid-transaction, cancel, rotation and deletion cutting pooled access,
//! refused logins opening no server connection, SCRAM passthrough to a TCP+TLS server,
//! statement counters, and long messages streamed through in bounded memory.

use std::time::Duration;

use pgfleet_pooler::proto;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_postgres::error::SqlState;

use crate::harness::{cluster, connect_tls, eventually, pooled_url, psql, TestServer};

fn user_of(conn: &Value) -> String {
    let url = url::Url::parse(&pooled_url(conn)).unwrap();
    url.username().to_string()
}

/// Server sessions of a role on the test cluster.
async fn backends_of(role: &str) -> i64 {
    let admin = cluster().admin("postgres").await;
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = $1",
            &[&role],
        )
        .await
        .unwrap()
        .get(0)
}

/// Like `connect_tls`, with room for 500 clients doing TLS and SCRAM at once on a busy CI
/// machine.
async fn connect_patiently(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let mut cfg: tokio_postgres::Config = url.parse()?;
    cfg.connect_timeout(Duration::from_secs(120));
    // Hundreds of TLS handshakes at once on a loaded machine can outlast the pooler's
    // startup timeout (5 s, its guard against clients that never finish logging in): the
    // pooler then closes the socket mid-handshake, and a patient client tries again, as
    // libpq-based clients with retries do. Errors PostgreSQL answered (a SQLSTATE) are final.
    let mut attempt = 0;
    let (client, conn) = loop {
        attempt += 1;
        match cfg.connect(crate::harness::tls_connector()).await {
            Ok(c) => break c,
            Err(e) if e.code().is_none() && attempt < 5 => {
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            Err(e) => return Err(e),
        }
    };
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

fn code(e: &tokio_postgres::Error) -> Option<SqlState> {
    e.code().cloned()
}

#[tokio::test]
async fn pooled_endpoint_serves_psql_tokio_postgres_and_prepared_statements() {
    let s = TestServer::start_with(|c| c.usage.sample_interval_secs = 1).await;
    let (db, conn) = s.database_with_connection("pooled").await;
    let url = pooled_url(&conn);
    let pooler = s.running.as_ref().unwrap().pooler_addr.unwrap();
    assert_eq!(conn["endpoints"]["pooled"]["port"], json!(pooler.port()));
    assert_eq!(conn["endpoints"]["pooled"]["host"], "localhost");
    // Without the password, the endpoint is listed without its string.
    let got = s
        .get(&format!("/v1/connections/{}", conn["id"].as_str().unwrap()))
        .await;
    assert_eq!(
        got.body["data"]["endpoints"]["pooled"]["port"],
        json!(pooler.port())
    );
    assert!(got.body["data"]["endpoints"]["pooled"]
        .get("connectionString")
        .is_none());

    // psql, over TLS.
    let (ok, who, err) = psql(&url, "SELECT current_user || ' ' || session_user").await;
    assert!(ok, "{err}");
    // Channel binding (SCRAM-SHA-256-PLUS with tls-server-end-point): libpq and
    // tokio-postgres both insist on it here.
    let bound = format!("{url}&channel_binding=require");
    let (ok, _, err) = psql(&bound, "SELECT 1").await;
    assert!(ok, "{err}");
    connect_tls(&bound)
        .await
        .unwrap()
        .query_one("SELECT 1", &[])
        .await
        .unwrap();
    let user = user_of(&conn);
    assert!(who.ends_with(&format!(" {user}")), "{who}");
    assert!(who.starts_with("d_"), "sessions act as the owner: {who}");

    // tokio-postgres: named prepared statements (it prepares every parameterized query)
    // keep working across pooled transactions on different server connections.
    let a = connect_tls(&url).await.unwrap();
    let b = connect_tls(&url).await.unwrap();
    a.batch_execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
        .await
        .unwrap();
    let insert = a.prepare("INSERT INTO t VALUES ($1, $2)").await.unwrap();
    for i in 0..20i32 {
        a.execute(&insert, &[&i, &format!("v{i}")]).await.unwrap();
        // Another client's transaction in between may take the same server connection.
        let n: i64 = b
            .query_one("SELECT count(*) FROM t WHERE id <= $1", &[&i])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, i64::from(i) + 1);
    }
    // Explicit transactions stay on one server connection.
    let mut a = a;
    let tx = a.transaction().await.unwrap();
    let pid1: i32 = tx
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    tx.execute("UPDATE t SET v = 'x' WHERE id = $1", &[&1i32])
        .await
        .unwrap();
    let pid2: i32 = tx
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(pid1, pid2);
    tx.rollback().await.unwrap();
    let v: String = a
        .query_one("SELECT v FROM t WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, "v1");
    // A statement prepared once is usable after many other transactions, and an error in
    // one batch does not break the next.
    let err = a.query_one("SELECT 1/0", &[]).await.unwrap_err();
    assert_eq!(code(&err), Some(SqlState::DIVISION_BY_ZERO));
    a.execute(&insert, &[&100i32, &"after error"])
        .await
        .unwrap();
    // Bigger results through the pool.
    let n: i64 = a
        .query_one("SELECT count(*) FROM generate_series(1, 1000)", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1000);

    // Counters per database.
    let stats = s.running.as_ref().unwrap().pooler.as_ref().unwrap().stats();
    let mine = stats.iter().find(|d| d.database_id == db).unwrap();
    assert!(mine.statements >= 40, "{mine:?}");
    assert!(mine.server_connections <= 10, "{mine:?}");
    // … published by the usage sampler.
    let needle = format!(r#"pgfleet_pooler_statements_total{{database_id="{db}"}}"#);
    eventually(&format!("{needle} in /metrics"), || async {
        s.metrics().await.contains(&needle)
    })
    .await;
    s.stop().await;
}

#[tokio::test]
async fn five_hundred_clients_share_ten_server_connections() {
    let s = TestServer::start().await;
    let (_db, conn) = s.database_with_connection("many").await;
    let url = pooled_url(&conn);
    let user = user_of(&conn);
    let setup = connect_tls(&url).await.unwrap();
    setup
        .batch_execute("CREATE TABLE hits (n int)")
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..500i32 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let c = connect_patiently(&url)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            for _ in 0..3 {
                c.execute("INSERT INTO hits VALUES ($1)", &[&i])
                    .await
                    .map_err(|e| format!("insert: {e}"))?;
            }
            // Held open until all have connected and run.
            Ok::<_, String>(c)
        }));
    }
    let mut clients = Vec::new();
    for t in tasks {
        clients.push(t.await.unwrap().unwrap());
    }
    let n: i64 = setup
        .query_one("SELECT count(*) FROM hits", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1500);
    let backends = backends_of(&user).await;
    assert!(
        (1..=10).contains(&backends),
        "500 clients used {backends} server connections"
    );
    drop(clients);
    s.stop().await;
}

#[tokio::test]
async fn a_killed_server_connection_fails_its_client_only_and_the_pool_recovers() {
    let s = TestServer::start().await;
    let (_db, conn) = s.database_with_connection("kill").await;
    let url = pooled_url(&conn);
    let mut victim = connect_tls(&url).await.unwrap();
    let other = connect_tls(&url).await.unwrap();
    let tx = victim.transaction().await.unwrap();
    let pid: i32 = tx
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let admin = cluster().admin("postgres").await;
    admin
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    let err = tx.query_one("SELECT 1", &[]).await.unwrap_err();
    assert!(
        err.is_closed() || err.code().is_some(),
        "the client of the killed connection gets an error: {err}"
    );
    drop(tx);
    // The others continue, and new clients get fresh server connections.
    let one: i32 = other.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    for _ in 0..5 {
        let c = connect_tls(&url).await.unwrap();
        c.query_one("SELECT 1", &[]).await.unwrap();
    }
    // Idle server connections killed while in the pool are replaced too. The pooler may
    // open fresh connections for the role at any moment (the other client is live), so the
    // test waits for exactly the pids it terminated, not for zero backends.
    let role = user_of(&conn);
    let killed: Vec<i32> = admin
        .query(
            "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
            &[&role],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!killed.is_empty(), "the pool held server connections");
    eventually("the killed backends are gone", || {
        let killed = killed.clone();
        async move {
            let admin = cluster().admin("postgres").await;
            let left: i64 = admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)",
                    &[&killed],
                )
                .await
                .unwrap()
                .get(0);
            left == 0
        }
    })
    .await;
    let one: i32 = other.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    s.stop().await;
}

#[tokio::test]
async fn cancel_reaches_the_running_query() {
    let s = TestServer::start().await;
    let (_db, conn) = s.database_with_connection("cancel").await;
    let c = connect_tls(&pooled_url(&conn)).await.unwrap();
    let token = c.cancel_token();
    let started = std::time::Instant::now();
    let sleeper = tokio::spawn(async move { c.simple_query("SELECT pg_sleep(30)").await });
    // A cancel that arrives before the query reached its server connection finds nothing
    // to cancel: repeat until the query ends.
    while !sleeper.is_finished() {
        tokio::time::sleep(Duration::from_millis(300)).await;
        token
            .cancel_query(crate::harness::tls_connector())
            .await
            .unwrap();
    }
    let err = sleeper.await.unwrap().unwrap_err();
    assert_eq!(code(&err), Some(SqlState::QUERY_CANCELED), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    s.stop().await;
}

#[tokio::test]
async fn refused_logins_open_no_server_connection_and_rotation_and_deletion_cut_access() {
    let s = TestServer::start().await;
    let (_db, conn) = s.database_with_connection("cut").await;
    let url = pooled_url(&conn);
    let user = user_of(&conn);

    // Wrong password and unknown user: 28P01, and nothing reaches the server.
    let mut wrong = url::Url::parse(&url).unwrap();
    wrong.set_password(Some("not-the-password")).unwrap();
    let err = connect_tls(wrong.as_str()).await.err().unwrap();
    assert_eq!(code(&err), Some(SqlState::INVALID_PASSWORD), "{err}");
    let mut unknown = url::Url::parse(&url).unwrap();
    unknown.set_username("u_nobody").unwrap();
    let err = connect_tls(unknown.as_str()).await.err().unwrap();
    assert_eq!(code(&err), Some(SqlState::INVALID_PASSWORD), "{err}");
    assert_eq!(backends_of(&user).await, 0);
    // Plain text is refused.
    let plain = url.replace("sslmode=require", "sslmode=disable");
    let err = tokio_postgres::connect(&plain, tokio_postgres::NoTls)
        .await
        .err()
        .unwrap();
    assert_eq!(
        code(&err),
        Some(SqlState::INVALID_AUTHORIZATION_SPECIFICATION),
        "{err}"
    );

    // Rotation: open pooled sessions end, the old password stops working, the new works.
    let open = connect_tls(&url).await.unwrap();
    open.query_one("SELECT 1", &[]).await.unwrap();
    let id = conn["id"].as_str().unwrap();
    let r = s
        .post(&format!("/v1/connections/{id}/rotate"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let new_url = pooled_url(&r.body["data"]);
    eventually("the open pooled session ends", || {
        let open = &open;
        async move { open.query_one("SELECT 1", &[]).await.is_err() }
    })
    .await;
    let err = connect_tls(&url).await.err().unwrap();
    assert_eq!(code(&err), Some(SqlState::INVALID_PASSWORD), "{err}");
    let fresh = connect_tls(&new_url).await.unwrap();
    fresh.query_one("SELECT 1", &[]).await.unwrap();

    // Deletion: the same.
    let d = s.delete(&format!("/v1/connections/{id}")).await;
    assert_eq!(d.status, StatusCode::NO_CONTENT, "{}", d.body);
    eventually("the pooled session of the deleted connection ends", || {
        let fresh = &fresh;
        async move { fresh.query_one("SELECT 1", &[]).await.is_err() }
    })
    .await;
    let err = connect_tls(&new_url).await.err().unwrap();
    assert_eq!(code(&err), Some(SqlState::INVALID_PASSWORD), "{err}");
    s.stop().await;
}

/// Against a server reached over TCP with TLS and SCRAM (not the trusted socket), the
/// proxy logs in with the key recovered from the client's proof.
#[tokio::test]
async fn scram_passthrough_to_a_tls_server() {
    let admin = cluster().admin("postgres").await;
    let password = "tcp-admin-password";
    admin
        .batch_execute(&format!(
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pgfleet_tcp_admin') THEN
                 CREATE ROLE pgfleet_tcp_admin SUPERUSER LOGIN PASSWORD '{password}';
               END IF;
             END $$"
        ))
        .await
        .unwrap();
    let port = cluster().port;
    let s = TestServer::start_with(|c| {
        c.regions.insert(
            "us-east-1".to_string(),
            pgfleet::config::RegionConfig {
                name: None,
                servers: vec![pgfleet::config::Secret::new(format!(
                    "postgres://pgfleet_tcp_admin:{password}@127.0.0.1:{port}/postgres?sslmode=require"
                ))],
            },
        );
    })
    .await;
    let (_db, conn) = s.database_with_connection("tcp").await;
    let user = user_of(&conn);
    let c = connect_tls(&pooled_url(&conn)).await.unwrap();
    for i in 0..5i32 {
        let n: i32 = c
            .query_one("SELECT $1::int + 1", &[&i])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, i + 1);
    }
    let admin = cluster().admin("postgres").await;
    let tls: Vec<bool> = admin
        .query(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.usename = $1",
            &[&user],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!tls.is_empty() && tls.iter().all(|t| *t), "{tls:?}");
    s.stop().await;
}

/// A `pgfleet proxy` process, killed if a failing test leaves it running.
struct Proxy(std::process::Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Proxy {
    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid() as i32), signal).unwrap();
    }

    fn sigterm(&self) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
    }

    /// Waits (up to 30 s) for a clean exit.
    async fn exited(mut self) {
        let status = tokio::task::spawn_blocking(move || {
            crate::lifecycle::wait_timeout(&mut self.0, Duration::from_secs(30))
        })
        .await
        .unwrap();
        assert!(status.success(), "proxy exited with {status}");
    }
}

/// A `pgfleet serve` (own data directory) with one connection, and a `pgfleet proxy`
/// beside it: (server, proxy, the connection, its pooled URL on the proxy's port).
async fn serve_and_standalone_proxy(
    dir: &std::path::Path,
) -> (crate::lifecycle::Server, Proxy, Value, url::Url) {
    use crate::lifecycle::{pgfleet, Server};
    use std::io::{BufRead as _, BufReader};

    let server = Server::start(dir);
    let token = server.token();
    let http = reqwest::Client::new();
    let c = server
        .database_with_connection(&http, &token, "standalone", "via-proxy")
        .await;
    let pooled = pooled_url(&c["data"]);

    let mut proxy = Proxy(
        pgfleet(&["proxy", "--data-dir", dir.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(proxy.0.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("proxy printed its address").unwrap();
        if let Some(a) = line.strip_prefix("pgfleet proxy listening on postgresql://") {
            break a.trim().to_string();
        }
    };
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let mut url = url::Url::parse(&pooled).unwrap();
    url.set_port(Some(port)).unwrap();
    (server, proxy, c, url)
}

/// `pgfleet proxy` beside `pgfleet serve` on the same data directory: clients connect
/// through it; on SIGTERM a transaction in flight finishes, idle clients are told, and it
/// exits 0.
#[tokio::test]
async fn standalone_proxy_serves_and_drains_on_sigterm() {
    use crate::lifecycle::data_dir;

    let dir = data_dir();
    let (server, proxy, c, url) = serve_and_standalone_proxy(dir.path()).await;

    let idle = connect_tls(url.as_str()).await.unwrap();
    idle.query_one("SELECT 1", &[]).await.unwrap();
    let busy = connect_tls(url.as_str()).await.unwrap();
    let in_flight = tokio::spawn(async move {
        let r = busy.simple_query("SELECT pg_sleep(1.5)").await;
        (r.map(|_| ()), busy)
    });
    // Signal only once the query runs on its server connection.
    let direct = connect_tls(
        c["data"]["endpoints"]["direct"]["connectionString"]
            .as_str()
            .unwrap(),
    )
    .await
    .unwrap();
    direct.batch_execute("SET ROLE NONE").await.unwrap();
    eventually("the pooled query runs", || {
        let direct = &direct;
        async move {
            let n: i64 = direct
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'SELECT pg_sleep%'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            n == 1
        }
    })
    .await;
    proxy.sigterm();
    let (result, busy) = in_flight.await.unwrap();
    result.expect("the transaction in flight finishes during shutdown");
    proxy.exited().await;
    assert!(idle.query_one("SELECT 1", &[]).await.is_err());
    assert!(busy.query_one("SELECT 1", &[]).await.is_err());
    server.terminate();
}

/// The certificate a pooled endpoint presents (DER), from a bare TLS handshake.
async fn presented_certificate(url: &url::Url) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(&proto::startup_packet(proto::SSL_REQUEST, &[]))
        .await
        .unwrap();
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"S");
    let config = pgfleet_dataplane::tls::require_client_config().unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// SIGHUP makes `pgfleet proxy` read its certificate again (a renewed one is served to new
/// clients, channel binding follows it, connected clients keep working); a broken file keeps
/// the current certificate; the process keeps running, and so does `pgfleet serve`.
#[tokio::test]
async fn sighup_reloads_the_pooler_certificate() {
    use nix::sys::signal::Signal;

    let dir = crate::lifecycle::data_dir();
    let (server, proxy, _c, url) = serve_and_standalone_proxy(dir.path()).await;
    let tls_dir = dir.path().join("pooler-tls");
    let old = std::fs::read_to_string(tls_dir.join("cert.pem")).unwrap();
    let old_der = pgfleet_dataplane::tls::first_certificate_der(&old).unwrap();
    assert_eq!(presented_certificate(&url).await, old_der);
    let before = connect_tls(url.as_str()).await.unwrap();

    let renewed = pgfleet_dataplane::tls::self_signed(&["127.0.0.1".to_string()]).unwrap();
    std::fs::write(tls_dir.join("key.pem"), &renewed.key_pem).unwrap();
    std::fs::write(tls_dir.join("cert.pem"), &renewed.cert_pem).unwrap();
    let new_der = pgfleet_dataplane::tls::first_certificate_der(&renewed.cert_pem).unwrap();
    assert_ne!(new_der, old_der);
    proxy.signal(Signal::SIGHUP);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while presented_certificate(&url).await != new_der {
        assert!(
            std::time::Instant::now() < deadline,
            "the new certificate is served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Channel binding is to the new certificate.
    let mut cfg: tokio_postgres::Config = url.as_str().parse().unwrap();
    cfg.channel_binding(tokio_postgres::config::ChannelBinding::Require);
    let (after, conn) = cfg.connect(crate::harness::tls_connector()).await.unwrap();
    tokio::spawn(conn);
    assert_eq!(show(&after, "SELECT 1::text").await, "1");
    assert_eq!(show(&before, "SELECT 2::text").await, "2");

    // A broken certificate file is refused; the renewed certificate stays.
    std::fs::write(tls_dir.join("cert.pem"), "not a certificate").unwrap();
    proxy.signal(Signal::SIGHUP);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(presented_certificate(&url).await, new_der);
    let again = connect_tls(url.as_str()).await.unwrap();
    assert_eq!(show(&again, "SELECT 3::text").await, "3");
    proxy.sigterm();
    proxy.exited().await;
    // `pgfleet serve` also takes SIGHUP (its own pooler reloads) and goes on to a clean exit.
    server.signal(Signal::SIGHUP);
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.terminate();
}

/// Session mode keeps a server connection per client (session state survives between
/// transactions and is reset before the next client); the per-database client limit holds.
#[tokio::test]
async fn session_mode_and_the_client_limit() {
    let s = TestServer::start_with(|c| {
        c.pooler.mode = pgfleet::config::PoolModeConfig::Session;
        c.pooler.pool_size = 2;
        c.pooler.max_clients = 2;
    })
    .await;
    let (_db, conn) = s.database_with_connection("session").await;
    let url = pooled_url(&conn);
    let a = connect_tls(&url).await.unwrap();
    a.batch_execute("SET application_name = 'mine'")
        .await
        .unwrap();
    let pid1: i32 = a
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let name: String = a
        .query_one("SELECT current_setting('application_name')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, "mine");
    let pid2: i32 = a
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(pid1, pid2, "one server connection for the whole session");
    let b = connect_tls(&url).await.unwrap();
    b.query_one("SELECT 1", &[]).await.unwrap();
    // A third client is over the limit of 2.
    let err = connect_tls(&url).await.err().unwrap();
    assert_eq!(code(&err), Some(SqlState::TOO_MANY_CONNECTIONS), "{err}");
    // When a client leaves, its server connection is reset and lent to the next one.
    drop(a);
    // The left client's place frees once the proxy has seen it go.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let c = loop {
        match connect_tls(&url).await {
            Ok(c) => break c,
            Err(e) => {
                assert!(std::time::Instant::now() < deadline, "{e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let name: String = c
        .query_one("SELECT current_setting('application_name')", &[])
        .await
        .unwrap()
        .get(0);
    assert_ne!(
        name, "mine",
        "session state does not leak to the next client"
    );
    drop(b);
    s.stop().await;
}

/// A client that pipelines many large queries with large results: the proxy keeps reading
/// the server's replies while it writes the queued queries (no deadlock).
#[tokio::test]
async fn pipelined_large_queries_and_results_flow_both_ways() {
    let s = TestServer::start().await;
    let (_db, conn) = s.database_with_connection("pipeline").await;
    let c = connect_tls(&pooled_url(&conn)).await.unwrap();
    let big = "x".repeat(256 * 1024);
    let queries: Vec<String> = (0..40)
        .map(|i| format!("SELECT '{big}' || '{i}' AS v"))
        .collect();
    let all = futures::future::join_all(queries.iter().map(|q| c.simple_query(q)));
    let results = tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("pipelined queries finish");
    for (i, r) in results.into_iter().enumerate() {
        let rows = r.unwrap();
        let row = rows
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(r),
                _ => None,
            })
            .expect("a row");
        let v = row.get(0).unwrap();
        assert_eq!(v.len(), big.len() + i.to_string().len());
    }
    s.stop().await;
}

/// Peak resident memory of a process so far, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .expect("VmHWM in /proc/<pid>/status")
        * 1024
}

/// A 64 MB bound parameter of a named statement, the same 64 MB coming back as a row, and
/// a 16 MB simple query pass through the (standalone) proxy without it holding them whole.
#[tokio::test]
async fn long_messages_stream_through_in_bounded_memory() {
    use crate::lifecycle::data_dir;

    let dir = data_dir();
    let (server, proxy, _c, url) = serve_and_standalone_proxy(dir.path()).await;
    let c = connect_tls(url.as_str()).await.unwrap();
    let echo = c.prepare("SELECT $1::bytea AS b").await.unwrap();
    let small: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let row = c.query_one(&echo, &[&small]).await.unwrap();
    assert_eq!(row.get::<_, Vec<u8>>(0), small);
    let before = peak_rss(proxy.pid());

    let big: Vec<u8> = (0..64u32 << 20).map(|i| (i % 251) as u8).collect();
    let row = c.query_one(&echo, &[&big]).await.unwrap();
    assert!(
        row.get::<_, Vec<u8>>(0) == big,
        "the 64 MB value came back intact"
    );
    let text = "y".repeat(16 << 20);
    let rows = c
        .simple_query(&format!("SELECT length('{text}')"))
        .await
        .unwrap();
    let n = rows
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .unwrap();
    assert_eq!(n, (16 << 20).to_string());
    // The session is still in step: the named statement runs again.
    let row = c.query_one(&echo, &[&small]).await.unwrap();
    assert_eq!(row.get::<_, Vec<u8>>(0), small);

    let grown = peak_rss(proxy.pid()).saturating_sub(before);
    assert!(
        grown < 16 << 20,
        "the proxy's peak memory grew by {grown} bytes for 64 MB messages"
    );
    drop(c);
    proxy.sigterm();
    proxy.exited().await;
    server.terminate();
}

/// COPY through the pool: a 2.3 MB CopyData message in (tokio-postgres's COPY FROM sends a
/// `Sync` the server ignores in copy-in mode), many rows and one 8 MB row out; after each,
/// the only server connection (pool size 1) is free for another client.
#[tokio::test]
async fn copy_in_and_out_through_the_pool() {
    use futures::{SinkExt as _, TryStreamExt as _};

    let s = TestServer::start_with(|c| c.pooler.pool_size = 1).await;
    let (_db, conn) = s.database_with_connection("copy").await;
    let c = connect_tls(&pooled_url(&conn)).await.unwrap();
    let other = connect_tls(&pooled_url(&conn)).await.unwrap();
    let other_runs = || async {
        tokio::time::timeout(Duration::from_secs(10), other.query_one("SELECT 1", &[]))
            .await
            .expect("the server connection was released to the other client")
            .unwrap();
    };
    c.batch_execute("CREATE TABLE lines (n int, t text)")
        .await
        .unwrap();
    let mut big = String::new();
    for i in 0..30_000 {
        big.push_str(&format!("{i}\t{}\n", "z".repeat(70)));
    }
    let sink = c.copy_in("COPY lines FROM STDIN").await.unwrap();
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from(big.clone())).await.unwrap();
    sink.send(bytes::Bytes::from_static(b"100000\tlast\n"))
        .await
        .unwrap();
    assert_eq!(sink.finish().await.unwrap(), 30_001);
    other_runs().await;

    let out: Vec<bytes::Bytes> = c
        .copy_out("COPY (SELECT n, t FROM lines ORDER BY n) TO STDOUT")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let mut expected = big.into_bytes();
    expected.extend_from_slice(b"100000\tlast\n");
    assert!(out.concat() == expected, "COPY out returned what went in");
    other_runs().await;

    let out: Vec<bytes::Bytes> = c
        .copy_out("COPY (SELECT repeat('q', 8000000)) TO STDOUT")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(out.concat().len(), 8_000_001);

    let row = c
        .query_one("SELECT count(*) FROM lines", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 30_001);
    s.stop().await;
}

/// The first column of the first row of a simple query.
async fn show(c: &tokio_postgres::Client, sql: &str) -> String {
    c.simple_query(sql)
        .await
        .unwrap()
        .into_iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .unwrap()
}

/// In transaction mode the reported session parameters follow each client across the one
/// server connection they share (pool size 1): a client's `SET TimeZone`/`DateStyle` and
/// its startup `application_name` apply to its transactions only.
#[tokio::test]
async fn session_parameters_follow_their_client() {
    let s = TestServer::start_with(|c| c.pooler.pool_size = 1).await;
    let (_db, conn) = s.database_with_connection("params").await;
    let connect = |app: &'static str| {
        let url = pooled_url(&conn);
        async move {
            let mut cfg: tokio_postgres::Config = url.parse().unwrap();
            cfg.application_name(app);
            let (client, c) = cfg.connect(crate::harness::tls_connector()).await.unwrap();
            tokio::spawn(async move {
                let _ = c.await;
            });
            client
        }
    };
    let a = connect("app-a").await;
    let b = connect("app-b").await;
    let default_tz = show(&b, "SHOW TimeZone").await;
    assert_ne!(default_tz, "Asia/Tokyo");

    a.batch_execute("SET TimeZone = 'Asia/Tokyo'; SET DateStyle = 'German'")
        .await
        .unwrap();
    assert_eq!(show(&a, "SHOW TimeZone").await, "Asia/Tokyo");
    for _ in 0..2 {
        assert_eq!(show(&b, "SHOW TimeZone").await, default_tz);
        assert_eq!(
            show(&b, "SELECT '2024-01-02'::date::text").await,
            "2024-01-02"
        );
        assert_eq!(
            show(&b, "SELECT current_setting('application_name')").await,
            "app-b"
        );
        assert_eq!(show(&a, "SHOW TimeZone").await, "Asia/Tokyo");
        assert_eq!(
            show(&a, "SELECT '2024-01-02'::date::text").await,
            "02.01.2024"
        );
        assert_eq!(
            show(&a, "SELECT current_setting('application_name')").await,
            "app-a"
        );
    }
    // Both ran on the same server session.
    assert_eq!(
        show(&a, "SELECT pg_backend_pid()::text").await,
        show(&b, "SELECT pg_backend_pid()::text").await
    );
    // A value set back to the default follows too, and prepared statements still work.
    a.batch_execute("RESET TimeZone").await.unwrap();
    assert_eq!(show(&a, "SHOW TimeZone").await, default_tz);
    let st = a.prepare("SELECT $1::int + 1").await.unwrap();
    assert_eq!(
        a.query_one(&st, &[&41i32]).await.unwrap().get::<_, i32>(0),
        42
    );
    s.stop().await;
}

/// Named statements kept on one server connection are capped: past
/// `max_prepared_statements` the least recently used are closed, and prepared again when
/// a client uses them; a transaction that needs more than the cap gets them all.
#[tokio::test]
async fn prepared_statements_per_server_connection_are_capped() {
    let s = TestServer::start_with(|c| {
        c.pooler.pool_size = 1;
        c.pooler.max_prepared_statements = 3;
    })
    .await;
    let (_db, conn) = s.database_with_connection("capped").await;
    let mut client = connect_tls(&pooled_url(&conn)).await.unwrap();
    async fn on_server(c: &tokio_postgres::Client) -> String {
        show(c, "SELECT count(*)::text FROM pg_prepared_statements").await
    }
    let mut statements = Vec::new();
    for i in 0..10i32 {
        statements.push(
            client
                .prepare(&format!("SELECT $1::int + {i}"))
                .await
                .unwrap(),
        );
        assert!(on_server(&client).await.parse::<i32>().unwrap() <= 3);
    }
    assert_eq!(on_server(&client).await, "3");
    // Every statement still works, the evicted ones prepared again.
    for (i, st) in (0..10i32).zip(&statements) {
        let v: i32 = client.query_one(st, &[&1i32]).await.unwrap().get(0);
        assert_eq!(v, 1 + i);
    }
    assert_eq!(on_server(&client).await, "3");
    // Inside one transaction nothing it has used is closed, so it may exceed the cap.
    let tx = client.transaction().await.unwrap();
    for (i, st) in (0..5i32).zip(&statements) {
        let v: i32 = tx.query_one(st, &[&2i32]).await.unwrap().get(0);
        assert_eq!(v, 2 + i);
    }
    let n: i64 = tx
        .query_one("SELECT count(*) FROM pg_prepared_statements", &[])
        .await
        .unwrap()
        .get(0);
    assert!(n >= 5, "{n} statements inside the transaction");
    tx.commit().await.unwrap();
    // The next statement prepared brings the session back to the cap.
    let st = client.prepare("SELECT $1::int * 2").await.unwrap();
    assert_eq!(on_server(&client).await, "3");
    let v: i32 = client.query_one(&st, &[&21i32]).await.unwrap().get(0);
    assert_eq!(v, 42);
    s.stop().await;
}

/// A client that stays silent, or stops in the middle of authenticating, is disconnected
/// after `client_login_timeout_secs` (the second with PostgreSQL's 57014 error).
#[tokio::test]
async fn stalled_logins_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = TestServer::start_with(|c| {
        // Long enough for a real login on a busy CI machine.
        c.pooler.client_login_timeout_secs = 3;
        c.pooler.require_tls = false;
    })
    .await;
    let (_db, conn) = s.database_with_connection("stalled").await;
    let url = url::Url::parse(&pooled_url(&conn)).unwrap();
    let addr = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let read_all = |mut tcp: tokio::net::TcpStream| async move {
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut got))
            .await
            .expect("the pooler keeps a stalled client")
            .unwrap();
        got
    };

    let silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    assert!(read_all(silent).await.is_empty());

    // A startup packet, then no answer to the SASL challenge.
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut body = Vec::new();
    for (k, v) in [("user", url.username()), ("database", &url.path()[1..])] {
        proto::put_cstr(&mut body, k);
        proto::put_cstr(&mut body, v);
    }
    body.push(0);
    tcp.write_all(&proto::startup_packet(proto::PROTOCOL_3_0, &body))
        .await
        .unwrap();
    let got = read_all(tcp).await;
    assert_eq!(got.first(), Some(&b'R'), "the SASL challenge comes first");
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.contains("57014") && text.contains("canceling authentication due to timeout"),
        "{text:?}"
    );
    // A client that does log in is not affected by the timeout later.
    let c = connect_tls(&pooled_url(&conn)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(show(&c, "SELECT 1::text").await, "1");
    s.stop().await;
}

/// Server connections older than `server_lifetime_secs` are replaced once their
/// transaction ends.
#[tokio::test]
async fn old_server_connections_are_replaced() {
    let s = TestServer::start_with(|c| {
        c.pooler.pool_size = 1;
        c.pooler.server_lifetime_secs = 3;
    })
    .await;
    let (_db, conn) = s.database_with_connection("lifetime").await;
    let c = connect_tls(&pooled_url(&conn)).await.unwrap();
    let pid = || show(&c, "SELECT pg_backend_pid()::text");
    let first = pid().await;
    assert_eq!(pid().await, first, "a young connection is reused");
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let second = pid().await;
    assert_ne!(second, first, "an old connection is replaced");
    let role = user_of(&conn);
    eventually("the old server session ends", || async {
        backends_of(&role).await == 1
    })
    .await;
    s.stop().await;
}

/// A client that starts with the TLS handshake (PostgreSQL 17's `sslnegotiation=direct`,
/// one round trip less) logs in, with channel binding; without the `postgresql` ALPN
/// protocol it is refused.
#[tokio::test]
async fn direct_tls_negotiation() {
    use tokio_postgres::config::{ChannelBinding, SslNegotiation};
    let s = TestServer::start().await;
    let (_db, conn) = s.database_with_connection("direct-tls").await;
    let connect = |alpn: bool| {
        let url = pooled_url(&conn);
        async move {
            let mut tls = pgfleet_dataplane::tls::require_client_config().unwrap();
            if alpn {
                tls.alpn_protocols = vec![b"postgresql".to_vec()];
            }
            let mut cfg: tokio_postgres::Config = url.parse().unwrap();
            cfg.ssl_negotiation(SslNegotiation::Direct)
                .channel_binding(ChannelBinding::Require)
                .connect_timeout(Duration::from_secs(5));
            let (client, c) = cfg
                .connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
                .await?;
            tokio::spawn(c);
            Ok::<_, tokio_postgres::Error>(client)
        }
    };
    let client = connect(true).await.unwrap();
    assert_eq!(show(&client, "SELECT 'direct'").await, "direct");
    let Err(refused) = connect(false).await else {
        panic!("a direct TLS client without ALPN logged in");
    };
    let db = refused.as_db_error().expect("a FATAL error from the proxy");
    assert_eq!(db.code(), &SqlState::PROTOCOL_VIOLATION);
    assert!(db.message().contains("ALPN"), "{}", db.message());
    // The usual negotiation still works beside it.
    let usual = connect_tls(&pooled_url(&conn)).await.unwrap();
    assert_eq!(show(&usual, "SELECT 'usual'").await, "usual");
    s.stop().await;
}

/// Past `max_client_connections` (all databases, logging in or logged in) a client gets
/// PostgreSQL's "too many clients" (53300) after startup; a place that frees up is taken.
#[tokio::test]
async fn the_proxy_caps_its_client_connections() {
    let s = TestServer::start_with(|c| c.pooler.max_client_connections = Some(2)).await;
    let (_db, conn) = s.database_with_connection("capped-clients").await;
    let url = pooled_url(&conn);
    let a = connect_tls(&url).await.unwrap();
    let b = connect_tls(&url).await.unwrap();
    let Err(e) = connect_tls(&url).await else {
        panic!("a third client got in");
    };
    assert_eq!(code(&e), Some(SqlState::TOO_MANY_CONNECTIONS), "{e}");
    assert_eq!(show(&a, "SELECT 'a'").await, "a");
    assert_eq!(show(&b, "SELECT 'b'").await, "b");
    drop(a);
    eventually("a freed place is taken", || {
        let url = url.clone();
        async move { connect_tls(&url).await.is_ok() }
    })
    .await;
    s.stop().await;
}

/// Clients waiting for a server connection are counted (the pool size is the knob they say
/// to turn): `pgfleet_pooler_waiting_clients` while one waits, then
/// `pgfleet_pooler_wait_seconds_total` for how long.
#[tokio::test]
async fn clients_waiting_for_a_server_connection_are_measured() {
    let s = TestServer::start_with(|c| {
        c.pooler.pool_size = 1;
        c.usage.sample_interval_secs = 1;
    })
    .await;
    let (db, conn) = s.database_with_connection("waiting").await;
    let url = pooled_url(&conn);
    let holder = connect_tls(&url).await.unwrap();
    let waiter = connect_tls(&url).await.unwrap();
    holder.batch_execute("BEGIN; SELECT 1").await.unwrap();
    let waiting = tokio::spawn(async move { show(&waiter, "SELECT 'served'").await });
    let value = |text: &str, name: &str| -> Option<f64> {
        let needle = format!(r#"{name}{{database_id="{db}"}} "#);
        text.lines()
            .find_map(|l| l.strip_prefix(&needle))
            .and_then(|v| v.trim().parse().ok())
    };
    eventually("one client is shown waiting", || async {
        value(&s.metrics().await, "pgfleet_pooler_waiting_clients") == Some(1.0)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    holder.batch_execute("COMMIT").await.unwrap();
    assert_eq!(waiting.await.unwrap(), "served");
    eventually("the wait is counted and nobody waits", || async {
        let text = s.metrics().await;
        value(&text, "pgfleet_pooler_waiting_clients") == Some(0.0)
            && value(&text, "pgfleet_pooler_wait_seconds_total").is_some_and(|v| v >= 0.3)
    })
    .await;
    s.stop().await;
}

/// With `idle_transaction_timeout_secs`, a client that goes quiet inside a transaction is
/// disconnected (25P03) and the waiting client gets the only server connection; a client
/// idle outside a transaction, or busy inside one, is left alone.
#[tokio::test]
async fn clients_idle_in_a_transaction_are_cut_off() {
    let s = TestServer::start_with(|c| {
        c.pooler.pool_size = 1;
        c.pooler.idle_transaction_timeout_secs = 1;
    })
    .await;
    let (_db, conn) = s.database_with_connection("idle-tx").await;
    let url = pooled_url(&conn);
    let idle = connect_tls(&url).await.unwrap();
    let busy = connect_tls(&url).await.unwrap();
    // Busy inside a transaction for longer than the timeout, then idle outside one.
    busy.batch_execute("BEGIN; SELECT pg_sleep(1.5); COMMIT")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(show(&busy, "SELECT 'still here'").await, "still here");

    idle.batch_execute("BEGIN; SELECT 1").await.unwrap();
    let started = std::time::Instant::now();
    let waiter = connect_tls(&url).await.unwrap();
    assert_eq!(show(&waiter, "SELECT 'served'").await, "served");
    assert!(started.elapsed() >= Duration::from_millis(900));
    let e = idle.batch_execute("COMMIT").await.unwrap_err();
    assert!(
        e.as_db_error()
            .is_some_and(|d| d.code() == &SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT)
            || idle.is_closed(),
        "{e:?}"
    );
    assert!(idle.is_closed());
    s.stop().await;
}

/// Startup parameters the pooled endpoint cannot honour are refused with a clear error.
#[tokio::test]
async fn unsupported_startup_parameters_are_refused() {
    let s = TestServer::start().await;
    let (_db, conn) = s.database_with_connection("params").await;
    let url = pooled_url(&conn);
    let with_options = format!("{url}&options=-c%20search_path%3Dother");
    let err = connect_tls(&with_options).await.err().unwrap();
    assert_eq!(code(&err), Some(SqlState::PROTOCOL_VIOLATION), "{err}");
    let message = err.as_db_error().unwrap().message().to_string();
    assert!(message.contains("options"), "{message}");
    // psql with a wrong database name is told which database the connection is for.
    let mut other = url::Url::parse(&url).unwrap();
    other.set_path("/postgres");
    let err = connect_tls(other.as_str()).await.err().unwrap();
    assert_eq!(code(&err), Some(SqlState::INVALID_CATALOG_NAME), "{err}");
    s.stop().await;
}

/// `pool_size` caps a database's server connections whichever of its connections (login
/// roles) opens them: idle ones of one role are closed to make room for another's.
#[tokio::test]
async fn pool_size_caps_a_database_across_its_connections() {
    let s = TestServer::start_with(|c| c.pooler.pool_size = 3).await;
    let (db, first) = s.database_with_connection("shared").await;
    let second = s
        .post(
            &format!("/v1/databases/{db}/connections"),
            json!({"name": "second"}),
        )
        .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    let urls = [pooled_url(&first), pooled_url(&second.body["data"])];
    let pg_database = url::Url::parse(&urls[0]).unwrap().path()[1..].to_string();

    // The pooler's own count of the database's server connections, sampled throughout.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        let pooler = s.running.as_ref().unwrap().pooler.clone().unwrap();
        let db = db.clone();
        tokio::spawn(async move {
            let mut most = 0usize;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let n = pooler
                    .stats()
                    .iter()
                    .find(|d| d.database_id == db)
                    .map_or(0, |d| d.server_connections);
                most = most.max(n);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            most
        })
    };
    let mut tasks = Vec::new();
    for i in 0..20 {
        let url = urls[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            let c = connect_patiently(&url).await.unwrap();
            for _ in 0..5 {
                c.simple_query("SELECT pg_sleep(0.01)").await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let most = watcher.await.unwrap();
    assert!(
        (1..=3).contains(&most),
        "{most} server connections for a pool size of 3"
    );
    // … and PostgreSQL agrees once closed sessions have ended.
    let role_count = || async {
        let admin = cluster().admin("postgres").await;
        let n: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1",
                &[&pg_database],
            )
            .await
            .unwrap()
            .get(0);
        n
    };
    eventually("the database has at most 3 sessions", || async {
        role_count().await <= 3
    })
    .await;
    s.stop().await;
}
