//! Several replicas on one metadata store (issue 15): each periodic job runs one round per
//! interval across all of them (a lease per job in `leases`), and a replica that stops —
//! cleanly, or by no longer renewing its lease — is replaced within the lease's TTL. And a
//! replica's own background operations leave its API a share of the metadata pool.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use pgfleet::config::{Config, Secret};
use serde_json::json;

use crate::harness::{connect_tls, TestServer};

/// Short intervals: a usage sample and a backup-scheduler round every second.
fn tweak(c: &mut Config) {
    c.usage.sample_interval_secs = 1;
    c.backups.check_every_secs = 1;
    c.backups.interval_secs = 3600;
    // Replicas of one metadata store share the key that encrypts its signing key.
    c.oauth.key_encryption_key = Some(Secret::new("replicas test key-encryption secret"));
    // Live replicas need a backup store they all see: declared shared (as if mounted by all).
    c.backups.shared_dir = true;
}

/// Three replicas on the metadata database of the first.
async fn three_replicas() -> Vec<TestServer> {
    let first = TestServer::start_with(tweak).await;
    let metadata = first.metadata_db();
    let mut all = vec![first];
    for _ in 0..2 {
        all.push(
            TestServer::start_with(|c| {
                tweak(c);
                c.metadata.url = Some(Secret::new(crate::harness::cluster().url(&metadata)));
            })
            .await,
        );
    }
    all
}

async fn lease(s: &TestServer, job: &str) -> pgfleet_storage::leases::LeaseRow {
    pgfleet_storage::leases::get(s.services().store().pool(), job)
        .await
        .unwrap()
        .expect("the job's lease was taken")
}

/// Waits (up to `within`) until a live replica other than `gone` holds `job`'s lease and ran
/// a round after `after`; returns how long that took.
async fn taken_over(
    s: &TestServer,
    job: &str,
    gone: &str,
    after: DateTime<Utc>,
    within: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        let l = lease(s, job).await;
        if l.holder != gone && l.last_run_at.is_some_and(|t| t > after) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{job} not taken over from {gone} within {within:?}: {l:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn periodic_jobs_run_once_per_interval_across_three_replicas() {
    let mut replicas = three_replicas().await;
    let s = &replicas[0];
    let r = s.post("/v1/projects", json!({"name": "replicated"})).await;
    let db = r.body["data"]["database"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(r.body["data"]["database"]["status"], "ready", "{}", r.body);
    let conn = r.body["data"]["database"]["connectionString"]
        .as_str()
        .unwrap()
        .to_string();
    // ~4 s of activity, so that every sampler round finds new counters and writes a sample.
    let client = connect_tls(&conn).await.expect("connect over TLS");
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        client.simple_query("SELECT 1").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pool = s.services().store().pool().clone();
    let samples: Vec<(DateTime<Utc>,)> = sqlx::query_as(
        "SELECT sampled_at FROM usage_samples WHERE database_id = $1 ORDER BY sampled_at",
    )
    .bind(&db)
    .fetch_all(&pool)
    .await
    .unwrap();
    // One sample per interval (three replicas sampling on their own write three).
    assert!(
        (2..=6).contains(&samples.len()),
        "{} samples in ~4 s: {samples:?}",
        samples.len()
    );
    for w in samples.windows(2) {
        assert!(
            w[1].0 - w[0].0 >= chrono::Duration::milliseconds(850),
            "two samples less than an interval apart: {samples:?}"
        );
    }
    // The scheduler backed the new database up once, not once per replica.
    let scheduled: (i64,) = sqlx::query_as(
        "SELECT count(*) FROM backups WHERE database_id = $1 AND trigger = 'scheduled'",
    )
    .bind(&db)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(scheduled.0, 1);

    // A holder that stops renewing (a crashed replica): nobody runs the job until its lease
    // expires, then a live replica takes it over within the TTL (3 s here) plus a tick.
    let expires = Utc::now() + chrono::Duration::seconds(3);
    sqlx::query(
        "UPDATE leases SET holder = 'replica_dead', expires_at = $1, last_run_at = now()
         WHERE job = 'usage_sampler'",
    )
    .bind(expires)
    .execute(&pool)
    .await
    .unwrap();
    let marked = Utc::now();
    taken_over(
        s,
        "usage_sampler",
        "replica_dead",
        marked,
        Duration::from_secs(6),
    )
    .await;
    let l = lease(s, "usage_sampler").await;
    assert!(
        l.last_run_at.unwrap() >= expires,
        "ran before the dead holder's lease expired: {l:?}"
    );
    let live: Vec<String> = replicas
        .iter()
        .map(|r| r.services().replica_id().to_string())
        .collect();
    assert!(live.contains(&l.holder), "{l:?} not one of {live:?}");

    // The holder stops cleanly: it gives the lease up and another replica takes it over.
    let holder = l.holder.clone();
    let i = live.iter().position(|id| *id == holder).unwrap();
    let stopped = replicas.remove(i);
    let before = Utc::now();
    stopped.stop().await;
    let took = taken_over(
        &replicas[0],
        "usage_sampler",
        &holder,
        before,
        Duration::from_secs(5),
    )
    .await;
    assert!(took <= Duration::from_secs(4), "{took:?}");
    for r in replicas {
        r.stop().await;
    }
}

/// Background operations leave the API its share of the metadata pool: with a small pool and
/// a burst of creates (each operation holds a connection for its lock and uses another), API
/// reads still answer 200, not 503 after the acquire timeout.
#[tokio::test]
async fn a_burst_of_operations_leaves_the_api_metadata_connections() {
    let s = TestServer::start_with(|c| {
        c.metadata.max_connections = Some(6);
        // Long enough that a busy CI machine (tests in parallel on 2 cores) does not turn a
        // slow query into a 503; operations that took every connection would still hold
        // them past it (each waits for a second connection the others hold).
        c.metadata.acquire_timeout_secs = 10;
        c.provision_wait_secs = 0.0;
    })
    .await;
    let creates: Vec<_> = (0..16)
        .map(|i| {
            let (http, base, token) = (s.http.clone(), s.base.clone(), s.token.clone());
            tokio::spawn(async move {
                http.post(format!("{base}/v1/projects"))
                    .bearer_auth(token)
                    .json(&json!({ "name": format!("burst-{i}") }))
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    let mut ids = Vec::new();
    for c in creates {
        assert_eq!(c.await.unwrap(), reqwest::StatusCode::CREATED);
    }
    // The sixteen operations run now; the API answers meanwhile.
    for _ in 0..10 {
        let r = s.get("/v1/projects").await;
        assert_eq!(r.status, reqwest::StatusCode::OK, "{}", r.body);
        if ids.is_empty() {
            ids = r.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_str().unwrap().to_string())
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ids.len(), 16);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (open,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM databases WHERE status <> 'ready'")
                .fetch_one(s.services().store().pool())
                .await
                .unwrap();
        if open == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{open} databases not ready");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    s.stop().await;
}

/// The holder of a lease keeps it through a round longer than its TTL (`Lease::renew`, every
/// tick of the periodic loop); another replica's renewal is refused while it is held, and a
/// renewal never counts as a round.
#[tokio::test]
async fn a_lease_is_renewed_only_by_its_holder() {
    use pgfleet_domain::lease::{Job, Lease};
    let s = TestServer::start_with(tweak).await;
    let (store, clock) = (s.services().store(), s.services().clock());
    // An interval no other round of this server's own loop will reach during the test.
    let mine = Lease::new(
        Job::ExpirySweeper,
        "replica_test_a",
        Duration::from_secs(3600),
    );
    let theirs = Lease::new(
        Job::ExpirySweeper,
        "replica_test_b",
        Duration::from_secs(3600),
    );
    // Whoever holds it now (this server's own sweeper) lets go; taken by `mine` (again if
    // the sweeper's loop was quicker between the two statements).
    for _ in 0..50 {
        let held = pgfleet_storage::leases::get(store.pool(), "expiry_sweeper")
            .await
            .unwrap()
            .map(|l| l.holder);
        if held.as_deref() == Some("replica_test_a") {
            break;
        }
        if let Some(held) = held {
            pgfleet_storage::leases::release(store.pool(), "expiry_sweeper", &held, clock.now())
                .await
                .unwrap();
        }
        let _ = mine.try_run(store, clock).await.unwrap();
    }
    let before = lease(&s, "expiry_sweeper").await;
    assert_eq!(before.holder, "replica_test_a", "{before:?}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(mine.renew(store, clock).await.unwrap());
    let after = lease(&s, "expiry_sweeper").await;
    assert!(after.expires_at > before.expires_at, "{before:?} {after:?}");
    assert_eq!(
        after.last_run_at, before.last_run_at,
        "a renewal is not a round"
    );
    assert!(!theirs.renew(store, clock).await.unwrap());
    assert_eq!(lease(&s, "expiry_sweeper").await.holder, "replica_test_a");
    s.stop().await;
}
