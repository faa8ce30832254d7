//! `bench/replicas`: create-database throughput and latency with 1 and with 3 `pgfleet serve`
//! replicas on one metadata store, in one run, and the metadata statements each create costs.
//!
//! The bench owns one PostgreSQL cluster (pgfleet's embedded-cluster code, default settings,
//! `shared_preload_libraries = pg_stat_statements`): database `pgfleet_meta` is the metadata
//! store every replica shares, and the cluster is also region `us-east-1`'s server, where the
//! tenant databases are created. Replicas are `pgfleet serve` processes (the binary next to
//! this one, or `PGFLEET_BIN`), each database with a connection limit of 2 (not the
//! default 20) so that the region's and the workspace's connection budgets hold every
//! database of the run.
//!
//! For each configuration (replica A alone, then A, B and C): `N` creates (API `POST
//! /v1/projects/{id}/databases`, waited until `ready`: the POST answers `ready` within
//! `provision_wait_secs`, otherwise `GET /v1/databases/{id}` is polled) at `CONCURRENCY`
//! clients, requests spread round-robin over the replicas. Reported: creates/s, p50/p99, and
//! the ratio 3 replicas / 1 replica.
//!
//! Metadata round trips: `pg_stat_statements` is reset before each configuration and the
//! `calls` of statements run in `pgfleet_meta` are summed after (with sqlx every statement,
//! `BEGIN` and `COMMIT` included, is one round trip). The replicas' background work
//! (heartbeats, the reconciler's poll for due operations, periodic jobs) runs meanwhile, so
//! the same count is taken over an idle window first and its rate subtracted: "net per create".
//! The statements with the most calls are listed per create.
//!
//! Run: `cargo build -p pgfleet -p pgfleet-bench --bins && target/debug/replicas` (or
//! `--release` and `target/release/replicas`); env `N` (default 60), `CONCURRENCY` (6),
//! `IDLE_SECS` (5).

use std::collections::VecDeque;
use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use pgfleet_bench::{ms, percentile, row};
use pgfleet_dataplane::{ClusterSettings, EmbeddedCluster};
use serde_json::{json, Value};

const TOKEN: &str = "pgfst_benchmark_token_not_secret_0000000000";
const META_DB: &str = "pgfleet_meta";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A `pgfleet serve` process; killed when dropped.
struct Replica {
    child: Child,
    base: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

fn pgfleet_bin() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("PGFLEET_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    let bin = exe.with_file_name("pgfleet");
    anyhow::ensure!(
        bin.exists(),
        "{} not found: build it with the same profile (cargo build -p pgfleet) or set PGFLEET_BIN",
        bin.display()
    );
    Ok(bin)
}

/// Starts replica `name` on the shared store; returns once it printed its address.
fn start_replica(
    bin: &Path,
    root: &Path,
    name: &str,
    meta: &str,
    region: &str,
) -> anyhow::Result<Replica> {
    let dir = root.join(name);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("create {}", dir.display()))?;
    let config = dir.join("pgfleet.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nbootstrap_token = {TOKEN:?}\n\
             database_connection_limit = 2\nrole_connection_limit = 2\n\n\
             [metadata]\nurl = {meta:?}\n\n\
             [oauth]\nkey_encryption_key = \"bench replicas key-encryption secret\"\n\n\
             [backups]\nshared_dir = true\n\n\
             [pooler]\nlisten = \"127.0.0.1:0\"\npool_size = 2\n\n\
             [accelerate]\nlisten = \"127.0.0.1:0\"\n\n\
             [regions.us-east-1]\nservers = [{region:?}]\n"
        ),
    )?;
    let mut child = Command::new(bin)
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("spawn {}", bin.display()))?;
    let out = child.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(out).lines();
    let mut replica = Replica {
        child,
        base: String::new(),
    };
    for line in lines.by_ref() {
        if let Some(addr) = line?.strip_prefix("pgfleet listening on ") {
            replica.base = addr.trim().to_string();
            break;
        }
    }
    anyhow::ensure!(
        !replica.base.is_empty(),
        "replica {name} exited before listening"
    );
    // Keep draining its stdout so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Ok(replica)
}

/// Statement calls in the metadata database since the last reset: total and per statement.
async fn meta_calls(admin: &tokio_postgres::Client) -> anyhow::Result<(i64, Vec<(i64, String)>)> {
    let rows = admin
        .query(
            "SELECT s.calls, s.query FROM pg_stat_statements s
               JOIN pg_database d ON d.oid = s.dbid
              WHERE d.datname = $1 ORDER BY s.calls DESC",
            &[&META_DB],
        )
        .await?;
    let list: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    Ok((list.iter().map(|(c, _)| c).sum(), list))
}

async fn reset(admin: &tokio_postgres::Client) -> anyhow::Result<()> {
    admin
        .batch_execute("SELECT pg_stat_statements_reset()")
        .await?;
    Ok(())
}

/// One create, until `ready`.
async fn create(
    http: &reqwest::Client,
    base: &str,
    project: &str,
    name: &str,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let r = http
        .post(format!("{base}/v1/projects/{project}/databases"))
        .bearer_auth(TOKEN)
        .json(&json!({ "name": name }))
        .send()
        .await?;
    let status = r.status();
    let v: Value = r.json().await?;
    anyhow::ensure!(status.is_success(), "create {name}: {status} {v}");
    let id = v["data"]["id"].as_str().context("database id")?.to_string();
    let mut state = v["data"]["status"].clone();
    while state != "ready" {
        anyhow::ensure!(state == "provisioning", "create {name}: {state}");
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "{name} never ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let v: Value = http
            .get(format!("{base}/v1/databases/{id}"))
            .bearer_auth(TOKEN)
            .send()
            .await?
            .json()
            .await?;
        state = v["data"]["status"].clone();
    }
    Ok(started.elapsed())
}

struct Figures {
    per_sec: f64,
    p50: Duration,
    p99: Duration,
    calls: i64,
    net_per_create: f64,
    top: Vec<(i64, String)>,
}

/// `n` creates at `concurrency` over `bases` (round-robin), with the statement count.
async fn measure(
    http: &reqwest::Client,
    admin: &tokio_postgres::Client,
    bases: &[String],
    label: &str,
    n: usize,
    concurrency: usize,
    idle: Duration,
) -> anyhow::Result<Figures> {
    // Background rate with these replicas up and nothing asked of them.
    reset(admin).await?;
    tokio::time::sleep(idle).await;
    let background_per_sec = meta_calls(admin).await?.0 as f64 / idle.as_secs_f64();

    let project: Value = http
        .post(format!("{}/v1/projects", bases[0]))
        .bearer_auth(TOKEN)
        .json(&json!({"name": format!("bench-{label}"), "createDatabase": false}))
        .send()
        .await?
        .json()
        .await?;
    let project = project["data"]["id"]
        .as_str()
        .with_context(|| format!("project: {project}"))?
        .to_string();

    reset(admin).await?;
    let queue = Arc::new(Mutex::new((0..n).collect::<VecDeque<usize>>()));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (http, queue, bases, project) =
            (http.clone(), queue.clone(), bases.to_vec(), project.clone());
        let label = label.to_string();
        tasks.spawn(async move {
            let mut lat = Vec::new();
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                let Some(i) = next else { break };
                let base = &bases[i % bases.len()];
                lat.push(create(&http, base, &project, &format!("{label}-{i}")).await?);
            }
            anyhow::Ok(lat)
        });
    }
    let mut lat = Vec::with_capacity(n);
    while let Some(done) = tasks.join_next().await {
        lat.extend(done??);
    }
    let elapsed = started.elapsed();
    let (calls, top) = meta_calls(admin).await?;
    lat.sort();
    let background = background_per_sec * elapsed.as_secs_f64();
    Ok(Figures {
        per_sec: n as f64 / elapsed.as_secs_f64(),
        p50: percentile(&lat, 50.0),
        p99: percentile(&lat, 99.0),
        calls,
        net_per_create: (calls as f64 - background) / n as f64,
        top,
    })
}

fn print(label: &str, f: &Figures, n: usize) {
    println!("\n{label}");
    row("   creates/s", format!("{:.2}", f.per_sec));
    row(
        "   latency to ready p50 / p99",
        format!("{:.1} ms / {:.1} ms", ms(f.p50), ms(f.p99)),
    );
    row(
        "   metadata statements (round trips) per create, all",
        format!("{:.1} ({} in all)", f.calls as f64 / n as f64, f.calls),
    );
    row(
        "   … net of the idle background rate",
        format!("{:.1}", f.net_per_create),
    );
    println!("   top statements, calls per create:");
    for (calls, query) in f.top.iter().take(12) {
        let q: String = query.split_whitespace().collect::<Vec<_>>().join(" ");
        let q: String = q.chars().take(90).collect();
        println!("     {:>6.2}  {q}", *calls as f64 / n as f64);
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = env_or("N", 60) as usize;
    let concurrency = env_or("CONCURRENCY", 6) as usize;
    let idle = Duration::from_secs(env_or("IDLE_SECS", 5));
    let bin = pgfleet_bin()?;

    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::Builder::new()
        .prefix("pgfleet-bench-replicas-")
        .tempdir()?;
    // The postgres OS user (when run as root) must reach the cluster below it.
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755))?;
    let settings = ClusterSettings {
        // 2 slots per database (see the replicas' configuration) × ~130 databases, and room.
        max_connections: 1000,
        extra_settings: vec![
            (
                "shared_preload_libraries".to_string(),
                "'pg_stat_statements'".to_string(),
            ),
            ("pg_stat_statements.max".to_string(), "5000".to_string()),
        ],
        ..ClusterSettings::new(root.path().join("cluster"))
    };
    let cluster = tokio::task::spawn_blocking(move || EmbeddedCluster::prepare(settings))
        .await??
        .start()
        .await?;
    let (socket, port) = (cluster.cluster().socket_dir(), cluster.cluster().port());
    let (admin, conn) = cluster
        .cluster()
        .admin_config("postgres")
        .connect(tokio_postgres::NoTls)
        .await?;
    tokio::spawn(conn);
    // Two statements: CREATE DATABASE cannot run in the implicit transaction of a batch.
    admin
        .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .await?;
    admin
        .batch_execute(&format!("CREATE DATABASE {META_DB}"))
        .await?;
    let url = |db: &str| {
        format!(
            "postgres://postgres@localhost/{db}?host={}&port={port}",
            socket.display()
        )
    };
    let (meta, region) = (url(META_DB), url("postgres"));

    println!(
        "pgfleet bench/replicas — profile: {}, N = {n} creates per configuration, concurrency {concurrency}",
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let mut replicas = vec![start_replica(&bin, root.path(), "a", &meta, &region)?];
    let bases = |r: &[Replica]| r.iter().map(|r| r.base.clone()).collect::<Vec<_>>();
    // Warm-up (the first CREATE DATABASE of a cluster is slower; pools fill).
    measure(
        &http,
        &admin,
        &bases(&replicas),
        "warm",
        3,
        1,
        Duration::from_millis(100),
    )
    .await?;
    let one = measure(
        &http,
        &admin,
        &bases(&replicas),
        "one",
        n,
        concurrency,
        idle,
    )
    .await?;
    for name in ["b", "c"] {
        replicas.push(start_replica(&bin, root.path(), name, &meta, &region)?);
    }
    let three = measure(
        &http,
        &admin,
        &bases(&replicas),
        "three",
        n,
        concurrency,
        idle,
    )
    .await?;

    print("1 replica", &one, n);
    print("3 replicas (requests round-robin)", &three, n);
    println!("\nratio 3 replicas / 1 replica");
    row(
        "   creates/s",
        format!("{:.2}×", three.per_sec / one.per_sec),
    );
    row("   p50", format!("{:.2}×", ms(three.p50) / ms(one.p50)));
    row("   p99", format!("{:.2}×", ms(three.p99) / ms(one.p99)));
    row(
        "   metadata statements per create (net)",
        format!("{:.2}×", three.net_per_create / one.net_per_create),
    );

    drop(replicas);
    cluster.stop().await;
    Ok(())
}
