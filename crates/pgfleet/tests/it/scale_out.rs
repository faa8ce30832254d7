//! Issue 15: the scale-out deployment, end to end, the way docs/deploy.md describes it.
//!
//! On loopback: an external metadata PostgreSQL that takes TCP only with TLS (certificate from
//! a test CA; pgfleet connects with `sslmode=verify-full` and `sslrootcert`), one region
//! (`us-east-1`) of two PostgreSQL servers that also take TCP only with TLS, the s3rver
//! S3-compatible server for backups, and three real `pgfleet serve` processes, each with its
//! own TOML file (secrets through `*_file` settings, the same key-encryption key). In order:
//!
//! a. creates spread round-robin over the three; one is `kill -9`ed with creates in flight;
//!    every created database reaches `ready` (the others finish its operations) and nothing
//!    leaks (no database or role on the servers without a row, and the reverse);
//! b. a backup taken through replica A (in S3) restored into a new database through B;
//! c. a service token deleted through one replica is refused by the others within the auth
//!    cache's TTL;
//! d. the periodic jobs run once per interval across replicas (one scheduled backup per
//!    database, usage samples at least an interval apart);
//! e. the metadata server restarted (stopped, started on the same port) while creates are in
//!    flight: requests meanwhile get 503 with `Retry-After` within a bound, and every accepted
//!    create reaches `ready` once, none twice;
//! f. a server drained with `pgfleet admin servers drain` (the CLI, with a replica's
//!    configuration) gets no new database.

mod deploy;
mod setup;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::backups_s3::{S3Server, BUCKET};
use crate::harness::{checksum, connect_tls, Resp};
use deploy::{Api, Ca, TlsCluster};
use setup::{admin, all_ready, assert_nothing_leaks, create, Created, Setup, TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_on_tls_metadata_two_tls_servers_and_s3() {
    let began = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path());
    let s3 = S3Server::start().await;
    let (meta, a, b) = tokio::join!(
        TlsCluster::start(&ca, 100, &["meta"]),
        TlsCluster::start(&ca, 100, &[]),
        TlsCluster::start(&ca, 100, &[]),
    );
    let s3_endpoint = s3.endpoint.clone();
    let mut setup = Setup {
        dir,
        ca,
        meta,
        servers: [a, b],
        s3_endpoint,
    };
    // The metadata server takes no TCP session without TLS.
    let plain = format!(
        "postgres://postgres:{}@127.0.0.1:{}/meta?sslmode=disable",
        deploy::PASSWORD,
        setup.meta.port
    );
    let err = tokio_postgres::connect(&plain, tokio_postgres::NoTls)
        .await
        .err()
        .expect("plain TCP to the metadata server is refused");
    let why = err.as_db_error().map(|e| e.message().to_string());
    assert!(
        why.as_deref().is_some_and(|m| m.contains("no encryption")),
        "{err:?}"
    );

    let mut replicas = vec![setup.start("a").await];
    // The first one migrated and bootstrapped the store; the others join it.
    replicas.push(setup.start("b").await);
    replicas.push(setup.start("c").await);
    let apis: Vec<Api> = replicas.iter().map(|r| Api::new(&r.base, TOKEN)).collect();
    // Every replica's metadata sessions are TLS.
    let tls: Vec<(bool, i64)> = setup
        .meta()
        .await
        .query(
            "SELECT s.ssl, count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
              WHERE a.datname = 'meta' AND a.client_addr IS NOT NULL GROUP BY s.ssl",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(
        tls.len() == 1 && tls[0].0 && tls[0].1 >= 3,
        "metadata sessions by TLS: {tls:?}"
    );
    eprintln!("[scale_out] set up in {:?}", began.elapsed());

    // a. Creates round-robin; C killed with creates in flight.
    let mut tasks = Vec::new();
    for i in 0..12 {
        let api = apis[i % 3].clone();
        tasks.push(tokio::spawn(create(api, format!("a-{i}"))));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    // Two more to C, and C killed before it can answer them.
    let last: Vec<_> = (0..2)
        .map(|i| tokio::spawn(create(apis[2].clone(), format!("a-c-{i}"))))
        .collect();
    tokio::time::sleep(Duration::from_millis(30)).await;
    replicas[2].kill9();
    let provisioning_at_kill: i64 = setup
        .meta()
        .await
        .query_one(
            "SELECT count(*) FROM databases WHERE status = 'provisioning'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    eprintln!("[scale_out] C killed; {provisioning_at_kill} databases still provisioning");
    for t in last {
        outcomes.push(t.await.unwrap());
    }
    for o in &outcomes[..12] {
        let r = o.answer.as_ref().expect("answered before the kill");
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", o.name, r.body);
    }
    for o in &outcomes[12..] {
        if let Some(r) = &o.answer {
            assert_eq!(r.status, StatusCode::CREATED, "{}: {}", o.name, r.body);
        }
    }
    let ready = all_ready(&setup).await;
    let accepted: Vec<(String, String)> = outcomes.iter().filter_map(Created::database).collect();
    assert!(accepted.len() >= 12);
    for (id, _) in &accepted {
        assert!(ready.iter().any(|(r, _)| r == id), "{id} has no row");
        // Seen ready through the live replicas too.
        for api in &apis[..2] {
            let r = api.get(&format!("/v1/databases/{id}")).await;
            assert_eq!(r.body["data"]["status"], "ready", "{}", r.body);
        }
    }
    assert_nothing_leaks(&setup).await;
    // C is back (a new process, a new replica id); the killed one is gone after its window.
    replicas[2] = setup.start("c").await;
    let apis: Vec<Api> = replicas.iter().map(|r| Api::new(&r.base, TOKEN)).collect();
    eprintln!("[scale_out] a. done at {:?}", began.elapsed());

    // b. Backed up through A (into S3), restored through B.
    let (db, conn) = accepted[0].clone();
    connect_tls(&conn)
        .await
        .unwrap()
        .batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY, v text); \
             INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 2000) g;",
        )
        .await
        .unwrap();
    let original = checksum(&conn).await;
    let r = apis[0]
        .post(&format!("/v1/databases/{db}/backups"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let backup = r.body["data"]["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = apis[0].get(&format!("/v1/databases/{db}/backups")).await;
        let b = list.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["id"] == backup.as_str())
            .cloned()
            .unwrap_or(Value::Null);
        if b["status"] == "completed" {
            break;
        }
        assert!(b["status"] != "failed" && Instant::now() < deadline, "{b}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let location: String = setup
        .meta()
        .await
        .query_one("SELECT location FROM backups WHERE id = $1", &[&backup])
        .await
        .unwrap()
        .get(0);
    assert!(
        location.starts_with(&format!("s3://{BUCKET}/")),
        "{location}"
    );
    let project: String = setup
        .meta()
        .await
        .query_one("SELECT project_id FROM databases WHERE id = $1", &[&db])
        .await
        .unwrap()
        .get(0);
    let r = apis[1]
        .post(
            &format!("/v1/projects/{project}/databases"),
            json!({"name": "restored", "source": {"type": "backup", "databaseId": db, "backupId": backup}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let restored = r.body["data"]["id"].as_str().unwrap().to_string();
    let restored_conn = r.body["data"]["connectionString"]
        .as_str()
        .unwrap()
        .to_string();
    all_ready(&setup).await;
    assert_eq!(checksum(&restored_conn).await, original);
    eprintln!(
        "[scale_out] b. {restored} restored at {:?}",
        began.elapsed()
    );

    // c. A token deleted through A: refused by B and C within the auth cache's TTL.
    let ws = apis[0].get("/v1/me").await.body["data"]["workspace"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let t = apis[0]
        .post(
            &format!("/v1/workspaces/{ws}/service-tokens"),
            json!({"name": "revoked"}),
        )
        .await;
    assert_eq!(t.status, StatusCode::CREATED, "{}", t.body);
    let (tid, value) = (
        t.body["data"]["id"].as_str().unwrap().to_string(),
        t.body["data"]["value"].as_str().unwrap().to_string(),
    );
    for api in &apis {
        // Cached by every replica.
        let r = api.with_token(&value).get("/v1/projects").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let r = apis[0]
        .send(
            Method::DELETE,
            &format!("/v1/workspaces/{ws}/service-tokens/{tid}"),
            None,
        )
        .await
        .unwrap();
    assert!(r.status.is_success(), "{}", r.body);
    let revoked = Instant::now();
    assert_eq!(
        apis[0].with_token(&value).get("/v1/projects").await.status,
        StatusCode::UNAUTHORIZED
    );
    let ttl = pgfleet_domain::services::AUTH_CACHE_TTL;
    tokio::time::sleep(ttl.saturating_sub(revoked.elapsed())).await;
    for api in &apis[1..] {
        let r = api.with_token(&value).get("/v1/projects").await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{}: {}",
            api.base,
            r.body
        );
    }
    eprintln!("[scale_out] c. done at {:?}", began.elapsed());

    // d. Periodic jobs once per interval across the three: activity on one database for
    // ~4 s; its usage samples at least an interval (1 s) apart; one scheduled backup for
    // each database without a manual one (the interval is an hour).
    let client = connect_tls(&accepted[1].1).await.unwrap();
    let sampled_from: f64 = setup
        .meta()
        .await
        .query_one("SELECT extract(epoch FROM now())::float8", &[])
        .await
        .unwrap()
        .get(0);
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        client.simple_query("SELECT 1").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let samples: Vec<f64> = setup
        .meta()
        .await
        .query(
            "SELECT extract(epoch FROM sampled_at)::float8 FROM usage_samples
              WHERE database_id = $1 AND sampled_at >= to_timestamp($2) ORDER BY sampled_at",
            &[&accepted[1].0, &sampled_from],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!((2..=6).contains(&samples.len()), "{samples:?}");
    for w in samples.windows(2) {
        assert!(
            w[1] - w[0] >= 0.85,
            "two samples less than an interval apart: {samples:?}"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let counts: BTreeMap<String, (i64, i64)> = setup
            .meta()
            .await
            .query(
                "SELECT d.id,
                        count(b.id) FILTER (WHERE b.trigger = 'scheduled'),
                        count(b.id) FILTER (WHERE b.trigger = 'manual')
                   FROM databases d LEFT JOIN backups b ON b.database_id = d.id
                  GROUP BY d.id",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), (r.get(1), r.get(2))))
            .collect();
        for (id, (scheduled, _)) in &counts {
            if *scheduled > 1 {
                let rows: Vec<String> = setup
                    .meta()
                    .await
                    .query(
                        "SELECT concat_ws(' ', id, trigger, status, created_at, finished_at, error)
                           FROM backups WHERE database_id = $1 ORDER BY seq",
                        &[id],
                    )
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                panic!("{id}: {scheduled} scheduled backups in one interval: {rows:#?}");
            }
        }
        if counts.values().all(|(s, m)| *s == 1 || *m > 0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every database backed up: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let holders: Vec<(String, String)> = setup
        .meta()
        .await
        .query("SELECT job, holder FROM leases ORDER BY job", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    eprintln!(
        "[scale_out] d. lease holders {holders:?} at {:?}",
        began.elapsed()
    );

    // e. The metadata server restarted while creates are in flight.
    let mut tasks = Vec::new();
    for i in 0..6 {
        tasks.push(tokio::spawn(create(apis[i % 3].clone(), format!("e-{i}"))));
        tokio::time::sleep(Duration::from_millis(40)).await;
        if i == 2 {
            setup.meta.stop().await;
        }
    }
    // During the outage: 503 with Retry-After from every replica, within a bound.
    let during: Vec<(Resp, Duration)> =
        futures::future::join_all(apis.iter().map(|api| async move {
            let started = Instant::now();
            (api.get("/v1/projects").await, started.elapsed())
        }))
        .await;
    for (r, took) in &during {
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
        let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "Retry-After {retry}");
        assert!(*took < Duration::from_secs(6), "answered after {took:?}");
    }
    setup.meta.restart().await;
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    for o in &outcomes {
        let r = o
            .answer
            .as_ref()
            .unwrap_or_else(|| panic!("{}: no answer", o.name));
        assert!(
            r.status == StatusCode::CREATED || r.status == StatusCode::SERVICE_UNAVAILABLE,
            "{}: {} {}",
            o.name,
            r.status,
            r.body
        );
        if r.status == StatusCode::SERVICE_UNAVAILABLE {
            assert!(r.headers.contains_key("retry-after"), "{}", o.name);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for api in &apis {
        while api.get("/v1/projects").await.status != StatusCode::OK {
            assert!(Instant::now() < deadline, "{} did not recover", api.base);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    all_ready(&setup).await;
    let names: Vec<(String, i64)> = setup
        .meta()
        .await
        .query(
            "SELECT p.name, count(d.id) FROM projects p LEFT JOIN databases d ON d.project_id = p.id
              WHERE p.name LIKE 'e-%' GROUP BY p.name",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for o in &outcomes {
        let found = names.iter().find(|(n, _)| *n == o.name);
        match o.answer.as_ref().map(|r| r.status) {
            // Accepted: there once, with its one database, ready (checked above).
            Some(StatusCode::CREATED) => assert_eq!(found.map(|f| f.1), Some(1), "{}", o.name),
            // Refused: not there.
            _ => assert!(found.is_none(), "{} was refused but exists", o.name),
        }
    }
    assert_nothing_leaks(&setup).await;
    eprintln!(
        "[scale_out] e. {} of 6 accepted across the restart, at {:?}",
        outcomes.iter().filter(|o| o.database().is_some()).count(),
        began.elapsed()
    );

    // f. A server drained with the CLI gets no new database.
    let list = admin(&replicas[0], &["servers", "list"]);
    let servers = list.as_array().unwrap();
    assert_eq!(servers.len(), 2, "{list}");
    let first_key = format!("localhost:{}/", setup.servers[0].port);
    let id_of = |key: &str| {
        servers
            .iter()
            .find(|s| s["key"].as_str().unwrap().contains(key))
            .unwrap_or_else(|| panic!("{key} not in {list}"))["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let drained = id_of(&first_key);
    let other = id_of(&format!("localhost:{}/", setup.servers[1].port));
    assert_eq!(
        admin(&replicas[0], &["servers", "drain", &drained])["drained"],
        true
    );
    for i in 0..3 {
        let c = create(apis[i % 3].clone(), format!("f-{i}")).await;
        let (id, _) = c.database().expect("created");
        let server: String = setup
            .meta()
            .await
            .query_one("SELECT server_id FROM databases WHERE id = $1", &[&id])
            .await
            .unwrap()
            .get(0);
        assert_eq!(server, other, "{id} placed on the drained server");
    }
    assert_eq!(
        admin(&replicas[0], &["servers", "list", &drained])[0]["drained"],
        true
    );
    all_ready(&setup).await;
    assert_nothing_leaks(&setup).await;

    // The registry: three alive, the killed one gone; the same count in /metrics.
    let listed = admin(&replicas[1], &["replicas"]);
    let alive = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["state"] == "alive")
        .count();
    assert_eq!(alive, 3, "{listed}");
    let metrics = apis[0]
        .http
        .get(format!("{}/metrics", apis[0].base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let alive_metric: Option<f64> = metrics
        .lines()
        .find_map(|l| l.strip_prefix("pgfleet_replicas{state=\"alive\"} "))
        .and_then(|v| v.trim().parse().ok());
    assert_eq!(alive_metric, Some(3.0), "{metrics}");
    eprintln!("[scale_out] all steps in {:?}", began.elapsed());
    drop(replicas);
    for s in &mut setup.servers {
        s.stop().await;
    }
    setup.meta.stop().await;
    s3.stop().await;
    drop(setup);
    eprintln!("[scale_out] stopped and removed at {:?}", began.elapsed());
}
