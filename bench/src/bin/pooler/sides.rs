//! The sides of bench/pooler besides PgBouncer's setup: what a side is, its rows in the
//! report, and starting the optional ones (an older `pgfleet proxy`, the pooler with its
//! sessions on the server's runtime).

use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::Context as _;
use pgfleet_bench::row;

use crate::{url_with_port, RunResult};

/// A proxy process of the bench (PgBouncer, or the baseline `pgfleet proxy`), killed when
/// dropped.
pub(crate) struct Bouncer {
    pub(crate) child: Child,
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One proxy measured: its name in the report, the URL pgbench connects to, the process
/// whose CPU is its cost, and its runs of the case being measured.
pub(crate) struct Side {
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) pid: u32,
    pub(crate) runs: Vec<RunResult>,
}

impl Side {
    pub(crate) fn new(name: &str, url: String, pid: u32) -> Self {
        Self {
            name: name.to_string(),
            url,
            pid,
            runs: Vec::new(),
        }
    }
}

/// The rows of one side against PgBouncer (`b`).
pub(crate) fn report(label: &str, name: &str, f: &RunResult, b: &RunResult) {
    row(
        &format!("{label}: tps {name} / PgBouncer"),
        format!("{:.0} / {:.0} = {:.2}×", f.tps, b.tps, f.tps / b.tps),
    );
    row(
        &format!("{label}: p99 latency {name} / PgBouncer"),
        format!(
            "{:.2} ms / {:.2} ms = {:.2}×",
            f.p99_ms,
            b.p99_ms,
            f.p99_ms / b.p99_ms
        ),
    );
    row(
        &format!("{label}: proxy CPU per 1000 transactions {name} / PgBouncer"),
        format!(
            "{:.1} ms / {:.1} ms = {:.2}×",
            f.cpu_per_1k_ms,
            b.cpu_per_1k_ms,
            f.cpu_per_1k_ms / b.cpu_per_1k_ms
        ),
    );
    row(
        &format!("{label}: CPU µs/tx pgbench + postgres + proxy"),
        format!(
            "{name} {:.0} + {:.0} + {:.0}, PgBouncer {:.0} + {:.0} + {:.0}",
            f.client_us, f.server_us, f.cpu_per_1k_ms, b.client_us, b.server_us, b.cpu_per_1k_ms
        ),
    );
    let sys = |r: &RunResult| r.cpu_per_1k_ms - r.proxy_user_us;
    row(
        &format!("{label}: proxy µs/tx user + kernel, switches/tx"),
        format!(
            "{name} {:.1} + {:.1}, {:.2}; PgBouncer {:.1} + {:.1}, {:.2}",
            f.proxy_user_us,
            sys(f),
            f.proxy_switches,
            b.proxy_user_us,
            sys(b),
            b.proxy_switches
        ),
    );
    // The goal, in user time: the kernel's share (sockets, TLS records' system
    // calls, sleeps and wake-ups) is much the same for any proxy doing the same work.
    let goal = 0.8 * b.cpu_per_1k_ms;
    row(
        &format!("{label}: 0.8× PgBouncer's proxy CPU, {name}"),
        format!(
            "{goal:.1} µs/tx: with its kernel {:.1}, user ≤ {:.1} (now {:.1})",
            sys(f),
            goal - sys(f),
            f.proxy_user_us
        ),
    );
    row(
        &format!("{label}: idle CPU {name} / PgBouncer"),
        format!("{:.1}% / {:.1}%", f.idle_pct, b.idle_pct),
    );
}

/// The settings of an extra in-process pooler (`EXTRA_SESSION_THREADS`): its
/// `session_threads` (0: its sessions on this multi-threaded runtime), and optionally, as
/// `threads@spread_from/batch_replies_from`, the other two settings of where sessions run.
pub(crate) struct Extra {
    pub(crate) threads: usize,
    spread_from: Option<usize>,
    batch_replies_from: Option<usize>,
}

impl Extra {
    pub(crate) fn parse(v: &str) -> Option<Self> {
        let v = v.trim();
        let (rest, batch) = match v.split_once('/') {
            Some((rest, b)) => (rest, Some(b.parse().ok()?)),
            None => (v, None),
        };
        let (threads, spread) = match rest.split_once('@') {
            Some((t, s)) => (t, Some(s.parse().ok()?)),
            None => (rest, None),
        };
        Some(Self {
            threads: threads.parse().ok()?,
            spread_from: spread,
            batch_replies_from: batch,
        })
    }

    /// The side's name in the report.
    pub(crate) fn name(&self) -> String {
        if self.threads == 0 {
            return "pgfleet (server runtime)".to_string();
        }
        let mut name = format!("pgfleet (session_threads = {}", self.threads);
        if let Some(s) = self.spread_from {
            name.push_str(&format!(", spread_from = {s}"));
        }
        if let Some(b) = self.batch_replies_from {
            name.push_str(&format!(", batch_replies_from = {b}"));
        }
        name.push(')');
        name
    }
}

/// A second pooler in this process, like the server's but with the settings of `extra`:
/// the task serving it, what stops it, and its pooled URL.
pub(crate) async fn start_on_server_runtime(
    running: &pgfleet::server::Running,
    data_dir: &Path,
    pool_size: usize,
    pooled: &str,
    extra: &Extra,
) -> anyhow::Result<(
    tokio::task::JoinHandle<()>,
    tokio::sync::oneshot::Sender<()>,
    String,
)> {
    let mut cfg = pgfleet::config::Config {
        data_dir: data_dir.to_path_buf(),
        ..pgfleet::config::Config::default()
    };
    cfg.pooler.pool_size = pool_size;
    let mut settings = pgfleet::pooler::settings(&cfg)?;
    settings.session_threads = extra.threads;
    if let Some(s) = extra.spread_from {
        settings.spread_from = s;
    }
    if let Some(b) = extra.batch_replies_from {
        settings.batch_replies_from = b;
    }
    let (tls, certificate) = pgfleet::pooler::tls_config(&cfg)?;
    let pooler = pgfleet_pooler::Pooler::new(
        settings,
        std::sync::Arc::new(pgfleet::pooler::ServicesCatalog(running.services.clone())),
        Some(tls),
        certificate.as_deref(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        pooler
            .serve(listener, async move {
                let _ = stopped.await;
            })
            .await;
    });
    Ok((task, stop, url_with_port(pooled, port)?))
}

/// Starts `bin proxy` (an older pgfleet, say) beside the bench's server on its data
/// directory, with the same pool size; the process and the pooled URL on its port.
pub(crate) fn start_baseline(
    bin: &Path,
    data_dir: &Path,
    pool_size: u64,
    pooled: &str,
) -> anyhow::Result<(Bouncer, String)> {
    use std::io::{BufRead as _, BufReader};
    let config = data_dir.join("baseline-proxy.toml");
    std::fs::write(
        &config,
        format!("[pooler]\nlisten = \"127.0.0.1:0\"\npool_size = {pool_size}\n"),
    )?;
    let mut child = Command::new(bin)
        .arg("proxy")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {} proxy", bin.display()))?;
    let stdout = child.stdout.take().context("baseline stdout")?;
    let proxy = Bouncer { child };
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line?;
        if let Some(addr) = line.strip_prefix("pgfleet proxy listening on postgresql://") {
            let port = addr
                .trim()
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .context("baseline proxy port")?;
            // Whatever it prints later is read, so that it never writes to a closed pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return Ok((proxy, url_with_port(pooled, port)?));
        }
    }
    anyhow::bail!("{} proxy exited without listening", bin.display())
}
