//! Issue 15, item 6: draining a Postgres server. A region of two servers (two entries for the
//! shared test cluster: a second URL is a second server to pgfleet); the operator drains and
//! undrains them with the real `pgfleet admin servers …` binary over the metadata store, and
//! creates through the API go where placement may put them.

use std::process::Output;

use pgfleet::config::{RegionConfig, Secret};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{connect_tls, wait_ready, TestServer};
use crate::lifecycle::pgfleet;

/// Runs `pgfleet admin servers <args> --json` with the configuration the operator would use
/// (the same metadata store and servers as the running server).
fn admin(metadata_url: &str, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pgfleet.toml");
    let server = crate::harness::cluster().url("postgres");
    std::fs::write(
        &config,
        format!(
            "[metadata]\nurl = {metadata_url:?}\n\n[regions.us-east-1]\n\
             servers = [{server:?}, \"{server}&sslmode=disable\"]\n"
        ),
    )
    .unwrap();
    let mut all = vec!["admin", "servers"];
    all.extend_from_slice(args);
    all.extend_from_slice(&[
        "--json",
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    pgfleet(&all).output().unwrap()
}

#[track_caller]
fn json_out(o: &Output) -> Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// A new project's default database: (its id, its server id, its connection string).
async fn create(s: &TestServer, name: &str) -> (String, String, String) {
    let r = s.post("/v1/projects", json!({"name": name})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let d = &r.body["data"]["database"];
    let id = d["id"].as_str().unwrap().to_string();
    let (server,): (String,) = sqlx::query_as("SELECT server_id FROM databases WHERE id = $1")
        .bind(&id)
        .fetch_one(s.services().store().pool())
        .await
        .unwrap();
    (
        id,
        server,
        d["connectionString"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn a_drained_server_takes_no_new_databases_and_keeps_its_own() {
    let c = crate::harness::cluster();
    let s = TestServer::start_with(|cfg| {
        cfg.database_connection_limit = 5;
        cfg.pooler.pool_size = 2;
        // The list's disk figure is the databases' latest usage samples.
        cfg.usage.sample_interval_secs = 1;
        cfg.regions.insert(
            "us-east-1".to_string(),
            RegionConfig {
                name: None,
                servers: vec![
                    Secret::new(c.url("postgres")),
                    Secret::new(format!("{}&sslmode=disable", c.url("postgres"))),
                ],
            },
        );
    })
    .await;
    let metadata = s.metadata_db();
    let url = c.url(&metadata);

    // Two servers, none drained, with their capacity known.
    let list = json_out(&admin(&url, &["list"]));
    let servers = list.as_array().unwrap();
    assert_eq!(servers.len(), 2, "{list}");
    for v in servers {
        assert_eq!(v["region"], "us-east-1");
        assert_eq!(v["drained"], false);
        assert_eq!(v["databases"], 0);
        assert!(
            v["connectionSlots"]["capacity"].as_i64().unwrap() > 0,
            "{v}"
        );
    }
    let a = servers[0]["id"].as_str().unwrap().to_string();
    let b = servers[1]["id"].as_str().unwrap().to_string();

    // A drained: new databases go to B.
    let drained = json_out(&admin(&url, &["drain", &a]));
    assert_eq!(drained["drained"], true, "{drained}");
    let (db1, on, conn1) = create(&s, "first").await;
    assert_eq!(on, b);
    let (_, on, _) = create(&s, "second").await;
    assert_eq!(on, b);
    wait_ready(&s, &db1).await;

    // Both drained: a clear 400 naming the drained servers, and nothing is created.
    json_out(&admin(&url, &["drain", &b]));
    let r = s.post("/v1/projects", json!({"name": "refused"})).await;
    r.assert_error(400, "bad_request");
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("drained"), "{message}");
    let list = json_out(&admin(&url, &["list"]));
    let flags: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["drained"])
        .collect();
    assert_eq!(flags, [&json!(true), &json!(true)], "{list}");
    let one = json_out(&admin(&url, &["list", &b]));
    assert_eq!(one[0]["databases"], 2, "{one}");
    assert_eq!(one[0]["connectionSlots"]["assigned"], 10, "{one}");

    // Its disk: what the sampler last saw of its databases.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let one = json_out(&admin(&url, &["list", &b]));
        if one[0]["storageBytes"].as_i64().unwrap() > 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{one}");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }

    // The databases on a drained server keep working.
    let client = connect_tls(&conn1).await.unwrap();
    client.simple_query("SELECT 1").await.unwrap();

    // A undrained: placement resumes there.
    let undrained = json_out(&admin(&url, &["undrain", &a]));
    assert_eq!(undrained["drained"], false, "{undrained}");
    let (_, on, _) = create(&s, "third").await;
    assert_eq!(on, a);

    // An unknown id is an error, not a silent no-op.
    for cmd in ["drain", "undrain", "list"] {
        let o = admin(&url, &[cmd, "srv_nosuchserver"]);
        assert!(!o.status.success(), "{cmd}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("no Postgres server has the id"),
            "{cmd}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    s.stop().await;
}
