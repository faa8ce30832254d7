//! Shared pieces of the benchmarks: statistics, a TLS client for tenant databases, and a
//! pgfleet server started in-process on a fresh data directory, and a JSON POST to its API;
//! the embedded cluster's port and `pgbench -i` on a database.

use std::time::Duration;

use anyhow::Context as _;

/// Percentile (0..=100) of durations, nearest-rank.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `sslmode=require` semantics (the embedded cluster's certificate is self-signed): the
/// connector pgfleet itself uses.
pub fn tls() -> tokio_postgres_rustls::MakeRustlsConnect {
    match pgfleet_dataplane::tls::require_connector() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("TLS set-up failed: {e}");
            std::process::exit(1)
        }
    }
}

/// A pgfleet server in-process on a fresh data directory (embedded cluster), with a known
/// bootstrap token. Keep the directory alive as long as the server.
pub async fn start_server(
    token: &str,
) -> anyhow::Result<(tempfile::TempDir, pgfleet::server::Running)> {
    start_server_with(token, |_| {}).await
}

/// [`start_server`] with a configuration tweak.
pub async fn start_server_with(
    token: &str,
    tweak: impl FnOnce(&mut pgfleet::config::Config),
) -> anyhow::Result<(tempfile::TempDir, pgfleet::server::Running)> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("pgfleet-bench-")
        .tempdir()?;
    // The postgres OS user (when run as root) must reach the cluster.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    let mut cfg = pgfleet::config::Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.path().to_path_buf(),
        bootstrap_token: Some(pgfleet::config::Secret::new(token)),
        ..pgfleet::config::Config::default()
    };
    cfg.pooler.listen = "127.0.0.1:0".parse()?;
    cfg.accelerate.listen = "127.0.0.1:0".parse()?;
    tweak(&mut cfg);
    let running = pgfleet::server::start(cfg, pgfleet::server::Deps::default()).await?;
    Ok((dir, running))
}

/// Connects with a `postgresql://…?sslmode=require` string over TLS and runs `SELECT 1`.
pub async fn select_one(
    conn_string: &str,
    tls: &tokio_postgres_rustls::MakeRustlsConnect,
) -> anyhow::Result<()> {
    let (client, conn) = tokio_postgres::connect(conn_string, tls.clone())
        .await
        .context("connect")?;
    let task = tokio::spawn(conn);
    client.simple_query("SELECT 1").await.context("select 1")?;
    drop(client);
    let _ = task.await;
    Ok(())
}

/// POSTs `body` as JSON to `url` with `token`; the response body.
pub async fn post_json(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: &serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    Ok(http
        .post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await?
        .json()
        .await?)
}

/// The embedded cluster's port, as pgfleet keeps it in `<data_dir>/cluster.json`.
pub fn cluster_port(data_dir: &std::path::Path) -> anyhow::Result<u16> {
    let cluster: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data_dir.join("cluster.json"))?)?;
    let port = cluster["port"].as_u64().context("cluster.json: port")?;
    Ok(u16::try_from(port)?)
}

/// `pgbench -i -q -s <scale>` on the database at `url` (`bin`: PostgreSQL's binaries).
pub fn pgbench_init(bin: &std::path::Path, scale: u64, url: &str) -> anyhow::Result<()> {
    let out = std::process::Command::new(bin.join("pgbench"))
        .args(["-i", "-q", "-s", &scale.to_string(), url])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "pgbench -i: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Prints a line of the report.
pub fn row(what: &str, value: String) {
    println!("{what:<58} {value}");
}
