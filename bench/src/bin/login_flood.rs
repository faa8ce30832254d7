//! `bench/login_flood`: what a flood of unauthenticated `POST /login` does to a real
//! `pgfleet serve` process (issue 14 item 2), and what the capped password hasher allows.
//!
//! Prints the process's idle RSS and its peak RSS under a flood of `CLIENTS` (default 500)
//! clients, each from its own loopback address, signing in with unknown e-mails as fast as
//! they are answered for `SECONDS` (default 10); the p50/p99 of a signed-in call
//! (`GET /v1/me` with a service token) without and with the flood; and the sign-ins per
//! second of correct passwords at a concurrency of the CPU count.
//!
//! The server is the binary `PGFLEET_BIN` (default the `pgfleet` next to this benchmark), so
//! the same run measures an older build for "before" figures:
//! `cargo run --release -p pgfleet-bench --bin login_flood`, or
//! `PGFLEET_BIN=/path/to/old/pgfleet cargo run --release -p pgfleet-bench --bin login_flood`.
//! An unbounded server needs about 19 MiB per concurrent sign-in: mind the machine's memory
//! before flooding one with many clients (`CLIENTS`). `HASH_CONCURRENCY` sets the server's
//! `sign_in.hash_concurrency` (servers that have the setting only).

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use pgfleet_bench::{ms, percentile, row};

const TOKEN: &str = "pgfst_benchmark_token_not_secret_0000000000";
/// The double-submit CSRF value a script sends as both cookie and field.
const CSRF: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A `pgfleet serve` child, terminated on drop.
struct Server {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
    admin_password: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

fn server_binary() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("PGFLEET_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .context("no directory of the benchmark binary")?;
    Ok(dir.join("pgfleet"))
}

fn start_server() -> anyhow::Result<Server> {
    let bin = server_binary()?;
    let dir = tempfile::Builder::new()
        .prefix("pgfleet-bench-")
        .tempdir()?;
    // The postgres OS user (when run as root) must reach the cluster.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    let mut cmd = Command::new(&bin);
    for (k, _) in std::env::vars() {
        if k.starts_with("PGFLEET_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("RUST_LOG", "error")
        .env("PGFLEET_POOLER__ENABLED", "false")
        .env("PGFLEET_BOOTSTRAP_TOKEN", TOKEN)
        .envs(
            std::env::var("HASH_CONCURRENCY")
                .ok()
                .map(|n| ("PGFLEET_SIGN_IN__HASH_CONCURRENCY", n)),
        )
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let out = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(out).lines();
    let base = loop {
        let line = lines
            .next()
            .context("the server exited before listening")??;
        if let Some(addr) = line.strip_prefix("pgfleet listening on ") {
            break addr.trim().to_string();
        }
    };
    // Keep draining stdout so the child never blocks on it.
    std::thread::spawn(move || for _ in lines.by_ref() {});
    let text = std::fs::read_to_string(dir.path().join("bootstrap.txt"))?;
    let admin_password = text
        .lines()
        .find_map(|l| l.strip_prefix("admin_password = "))
        .context("no admin password in bootstrap.txt")?
        .to_string();
    Ok(Server {
        child,
        base,
        _dir: dir,
        admin_password,
    })
}

/// `VmRSS` and `VmHWM` of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn client_from(local: IpAddr) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(local)
        .timeout(Duration::from_secs(120))
        .build()?)
}

/// The `n`-th client address of a group: `127.<group>.x.y`.
fn address(group: u8, n: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        group,
        (n / 250) as u8,
        (n % 250 + 1) as u8,
    ))
}

async fn sign_in(
    http: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<reqwest::StatusCode> {
    Ok(http
        .post(format!("{base}/login"))
        .header("cookie", format!("pgfleet_csrf={CSRF}"))
        .form(&[
            ("csrf_token", CSRF),
            ("next", "/console"),
            ("email", email),
            ("password", password),
        ])
        .send()
        .await?
        .status())
}

/// Latencies of `GET /v1/me`, one after another every `gap`, until `stop` (or `n` calls).
async fn signed_in_calls(
    base: &str,
    n: usize,
    gap: Duration,
    stop: Option<&AtomicBool>,
) -> anyhow::Result<(Vec<Duration>, u64)> {
    let http = client_from(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9)))?;
    let mut lat = Vec::new();
    let mut failed = 0;
    while lat.len() < n && !stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
        let t = Instant::now();
        let r = http
            .get(format!("{base}/v1/me"))
            .bearer_auth(TOKEN)
            .send()
            .await;
        if !matches!(&r, Ok(r) if r.status().is_success()) {
            failed += 1;
        }
        lat.push(t.elapsed());
        tokio::time::sleep(gap).await;
    }
    lat.sort();
    Ok((lat, failed))
}

/// [`signed_in_calls`] on a thread and runtime of its own, so the flood's client tasks do
/// not delay the measuring one (the server's latency is what is measured).
fn signed_in_calls_apart(
    base: String,
    n: usize,
    gap: Duration,
    stop: Option<Arc<AtomicBool>>,
) -> std::thread::JoinHandle<anyhow::Result<(Vec<Duration>, u64)>> {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(signed_in_calls(&base, n, gap, stop.as_deref()))
    })
}

fn latency_row(what: &str, lat: &[Duration], failed: u64) {
    row(
        what,
        format!(
            "p50 {:.1} ms, p99 {:.1} ms ({} calls, {failed} failed)",
            ms(percentile(lat, 50.0)),
            ms(percentile(lat, 99.0)),
            lat.len()
        ),
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let clients = env_num("CLIENTS", 500) as usize;
    let seconds = env_num("SECONDS", 10);
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let server = start_server()?;
    let pid = server.child.id();
    let base = server.base.clone();
    println!(
        "login flood against {} (pid {pid}; {clients} clients, {seconds} s)",
        server_binary()?.display()
    );

    // Warm up: one sign-in (argon2 once) and a few signed-in calls.
    let warm = client_from(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 8)))?;
    let status = sign_in(
        &warm,
        &base,
        "admin@pgfleet.localhost",
        &server.admin_password,
    )
    .await?;
    anyhow::ensure!(status.is_redirection(), "warm-up sign-in answered {status}");
    let (lat, failed) = signed_in_calls_apart(base.clone(), 200, Duration::from_millis(5), None)
        .join()
        .map_err(|_| anyhow::anyhow!("the measuring thread panicked"))??;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (idle, _) = memory_kib(pid);
    row("idle RSS", format!("{} MiB", idle / 1024));
    latency_row("GET /v1/me, no flood", &lat, failed);

    // The flood.
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(Ordering::Relaxed) {
                peak = peak.max(memory_kib(pid).0);
                std::thread::sleep(Duration::from_millis(10));
            }
            peak.max(memory_kib(pid).1)
        })
    };
    let answered = Arc::new([
        AtomicU64::new(0), // 401
        AtomicU64::new(0), // 429
        AtomicU64::new(0), // other statuses
        AtomicU64::new(0), // transport errors
    ]);
    let mut tasks = Vec::new();
    for i in 0..clients {
        let (base, stop, answered) = (base.clone(), stop.clone(), answered.clone());
        let http = client_from(address(3, i))?;
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let email = format!("nobody{i}@example.com");
                let guess = if std::env::var_os("LONG").is_some() {
                    "x".repeat(5000)
                } else {
                    format!("guess-{n}")
                };
                let slot = match sign_in(&http, &base, &email, &guess).await {
                    Ok(s) if s == reqwest::StatusCode::UNAUTHORIZED => 0,
                    Ok(s) if s == reqwest::StatusCode::TOO_MANY_REQUESTS => 1,
                    Ok(_) => 2,
                    Err(_) => 3,
                };
                answered[slot].fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let flood_start = Instant::now();
    let stopper = {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            stop.store(true, Ordering::Relaxed);
        })
    };
    let measuring = signed_in_calls_apart(
        base.clone(),
        usize::MAX,
        Duration::from_millis(50),
        Some(stop.clone()),
    );
    stopper.await?;
    let (lat, failed) = measuring
        .join()
        .map_err(|_| anyhow::anyhow!("the measuring thread panicked"))??;
    for t in tasks {
        t.await?;
    }
    let flood_secs = flood_start.elapsed().as_secs_f64();
    let peak = sampler.join().unwrap_or(0);
    let alive = matches!(
        nix::sys::wait::waitpid(
            nix::unistd::Pid::from_raw(pid as i32),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG)
        ),
        Ok(nix::sys::wait::WaitStatus::StillAlive)
    );
    row(
        "peak RSS under the flood",
        format!(
            "{} MiB (+{} MiB over idle){}",
            peak / 1024,
            peak.saturating_sub(idle) / 1024,
            if alive { "" } else { "; the server DIED" }
        ),
    );
    latency_row("GET /v1/me, under the flood", &lat, failed);
    let [r401, r429, other, errors] = &*answered;
    row(
        "flood answers",
        format!(
            "{} checked (401), {} refused (429), {} other, {} transport errors in {flood_secs:.1} s",
            r401.load(Ordering::Relaxed),
            r429.load(Ordering::Relaxed),
            other.load(Ordering::Relaxed),
            errors.load(Ordering::Relaxed),
        ),
    );
    if !alive {
        return Ok(());
    }

    // Throughput of correct sign-ins at the CPU count.
    let done = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..cpus {
        let (base, stop, done, refused) =
            (base.clone(), stop.clone(), done.clone(), refused.clone());
        let password = server.admin_password.clone();
        let http = client_from(address(4, i))?;
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match sign_in(&http, &base, "admin@pgfleet.localhost", &password).await {
                    Ok(s) if s.is_redirection() => done.fetch_add(1, Ordering::Relaxed),
                    _ => refused.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await?;
    }
    let secs = t.elapsed().as_secs_f64();
    row(
        &format!("correct sign-ins/s at concurrency {cpus}"),
        format!(
            "{:.1} ({} refused)",
            done.load(Ordering::Relaxed) as f64 / secs,
            refused.load(Ordering::Relaxed)
        ),
    );
    Ok(())
}
