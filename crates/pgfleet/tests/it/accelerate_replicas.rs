//! The `prisma+postgres://` endpoint's per-key limit on concurrent queries across replicas
//! (issue 18): each live replica admits `ceil(limit / live replicas)` queries of a key at
//! once, the live count coming from the replica registry; when a replica stops, the others'
//! shares grow back.

use std::time::Duration;

use pgfleet::config::{Config, Secret};
use reqwest::StatusCode;
use serde_json::Value;

use crate::accelerate::{accel_string, raw_execute, raw_query, split, Endpoint};
use crate::harness::{eventually, TestServer};

/// A replica on `metadata`'s store (or a new one) whose keys may run 2 queries at once.
fn replica(metadata: Option<String>) -> impl FnOnce(&mut Config) {
    move |c: &mut Config| {
        c.oauth.key_encryption_key = Some(Secret::new("accelerate replicas test secret"));
        if let Some(db) = metadata {
            c.metadata.url = Some(Secret::new(crate::harness::cluster().url(&db)));
        }
        c.backups.shared_dir = true;
        c.accelerate.max_concurrent_queries = 2;
    }
}

/// Starts `pg_sleep(secs)` through `e` with `key`, answering its status when done.
fn sleep_on(e: &Endpoint, key: &str, secs: f64) -> tokio::task::JoinHandle<StatusCode> {
    let http = e.http.clone();
    let url = format!("{}/query", e.base);
    let body = raw_execute(&format!("SELECT pg_sleep({secs})"));
    let key = key.to_string();
    tokio::spawn(async move {
        http.post(url)
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
    })
}

async fn expect_too_many(e: &Endpoint, key: &str) {
    let (status, body): (StatusCode, Value) = e.query(key, &raw_query("SELECT 1 AS one")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["code"], "P5011", "{body}");
}

#[tokio::test]
async fn the_per_key_limit_is_shared_by_the_live_replicas() {
    let a = TestServer::start_with(replica(None)).await;
    let b = TestServer::start_with(replica(Some(a.metadata_db()))).await;
    let (_db, conn) = a.database_with_connection("accel-replicas").await;
    let (_, key) = split(&accel_string(&conn));
    let (ea, eb) = (Endpoint::of(&a), Endpoint::of(&b));
    eventually("both replicas count two alive", || async {
        a.services().replicas().alive_count() == 2 && b.services().replicas().alive_count() == 2
    })
    .await;

    // Two alive: each admits ceil(2 / 2) = 1 query of the key at once.
    let slow_a = sleep_on(&ea, &key, 1.5);
    tokio::time::sleep(Duration::from_millis(500)).await;
    expect_too_many(&ea, &key).await;
    let slow_b = sleep_on(&eb, &key, 1.5);
    tokio::time::sleep(Duration::from_millis(500)).await;
    expect_too_many(&eb, &key).await;
    assert_eq!(slow_a.await.unwrap(), StatusCode::OK);
    assert_eq!(slow_b.await.unwrap(), StatusCode::OK);

    // One left: it admits the whole limit.
    b.stop().await;
    eventually("the remaining replica counts one alive", || async {
        a.services().replicas().alive_count() == 1
    })
    .await;
    let first = sleep_on(&ea, &key, 1.5);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = sleep_on(&ea, &key, 1.0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    expect_too_many(&ea, &key).await;
    assert_eq!(first.await.unwrap(), StatusCode::OK);
    assert_eq!(second.await.unwrap(), StatusCode::OK);
    a.stop().await;
}
