//! Connections cannot exhaust the server's file descriptors: a real `pgfleet serve` held to
//! a 1024-descriptor limit, with 2,000 idle sockets against its API and 2,000 against its
//! pooler, still answers `/readyz`, a signed-in call and a new pooled login, and closes the
//! idle sockets itself (header-read and startup timeouts), as it does an idle keep-alive
//! connection. And the API's accept loop on its own: the connection cap answers `503` at
//! once, a silent connection is closed, a body that stops coming fails, handlers see the
//! peer address, shutdown lets a request in flight finish; over TLS (the `prisma+postgres://`
//! endpoint's listener) sockets past the cap are closed at once and a handshake that never
//! comes is cut off at the header-read timeout. And the pooler's: a silent client is cut off at the startup
//! timeout (well before the login timeout), sockets past the cap and its refusal places
//! are closed at once, and server connections are capped for the whole proxy.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{cluster, connect_tls, pooled_url, TestServer};
use crate::lifecycle::{assert_no_postgres, data_dir, Server};

/// Idle sockets opened against each listener.
const IDLE: usize = 2000;
/// The server's open-files limit (soft and hard).
const SERVER_LIMIT: u64 = 1024;

/// This test process needs room for 4,000 sockets besides its own descriptors.
fn raise_own_limit() {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    assert!(
        hard >= 2 * IDLE as u64 + 512,
        "the test needs an open-files hard limit of at least {} (it is {hard})",
        2 * IDLE + 512
    );
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    }
}

/// `pgfleet serve` started with the open-files limits `soft` and `hard`.
#[expect(unsafe_code, reason = "pre_exec runs between fork and exec")]
fn limited_server(dir: &std::path::Path, env: &[(&str, &str)], soft: u64, hard: u64) -> Server {
    Server::start_configured(dir, env, |cmd| {
        // SAFETY: the closure only calls setrlimit(2), which is async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                setrlimit(Resource::RLIMIT_NOFILE, soft, hard).map_err(std::io::Error::from)
            });
        }
    })
}

/// The soft open-files limit of a running process, from `/proc/<pid>/limits`.
fn soft_limit_of(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}

/// Opens `n` TCP connections to `addr` (many at once), each within 30 s.
async fn open_idle(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    futures::stream::iter(0..n)
        .map(|_| async move {
            tokio::time::timeout(Duration::from_secs(30), TcpStream::connect(addr))
                .await
                .expect("connect timed out")
                .expect("connect failed")
        })
        .buffer_unordered(100)
        .collect()
        .await
}

/// Waits (up to `limit`) until the server closes each socket: end of file or a reset, after
/// whatever it sent. Returns what each one received.
async fn closed_by_server(sockets: Vec<TcpStream>, limit: Duration) -> Vec<Vec<u8>> {
    let deadline = tokio::time::Instant::now() + limit;
    futures::stream::iter(sockets)
        .map(|mut s| async move {
            let mut got = Vec::new();
            match tokio::time::timeout_at(deadline, s.read_to_end(&mut got)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
                Err(_) => panic!("the server kept an idle socket open"),
            }
            got
        })
        .buffer_unordered(500)
        .collect()
        .await
}

/// Retries `attempt` (each with a fresh connection) until it succeeds, for up to 30 s (the
/// server's timeouts are 5 s; before these limits, HTTP had none and the pooler 60 s).
async fn eventually_ok<F, Fut, T>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match attempt().await {
            Ok(v) => return v,
            Err(e) => assert!(Instant::now() < deadline, "{what}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A client that opens a new connection for every request.
fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_cannot_exhaust_the_servers_descriptors() {
    raise_own_limit();
    let dir = data_dir();
    let s = limited_server(
        dir.path(),
        &[("PGFLEET_HTTP__KEEP_ALIVE_TIMEOUT_SECS", "3")],
        SERVER_LIMIT,
        SERVER_LIMIT,
    );
    let token = s.token();
    let api: SocketAddr = s.base.strip_prefix("http://").unwrap().parse().unwrap();
    let pooler: SocketAddr = s.pooler_addr().parse().unwrap();
    // A database and a connection to log in with later (made before the flood).
    let http = fresh_client();
    let c = s
        .database_with_connection(&http, &token, "limits", "pooled")
        .await;
    let pooled = pooled_url(&c["data"]);

    // 2,000 silent sockets against each listener, kept open by this side.
    let idle_api = open_idle(api, IDLE).await;
    let idle_pooler = open_idle(pooler, IDLE).await;
    assert_eq!(idle_api.len() + idle_pooler.len(), 2 * IDLE);

    // The server still serves new clients (once silent ones have been cut off).
    eventually_ok("/readyz", || async {
        let r = fresh_client()
            .get(format!("{}/readyz", s.base))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        (r.status() == 200)
            .then_some(())
            .ok_or(format!("status {}", r.status()))
    })
    .await;
    let me: Value = eventually_ok("a signed-in call", || async {
        let r = fresh_client()
            .get(format!("{}/v1/me", s.base))
            .bearer_auth(&token)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if r.status() != 200 {
            return Err(format!("status {}", r.status()));
        }
        r.json::<Value>().await.map_err(|e| e.to_string())
    })
    .await;
    assert!(me["data"]["workspace"]["id"].is_string(), "{me}");
    let answer = eventually_ok("a pooled login", || async {
        let client = connect_tls(&pooled).await.map_err(|e| e.to_string())?;
        let row = client
            .query_one("SELECT 'pooled'::text", &[])
            .await
            .map_err(|e| e.to_string())?;
        Ok(row.get::<_, String>(0))
    })
    .await;
    assert_eq!(answer, "pooled");

    // Every idle socket was closed by the server (refused at the cap at once, or after the
    // header-read / startup timeout); none is left holding a descriptor there.
    closed_by_server(idle_api, Duration::from_secs(60)).await;
    closed_by_server(idle_pooler, Duration::from_secs(60)).await;

    // An idle keep-alive connection is closed too (after keep_alive_timeout_secs = 3).
    let mut tcp = TcpStream::connect(api).await.unwrap();
    tcp.write_all(b"GET /readyz HTTP/1.1\r\nhost: pgfleet\r\n\r\n")
        .await
        .unwrap();
    let got = closed_by_server(vec![tcp], Duration::from_secs(30)).await;
    let text = String::from_utf8_lossy(&got[0]);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(!text.contains("connection: close"), "kept alive: {text}");

    s.terminate();
    assert_no_postgres(dir.path());
}

/// `pgfleet serve` raises its soft open-files limit to the hard one (and its PostgreSQL
/// inherits it).
#[tokio::test]
async fn the_server_raises_its_open_files_limit() {
    let dir = data_dir();
    let s = limited_server(dir.path(), &[], 1024, 4096);
    assert_eq!(soft_limit_of(s.child.id()), 4096);
    let postmaster = crate::lifecycle::postmaster_pid(dir.path()).unwrap();
    assert_eq!(soft_limit_of(u32::try_from(postmaster).unwrap()), 4096);
    s.terminate();
    assert_no_postgres(dir.path());
}

/// The accept loop on a router of its own: peer address, cap, silent connections, shutdown.
#[tokio::test]
async fn the_api_accept_loop_caps_and_times_out_connections() {
    use axum::extract::ConnectInfo;
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        )
        .route(
            "/echo",
            axum::routing::post(|body: String| async move { body }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                "finished"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = pgfleet::http_server::Limits {
        max_connections: 2,
        header_read_timeout: Duration::from_secs(1),
        keep_alive_timeout: Duration::from_secs(30),
        body_read_timeout: Duration::from_secs(1),
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(pgfleet::http_server::serve(
        listener,
        app,
        limits,
        async move {
            let _ = stop_rx.await;
        },
    ));

    // Handlers see the peer's address.
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let local = tcp.local_addr().unwrap();
    tcp.write_all(b"GET /peer HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let got = closed_by_server(vec![tcp], Duration::from_secs(10)).await;
    let text = String::from_utf8_lossy(&got[0]);
    assert!(text.ends_with(&local.to_string()), "{text}");

    // Two silent connections take both places: a third is answered 503 at once.
    let silent = open_idle(addr, 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = fresh_client()
        .get(format!("http://{addr}/peer"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable");
    // The silent ones are closed after the header-read timeout, and places free up.
    closed_by_server(silent, Duration::from_secs(20)).await;
    let r = fresh_client()
        .get(format!("http://{addr}/peer"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // A body that stops coming: the handler reading it gets an error (400), and the
    // connection is closed.
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: 100\r\n\r\n0123456789")
        .await
        .unwrap();
    let got = closed_by_server(vec![tcp], Duration::from_secs(20)).await;
    let text = String::from_utf8_lossy(&got[0]);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    // A body that comes in time is read.
    let r = fresh_client()
        .post(format!("http://{addr}/echo"))
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "hello");

    // A request in flight when shutdown starts still gets its answer.
    let slow = tokio::spawn(fresh_client().get(format!("http://{addr}/slow")).send());
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop_tx.send(()).unwrap();
    let r = slow.await.unwrap().unwrap();
    assert_eq!(r.text().await.unwrap(), "finished");
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the accept loop returns after shutdown")
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}

/// The same accept loop over TLS (the `prisma+postgres://` endpoint's): past the cap a new
/// socket is closed at once (no plain-HTTP answer before a handshake), a socket that never
/// completes a handshake is closed at the header-read timeout, and HTTPS is served.
#[tokio::test]
async fn the_accept_loop_over_tls_caps_and_times_out_handshakes() {
    let app = axum::Router::new().route("/hi", axum::routing::get(|| async { "hi" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let mut tls = pgfleet_dataplane::tls::server_config(&cert.pem(), &key.serialize_pem()).unwrap();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let options = pgfleet::http_server::Listener {
        limits: pgfleet::http_server::Limits {
            max_connections: 1,
            header_read_timeout: Duration::from_secs(1),
            keep_alive_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(1),
        },
        tls: Some(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(tls))),
        name: "test",
        cap_setting: "test.max_connections",
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(pgfleet::http_server::serve_with(
        listener,
        app,
        options,
        async move {
            let _ = stop_rx.await;
        },
    ));
    let silent = open_idle(addr, 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let refused = open_idle(addr, 1).await;
    let got = closed_by_server(refused, Duration::from_secs(5)).await;
    assert!(got[0].is_empty(), "closed unanswered");
    assert!(started.elapsed() < Duration::from_millis(900), "at once");
    closed_by_server(silent, Duration::from_secs(10)).await;
    let https = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let r = https
        .get(format!("https://localhost:{}/hi", addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "hi");
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the accept loop returns after shutdown")
        .unwrap();
}

/// A silent client is disconnected at `startup_timeout_secs`, not at the much longer
/// `client_login_timeout_secs`; past `max_client_connections` and the places kept to say
/// "too many clients", a new socket is closed at once.
#[tokio::test]
async fn the_pooler_cuts_off_silent_clients_and_closes_the_excess() {
    let s = TestServer::start_with(|c| {
        c.pooler.startup_timeout_secs = 1;
        c.pooler.client_login_timeout_secs = 600;
    })
    .await;
    let pooler = s.running.as_ref().unwrap().pooler_addr.unwrap();
    let silent = open_idle(pooler, 3).await;
    closed_by_server(silent, Duration::from_secs(30)).await;
    s.stop().await;

    let s = TestServer::start_with(|c| {
        c.pooler.max_client_connections = Some(1);
        c.pooler.startup_timeout_secs = 120;
    })
    .await;
    let pooler = s.running.as_ref().unwrap().pooler_addr.unwrap();
    let held = open_idle(pooler, 1 + pgfleet_pooler::REFUSAL_SLOTS).await;
    // Let the proxy accept them all before the next ones come.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let excess = open_idle(pooler, 3).await;
    closed_by_server(excess, Duration::from_secs(30)).await;
    // The ones within the cap and the refusal places are still open (their startup
    // timeout is two minutes away).
    for mut h in held {
        let mut byte = [0u8; 1];
        assert!(
            tokio::time::timeout(Duration::from_millis(50), h.read(&mut byte))
                .await
                .is_err(),
            "a socket within the cap was closed early"
        );
    }
    s.stop().await;
}

/// Server connections are capped for the whole proxy (at `max_client_connections`): at
/// the cap, an idle one of another database is closed to make room.
#[tokio::test]
async fn the_pooler_caps_its_server_connections() {
    let s = TestServer::start_with(|c| c.pooler.max_client_connections = Some(2)).await;
    let mut roles = Vec::new();
    for name in ["cap-a", "cap-b", "cap-c"] {
        let url = pooled_url(&s.database_with_connection(name).await.1);
        roles.push(url::Url::parse(&url).unwrap().username().to_string());
        // One client at a time: it runs a query, leaves, and its server connection stays
        // idle in its pool.
        let client = connect_tls(&url).await.unwrap();
        let got: String = client
            .query_one("SELECT 'ok'::text", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(got, "ok");
    }
    let admin = cluster().admin("postgres").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = ANY($1)",
                &[&roles],
            )
            .await
            .unwrap()
            .get(0);
        if n <= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{n} server connections for a cap of 2"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.stop().await;
}
