//! `bench/accelerate`: one fixed Prisma workload (findUnique by id, findMany with include,
//! create, an interactive transaction) through unmodified Prisma Client 7 on three paths in
//! the same run, each on its own database of the same pgfleet server (same cluster, same
//! seed rows): the direct `postgresql://` string with `@prisma/adapter-pg` (the baseline),
//! the `prisma+postgres://` string pgfleet returned (its Rust query-plan executor on pooled
//! server connections), and the reference executor (`@prisma/query-plan-executor` of the
//! same version) in front of the third database. Prints p50/p99 per op and throughput, and
//! the ratios. Goal: pgfleet's p50 ≤ 1.3× the direct adapter's.
//!
//! The workload itself is `tests/node/prisma-accel/bench.mjs` (it needs that directory's
//! packages: `scripts/bench-accelerate` installs them). Env passed on: `SECONDS` per side and
//! round (default 5), `ROUNDS` (default 3; sides alternate who goes first; medians),
//! `CONCURRENCY` (requests in flight for the throughput part, default 8), `WARMUP`.

use std::process::Command;

use anyhow::Context as _;
use pgfleet_bench::post_json;
use serde_json::{json, Value};

const TOKEN: &str = "pgfst_benchmark_token_not_secret_0000000000";

/// A database of `project` with one connection; its direct and accelerate strings.
async fn database(
    http: &reqwest::Client,
    base: &str,
    project: &str,
    name: &str,
) -> anyhow::Result<(String, String)> {
    let d: Value = post_json(
        http,
        &format!("{base}/v1/projects/{project}/databases"),
        TOKEN,
        &json!({"name": name}),
    )
    .await?;
    let db = d["data"]["id"]
        .as_str()
        .with_context(|| format!("database id in {d}"))?
        .to_string();
    let c: Value = post_json(
        http,
        &format!("{base}/v1/databases/{db}/connections"),
        TOKEN,
        &json!({"name": "bench"}),
    )
    .await?;
    let endpoint = |kind: &str| {
        c["data"]["endpoints"][kind]["connectionString"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("{kind} connection string in {c} (is [accelerate] on?)"))
    };
    Ok((endpoint("direct")?, endpoint("accelerate")?))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let node_dir = root.join("tests/node/prisma-accel");
    anyhow::ensure!(
        node_dir.join("node_modules/@prisma/client").is_dir(),
        "{} has no node_modules: run scripts/bench-accelerate (or npm ci there)",
        node_dir.display()
    );
    let (_dir, running) = pgfleet_bench::start_server_with(TOKEN, |c| {
        c.accelerate.enabled = true;
        c.accelerate.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    })
    .await?;
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();
    let p: Value = post_json(
        &http,
        &format!("{base}/v1/projects"),
        TOKEN,
        &json!({"name": "bench-accelerate"}),
    )
    .await?;
    let project = p["data"]["id"]
        .as_str()
        .with_context(|| format!("project id in {p}"))?
        .to_string();
    let (direct, _) = database(&http, &base, &project, "direct").await?;
    let (accel_db, accel) = database(&http, &base, &project, "accelerate").await?;
    let (reference_db, _) = database(&http, &base, &project, "reference").await?;

    let status = Command::new("node")
        .arg("bench.mjs")
        .current_dir(&node_dir)
        .env("BENCH_DIRECT_URL", &direct)
        .env("BENCH_ACCEL_URL", &accel)
        .env("BENCH_ACCEL_DB_URL", &accel_db)
        .env("BENCH_REF_DB_URL", &reference_db)
        .status()
        .context("node (Node.js 20 is needed)")?;
    running.stop().await?;
    anyhow::ensure!(status.success(), "bench.mjs failed: {status}");
    Ok(())
}
