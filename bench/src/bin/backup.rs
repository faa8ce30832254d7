//! `bench/backup`: backup and restore of a pgbench scale-10 database through pgfleet against
//! bare `pg_dump -Fc` / `pg_restore` of the same database in the same run. Goal: ≤ 1.2×.
//!
//! Run: `cargo run --release -p pgfleet-bench --bin backup` (env `SCALE`, default 10;
//! `ROUNDS`, default 3; the median of the rounds is reported).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use pgfleet_bench::{cluster_port, ms, pgbench_init, post_json, row};
use serde_json::{json, Value};

const TOKEN: &str = "pgfst_benchmark_token_not_secret_0000000000";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let scale: u32 = std::env::var("SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let (dir, running) = pgfleet_bench::start_server(TOKEN).await?;
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();
    let bin = pgfleet_dataplane::binaries::find_bin_dir(None)?;
    println!("pgfleet bench/backup — pgbench scale {scale}, {rounds} rounds (median)");

    let p: Value = post_json(
        &http,
        &format!("{base}/v1/projects"),
        TOKEN,
        &json!({"name": "bench-backup"}),
    )
    .await?;
    let db = p["data"]["database"]["id"]
        .as_str()
        .context("database id")?
        .to_string();
    let conn = p["data"]["database"]["connectionString"]
        .as_str()
        .context("connection string")?
        .to_string();
    pgbench_init(&bin, scale.into(), &conn)?;

    // Bare tools: the same database through the same superuser socket pgfleet uses.
    let port = cluster_port(dir.path())?;
    let pg_db = conn
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .split('?')
        .next()
        .unwrap_or_default()
        .to_string();
    let sock = dir.path().join("run");
    let bare = |tool: &str| {
        let mut c = std::process::Command::new(bin.join(tool));
        c.env("PGHOST", &sock)
            .env("PGPORT", port.to_string())
            .env("PGUSER", "postgres");
        c
    };
    let file = dir.path().join("bare.dump");

    let (mut pf_backup, mut pf_restore, mut raw_dump, mut raw_restore) =
        (vec![], vec![], vec![], vec![]);
    for round in 0..rounds {
        // pgfleet backup: from the API call until it is completed (the archive is verified).
        let t = Instant::now();
        let b: Value = http
            .post(format!("{base}/v1/databases/{db}/backups"))
            .bearer_auth(TOKEN)
            .send()
            .await?
            .json()
            .await?;
        let backup = b["data"]["id"].as_str().context("backup id")?.to_string();
        loop {
            let l: Value = http
                .get(format!("{base}/v1/databases/{db}/backups?limit=5"))
                .bearer_auth(TOKEN)
                .send()
                .await?
                .json()
                .await?;
            let st = l["data"]
                .as_array()
                .and_then(|a| a.iter().find(|x| x["id"] == backup.as_str()))
                .map(|x| x["status"].clone());
            match st.as_ref().and_then(|s| s.as_str()) {
                Some("completed") => break,
                Some("failed") => anyhow::bail!("backup failed"),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        pf_backup.push(t.elapsed());

        // pgfleet restore in place: from the API call until the database is ready again.
        let t = Instant::now();
        let r = http
            .post(format!("{base}/v1/databases/{db}/restore"))
            .bearer_auth(TOKEN)
            .json(&json!({"source": {"type": "backup", "databaseId": db, "backupId": backup}}))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "restore: {}", r.text().await?);
        loop {
            let d: Value = http
                .get(format!("{base}/v1/databases/{db}"))
                .bearer_auth(TOKEN)
                .send()
                .await?
                .json()
                .await?;
            if d["data"]["status"] == "ready" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        pf_restore.push(t.elapsed());

        // Bare: pg_dump -Fc + pg_restore --list (what pgfleet checks), then pg_restore into a
        // new database.
        let t = Instant::now();
        let s = bare("pg_dump")
            .args(["--format=custom", "--no-owner", "--no-privileges", "--file"])
            .arg(&file)
            .arg(&pg_db)
            .status()?;
        anyhow::ensure!(s.success(), "pg_dump");
        let s = bare("pg_restore")
            .arg("--list")
            .arg(&file)
            .stdout(std::process::Stdio::null())
            .status()?;
        anyhow::ensure!(s.success(), "pg_restore --list");
        raw_dump.push(t.elapsed());
        let target = format!("bare_{round}");
        let t = Instant::now();
        let s = bare("createdb").arg(&target).status()?;
        anyhow::ensure!(s.success(), "createdb");
        let s = bare("pg_restore")
            .args([
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
                "--dbname",
                &target,
            ])
            .arg(&file)
            .status()?;
        anyhow::ensure!(s.success(), "pg_restore");
        raw_restore.push(t.elapsed());
    }
    let med = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (b, r, rd, rr) = (
        med(&mut pf_backup),
        med(&mut pf_restore),
        med(&mut raw_dump),
        med(&mut raw_restore),
    );
    row(
        "bare pg_dump -Fc + pg_restore --list",
        format!("{:.0} ms", ms(rd)),
    );
    row(
        "pgfleet backup (API → completed)",
        format!("{:.0} ms", ms(b)),
    );
    row(
        "ratio backup (goal ≤ 1.2×)",
        format!("{:.2}×", ms(b) / ms(rd)),
    );
    row("bare createdb + pg_restore", format!("{:.0} ms", ms(rr)));
    row(
        "pgfleet restore in place (API → ready)",
        format!("{:.0} ms", ms(r)),
    );
    row(
        "ratio restore (goal ≤ 1.2×)",
        format!("{:.2}×", ms(r) / ms(rr)),
    );
    running.stop().await?;
    Ok(())
}
