//! Usage metrics on real data: statements run over TLS raise `operations`, a bulk insert
//! raises `storage`, counter resets are summed by deltas, bad windows are refused, and
//! `/metrics` exposes the request counter and the per-database series.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use pgfleet_storage::usage::UsageSample;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{connect_tls, TestServer};

/// A server sampling every second.
async fn start() -> TestServer {
    TestServer::start_with(|cfg| cfg.usage.sample_interval_secs = 1).await
}

/// A project with its ready default database: (database id, connection string).
async fn project_db(s: &TestServer, name: &str) -> (String, String) {
    let r = s.post("/v1/projects", json!({ "name": name })).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let db = &r.body["data"]["database"];
    assert_eq!(db["status"], "ready", "{}", r.body);
    (
        db["id"].as_str().unwrap().to_string(),
        db["connectionString"].as_str().unwrap().to_string(),
    )
}

/// `GET …/usage` that must succeed; returns the body, checked against the contract's shape.
async fn usage(s: &TestServer, db: &str, query: &str) -> Value {
    let r = s.get(&format!("/v1/databases/{db}/usage{query}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let b = r.body;
    let mut keys: Vec<&String> = b.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["generatedAt", "metrics", "period"],
        "not wrapped: {b}"
    );
    assert_eq!(b["metrics"]["operations"]["unit"], "ops", "{b}");
    assert_eq!(b["metrics"]["storage"]["unit"], "GiB", "{b}");
    assert!(b["metrics"]["operations"]["used"].is_i64(), "{b}");
    assert!(b["metrics"]["storage"]["used"].is_number(), "{b}");
    for t in [
        &b["period"]["start"],
        &b["period"]["end"],
        &b["generatedAt"],
    ] {
        DateTime::parse_from_rfc3339(t.as_str().unwrap()).unwrap();
    }
    b
}

fn ops(b: &Value) -> i64 {
    b["metrics"]["operations"]["used"].as_i64().unwrap()
}

fn gib(b: &Value) -> f64 {
    b["metrics"]["storage"]["used"].as_f64().unwrap()
}

/// Polls the default window until `pred` holds (30 s at most); returns the last body.
async fn wait_usage(s: &TestServer, db: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let b = usage(s, db, "").await;
        if pred(&b) {
            return b;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {b}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn operations_and_storage_follow_real_activity() {
    let s = start().await;
    let (db, cs) = project_db(&s, "usage").await;

    // The first sample: the database has a size.
    let before = wait_usage(&s, &db, "a first sample", |b| gib(b) > 0.0).await;
    let period_start = before["period"]["start"].as_str().unwrap();
    assert!(
        period_start.ends_with("-01T00:00:00.000Z"),
        "the default window starts at the month's start: {before}"
    );

    const N: i64 = 60;
    let c = connect_tls(&cs).await.expect("connect over TLS");
    for i in 0..N {
        c.simple_query(&format!("SELECT {i}")).await.unwrap();
    }
    let after = wait_usage(&s, &db, "the statements", |b| ops(b) >= ops(&before) + N).await;
    assert!(ops(&after) >= N, "{after}");

    // Operations are statements (pg_stat_statements is preloaded on the test cluster).
    let sources: Vec<(String,)> =
        sqlx::query_as("SELECT DISTINCT source FROM usage_samples WHERE database_id = $1")
            .bind(&db)
            .fetch_all(s.services().store().pool())
            .await
            .unwrap();
    assert_eq!(sources, vec![("statements".to_string(),)]);

    // ~20 MB of rows (960 bytes each, stored uncompressed).
    let size_before = gib(&after);
    c.batch_execute(
        "CREATE TABLE bulk AS SELECT g AS id, repeat(md5(g::text), 30) AS payload \
         FROM generate_series(1, 20000) AS g",
    )
    .await
    .unwrap();
    let grown = wait_usage(&s, &db, "the bulk insert", |b| {
        gib(b) >= size_before + 15.0 / 1024.0
    })
    .await;
    assert!(ops(&grown) > ops(&after), "{grown}");

    // Prometheus.
    s.get("/no/such/path").await.assert_error(404, "not_found");
    let r = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let ctype = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ctype.starts_with("text/plain"), "{ctype}");
    let text = r.text().await.unwrap();
    for needle in [
        r#"pgfleet_http_requests_total{method="GET",route="/v1/databases/{id}/usage",status="200"}"#,
        r#"pgfleet_http_request_duration_seconds_bucket{method="GET",route="/v1/databases/{id}/usage","#,
        r#"pgfleet_provisioning_operations_total{kind="database.create",outcome="succeeded"}"#,
        &format!(r#"pgfleet_database_storage_bytes{{database_id="{db}"}}"#),
        &format!(r#"pgfleet_database_operations_total{{database_id="{db}"}}"#),
    ] {
        assert!(
            text.contains(needle),
            "{needle} missing from /metrics:\n{text}"
        );
    }
    let stored: i64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!(
                r#"pgfleet_database_storage_bytes{{database_id="{db}"}} "#
            ))
        })
        .unwrap()
        .parse()
        .unwrap();
    assert!(stored > 15 << 20, "storage gauge {stored}");
    // Unknown paths do not make new series.
    assert!(!text.contains("/no/such/path"));
    assert!(text.contains(r#"route="unmatched",status="404""#), "{text}");
    s.stop().await;
}

fn at(t: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc)
}

#[tokio::test]
async fn windows_sum_deltas_across_counter_resets_and_refuse_bad_input() {
    let s = TestServer::start().await;
    let (db, _) = project_db(&s, "usage-window").await;

    // Samples in 2020 (the sampler only writes "now"): a reset between the 10th and the 15th.
    let pool = s.services().store().pool();
    for (t, operations, storage_bytes) in [
        ("2020-01-01T00:00:00Z", 100, 1i64 << 30),
        ("2020-01-10T00:00:00Z", 250, 1 << 30),
        ("2020-01-15T00:00:00Z", 30, 1 << 30),
        ("2020-01-20T00:00:00Z", 80, 2 << 30),
        ("2020-02-05T00:00:00Z", 90, 3 << 30),
    ] {
        pgfleet_storage::usage::insert(
            pool,
            &UsageSample {
                database_id: db.clone(),
                sampled_at: at(t),
                operations,
                storage_bytes,
                source: "statements".to_string(),
            },
        )
        .await
        .unwrap();
    }
    // Baseline 100 (before the window): +150, reset +30, +50.
    let b = usage(&s, &db, "?startDate=2020-01-05&endDate=2020-01-31").await;
    assert_eq!(ops(&b), 230, "{b}");
    assert_eq!(gib(&b), 2.0, "storage at the end of the window: {b}");
    assert_eq!(b["period"]["start"], "2020-01-05T00:00:00.000Z");
    assert_eq!(b["period"]["end"], "2020-01-31T23:59:59.999Z");
    // No sample before: the first one counts from zero (the database's counters did).
    let b = usage(
        &s,
        &db,
        "?startDate=2020-01-01T00:00:00Z&endDate=2020-01-31T00:00:00Z",
    )
    .await;
    assert_eq!(ops(&b), 330, "{b}");
    // endDate alone: from the start of its month.
    let b = usage(&s, &db, "?endDate=2020-02-10T00:00:00Z").await;
    assert_eq!(b["period"]["start"], "2020-02-01T00:00:00.000Z");
    assert_eq!(ops(&b), 10, "{b}");
    assert_eq!(gib(&b), 3.0, "{b}");
    // Before any sample: nothing.
    let b = usage(&s, &db, "?startDate=2019-01-01&endDate=2019-12-31").await;
    assert_eq!((ops(&b), gib(&b)), (0, 0.0), "{b}");
    // start == end is a valid (empty) window.
    let b = usage(
        &s,
        &db,
        "?startDate=2020-01-12T00:00:00Z&endDate=2020-01-12T00:00:00Z",
    )
    .await;
    assert_eq!((ops(&b), gib(&b)), (0, 1.0), "{b}");

    for q in [
        "?startDate=yesterday",
        "?endDate=2020-13-01",
        "?startDate=",
        "?startDate=2020-02-30",
        "?startDate=2020-02-01&endDate=2020-01-01",
        "?startDate=2020-01-01T00:00:01Z&endDate=2020-01-01T00:00:00Z",
    ] {
        s.get(&format!("/v1/databases/{db}/usage{q}"))
            .await
            .assert_error(400, "bad_request");
    }
    s.get("/v1/databases/db_doesnotexist/usage")
        .await
        .assert_error(404, "not_found");
    // Unauthenticated.
    let r = s
        .http
        .get(format!("{}/v1/databases/{db}/usage", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    s.stop().await;
}
