//! `Idempotency-Key` on POSTs under `/v1`: replay, conflicts, scoping per credential,
//! validation, recorded 4xx, expiry after 24 hours and concurrent duplicates.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{Resp, TestServer};

/// Workspace id and the service-tokens path of the bootstrap token's workspace.
async fn tokens_path(s: &TestServer) -> String {
    let ws = s.get("/v1/me").await.body["data"]["workspace"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    format!("/v1/workspaces/{ws}/service-tokens")
}

async fn post_with_key(s: &TestServer, token: &str, path: &str, key: &str, body: &Value) -> Resp {
    Resp::from(
        s.http
            .post(format!("{}{path}", s.base))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

fn replayed(r: &Resp) -> bool {
    r.headers
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true")
}

/// Names of the tokens in the workspace.
async fn token_names(s: &TestServer, path: &str) -> Vec<String> {
    let r = s.get(path).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

async fn key_rows(s: &TestServer) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM idempotency_keys")
        .fetch_one(s.services().store().pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn same_key_replays_other_request_conflicts() {
    let s = TestServer::start().await;
    let path = tokens_path(&s).await;
    let body = json!({"name": "idem-a"});

    let first = post_with_key(&s, &s.token, &path, "key-1", &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert!(!replayed(&first));
    let second = post_with_key(&s, &s.token, &path, "key-1", &body).await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.body);
    assert!(replayed(&second));
    assert_eq!(second.headers["content-type"], "application/json");
    assert_eq!(second.body, first.body);
    assert_eq!(second.body["data"]["id"], first.body["data"]["id"]);
    assert_eq!(second.body["data"]["value"], first.body["data"]["value"]);
    assert_ne!(
        second.headers["x-request-id"],
        first.headers["x-request-id"]
    );
    let names = token_names(&s, &path).await;
    assert_eq!(
        names.iter().filter(|n| *n == "idem-a").count(),
        1,
        "{names:?}"
    );
    // The stored response (it holds the new secret) is sealed, never plain text.
    let stored: Vec<(String,)> = sqlx::query_as("SELECT response::text FROM idempotency_keys")
        .fetch_all(s.services().store().pool())
        .await
        .unwrap();
    let secret = first.body["data"]["value"].as_str().unwrap();
    assert!(!stored.is_empty());
    assert!(
        stored
            .iter()
            .all(|(r,)| !r.contains(secret) && r.contains("sealed")),
        "{stored:?}"
    );

    // Same key, other body; same key, other path: conflict, nothing created.
    let r = post_with_key(&s, &s.token, &path, "key-1", &json!({"name": "idem-b"})).await;
    r.assert_error(409, "conflict");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("different request"));
    assert!(r.body["error"]["hint"].as_str().is_some());
    post_with_key(&s, &s.token, "/v1/workspaces", "key-1", &body)
        .await
        .assert_error(409, "conflict");
    assert!(!token_names(&s, &path).await.contains(&"idem-b".to_string()));

    // Different keys: different tokens.
    let a = post_with_key(&s, &s.token, &path, "key-2", &json!({"name": "idem-c"})).await;
    let b = post_with_key(&s, &s.token, &path, "key-3", &json!({"name": "idem-c"})).await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(b.status, StatusCode::CREATED);
    assert!(!replayed(&a) && !replayed(&b));
    assert_ne!(a.body["data"]["id"], b.body["data"]["id"]);

    // Keys are per credential: another token's "key-1" is its own.
    let other = a.body["data"]["value"].as_str().unwrap().to_string();
    let c = post_with_key(&s, &other, &path, "key-1", &body).await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.body);
    assert!(!replayed(&c));
    assert_ne!(c.body["data"]["id"], first.body["data"]["id"]);
    let c2 = post_with_key(&s, &other, &path, "key-1", &body).await;
    assert!(replayed(&c2));
    assert_eq!(c2.body, c.body);
    // ... and the first credential still replays its own.
    let again = post_with_key(&s, &s.token, &path, "key-1", &body).await;
    assert!(replayed(&again));
    assert_eq!(again.body, first.body);
    assert_eq!(
        token_names(&s, &path)
            .await
            .iter()
            .filter(|n| *n == "idem-a")
            .count(),
        2
    );

    // A 4xx answer is recorded and replayed as is.
    let bad = post_with_key(&s, &s.token, &path, "key-4", &json!({"name": ""})).await;
    bad.assert_error(422, "validation_error");
    assert!(!replayed(&bad));
    let bad2 = post_with_key(&s, &s.token, &path, "key-4", &json!({"name": ""})).await;
    bad2.assert_error(422, "validation_error");
    assert!(replayed(&bad2));
    assert_eq!(bad2.body, bad.body);

    // Not a POST, or no key: untouched.
    for _ in 0..2 {
        let r = Resp::from(
            s.req(Method::GET, "/v1/me")
                .header("idempotency-key", "key-get")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(!replayed(&r));
    }
    let r = s.post(&path, body.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(!replayed(&r));
    assert_ne!(r.body["data"]["id"], first.body["data"]["id"]);
    s.stop().await;
}

#[tokio::test]
async fn invalid_keys_and_unauthenticated_requests() {
    let s = TestServer::start().await;
    let path = tokens_path(&s).await;
    let body = json!({"name": "idem-bad"});
    for key in [
        "x".repeat(256),
        "x".repeat(300),
        String::new(),
        "caf\u{e9}".to_string(),
    ] {
        let r = Resp::from(
            s.req(Method::POST, &path)
                .header(
                    "idempotency-key",
                    reqwest::header::HeaderValue::from_bytes(key.as_bytes()).unwrap(),
                )
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        // 422: this operation lists 422 and not 400 (see `pgfleet_http::statuses`).
        r.assert_error(422, "validation_error");
        assert!(r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"));
    }
    // Twice the header.
    Resp::from(
        s.req(Method::POST, &path)
            .header("idempotency-key", "a")
            .header("idempotency-key", "b")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
    .assert_error(422, "validation_error");
    // 255 printable characters (space included) are fine.
    let long: String = (0..255).map(|i| if i == 7 { ' ' } else { 'k' }).collect();
    let r = post_with_key(&s, &s.token, &path, &long, &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(replayed(
        &post_with_key(&s, &s.token, &path, &long, &body).await
    ));
    assert_eq!(
        token_names(&s, &path)
            .await
            .iter()
            .filter(|n| *n == "idem-bad")
            .count(),
        1
    );
    assert_eq!(key_rows(&s).await, 1);

    // No credential, or a refused one: 401, and nothing is remembered.
    let r = Resp::from(
        s.http
            .post(format!("{}{path}", s.base))
            .header("idempotency-key", "anon")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert_error(401, "unauthorized");
    for _ in 0..2 {
        let r = post_with_key(&s, "pgfst_nope", &path, "anon", &body).await;
        r.assert_error(401, "authentication-failed");
        assert!(!replayed(&r));
    }
    assert_eq!(key_rows(&s).await, 1);
    s.stop().await;
}

#[tokio::test]
async fn body_over_the_limit_is_refused() {
    let s = TestServer::start_with(|c| c.body_limit_bytes = 4096).await;
    let path = tokens_path(&s).await;
    let big = json!({ "name": "x".repeat(10_000) });
    // 422: the operation lists no 413 (the code says what is wrong).
    post_with_key(&s, &s.token, &path, "big", &big)
        .await
        .assert_error(422, "payload_too_large");
    assert_eq!(key_rows(&s).await, 0);
    // Under the cap the body reaches the handler unchanged.
    let r = post_with_key(
        &s,
        &s.token,
        &path,
        "small",
        &json!({"name": "x".repeat(200)}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["data"]["name"], "x".repeat(200));
    s.stop().await;
}

#[tokio::test]
async fn keys_expire_after_24_hours() {
    let s = TestServer::start().await;
    let path = tokens_path(&s).await;
    let body = json!({"name": "idem-exp"});
    let first = post_with_key(&s, &s.token, &path, "old-key", &body).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let pool = s.services().store().pool();

    // 23 hours old: still replayed.
    sqlx::query("UPDATE idempotency_keys SET created_at = created_at - interval '23 hours'")
        .execute(pool)
        .await
        .unwrap();
    let r = post_with_key(&s, &s.token, &path, "old-key", &body).await;
    assert!(replayed(&r));
    assert_eq!(r.body, first.body);

    // Over 24 hours old: the key is free again, for this body or another one.
    sqlx::query("UPDATE idempotency_keys SET created_at = created_at - interval '2 hours'")
        .execute(pool)
        .await
        .unwrap();
    let other = post_with_key(&s, &s.token, &path, "old-key", &json!({"name": "idem-new"})).await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.body);
    assert!(!replayed(&other));
    assert_eq!(other.body["data"]["name"], "idem-new");
    // ... and the new use is the one remembered now.
    let r = post_with_key(&s, &s.token, &path, "old-key", &json!({"name": "idem-new"})).await;
    assert!(replayed(&r));
    assert_eq!(r.body, other.body);
    post_with_key(&s, &s.token, &path, "old-key", &body)
        .await
        .assert_error(409, "conflict");

    // Housekeeping removes expired rows only.
    sqlx::query("UPDATE idempotency_keys SET created_at = created_at - interval '25 hours'")
        .execute(pool)
        .await
        .unwrap();
    post_with_key(&s, &s.token, &path, "fresh", &json!({"name": "idem-f"})).await;
    let now = s.services().clock().now();
    let pruned = pgfleet_storage::idempotency::prune(pool, now - pgfleet_storage::idempotency::TTL)
        .await
        .unwrap();
    assert_eq!(pruned, 1);
    assert_eq!(key_rows(&s).await, 1);
    s.stop().await;
}

#[tokio::test]
async fn duplicates_in_flight_conflict() {
    let s = TestServer::start().await;
    let path = tokens_path(&s).await;
    let body = json!({"name": "idem-fly"});
    let first = post_with_key(&s, &s.token, &path, "fly", &body).await;
    assert_eq!(first.status, StatusCode::CREATED);
    // Put the key back in flight, as if the first request were still running.
    let pool = s.services().store().pool();
    let n =
        sqlx::query("UPDATE idempotency_keys SET status = NULL, response = NULL WHERE key = 'fly'")
            .execute(pool)
            .await
            .unwrap()
            .rows_affected();
    assert_eq!(n, 1);
    let r = post_with_key(&s, &s.token, &path, "fly", &body).await;
    r.assert_error(409, "conflict");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("still being processed"));
    assert!(r.body["error"]["hint"].as_str().is_some());
    // Another body while in flight: the mismatch is what is reported.
    let r = post_with_key(&s, &s.token, &path, "fly", &json!({"name": "other"})).await;
    r.assert_error(409, "conflict");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("different request"));

    // Real concurrent duplicates: exactly one runs; the others conflict or replay it.
    let body = json!({"name": "idem-race"});
    let rs = futures_join(&s, &path, "race", &body, 8).await;
    let created: Vec<&Resp> = rs
        .iter()
        .filter(|r| !replayed(r) && r.status == StatusCode::CREATED)
        .collect();
    assert_eq!(created.len(), 1, "{rs:?}");
    for r in &rs {
        if r.status == StatusCode::CONFLICT {
            r.assert_error(409, "conflict");
        } else {
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            assert_eq!(r.body, created[0].body);
        }
    }
    let names = token_names(&s, &path).await;
    assert_eq!(
        names.iter().filter(|n| *n == "idem-race").count(),
        1,
        "{names:?}"
    );
    s.stop().await;
}

/// Sends the same keyed request `n` times at once.
async fn futures_join(s: &TestServer, path: &str, key: &str, body: &Value, n: usize) -> Vec<Resp> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let req = s
            .http
            .post(format!("{}{path}", s.base))
            .bearer_auth(&s.token)
            .header("idempotency-key", key)
            .json(body);
        tasks.push(tokio::spawn(async move {
            Resp::from(req.send().await.unwrap()).await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}
