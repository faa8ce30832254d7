//! `bench/provision`: what a user of pgfleet waits for, against the same work done directly.
//!
//! 1. Provisioning: N × (API create database → first `SELECT 1` through the returned string)
//!    against N × (the same SQL run by hand as superuser → first `SELECT 1`), interleaved in
//!    one run on one embedded cluster. Goal: p50 ≤ 1.5×, p99 ≤ 2× the raw SQL.
//! 2. `GET /v1/databases/{id}` at 64 concurrent clients against an axum hello-world in the
//!    same process. Goal: ≥ 0.3× its requests/s, p99 ≤ 10 ms.
//! 3. List page latency (`GET /v1/databases?projectId=…&limit=100`) with 10,000 databases in a
//!    project against 100 (metadata rows; the list does not touch the tenant databases).
//!
//! Run: `cargo run --release -p pgfleet-bench --bin provision` (env `N`, default 100;
//! `SECONDS_PER_LOAD`, default 5).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use pgfleet_bench::{cluster_port, ms, percentile, post_json, row, select_one, tls};
use serde_json::{json, Value};

const TOKEN: &str = "pgfst_benchmark_token_not_secret_0000000000";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let load_secs: u64 = std::env::var("SECONDS_PER_LOAD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let (dir, running) = pgfleet_bench::start_server(TOKEN).await?;
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(128)
        .build()?;
    let tls = tls();
    println!(
        "pgfleet bench/provision — profile: {}, N = {n}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );

    // Superuser session on the embedded cluster, over its Unix socket (as pgfleet does).
    let port = cluster_port(dir.path())?;
    let mut admin_cfg = tokio_postgres::Config::new();
    admin_cfg
        .host_path(dir.path().join("run"))
        .port(port)
        .user("postgres")
        .dbname("postgres");
    let (admin, conn) = admin_cfg.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(conn);

    let project: Value = post_json(
        &http,
        &format!("{base}/v1/projects"),
        TOKEN,
        &json!({"name": "bench", "createDatabase": false}),
    )
    .await?;
    let project_id = project["data"]["id"]
        .as_str()
        .with_context(|| format!("project: {project}"))?
        .to_string();

    // Warm-up (first CREATE DATABASE of a cluster is slower; pools fill).
    for i in 0..3 {
        api_create(&http, &base, &project_id, &format!("warm{i}"), &tls).await?;
        raw_create(&admin, port, &format!("warm{i}"), &tls).await?;
    }

    let mut api = Vec::with_capacity(n);
    let mut raw = Vec::with_capacity(n);
    let mut db_ids = Vec::new();
    for i in 0..n {
        let t = Instant::now();
        db_ids.push(api_create(&http, &base, &project_id, &format!("b{i}"), &tls).await?);
        api.push(t.elapsed());
        let t = Instant::now();
        raw_create(&admin, port, &format!("r{i}"), &tls).await?;
        raw.push(t.elapsed());
    }
    api.sort();
    raw.sort();
    println!("\n1. create database → first SELECT 1 (TLS + SCRAM), {n} each, interleaved");
    let (a50, a99, r50, r99) = (
        percentile(&api, 50.0),
        percentile(&api, 99.0),
        percentile(&raw, 50.0),
        percentile(&raw, 99.0),
    );
    row(
        "   raw SQL (superuser) p50 / p99",
        format!("{:.1} ms / {:.1} ms", ms(r50), ms(r99)),
    );
    row(
        "   pgfleet API         p50 / p99",
        format!("{:.1} ms / {:.1} ms", ms(a50), ms(a99)),
    );
    row(
        "   ratio p50 (goal ≤ 1.5×)",
        format!("{:.2}×", ms(a50) / ms(r50)),
    );
    row(
        "   ratio p99 (goal ≤ 2×)",
        format!("{:.2}×", ms(a99) / ms(r99)),
    );

    // 2. GET /v1/databases/{id} vs hello-world.
    let hello = axum::Router::new().route("/", axum::routing::get(|| async { "Hello, World!" }));
    let hello_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hello_url = format!("http://{}/", hello_listener.local_addr()?);
    tokio::spawn(async move { axum::serve(hello_listener, hello).await });
    let get_url = format!("{base}/v1/databases/{}", db_ids[0]);
    let dur = Duration::from_secs(load_secs);
    let (h_rps, h_p99) = load(&http, &hello_url, None, 64, dur).await;
    let (g_rps, g_p99) = load(&http, &get_url, Some(TOKEN), 64, dur).await;
    println!("\n2. 64 concurrent clients, {load_secs} s each");
    row(
        "   axum hello-world                 req/s / p99",
        format!("{h_rps:.0} / {:.2} ms", ms(h_p99)),
    );
    row(
        "   GET /v1/databases/{id}           req/s / p99",
        format!("{g_rps:.0} / {:.2} ms", ms(g_p99)),
    );
    row(
        "   ratio req/s (goal ≥ 0.3×); p99 goal ≤ 10 ms",
        format!("{:.2}×; {:.2} ms", g_rps / h_rps, ms(g_p99)),
    );

    // 3. List latency, 100 vs 10,000 databases in a project (metadata rows).
    let meta_cfg = {
        let mut c = admin_cfg.clone();
        c.dbname("pgfleet");
        c
    };
    let (meta, conn) = meta_cfg.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let small = fake_project(&http, &base, &meta, 100).await?;
    let large = fake_project(&http, &base, &meta, 10_000).await?;
    println!("\n3. GET /v1/databases?projectId=…&limit=100, 200 requests each (p50 / p99)");
    let mut results = Vec::new();
    for (label, pid) in [("100 databases", &small), ("10,000 databases", &large)] {
        let first = page_latency(&http, &base, pid, None, 200).await?;
        // A deep page: follow cursors to the last one.
        let mut cursor: Option<String> = None;
        loop {
            let v: Value = get_json(&http, &page_url(&base, pid, cursor.as_deref())).await?;
            match v["pagination"]["nextCursor"].as_str() {
                Some(c) if v["pagination"]["hasMore"] == true => cursor = Some(c.to_string()),
                _ => break,
            }
        }
        let deep = page_latency(&http, &base, pid, cursor.as_deref(), 200).await?;
        row(
            &format!("   {label}: first page"),
            format!("{:.2} ms / {:.2} ms", ms(first.0), ms(first.1)),
        );
        row(
            &format!("   {label}: last page"),
            format!("{:.2} ms / {:.2} ms", ms(deep.0), ms(deep.1)),
        );
        results.push((first, deep));
    }
    row(
        "   ratio 10,000 / 100, first page p50",
        format!("{:.2}×", ms(results[1].0 .0) / ms(results[0].0 .0)),
    );
    row(
        "   ratio 10,000 / 100, last page p50",
        format!("{:.2}×", ms(results[1].1 .0) / ms(results[0].1 .0)),
    );

    running.stop().await?;
    Ok(())
}

async fn api_create(
    http: &reqwest::Client,
    base: &str,
    project: &str,
    name: &str,
    tls: &tokio_postgres_rustls::MakeRustlsConnect,
) -> anyhow::Result<String> {
    let r: Value = post_json(
        http,
        &format!("{base}/v1/projects/{project}/databases"),
        TOKEN,
        &json!({ "name": name }),
    )
    .await?;
    let cs = r["data"]["connectionString"]
        .as_str()
        .with_context(|| format!("no connection string: {r}"))?;
    anyhow::ensure!(r["data"]["status"] == "ready", "database not ready: {r}");
    select_one(cs, tls).await?;
    Ok(r["data"]["id"].as_str().unwrap_or_default().to_string())
}

/// The same work by hand: owner role, database, revoke, login role with a SCRAM verifier.
async fn raw_create(
    admin: &tokio_postgres::Client,
    port: u16,
    name: &str,
    tls: &tokio_postgres_rustls::MakeRustlsConnect,
) -> anyhow::Result<()> {
    let password = format!("pw{name}{}", "x".repeat(40));
    let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
    admin
        .batch_execute(&format!("CREATE ROLE raw_{name}_owner NOLOGIN"))
        .await?;
    admin
        .batch_execute(&format!(
            "CREATE DATABASE raw_{name} OWNER raw_{name}_owner"
        ))
        .await?;
    admin
        .batch_execute(&format!(
            "REVOKE ALL ON DATABASE raw_{name} FROM PUBLIC; GRANT CONNECT, TEMPORARY ON DATABASE raw_{name} TO raw_{name}_owner; \
             CREATE ROLE raw_{name} LOGIN PASSWORD '{verifier}' IN ROLE raw_{name}_owner"
        ))
        .await?;
    select_one(
        &format!("postgresql://raw_{name}:{password}@localhost:{port}/raw_{name}?sslmode=require"),
        tls,
    )
    .await
}

/// Requests/s and p99 of `concurrency` clients hammering `url` for `dur`.
async fn load(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    concurrency: usize,
    dur: Duration,
) -> (f64, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, url, token, stop, count) = (
            http.clone(),
            url.to_string(),
            token.map(String::from),
            stop.clone(),
            count.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let mut req = http.get(&url);
                if let Some(t) = &token {
                    req = req.bearer_auth(t);
                }
                if let Ok(r) = req.send().await {
                    if r.status().is_success() && r.bytes().await.is_ok() {
                        lat.push(t.elapsed());
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            lat
        }));
    }
    let start = Instant::now();
    tokio::time::sleep(dur).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        if let Ok(l) = t.await {
            all.extend(l);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort();
    (
        count.load(Ordering::Relaxed) as f64 / secs,
        percentile(&all, 99.0),
    )
}

/// A project holding `n` database rows (each with one connection row), written straight to
/// the metadata store: the list reads metadata only.
async fn fake_project(
    http: &reqwest::Client,
    base: &str,
    meta: &tokio_postgres::Client,
    n: i64,
) -> anyhow::Result<String> {
    let p: Value = post_json(
        http,
        &format!("{base}/v1/projects"),
        TOKEN,
        &json!({"name": format!("list-{n}"), "createDatabase": false}),
    )
    .await?;
    let pid = p["data"]["id"].as_str().context("project id")?.to_string();
    meta.execute(
        "INSERT INTO databases (id, project_id, name, region_id, server_id, status, is_default, pg_database, owner_role,
                                connection_limit, source, default_connection_id, created_at)
         SELECT 'db_fake' || $2 || '_' || g, $1, 'fake ' || g, 'us-east-1', (SELECT id FROM pg_servers LIMIT 1), 'ready',
                false, 'fake_' || $2 || '_' || g, 'fake_' || $2 || '_' || g || '_owner', 100, '{\"type\":\"empty\"}',
                'con_fake' || $2 || '_' || g, now()
           FROM generate_series(1, $3::bigint) g",
        &[&pid, &n.to_string(), &n],
    )
    .await?;
    meta.execute(
        "INSERT INTO connections (id, database_id, name, kind, role_name, scram_verifier, status, created_at)
         SELECT 'con_fake' || $1 || '_' || g, 'db_fake' || $1 || '_' || g, 'default', 'postgres',
                'u_fake_' || $1 || '_' || g, 'x', 'active', now()
           FROM generate_series(1, $2::bigint) g",
        &[&n.to_string(), &n],
    )
    .await?;
    meta.batch_execute("ANALYZE databases; ANALYZE connections;")
        .await?;
    Ok(pid)
}

fn page_url(base: &str, pid: &str, cursor: Option<&str>) -> String {
    match cursor {
        Some(c) => format!("{base}/v1/databases?projectId={pid}&limit=100&cursor={c}"),
        None => format!("{base}/v1/databases?projectId={pid}&limit=100"),
    }
}

async fn get_json(http: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let r = http.get(url).bearer_auth(TOKEN).send().await?;
    anyhow::ensure!(r.status().is_success(), "GET {url}: {}", r.status());
    Ok(r.json().await?)
}

async fn page_latency(
    http: &reqwest::Client,
    base: &str,
    pid: &str,
    cursor: Option<&str>,
    times: usize,
) -> anyhow::Result<(Duration, Duration)> {
    let url = page_url(base, pid, cursor);
    let mut lat = Vec::with_capacity(times);
    for _ in 0..times {
        let t = Instant::now();
        let v = get_json(http, &url).await?;
        anyhow::ensure!(
            v["data"].as_array().is_some_and(|a| !a.is_empty()),
            "empty page"
        );
        lat.push(t.elapsed());
    }
    lat.sort();
    Ok((percentile(&lat, 50.0), percentile(&lat, 99.0)))
}
