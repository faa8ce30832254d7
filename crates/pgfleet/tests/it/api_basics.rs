//! The foundation API over real HTTP: `/v1/me`, workspaces, service tokens, pagination and
//! every error shape; the absolute `url` of every resource.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{Resp, TestServer};

#[tokio::test]
async fn health_and_readiness() {
    let s = TestServer::start().await;
    let r = Resp::from(
        s.http
            .get(format!("{}/healthz", s.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = Resp::from(
        s.http
            .get(format!("{}/readyz", s.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "ready");
    assert!(r.headers.contains_key("x-request-id"));
    s.stop().await;
}

#[tokio::test]
async fn me_and_workspaces() {
    let s = TestServer::start().await;
    let me = s.get("/v1/me").await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    let d = &me.body["data"];
    assert_eq!(d["credential"]["type"], "service_token");
    assert_eq!(d["credential"]["name"], "bootstrap");
    assert!(d["credential"]["id"].as_str().unwrap().starts_with("stk_"));
    assert_eq!(d["user"]["email"], "admin@pgfleet.localhost");
    let ws_id = d["workspace"]["id"].as_str().unwrap().to_string();
    assert!(ws_id.starts_with("wksp_"));

    let list = s.get("/v1/workspaces").await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(
        list.body["pagination"],
        json!({"nextCursor": null, "hasMore": false})
    );
    let ws = &list.body["data"][0];
    assert_eq!(ws["id"], ws_id.as_str());
    assert_eq!(ws["type"], "workspace");
    assert_eq!(ws["url"], format!("{}/v1/workspaces/{ws_id}", s.base));
    let created = ws["createdAt"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(created).is_ok() && created.ends_with('Z'));
    assert_eq!(
        ws.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["createdAt", "id", "name", "type", "url"]
    );

    let one = s.get(&format!("/v1/workspaces/{ws_id}")).await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(&one.body["data"], ws);
    s.get("/v1/workspaces/wksp_doesnotexist")
        .await
        .assert_error(404, "not_found");

    // Service tokens cannot create workspaces.
    s.post("/v1/workspaces", json!({"displayName": "x"}))
        .await
        .assert_error(403, "forbidden");
    s.stop().await;
}

#[tokio::test]
async fn authentication_errors() {
    let s = TestServer::start().await;
    let url = format!("{}/v1/me", s.base);
    let r = Resp::from(s.http.get(&url).send().await.unwrap()).await;
    r.assert_error(401, "unauthorized");
    assert!(r.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));

    for bad in ["Bearer pgfst_nope", "Basic abc", "Bearer ", "garbage"] {
        let r = Resp::from(
            s.http
                .get(&url)
                .header("authorization", bad)
                .send()
                .await
                .unwrap(),
        )
        .await;
        r.assert_error(401, "authentication-failed");
        assert!(
            r.headers["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_token"),
            "{bad}"
        );
    }

    // An expired token.
    let ws = s.get("/v1/me").await.body["data"]["workspace"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let now = chrono::Utc::now();
    let value = "pgfst_expired_token_for_tests_0000000000";
    pgfleet_storage::tokens::insert(
        s.services().store().pool(),
        &pgfleet_storage::tokens::NewServiceToken {
            id: "stk_expiredtoken",
            workspace_id: &ws,
            name: "old",
            token_hash: &pgfleet_auth::hash_token(value),
            value_hint: "x",
            created_by_user_id: None,
            created_at: now - chrono::Duration::hours(2),
            expires_at: Some(now - chrono::Duration::hours(1)),
            project_id: None,
            read_only: false,
        },
    )
    .await
    .unwrap();
    let r = Resp::from(s.http.get(&url).bearer_auth(value).send().await.unwrap()).await;
    r.assert_error(401, "authentication-failed");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("expired"));
    s.stop().await;
}

#[tokio::test]
async fn routing_and_body_errors() {
    let s = TestServer::start_with(|c| c.body_limit_bytes = 4096).await;
    s.get("/v1/nothing-here")
        .await
        .assert_error(404, "not_found");
    s.get("/nothing").await.assert_error(404, "not_found");
    Resp::from(s.req(Method::DELETE, "/v1/me").send().await.unwrap())
        .await
        .assert_error(405, "method_not_allowed");
    Resp::from(s.req(Method::PUT, "/v1/workspaces").send().await.unwrap())
        .await
        .assert_error(405, "method_not_allowed");

    let ws = s.get("/v1/me").await.body["data"]["workspace"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/v1/workspaces/{ws}/service-tokens");
    // Malformed JSON says what is wrong (422: the operation lists 422 and not 400).
    let r = Resp::from(
        s.req(Method::POST, &path)
            .header("content-type", "application/json")
            .body("{\"name\": ")
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert_error(422, "validation_error");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{}",
        r.body
    );
    // Wrong shape.
    let r = s.post(&path, json!({"nome": "x"})).await;
    r.assert_error(422, "validation_error");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nome"),
        "{}",
        r.body
    );
    // Not JSON at all: the operation's input error (422; it lists no 415), code kept.
    Resp::from(
        s.req(Method::POST, &path)
            .body("name=x")
            .send()
            .await
            .unwrap(),
    )
    .await
    .assert_error(422, "unsupported_media_type");
    // Over the cap: 422 too (the operation lists no 413), code kept.
    let big = json!({ "name": "x".repeat(10_000) });
    s.post(&path, big)
        .await
        .assert_error(422, "payload_too_large");
    // Bad limit / cursor.
    s.get("/v1/workspaces?limit=0")
        .await
        .assert_error(400, "bad_request");
    s.get("/v1/workspaces?limit=101")
        .await
        .assert_error(400, "bad_request");
    s.get("/v1/workspaces?limit=abc")
        .await
        .assert_error(400, "bad_request");
    s.get("/v1/workspaces?cursor=%%%")
        .await
        .assert_error(400, "bad_request");
    let r = s.get("/v1/workspaces?cursor=bm90LWEtY3Vyc29y").await;
    r.assert_error(400, "bad_request");
    assert!(r.body["error"]["hint"].as_str().is_some());
    // Request ids are unique per response.
    let a = s.get("/v1/me").await.headers["x-request-id"].clone();
    let b = s.get("/v1/me").await.headers["x-request-id"].clone();
    assert_ne!(a, b);
    s.stop().await;
}

#[tokio::test]
async fn service_tokens_lifecycle_and_pagination() {
    let s = TestServer::start().await;
    let ws = s.get("/v1/me").await.body["data"]["workspace"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/v1/workspaces/{ws}/service-tokens");

    let r = s
        .post(
            &path,
            json!({"name": "ci", "expiresAt": "2099-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let t = &r.body["data"];
    assert_eq!(t["type"], "serviceToken");
    assert_eq!(t["expiresAt"], "2099-01-01T00:00:00.000Z");
    let value = t["value"].as_str().unwrap().to_string();
    assert!(value.starts_with("pgfst_") && value.len() >= 6 + 43);
    let id = t["id"].as_str().unwrap().to_string();

    // The new token works and sees the same workspace.
    let me = Resp::from(
        s.http
            .get(format!("{}/v1/me", s.base))
            .bearer_auth(&value)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(me.body["data"]["credential"]["id"], id.as_str());

    // Validation.
    s.post(&path, json!({"name": ""}))
        .await
        .assert_error(422, "validation_error");
    s.post(&path, json!({"name": "x", "expiresAt": "tomorrow"}))
        .await
        .assert_error(422, "validation_error");
    s.post(
        &path,
        json!({"name": "x", "expiresAt": "2001-01-01T00:00:00Z"}),
    )
    .await
    .assert_error(422, "validation_error");
    s.post(
        "/v1/workspaces/wksp_other/service-tokens",
        json!({"name": "x"}),
    )
    .await
    .assert_error(404, "not_found");
    // The contract lists only 200 and 401 here: a workspace the credential cannot see is
    // 401, with the code that says why (see `pgfleet_http::statuses`).
    s.get("/v1/workspaces/wksp_other/service-tokens")
        .await
        .assert_error(401, "not_found");

    // 250 tokens, paged by 100: every one seen once, newest first, no secrets.
    for i in 0..248 {
        let r = s.post(&path, json!({"name": format!("t{i:03}")})).await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let mut seen: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = match &cursor {
            Some(c) => format!("{path}?limit=100&cursor={c}"),
            None => format!("{path}?limit=100"),
        };
        let r = s.get(&q).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        pages += 1;
        let data = r.body["data"].as_array().unwrap().clone();
        assert!(data.iter().all(|t| t.get("value").is_none()));
        seen.extend(data);
        if r.body["pagination"]["hasMore"] == false {
            assert_eq!(r.body["pagination"]["nextCursor"], Value::Null);
            break;
        }
        cursor = Some(
            r.body["pagination"]["nextCursor"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 250);
    let ids: std::collections::HashSet<_> = seen
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 250);
    // Newest first, as the contract says.
    assert_eq!(seen[0]["name"], "t247");
    assert_eq!(seen[247]["name"], "t000");
    assert_eq!(seen[249]["name"], "bootstrap");
    // Default limit is 100.
    assert_eq!(
        s.get(&path).await.body["data"].as_array().unwrap().len(),
        100
    );

    // Delete: refused at once afterwards; a second delete is 404.
    assert_eq!(
        s.delete(&format!("{path}/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    let me = Resp::from(
        s.http
            .get(format!("{}/v1/me", s.base))
            .bearer_auth(&value)
            .send()
            .await
            .unwrap(),
    )
    .await;
    me.assert_error(401, "authentication-failed");
    s.delete(&format!("{path}/{id}"))
        .await
        .assert_error(404, "not_found");
    s.stop().await;
}

/// Every `url` in a response, nested ones included, is `{base}/v1/{collection}/{id}` of the
/// resource it sits in (http writes them, see `pgfleet_http::located`).
#[tokio::test]
async fn every_resource_url_is_absolute_and_names_its_resource() {
    fn check(base: &str, v: &Value, seen: &mut usize) {
        match v {
            Value::Object(o) => {
                if let Some(url) = o.get("url") {
                    let id = o["id"].as_str().unwrap_or_default();
                    let collection = [
                        ("wksp_", "workspaces"),
                        ("proj_", "projects"),
                        ("db_", "databases"),
                        ("con_", "connections"),
                    ]
                    .iter()
                    .find(|(prefix, _)| id.starts_with(prefix))
                    .map(|(_, c)| *c)
                    .unwrap_or_else(|| panic!("unexpected id {id:?} beside {url}"));
                    assert_eq!(url, &json!(format!("{base}/v1/{collection}/{id}")));
                    *seen += 1;
                }
                o.values().for_each(|v| check(base, v, seen));
            }
            Value::Array(a) => a.iter().for_each(|v| check(base, v, seen)),
            _ => {}
        }
    }

    let s = TestServer::start().await;
    let project = s.post("/v1/projects", json!({"name": "located"})).await;
    assert_eq!(project.status, StatusCode::CREATED, "{}", project.body);
    let pid = project.body["data"]["id"].as_str().unwrap_or_default();
    let db = project.body["data"]["database"]["id"]
        .as_str()
        .unwrap_or_default();
    let conn = s
        .post(
            &format!("/v1/databases/{db}/connections"),
            json!({"name": "c2"}),
        )
        .await;
    assert!(conn.status.is_success(), "{}", conn.body);
    let cid = conn.body["data"]["id"].as_str().unwrap_or_default();
    let mut responses = vec![project.body.clone(), conn.body.clone()];
    for path in [
        "/v1/workspaces".to_string(),
        format!("/v1/projects/{pid}"),
        "/v1/projects".to_string(),
        format!("/v1/databases/{db}"),
        format!("/v1/projects/{pid}/databases"),
        "/v1/databases".to_string(),
        format!("/v1/connections/{cid}"),
        "/v1/connections".to_string(),
        format!("/v1/databases/{db}/connections"),
    ] {
        let r = s.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        responses.push(r.body);
    }
    let rotated = s
        .post(&format!("/v1/connections/{cid}/rotate"), json!({}))
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    responses.push(rotated.body);
    let mut seen = 0;
    for r in &responses {
        check(&s.base, r, &mut seen);
    }
    // Nested ones among them (a project's workspace, a database's project, a connection's
    // database, the apiKeys): a walk that found few would prove little.
    assert!(seen >= 30, "{seen} urls");
    s.stop().await;
}
