//! The server's log as an operator reads it, from the real binary with JSON logs: exactly one
//! line per request (method, path without its query string, status, `duration_ms`,
//! `request_id`; no query, no token), and the reconciler's lines of an operation carrying
//! the id of the request that planned it.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::lifecycle::{data_dir, Server};

/// The JSON lines of the log so far (other lines skipped).
fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[tokio::test]
async fn one_json_line_per_request_and_operations_name_their_request() {
    let dir = data_dir();
    let logs = tempfile::tempdir().unwrap();
    let log_path = logs.path().join("pgfleet.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let server = Server::start_with(
        dir.path(),
        &[("PGFLEET_LOG_FORMAT", "json"), ("RUST_LOG", "info")],
        Stdio::from(log),
    );
    let token = server.token();
    let http = reqwest::Client::new();

    // A read with a query string that must not reach the log.
    let r = http
        .get(format!("{}/v1/projects?limit=1&note=hunter2", server.base))
        .bearer_auth(&token)
        .header("x-request-id", "it-list-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "it-list-1");
    // A write whose intent plans an operation (the project's database).
    let r = http
        .post(format!("{}/v1/projects", server.base))
        .bearer_auth(&token)
        .header("x-request-id", "it-create-1")
        .json(&json!({"name": "traced"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let body: Value = r.json().await.unwrap();
    let db = body["data"]["database"]["id"].as_str().unwrap().to_string();

    let deadline = Instant::now() + Duration::from_secs(60);
    let lines = loop {
        let lines = json_lines(&log_path);
        let logged = |id: &str| lines.iter().any(|l| l["request_id"] == id);
        let op_done = lines
            .iter()
            .any(|l| l["message"] == "operation done" && l["span"]["request_id"] == "it-create-1");
        if logged("it-list-1") && logged("it-create-1") && op_done {
            break lines;
        }
        assert!(
            Instant::now() < deadline,
            "lines missing: {}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // One line per request, at info, with its fields at the top of the object.
    let of = |id: &str| -> Vec<&Value> { lines.iter().filter(|l| l["request_id"] == id).collect() };
    let list = of("it-list-1");
    assert_eq!(list.len(), 1, "{list:?}");
    let line = list[0];
    assert_eq!(line["level"], "INFO", "{line}");
    assert_eq!(line["message"], "request", "{line}");
    assert_eq!(line["method"], "GET", "{line}");
    assert_eq!(line["path"], "/v1/projects", "no query string: {line}");
    assert_eq!(line["status"], 200, "{line}");
    assert!(
        line["duration_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
        "{line}"
    );
    let create = of("it-create-1");
    assert_eq!(create.len(), 1, "{create:?}");
    assert_eq!(create[0]["method"], "POST");
    assert!(create[0]["status"]
        .as_u64()
        .is_some_and(|s| (200..300).contains(&s)));

    // The operation's lines name the request that planned it, and its database.
    let done = lines
        .iter()
        .find(|l| l["message"] == "operation done" && l["span"]["request_id"] == "it-create-1")
        .unwrap();
    assert_eq!(done["span"]["name"], "operation", "{done}");
    assert_eq!(done["span"]["database_id"], db.as_str(), "{done}");

    // Nothing secret: no query string, no token.
    let text = std::fs::read_to_string(&log_path).unwrap();
    for secret in ["hunter2", "limit=1", token.as_str()] {
        assert!(!text.contains(secret), "{secret} in the log");
    }
    server.terminate();
}
