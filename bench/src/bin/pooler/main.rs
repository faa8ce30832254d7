//! `bench/pooler`: `pgbench -S` through pgfleet's pooled endpoint and through PgBouncer
//! (transaction mode, the same pool size, the same TLS certificate, the same Unix socket to
//! the same database) in the same run, at 20 clients, 500 clients, and 20 clients with a new
//! connection per transaction (`-C`). Goal: ≥ 1.2× PgBouncer's tps and a p99 no worse.
//!
//! Besides the ratios it prints where the CPU goes per transaction (pgbench, PostgreSQL,
//! the proxy) and the machine's idle share: on a small machine shared by all three, the
//! proxy is a minority of the work, which bounds what any proxy can gain (the "ceiling" row).
//! The proxy's own CPU is split into user and kernel time, with its context switches per
//! transaction (see [`usage`]), and the goal of 0.8× PgBouncer's proxy CPU is restated as
//! the user time it leaves once the kernel's share is paid.
//!
//! Run: `scripts/bench-pooler` (installs PgBouncer if missing), or
//! `cargo run --release -p pgfleet-bench --bin pooler`. Env: `SCALE` (default 10), `SECONDS`
//! per run (default 10), `ROUNDS` (default 3; sides alternate who goes first; medians are
//! reported), `POOL_SIZE` (default 10), `CASES` (default `20,500,C`), `BASELINE_PGFLEET`
//! (another `pgfleet` binary, an older build say: it is run as `pgfleet proxy` beside this
//! one, on the same data directory, so the report also has a "pgfleet (before)" side measured
//! in the same run against the same database), `SERVER_RUNTIME_SIDE=1` (adds "pgfleet
//! (server runtime)": the same pooler with its sessions on the server's multi-threaded
//! runtime, `session_threads = 0`, as before they had threads of their own),
//! `EXTRA_SESSION_THREADS=2,4` (adds one such side per value of `session_threads`; a value
//! `2@0/100` also sets `spread_from` to 0 and `batch_replies_from` to 100, see
//! [`sides::Extra`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use pgfleet_bench::{cluster_port, pgbench_init, post_json, row};

mod sides;
mod usage;

use serde_json::{json, Value};
use sides::{report, start_baseline, start_on_server_runtime, Bouncer, Side};

const TOKEN: &str = "pgfst_benchmark_token_not_secret_0000000000";

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn find_pgbouncer() -> anyhow::Result<PathBuf> {
    for p in ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"] {
        if Path::new(p).is_file() {
            return Ok(PathBuf::from(p));
        }
    }
    anyhow::bail!(
        "pgbouncer is not installed: run scripts/bench-pooler (it installs it), or apt-get install pgbouncer"
    )
}

/// Per-field medians of several runs.
fn median(runs: &[RunResult]) -> RunResult {
    let med = |f: fn(&RunResult) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    RunResult {
        tps: med(|r| r.tps),
        p99_ms: med(|r| r.p99_ms),
        cpu_per_1k_ms: med(|r| r.cpu_per_1k_ms),
        proxy_user_us: med(|r| r.proxy_user_us),
        proxy_switches: med(|r| r.proxy_switches),
        client_us: med(|r| r.client_us),
        server_us: med(|r| r.server_us),
        idle_pct: med(|r| r.idle_pct),
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts PgBouncer in front of `pg_database` on the embedded cluster's socket.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site, all settings of one file"
)]
fn start_pgbouncer(
    work: &Path,
    socket_dir: &Path,
    pg_port: u16,
    pg_database: &str,
    user: &str,
    verifier: &str,
    pool_size: u64,
    data_dir: &Path,
) -> anyhow::Result<(Bouncer, u16)> {
    let bin = find_pgbouncer()?;
    let run_as = pgfleet_dataplane::osuser::RunAs::detect()?;
    let port = free_port()?;
    let dir = work.join("pgbouncer");
    std::fs::create_dir_all(&dir)?;
    std::fs::copy(data_dir.join("pooler-tls/cert.pem"), dir.join("cert.pem"))?;
    std::fs::copy(data_dir.join("pooler-tls/key.pem"), dir.join("key.pem"))?;
    std::fs::write(
        dir.join("userlist.txt"),
        format!("\"{user}\" \"{verifier}\"\n"),
    )?;
    let ini = format!(
        "[databases]\n{pg_database} = host={} port={pg_port} dbname={pg_database}\n\n\
         [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
         auth_type = scram-sha-256\nauth_file = {d}/userlist.txt\npool_mode = transaction\n\
         default_pool_size = {pool_size}\nmax_client_conn = 2000\n\
         client_tls_sslmode = require\nclient_tls_cert_file = {d}/cert.pem\n\
         client_tls_key_file = {d}/key.pem\nlogfile = {d}/pgbouncer.log\n\
         pidfile = {d}/pgbouncer.pid\nignore_startup_parameters = extra_float_digits\n\
         log_connections = 0\nlog_disconnections = 0\nlog_stats = 0\n",
        socket_dir.display(),
        d = dir.display()
    );
    std::fs::write(dir.join("pgbouncer.ini"), ini)?;
    for f in ["", "cert.pem", "key.pem", "userlist.txt", "pgbouncer.ini"] {
        run_as.own(&dir.join(f))?;
    }
    let mut cmd = Command::new(bin);
    cmd.arg(dir.join("pgbouncer.ini"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    run_as.apply(&mut cmd);
    let child = cmd.spawn().context("starting pgbouncer")?;
    let bouncer = Bouncer { child };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok((bouncer, port));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    anyhow::bail!(
        "pgbouncer did not listen; see {}",
        dir.join("pgbouncer.log").display()
    )
}

pub(crate) struct RunResult {
    pub(crate) tps: f64,
    pub(crate) p99_ms: f64,
    /// CPU time of the proxy process per 1000 transactions, in ms (= µs per transaction).
    pub(crate) cpu_per_1k_ms: f64,
    /// The proxy's user CPU time per transaction, in µs (the rest of `cpu_per_1k_ms` is
    /// kernel time).
    pub(crate) proxy_user_us: f64,
    /// The proxy's context switches per transaction.
    pub(crate) proxy_switches: f64,
    /// CPU time of pgbench per transaction, in µs.
    pub(crate) client_us: f64,
    /// CPU time of the PostgreSQL processes per transaction, in µs.
    pub(crate) server_us: f64,
    /// Share of the machine's CPU time left idle during the run, in %.
    pub(crate) idle_pct: f64,
}

/// One `pgbench -S` run; tps from its report, p99 from its per-transaction log.
fn pgbench(
    pgbench: &Path,
    url: &str,
    clients: u32,
    reconnect: bool,
    seconds: u64,
    log_dir: &Path,
    proxy_pid: u32,
) -> anyhow::Result<RunResult> {
    let cpu_before = usage::process(proxy_pid);
    let switches_before = usage::switches(proxy_pid);
    let client_before = usage::children();
    let server_before = usage::postgres();
    let (idle_before, total_before) = usage::machine_jiffies();
    let _ = std::fs::remove_dir_all(log_dir);
    std::fs::create_dir_all(log_dir)?;
    let mut cmd = Command::new(pgbench);
    cmd.args(["-n", "-S", "-j", "2", "-T"])
        .arg(seconds.to_string())
        .arg("-c")
        .arg(clients.to_string())
        .arg("--log")
        .arg(format!("--log-prefix={}/tx", log_dir.display()));
    if reconnect {
        cmd.arg("-C");
    }
    let out = cmd.arg(url).output().context("running pgbench")?;
    let cpu = usage::process(proxy_pid).since(cpu_before);
    let switches = usage::switches(proxy_pid).saturating_sub(switches_before);
    let client = usage::children().since(client_before).total_ms();
    let server = usage::postgres().since(server_before).total_ms();
    let (idle_after, total_after) = usage::machine_jiffies();
    let stdout = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "pgbench failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tps = stdout
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .context("no tps in the pgbench report")?;
    let failed = stdout
        .lines()
        .find_map(|l| l.strip_prefix("number of failed transactions: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    anyhow::ensure!(failed == 0, "{failed} failed transactions:\n{stdout}");
    let mut lat: Vec<u64> = Vec::new();
    for entry in std::fs::read_dir(log_dir)? {
        let text = std::fs::read_to_string(entry?.path())?;
        for line in text.lines() {
            if let Some(us) = line
                .split_whitespace()
                .nth(2)
                .and_then(|v| v.parse::<u64>().ok())
            {
                lat.push(us);
            }
        }
    }
    anyhow::ensure!(!lat.is_empty(), "pgbench wrote no transaction log");
    lat.sort_unstable();
    let idx = ((lat.len() as f64) * 0.99).ceil() as usize;
    let p99 = lat[idx.saturating_sub(1).min(lat.len() - 1)];
    let transactions = lat.len() as f64;
    Ok(RunResult {
        tps,
        p99_ms: p99 as f64 / 1000.0,
        cpu_per_1k_ms: cpu.total_ms() / transactions * 1000.0,
        proxy_user_us: cpu.user_ms / transactions * 1000.0,
        proxy_switches: switches as f64 / transactions,
        client_us: client / transactions * 1000.0,
        server_us: server / transactions * 1000.0,
        idle_pct: (idle_after - idle_before) as f64 * 100.0
            / (total_after - total_before).max(1) as f64,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let scale = env_num("SCALE", 10);
    let seconds = env_num("SECONDS", 10);
    let pool_size = env_num("POOL_SIZE", 10);
    let rounds = env_num("ROUNDS", 3).max(1);
    find_pgbouncer()?;
    let size = usize::try_from(pool_size)?;
    let (dir, running) = pgfleet_bench::start_server_with(TOKEN, |c| {
        c.pooler.pool_size = size;
        // Room for every side's pool of server connections at once (PgBouncer, pgfleet, the
        // baseline and up to seven extra sides).
        c.database_connection_limit = i32::try_from(size * 10).unwrap_or(i32::MAX);
        c.role_connection_limit = c.database_connection_limit;
    })
    .await?;
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();
    let bin = pgfleet_dataplane::binaries::find_bin_dir(None)?;
    println!(
        "pgfleet bench/pooler — pgbench -S, scale {scale}, {rounds} rounds of {seconds} s per side (medians), pool size {pool_size}, TLS on both"
    );

    let p: Value = post_json(
        &http,
        &format!("{base}/v1/projects"),
        TOKEN,
        &json!({"name": "bench-pooler"}),
    )
    .await?;
    let db = p["data"]["database"]["id"]
        .as_str()
        .context("database id")?
        .to_string();
    let c: Value = post_json(
        &http,
        &format!("{base}/v1/databases/{db}/connections"),
        TOKEN,
        &json!({"name": "bench"}),
    )
    .await?;
    let direct = c["data"]["endpoints"]["direct"]["connectionString"]
        .as_str()
        .context("direct connection string")?
        .to_string();
    let pooled = c["data"]["endpoints"]["pooled"]["connectionString"]
        .as_str()
        .context("pooled connection string (is the pooler on?)")?
        .to_string();
    let user = c["data"]["user"].as_str().context("user")?.to_string();
    let (verifier, pg_database) = connection_secrets(&running, &user).await?;

    pgbench_init(&bin, scale, &direct)?;

    let port = cluster_port(dir.path())?;
    let (bouncer, bouncer_port) = start_pgbouncer(
        dir.path(),
        &dir.path().join("run"),
        port,
        &pg_database,
        &user,
        &verifier,
        pool_size,
        dir.path(),
    )?;
    let bouncer_url = url_with_port(&pooled, bouncer_port)?;
    let pgbench_bin = bin.join("pgbench");
    let baseline = match std::env::var_os("BASELINE_PGFLEET") {
        Some(b) => Some(start_baseline(
            Path::new(&b),
            dir.path(),
            pool_size,
            &pooled,
        )?),
        None => None,
    };
    // Sides in the order of the first round: PgBouncer, pgfleet, then the baseline.
    let mut sides = vec![
        Side::new("PgBouncer", bouncer_url, bouncer.child.id()),
        Side::new("pgfleet", pooled, std::process::id()),
    ];
    if let Some((b, url)) = &baseline {
        sides.push(Side::new("pgfleet (before)", url.clone(), b.child.id()));
    }
    // Extra in-process poolers on the same services, one per `session_threads` value asked
    // for (`SERVER_RUNTIME_SIDE=1` is `0`, the server's multi-threaded runtime).
    let mut extras: Vec<sides::Extra> = std::env::var("EXTRA_SESSION_THREADS")
        .unwrap_or_default()
        .split(',')
        .filter_map(sides::Extra::parse)
        .collect();
    if std::env::var_os("SERVER_RUNTIME_SIDE").is_some() && !extras.iter().any(|e| e.threads == 0) {
        extras.insert(0, sides::Extra::parse("0").context("server runtime side")?);
    }
    let mut extra_poolers = Vec::new();
    for extra in extras {
        let (task, stop, url) =
            start_on_server_runtime(&running, dir.path(), size, &sides[1].url, &extra).await?;
        sides.push(Side::new(&extra.name(), url, std::process::id()));
        extra_poolers.push((task, stop));
    }
    let logs = dir.path().join("pgbench-logs");
    let cases: [(&str, u32, bool); 3] = [
        ("20 clients", 20, false),
        ("500 clients", 500, false),
        ("20 clients, new connection per transaction (-C)", 20, true),
    ];
    // `CASES=20,500,C` picks cases (default all).
    let picked = std::env::var("CASES").unwrap_or_else(|_| "20,500,C".to_string());
    let picked: Vec<&str> = picked.split(',').map(str::trim).collect();
    for (label, clients, reconnect) in cases {
        let key = if reconnect {
            "C".to_string()
        } else {
            clients.to_string()
        };
        if !picked.contains(&key.as_str()) {
            continue;
        }
        // Warm every side (server connections, caches) before measuring.
        for side in &mut sides {
            side.runs.clear();
            pgbench(
                &pgbench_bin,
                &side.url,
                clients.min(20),
                false,
                2,
                &logs,
                side.pid,
            )?;
        }
        // Rounds rotate which side goes first; medians are reported.
        for round in 0..rounds {
            let n = sides.len();
            for i in 0..n {
                let side = &mut sides[(i + round as usize) % n];
                let r = pgbench(
                    &pgbench_bin,
                    &side.url,
                    clients,
                    reconnect,
                    seconds,
                    &logs,
                    side.pid,
                )?;
                side.runs.push(r);
            }
        }
        let b = median(&sides[0].runs);
        for side in &sides[1..] {
            report(label, &side.name, &median(&side.runs), &b);
        }
        for before in &sides[2..] {
            let (f, o) = (median(&sides[1].runs), median(&before.runs));
            row(
                &format!("{label}: pgfleet / {}", before.name),
                format!(
                    "tps {:.2}×, p99 {:.2}×, proxy CPU per transaction {:.2}×",
                    f.tps / o.tps,
                    f.p99_ms / o.p99_ms,
                    f.cpu_per_1k_ms / o.cpu_per_1k_ms
                ),
            );
        }
        // Where the machine's cores are the limit, tps is at most cores / CPU per
        // transaction: a proxy costing nothing would reach PgBouncer's total over
        // PgBouncer's total without its proxy share.
        let total = b.client_us + b.server_us + b.cpu_per_1k_ms;
        row(
            &format!("{label}: ceiling of any proxy here (zero proxy CPU)"),
            format!("{:.2}×", total / (b.client_us + b.server_us)),
        );
    }
    drop(baseline);
    for (task, stop) in extra_poolers {
        let _ = stop.send(());
        let _ = task.await;
    }
    drop(bouncer);
    running.stop().await?;
    Ok(())
}

pub(crate) fn url_with_port(url: &str, port: u16) -> anyhow::Result<String> {
    let mut u = url::Url::parse(url)?;
    u.set_port(Some(port))
        .map_err(|()| anyhow::anyhow!("cannot set the port of {url}"))?;
    Ok(u.to_string())
}

/// The connection's verifier and database name from the metadata store (PgBouncer's
/// `auth_file` takes the same SCRAM verifier, so neither side has a plain password).
async fn connection_secrets(
    running: &pgfleet::server::Running,
    user: &str,
) -> anyhow::Result<(String, String)> {
    let route = running
        .services
        .pooler()
        .route(user)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .context("no route for the bench connection")?;
    Ok((route.verifier, route.pg_database))
}
