//! Signed webhooks (issue 20): destinations on internal addresses refused unless allowed,
//! bad input refused, events delivered signed per Standard Webhooks (checked here with the
//! HMAC the spec defines), the signing secret sealed in the store, retries with backoff, an
//! endpoint failing too long disabled with a `webhook.disabled` event, and two replicas
//! sharing one store delivering every event (no loss). The Node test
//! (`tests/node/webhooks.test.mjs`) verifies with the `standardwebhooks` npm library.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use pgfleet::config::{Config, Secret};
use serde_json::{json, Value};

use crate::harness::{eventually, TestServer};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// The receiver's state: what it got, and what it answers.
type ReceiverState = (Arc<Mutex<Vec<Received>>>, Arc<AtomicU16>);

/// A webhook receiver on loopback answering `status` (settable) to every request.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    pub got: Arc<Mutex<Vec<Received>>>,
    /// What it answers from now on.
    pub status: Arc<AtomicU16>,
}

impl Receiver {
    pub async fn start(status: u16) -> Self {
        let got = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(status));
        let state = (Arc::clone(&got), Arc::clone(&status));
        let app =
            axum::Router::new()
                .fallback(
                    |State((got, status)): State<ReceiverState>,
                     headers: HeaderMap,
                     body: Bytes| async move {
                        let h = |n: &str| {
                            headers
                                .get(n)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_string()
                        };
                        got.lock().unwrap().push(Received {
                            id: h("webhook-id"),
                            timestamp: h("webhook-timestamp"),
                            signature: h("webhook-signature"),
                            body: String::from_utf8(body.to_vec()).unwrap(),
                        });
                        StatusCode::from_u16(status.load(Ordering::SeqCst)).unwrap()
                    },
                )
                .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, got, status }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn all(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Distinct events received (by `webhook-id`) of type `t`.
    pub fn of_type(&self, t: &str) -> Vec<Received> {
        let mut seen = std::collections::HashSet::new();
        self.all()
            .into_iter()
            .filter(|r| r.json()["type"] == t && seen.insert(r.id.clone()))
            .collect()
    }
}

/// Whether a request's signature is right, as the Standard Webhooks spec defines it.
pub fn signature_ok(secret: &str, r: &Received) -> bool {
    let (Some(key), Some(sig)) = (
        secret
            .strip_prefix("whsec_")
            .and_then(|k| STANDARD.decode(k).ok()),
        r.signature
            .strip_prefix("v1,")
            .and_then(|s| STANDARD.decode(s).ok()),
    ) else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    let signed = format!("{}.{}.{}", r.id, r.timestamp, r.body);
    ring::hmac::verify(&key, signed.as_bytes(), &sig).is_ok()
}

/// Asserts [`signature_ok`] and the event id's form.
#[track_caller]
pub fn verify(secret: &str, r: &Received) {
    assert!(signature_ok(secret, r), "bad signature: {r:?}");
    assert!(r.id.starts_with("msg_"), "{}", r.id);
}

fn allowing(c: &mut Config) {
    c.webhooks.allow_private_destinations = true;
    c.webhooks.poll_interval_ms = 100;
}

async fn workspace(s: &TestServer) -> String {
    let me = s.get("/v1/me").await;
    me.body["data"]["workspace"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn create_hook(s: &TestServer, ws: &str, body: Value) -> (String, String) {
    let r = s.post(&format!("/v1/workspaces/{ws}/webhooks"), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    (
        r.body["data"]["id"].as_str().unwrap().to_string(),
        r.body["data"]["secret"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn internal_destinations_and_bad_input_are_refused() {
    let s = TestServer::start_with(|c| c.webhooks.max_endpoints_per_workspace = 1).await;
    let ws = workspace(&s).await;
    let path = format!("/v1/workspaces/{ws}/webhooks");
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://[::1]:9/hook",
        "http://[::ffff:127.0.0.1]:9/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[fd00::1]/hook",
        "ftp://1.1.1.1/hook",
        "not a url",
    ] {
        let r = s.post(&path, json!({ "url": url })).await;
        r.assert_error(400, "bad_request");
    }
    let long = format!("https://1.1.1.1/{}", "a".repeat(2100));
    s.post(&path, json!({ "url": long }))
        .await
        .assert_error(400, "bad_request");
    s.post(
        &path,
        json!({ "url": "https://1.1.1.1/h", "events": ["database.nope"] }),
    )
    .await
    .assert_error(400, "bad_request");
    // A public address literal is accepted (nothing is sent until an event happens)...
    let (id, secret) = create_hook(&s, &ws, json!({ "url": "https://1.1.1.1/h" })).await;
    assert!(id.starts_with("whk_"), "{id}");
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert!(STANDARD.decode(&secret[6..]).unwrap().len() >= 24);
    // ...and one is the most this server allows.
    s.post(&path, json!({ "url": "https://1.1.1.1/2" }))
        .await
        .assert_error(400, "bad_request");
    // Another workspace's list is not this credential's.
    let other = s.get("/v1/workspaces/wksp_nope/webhooks").await;
    assert!(other.status == 404 || other.status == 401, "{}", other.body);
    let list = s.get(&path).await;
    assert_eq!(
        list.body["data"].as_array().unwrap().len(),
        1,
        "{}",
        list.body
    );
    assert!(list.body["data"][0].get("secret").is_none());
    assert_eq!(list.body["data"][0]["state"], "enabled");
    assert_eq!(s.delete(&format!("{path}/{id}")).await.status, 204);
    assert_eq!(s.delete(&format!("{path}/{id}")).await.status, 404);
    s.stop().await;
}

#[tokio::test]
async fn events_are_signed_delivered_and_the_secret_is_sealed() {
    let s = TestServer::start_with(allowing).await;
    let ws = workspace(&s).await;
    let rx = Receiver::start(204).await;
    let (hook, secret) = create_hook(
        &s,
        &ws,
        json!({ "url": rx.url("/hook"), "events": ["service_token.created", "service_token.deleted"] }),
    )
    .await;
    let t = s
        .post(
            &format!("/v1/workspaces/{ws}/service-tokens"),
            json!({"name": "ci"}),
        )
        .await;
    assert_eq!(t.status, 201, "{}", t.body);
    let token_id = t.body["data"]["id"].as_str().unwrap().to_string();
    let token_value = t.body["data"]["value"].as_str().unwrap().to_string();
    assert_eq!(
        s.delete(&format!("/v1/workspaces/{ws}/service-tokens/{token_id}"))
            .await
            .status,
        204
    );
    eventually("both token events arrive", || async {
        rx.of_type("service_token.created").len() == 1
            && rx.of_type("service_token.deleted").len() == 1
    })
    .await;
    for r in rx.all() {
        verify(&secret, &r);
        let body = r.json();
        assert!(body["timestamp"].is_string(), "{body}");
        assert_eq!(body["data"]["id"], token_id.as_str(), "{body}");
    }
    let created = &rx.of_type("service_token.created")[0].json();
    assert_eq!(created["data"]["name"], "ci", "{created}");
    assert!(
        !created.to_string().contains(&token_value),
        "no token value in events"
    );
    // Not subscribed: no project event went there.
    assert!(rx.of_type("project.transferred").is_empty());

    // Attempts are visible; the last attempt is on the endpoint.
    eventually("deliveries recorded", || async {
        let d = s
            .get(&format!("/v1/workspaces/{ws}/webhooks/{hook}/deliveries"))
            .await;
        d.body["data"].as_array().is_some_and(|a| {
            a.len() == 2
                && a.iter()
                    .all(|x| x["status"] == "delivered" && x["attempts"] == 1)
        })
    })
    .await;
    let list = s.get(&format!("/v1/workspaces/{ws}/webhooks")).await;
    assert_eq!(
        list.body["data"][0]["lastAttempt"]["statusCode"], 204,
        "{}",
        list.body
    );

    // The secret is in no column of the metadata store, as given or as its raw bytes.
    let raw = STANDARD.decode(&secret[6..]).unwrap();
    let dump: Vec<(String,)> = sqlx::query_as(
        "SELECT row_to_json(e)::text FROM webhook_endpoints e
         UNION ALL SELECT row_to_json(v)::text FROM webhook_events v
         UNION ALL SELECT row_to_json(d)::text FROM webhook_deliveries d",
    )
    .fetch_all(s.services().store().pool())
    .await
    .unwrap();
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    for (row,) in &dump {
        assert!(!row.contains("whsec_"), "{row}");
        assert!(!row.contains(&secret[6..]), "{row}");
        assert!(!row.contains(&hex), "{row}");
    }
    let metrics = s.metrics().await;
    assert!(
        metrics.contains("pgfleet_webhook_attempts_total{outcome=\"delivered\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("pgfleet_webhook_backlog"), "{metrics}");
    s.stop().await;
}

#[tokio::test]
async fn a_failing_endpoint_is_retried_with_backoff_then_disabled() {
    let s = TestServer::start_with(|c| {
        allowing(c);
        c.webhooks.base_backoff_secs = 0.2;
        c.webhooks.max_backoff_secs = 1;
        c.webhooks.disable_after_secs = 3;
    })
    .await;
    let ws = workspace(&s).await;
    let failing = Receiver::start(500).await;
    let healthy = Receiver::start(200).await;
    let (bad, bad_secret) = create_hook(&s, &ws, json!({ "url": failing.url("/bad") })).await;
    let (_, good_secret) = create_hook(&s, &ws, json!({ "url": healthy.url("/good") })).await;
    let t = s
        .post(
            &format!("/v1/workspaces/{ws}/service-tokens"),
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(t.status, 201, "{}", t.body);
    eventually("the failing endpoint is disabled", || async {
        let l = s.get(&format!("/v1/workspaces/{ws}/webhooks")).await;
        l.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["id"] == bad.as_str() && w["state"] == "disabled")
    })
    .await;
    // Every retry carried the same event id, each signed.
    let tries = failing.all();
    assert!(tries.len() >= 3, "retried: {}", tries.len());
    assert!(tries.iter().all(|r| r.id == tries[0].id));
    tries.iter().for_each(|r| verify(&bad_secret, r));
    // The healthy endpoint got the event once and then heard of the disabling.
    eventually("webhook.disabled arrives", || async {
        healthy.of_type("webhook.disabled").len() == 1
    })
    .await;
    let disabled = healthy.of_type("webhook.disabled")[0].json();
    assert_eq!(disabled["data"]["id"], bad.as_str(), "{disabled}");
    healthy.all().iter().for_each(|r| verify(&good_secret, r));
    assert_eq!(healthy.of_type("service_token.created").len(), 1);
    let d = s
        .get(&format!("/v1/workspaces/{ws}/webhooks/{bad}/deliveries"))
        .await;
    let first = &d.body["data"][0];
    assert_eq!(first["status"], "failed", "{}", d.body);
    assert!(first["attempts"].as_i64().unwrap() >= 3, "{}", d.body);
    assert_eq!(first["lastStatusCode"], 500, "{}", d.body);
    // Disabled: nothing more is sent to it.
    let before = failing.all().len();
    let t2 = s
        .post(
            &format!("/v1/workspaces/{ws}/service-tokens"),
            json!({"name": "y"}),
        )
        .await;
    assert_eq!(t2.status, 201);
    eventually("the healthy endpoint gets the second token", || async {
        healthy.of_type("service_token.created").len() == 2
    })
    .await;
    assert_eq!(failing.all().len(), before);
    s.stop().await;
}

/// The id of the workspace's only endpoint.
async fn rx_hook(s: &TestServer, ws: &str) -> String {
    let l = s.get(&format!("/v1/workspaces/{ws}/webhooks")).await;
    l.body["data"][0]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn two_replicas_deliver_every_event() {
    let shared = |metadata: Option<String>| {
        move |c: &mut Config| {
            allowing(c);
            c.oauth.key_encryption_key = Some(Secret::new("webhooks replicas test secret"));
            c.backups.shared_dir = true;
            c.webhooks.base_backoff_secs = 0.5;
            if let Some(db) = metadata {
                c.metadata.url = Some(Secret::new(crate::harness::cluster().url(&db)));
            }
        }
    };
    let a = TestServer::start_with(shared(None)).await;
    let b = TestServer::start_with(shared(Some(a.metadata_db()))).await;
    let ws = workspace(&a).await;
    // The receiver fails at first: every event is retried, by whichever replica claims it.
    let rx = Receiver::start(503).await;
    let (_, secret) = create_hook(&a, &ws, json!({ "url": rx.url("/h") })).await;
    const N: usize = 12;
    for i in 0..N {
        let path = format!("/v1/workspaces/{ws}/service-tokens");
        let body = json!({"name": format!("t{i}")});
        let t = if i % 2 == 0 {
            a.post(&path, body).await
        } else {
            crate::harness::send_as(&b, &a.token, reqwest::Method::POST, &path, body).await
        };
        assert_eq!(t.status, 201, "{}", t.body);
    }
    eventually("the first attempts fail", || async {
        rx.of_type("service_token.created").len() == N
    })
    .await;
    rx.status.store(200, Ordering::SeqCst);
    let delivered = || async {
        let d = a
            .get(&format!(
                "/v1/workspaces/{ws}/webhooks/{}/deliveries",
                rx_hook(&a, &ws).await
            ))
            .await;
        d.body["data"]
            .as_array()
            .is_some_and(|l| l.len() == N && l.iter().all(|x| x["status"] == "delivered"))
    };
    eventually("every event is delivered", delivered).await;
    rx.all().iter().for_each(|r| verify(&secret, r));
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn internal_destinations_are_refused_at_delivery_too() {
    // Created by a server that allows internal destinations; delivered by one that does not
    // (the same store and key-encryption key): the attempts fail, nothing reaches loopback.
    let on = |metadata: Option<String>, allow: bool| {
        move |c: &mut Config| {
            c.webhooks.allow_private_destinations = allow;
            c.webhooks.poll_interval_ms = 100;
            c.oauth.key_encryption_key = Some(Secret::new("webhooks ssrf test secret"));
            c.backups.shared_dir = true;
            if let Some(db) = metadata {
                c.metadata.url = Some(Secret::new(crate::harness::cluster().url(&db)));
            }
        }
    };
    let a = TestServer::start_with(on(None, true)).await;
    let ws = workspace(&a).await;
    let rx = Receiver::start(200).await;
    let by_name = format!("http://localhost:{}/name", rx.addr.port());
    let (h1, _) = create_hook(&a, &ws, json!({ "url": by_name })).await;
    let (h2, _) = create_hook(&a, &ws, json!({ "url": rx.url("/literal") })).await;
    let (token, metadata) = (a.token.clone(), a.metadata_db());
    a.stop().await;

    let b = TestServer::start_with(on(Some(metadata), false)).await;
    let t = crate::harness::send_as(
        &b,
        &token,
        reqwest::Method::POST,
        &format!("/v1/workspaces/{ws}/service-tokens"),
        json!({"name": "ssrf"}),
    )
    .await;
    assert_eq!(t.status, 201, "{}", t.body);
    for hook in [&h1, &h2] {
        eventually("the attempt is refused", || async {
            let d = crate::harness::send_as(
                &b,
                &token,
                reqwest::Method::GET,
                &format!("/v1/workspaces/{ws}/webhooks/{hook}/deliveries"),
                Value::Null,
            )
            .await;
            d.body["data"][0]["lastError"]
                .as_str()
                .is_some_and(|e| e.contains("internal"))
                && d.body["data"][0]["status"] == "pending"
                && d.body["data"][0]["lastStatusCode"].is_null()
        })
        .await;
    }
    assert!(rx.all().is_empty(), "nothing reached the loopback receiver");
    b.stop().await;
}
