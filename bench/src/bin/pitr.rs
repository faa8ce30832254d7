//! `bench/pitr`: point-in-time recovery with the WAL archive engine
//! (`pgfleet_dataplane::archive`, pgBackRest) on an embedded cluster archiving to a local
//! repository.
//!
//! 1. Restore: a target database of `TARGET_MB` (default 100) next to `OTHER_MB` (default
//!    200; the figure is 1000) of other tenants' databases. Restoring the target to a
//!    time T = `restore_scratch` (only its files: `--db-include`) + `pg_dump` from the scratch
//!    instance + `pg_restore` into a new database, against restoring it from its latest dump
//!    (`pg_restore` of a `pg_dump -Fc` taken before, as today's backups do). Ratios printed.
//! 2. Recovery point: under a steady write load (`RATE` rows/s of 4 KB, default 100), the
//!    time from a commit until the WAL segment holding it is in the repository
//!    (`pg_stat_archiver.last_archived_wal`: with asynchronous archive-push a segment counts
//!    as archived only once pushed), sampled every 200 ms for `RP_SECS` (default 40), with
//!    `archive_timeout` = `ARCHIVE_TIMEOUT` (default 60, pgfleet's default); p50/p99/max.
//!
//! Run: `cargo run -p pgfleet-bench --bin pitr` (as root or as a user that can run
//! PostgreSQL; needs `pgbackrest`). The default run takes about 2–3 minutes.

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use pgfleet_bench::{ms, percentile, row};
use pgfleet_dataplane::archive::{Archive, ArchiveSettings, BaseBackupKind, Repo, ScratchRequest};
use pgfleet_dataplane::osuser::RunAs;
use pgfleet_dataplane::tools::DumpCompression;
use pgfleet_dataplane::{ClusterSettings, EmbeddedCluster, PgServer, PgTools};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Fills `db` with about `mb` MB of rows that do not compress to nothing (hex digests).
async fn fill(server: &PgServer, db: &str, mb: u64) -> anyhow::Result<()> {
    let c = server.admin_client(None).await?;
    c.batch_execute(&format!("CREATE DATABASE {db}")).await?;
    let c = server.admin_client(Some(db)).await?;
    // ~300 bytes a row on disk with its index entry.
    let rows = mb * 1024 * 1024 / 300;
    c.batch_execute(&format!(
        "CREATE TABLE t (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp(), v text); \
         INSERT INTO t (id, v) SELECT g, md5(g::text) || md5((g + 1)::text) || md5((g + 2)::text) || \
           md5((g + 3)::text) || md5(random()::text) || md5(random()::text) || md5(random()::text) \
           FROM generate_series(1, {rows}) g"
    ))
    .await?;
    c.batch_execute("VACUUM ANALYZE t").await?;
    Ok(())
}

async fn count(server: &PgServer, db: &str) -> anyhow::Result<i64> {
    let c = server.admin_client(Some(db)).await?;
    Ok(c.query_one("SELECT count(*) FROM t", &[]).await?.get(0))
}

async fn server_now(server: &PgServer) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    let c = server.admin_client(None).await?;
    let micros: i64 = c
        .query_one(
            "SELECT (extract(epoch FROM clock_timestamp()) * 1e6)::bigint",
            &[],
        )
        .await?
        .get(0);
    chrono::DateTime::from_timestamp_micros(micros).context("server time")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let target_mb = env_or("TARGET_MB", 100);
    let other_mb = env_or("OTHER_MB", 200);
    let other_dbs = env_or("OTHER_DBS", 4).max(1);
    let rate = env_or("RATE", 100).max(1);
    let rp_secs = env_or("RP_SECS", 40);
    let archive_timeout = env_or("ARCHIVE_TIMEOUT", 60).clamp(1, 60) as u32;
    println!(
        "pgfleet bench/pitr — target {target_mb} MB, others {other_mb} MB in {other_dbs} databases; \
         load {rate} rows/s of 4 KB for {rp_secs} s, archive_timeout {archive_timeout} s"
    );

    let dir = tempfile::Builder::new()
        .prefix("pgfleet-bench-pitr-")
        .tempdir()?;
    // The postgres OS user (when run as root) must reach the cluster and the repository.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    let root = dir.path().to_path_buf();
    let bin_dir = pgfleet_dataplane::binaries::find_bin_dir(None)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let archive = Archive::new(ArchiveSettings {
        stanza: "bench".to_string(),
        repo: Repo::Local {
            path: root.join("repo"),
        },
        work_dir: root.join("pitr"),
        pgbackrest: PathBuf::from("/usr/bin/pgbackrest"),
        bin_dir: bin_dir.clone(),
        pgdata: root.join("postgres"),
        socket_dir: root.join("run"),
        port,
        remote: None,
        run_as: RunAs::detect()?,
        retention_days: 7,
        archive_timeout_secs: archive_timeout,
    });
    archive.prepare()?;
    let settings = ClusterSettings {
        bin_dir: Some(bin_dir.clone()),
        port: Some(port),
        max_connections: 50,
        extra_settings: archive.postgres_settings(),
        postmaster_env: archive.postmaster_env(),
        ..ClusterSettings::new(&root)
    };
    let cluster = tokio::task::spawn_blocking(move || EmbeddedCluster::prepare(settings))
        .await??
        .start()
        .await?;
    let server = PgServer::from_url(
        "bench",
        &format!(
            "postgres://postgres@localhost/postgres?host={}&port={port}",
            root.join("run").display()
        ),
    )?;
    archive.ensure_stanza().await?;
    let tools = PgTools::new(&bin_dir);

    // --- 1. Restore to a point in time vs from the latest dump.
    let t = Instant::now();
    fill(&server, "target", target_mb).await?;
    for i in 0..other_dbs {
        fill(&server, &format!("other_{i}"), other_mb / other_dbs).await?;
    }
    row(
        "data written",
        format!("{:.1} s", t.elapsed().as_secs_f64()),
    );
    let sizes = server
        .admin_client(None)
        .await?
        .query_one(
            "SELECT (sum(pg_database_size(datname)) FILTER (WHERE datname = 'target'))::bigint, \
                    (sum(pg_database_size(datname)) FILTER (WHERE datname <> 'target' \
                        AND datname NOT IN ('postgres', 'template0', 'template1')))::bigint \
             FROM pg_database",
            &[],
        )
        .await?;
    row(
        "database sizes: target / other tenants",
        format!(
            "{} MB / {} MB",
            sizes.get::<_, i64>(0) >> 20,
            sizes.get::<_, i64>(1) >> 20
        ),
    );
    let latest_dump = root.join("latest.dump");
    let t = Instant::now();
    tools.dump(&server, "target", &latest_dump).await?;
    row(
        "latest dump: pg_dump -Fc of the target (today's backups)",
        format!("{:.0} ms", ms(t.elapsed())),
    );
    let t = Instant::now();
    let full = archive.base_backup(BaseBackupKind::Full).await?;
    row(
        "full base backup (pgBackRest, lz4)",
        format!(
            "{:.0} ms, {} MB in the repository",
            ms(t.elapsed()),
            full.size_bytes >> 20
        ),
    );
    while server_now(&server).await? <= full.stopped_at + chrono::Duration::seconds(1) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The archiver catches up with the WAL of the data load first: the figure is the
    // restore's, not the backlog's.
    let t = Instant::now();
    archive.archive_through_now().await?;
    row(
        "archive backlog of the data load pushed",
        format!("{:.0} ms", ms(t.elapsed())),
    );
    // Writes after the backup, so the restore replays WAL up to T.
    let c = server.admin_client(Some("target")).await?;
    c.batch_execute(
        "INSERT INTO t (id, v) SELECT -g, md5(g::text) FROM generate_series(1, 1000) g",
    )
    .await?;
    let expected = count(&server, "target").await?;
    let target_time = server_now(&server).await?;
    tokio::time::sleep(Duration::from_millis(20)).await;
    c.batch_execute("DELETE FROM t WHERE id < 0").await?;

    let t = Instant::now();
    let scratch = archive
        .restore_scratch(&ScratchRequest {
            name: "bench".to_string(),
            pg_database: "target".to_string(),
            target: target_time,
        })
        .await?;
    let scratch_time = t.elapsed();
    anyhow::ensure!(
        count(&scratch.server, "target").await? == expected,
        "the scratch instance does not hold the rows up to T"
    );
    let pitr_dump = root.join("pitr.dump");
    let t = Instant::now();
    tools
        .dump_with(&scratch.server, "target", &pitr_dump, DumpCompression::None)
        .await?;
    let dump_time = t.elapsed();
    let t = Instant::now();
    scratch.remove(&archive).await?;
    let remove_time = t.elapsed();
    let restore_into = |db: &'static str, file: PathBuf| {
        let (server, tools) = (server.clone(), tools.clone());
        async move {
            let c = server.admin_client(None).await?;
            c.batch_execute(&format!("CREATE DATABASE {db}")).await?;
            let t = Instant::now();
            tools.restore(&server, db, "postgres", &file).await?;
            anyhow::Ok(t.elapsed())
        }
    };
    let pitr_restore = restore_into("restored_pitr", pitr_dump).await?;
    anyhow::ensure!(count(&server, "restored_pitr").await? == expected);
    let dump_restore = restore_into("restored_dump", latest_dump).await?;
    let pitr_total = scratch_time + dump_time + remove_time + pitr_restore;
    row(
        "PITR: restore_scratch (--db-include, replay to T)",
        format!("{:.0} ms", ms(scratch_time)),
    );
    row(
        "PITR: pg_dump from the scratch instance (uncompressed)",
        format!("{:.0} ms", ms(dump_time)),
    );
    row(
        "PITR: remove the scratch instance",
        format!("{:.0} ms", ms(remove_time)),
    );
    row(
        "PITR: pg_restore into the target",
        format!("{:.0} ms", ms(pitr_restore)),
    );
    row("PITR total", format!("{:.0} ms", ms(pitr_total)));
    row(
        "from the latest dump: pg_restore",
        format!("{:.0} ms", ms(dump_restore)),
    );
    row(
        "ratio PITR total / restore from dump",
        format!("{:.2}×", ms(pitr_total) / ms(dump_restore)),
    );
    row(
        "ratio (restore_scratch + pg_dump) / restore from dump",
        format!("{:.2}×", ms(scratch_time + dump_time) / ms(dump_restore)),
    );

    // --- 2. Recovery point under a steady write load.
    let c = server.admin_client(None).await?;
    c.batch_execute("CREATE DATABASE load").await?;
    let load = server.admin_client(Some("load")).await?;
    load.batch_execute("CREATE TABLE w (id bigserial PRIMARY KEY, v text)")
        .await?;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (server, stop) = (server.clone(), stop.clone());
        tokio::spawn(async move {
            let c = server.admin_client(Some("load")).await?;
            let period = Duration::from_secs_f64(1.0 / rate as f64);
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                tick.tick().await;
                // 4 KB that lz4 cannot shrink much.
                c.execute(
                    "INSERT INTO w (v) SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 128)",
                    &[],
                )
                .await?;
            }
            anyhow::Ok(())
        })
    };
    let sampler = server.admin_client(Some("load")).await?;
    let status = server.admin_client(None).await?;
    let mut pending: Vec<(Instant, String)> = Vec::new();
    let mut rp: Vec<Duration> = Vec::new();
    let started = Instant::now();
    let mut next_sample = Instant::now();
    let deadline = started + Duration::from_secs(rp_secs) + Duration::from_secs(120);
    loop {
        let now = Instant::now();
        if now.duration_since(started) < Duration::from_secs(rp_secs) && now >= next_sample {
            sampler
                .execute("INSERT INTO w (v) VALUES ('sample')", &[])
                .await?;
            let committed = Instant::now();
            let seg: String = sampler
                .query_one("SELECT pg_walfile_name(pg_current_wal_insert_lsn())", &[])
                .await?
                .get(0);
            pending.push((committed, seg));
            next_sample += Duration::from_millis(200);
        }
        let archived: String = status
            .query_one(
                "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver",
                &[],
            )
            .await?
            .get(0);
        let seen = Instant::now();
        pending.retain(|(at, seg)| {
            if archived.len() == seg.len() && archived.as_str() >= seg.as_str() {
                rp.push(seen.duration_since(*at));
                false
            } else {
                true
            }
        });
        if now.duration_since(started) >= Duration::from_secs(rp_secs) && pending.is_empty() {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} commits not archived within {} s",
            pending.len(),
            deadline.duration_since(started).as_secs()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.await??;
    rp.sort();
    let st = archive.archiver_status(&server).await?;
    row(
        "recovery point: samples",
        format!("{} (every 200 ms)", rp.len()),
    );
    row(
        "recovery point p50 / p99 / max",
        format!(
            "{:.1} s / {:.1} s / {:.1} s",
            percentile(&rp, 50.0).as_secs_f64(),
            percentile(&rp, 99.0).as_secs_f64(),
            rp.last().copied().unwrap_or_default().as_secs_f64()
        ),
    );
    row(
        "archiver: failures, pg_wal size",
        format!("{}, {} MB", st.failed_count, st.wal_bytes >> 20),
    );
    cluster.stop().await;
    Ok(())
}
