//! Bad input at the edges, as an attacker sends it over HTTP: bodies that are not JSON (every
//! body-taking operation of the published route table answers `unsupported_media_type` —
//! `415`, or the operation's listed input error where it lists no 415 — and does nothing), names
//! with control, bidirectional-override or zero-width characters (`400` in every name field,
//! nothing stored), and another workspace's service tokens (`404`, like every other
//! cross-workspace read).

use std::collections::HashMap;

use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Digest as _;

use crate::browser::{bootstrap, Browser};
use crate::harness::{send_as, Resp, TestServer};

/// Right-to-left override, zero-width space, BEL.
const HIDDEN: [char; 3] = ['\u{202E}', '\u{200B}', '\u{0007}'];

/// The ids a test's requests point at: one of each kind, all real.
struct Ids {
    workspace: String,
    project: String,
    database: String,
    connection: String,
    token: String,
}

async fn fixtures(s: &TestServer) -> Ids {
    let me = s.get("/v1/me").await;
    let workspace = me.body["data"]["workspace"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let p = s.post("/v1/projects", json!({"name": "edges"})).await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    let project = p.body["data"]["id"].as_str().unwrap().to_string();
    let database = p.body["data"]["database"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let c = s
        .post(
            &format!("/v1/databases/{database}/connections"),
            json!({"name": "app"}),
        )
        .await;
    assert!(c.status.is_success(), "{}", c.body);
    let connection = c.body["data"]["id"].as_str().unwrap().to_string();
    let t = s
        .post(
            &format!("/v1/workspaces/{workspace}/service-tokens"),
            json!({"name": "ci"}),
        )
        .await;
    assert_eq!(t.status, StatusCode::CREATED, "{}", t.body);
    let token = t.body["data"]["id"].as_str().unwrap().to_string();
    Ids {
        workspace,
        project,
        database,
        connection,
        token,
    }
}

/// A path of the OpenAPI document with every `{parameter}` replaced by a real id.
fn concrete(path: &str, ids: &Ids) -> String {
    let mut out = Vec::new();
    let mut previous = "";
    for seg in path.split('/') {
        let value = match seg {
            "{id}" => match previous {
                "projects" => ids.project.as_str(),
                "databases" => ids.database.as_str(),
                "connections" => ids.connection.as_str(),
                "workspaces" => ids.workspace.as_str(),
                _ => "itgr_unknown",
            },
            "{workspaceId}" => ids.workspace.as_str(),
            "{projectId}" => ids.project.as_str(),
            "{databaseId}" | "{targetDatabaseId}" => ids.database.as_str(),
            "{serviceTokenId}" => ids.token.as_str(),
            s if s.starts_with('{') => "itgr_unknown",
            s => s,
        };
        out.push(value);
        previous = seg;
    }
    out.join("/")
}

/// What a body that is not JSON answers on `method path`: 415, or the operation's input
/// error where the contract lists no 415 (`pgfleet_http::statuses::fit`), keeping the code.
fn refused_media_status(method: &Method, path: &str) -> u16 {
    pgfleet_http::statuses::operation(method, path)
        .and_then(|o| pgfleet_http::statuses::fit(StatusCode::UNSUPPORTED_MEDIA_TYPE, o.statuses))
        .map_or(415, |(s, _)| s.as_u16())
}

#[tokio::test]
async fn every_body_taking_operation_refuses_other_media_types() {
    let s = TestServer::start().await;
    let ids = fixtures(&s).await;
    let doc = s.get("/v1/doc").await;
    assert_eq!(doc.status, StatusCode::OK);

    // Every write operation of the route table: the ones with a JSON body, and the ones
    // without (a body they would ignore is refused the same way).
    let mut ops: Vec<(Method, String, bool)> = Vec::new();
    for (path, item) in doc.body["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let method = match method.as_str() {
                "post" => Method::POST,
                "patch" => Method::PATCH,
                "put" => Method::PUT,
                "delete" => Method::DELETE,
                _ => continue,
            };
            // And the document says so, under the status it answers.
            let refused = refused_media_status(&method, path);
            assert!(
                op["responses"].get(refused.to_string()).is_some(),
                "{method} {path} does not document {refused}"
            );
            ops.push((method, path.clone(), op.get("requestBody").is_some()));
        }
    }
    let with_body = ops.iter().filter(|(_, _, b)| *b).count();
    assert!(with_body >= 11, "{ops:?}");
    assert!(ops.len() >= 19, "{ops:?}");

    let body = json!({"name": "x", "displayName": "x", "projectId": ids.project}).to_string();
    for (method, path, _) in &ops {
        let url = format!("{}{}", s.base, concrete(path, &ids));
        for content_type in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            None,
        ] {
            let mut req = s
                .http
                .request(method.clone(), &url)
                .bearer_auth(&s.token)
                .body(body.clone());
            if let Some(ct) = content_type {
                req = req.header("content-type", ct);
            }
            let r = Resp::from(req.send().await.unwrap()).await;
            r.assert_error(refused_media_status(method, path), "unsupported_media_type");
            assert!(
                r.body["error"]["hint"]
                    .as_str()
                    .is_some_and(|h| h.contains("application/json")),
                "{method} {path}: {}",
                r.body
            );
        }
        // A declared non-JSON type refuses even without a body.
        let r = Resp::from(
            s.http
                .request(method.clone(), &url)
                .bearer_auth(&s.token)
                .header("content-type", "text/plain")
                .send()
                .await
                .unwrap(),
        )
        .await;
        r.assert_error(refused_media_status(method, path), "unsupported_media_type");
    }

    // Nothing happened: the project, its database, the connection and the token are all still
    // there and unchanged, and no other project was made.
    let projects = s.get("/v1/projects").await;
    let list = projects.body["data"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{}", projects.body);
    assert_eq!(list[0]["name"], "edges");
    let c = s.get(&format!("/v1/connections/{}", ids.connection)).await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.body);
    let tokens = s
        .get(&format!("/v1/workspaces/{}/service-tokens", ids.workspace))
        .await;
    let names: Vec<&Value> = tokens.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["name"])
        .collect();
    assert!(names.contains(&&json!("ci")), "{}", tokens.body);

    // JSON in its usual spellings still works, and an optional body may still be left out.
    let r = Resp::from(
        s.req(Method::PATCH, &format!("/v1/projects/{}", ids.project))
            .header("content-type", "application/json; charset=utf-8")
            .body(r#"{"name":"renamed"}"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = Resp::from(s.req(Method::POST, "/v1/projects").send().await.unwrap()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = Resp::from(
        s.req(
            Method::POST,
            &format!("/v1/connections/{}/rotate", ids.connection),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    s.stop().await;
}

/// An OAuth access token (`workspace:admin`) of the bootstrap admin, the only credential that
/// may create workspaces.
async fn oauth_access_token(s: &TestServer, ws: &str) -> String {
    const REDIRECT: &str = "http://127.0.0.1:9/callback";
    const VERIFIER: &str = "an-edges-test-pkce-code-verifier-of-more-than-43-characters-0123";
    let user = s.get("/v1/me").await.body["data"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let member = s
        .services()
        .access()
        .console(&user, ws)
        .await
        .unwrap()
        .unwrap();
    let app = s
        .services()
        .oauth()
        .client_create(
            &member.workspace_wide_write().unwrap(),
            "Edges",
            None,
            &[REDIRECT.to_string()],
            false,
        )
        .await
        .unwrap();
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(VERIFIER.as_bytes()));
    let q: HashMap<String, String> = [
        ("response_type", "code"),
        ("client_id", app.client.id.as_str()),
        ("redirect_uri", REDIRECT),
        ("scope", "workspace:admin"),
        ("state", "s"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let req = s.services().oauth().authorize_check(&q).await.unwrap();
    let url = s.services().oauth().approve(&user, &req, ws).await.unwrap();
    let code = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .to_string();
    let r = Resp::from(
        s.http
            .post(format!("{}/token", s.base))
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", app.client.id.as_str()),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["access_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn names_with_hidden_characters_are_refused_everywhere() {
    let s = TestServer::start().await;
    let ids = fixtures(&s).await;
    let oauth = oauth_access_token(&s, &ids.workspace).await;
    let (password, _) = bootstrap(&s);
    let mut b = Browser::new(&s);
    let r = b
        .sign_in("admin@pgfleet.localhost", &password, "/apps")
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let apps_url = format!("/console/w/{}/apps", ids.workspace);
    let csrf = b.get(&apps_url).await.input("csrf_token");

    for c in HIDDEN {
        let name = format!("invoice{c}fdp.exe");
        let cp = format!("U+{:04X}", u32::from(c));
        let (p, d, w) = (&ids.project, &ids.database, &ids.workspace);
        let api: Vec<(&str, Method, String, Value)> = vec![
            (
                "project",
                Method::POST,
                "/v1/projects".into(),
                json!({"name": name}),
            ),
            (
                "project logicalId",
                Method::POST,
                "/v1/projects".into(),
                json!({"name": "ok", "logicalId": name}),
            ),
            (
                "project rename",
                Method::PATCH,
                format!("/v1/projects/{p}"),
                json!({"name": name}),
            ),
            (
                "database",
                Method::POST,
                "/v1/databases".into(),
                json!({"projectId": p, "name": name}),
            ),
            (
                "project database",
                Method::POST,
                format!("/v1/projects/{p}/databases"),
                json!({"name": name}),
            ),
            (
                "database rename",
                Method::PATCH,
                format!("/v1/databases/{d}"),
                json!({"name": name}),
            ),
            (
                "connection",
                Method::POST,
                "/v1/connections".into(),
                json!({"databaseId": d, "name": name}),
            ),
            (
                "database connection",
                Method::POST,
                format!("/v1/databases/{d}/connections"),
                json!({"name": name}),
            ),
            (
                "service token",
                Method::POST,
                format!("/v1/workspaces/{w}/service-tokens"),
                json!({"name": name}),
            ),
        ];
        for (what, method, path, body) in api {
            let r = send_as(&s, &s.token, method, &path, body).await;
            // These two operations list 422, not 400, in the contract.
            if what == "project rename" || what == "service token" {
                r.assert_error(422, "validation_error");
            } else {
                r.assert_error(400, "bad_request");
            }
            let message = r.body["error"]["message"].as_str().unwrap();
            assert!(message.contains(&cp), "{what}: {message}");
            assert!(
                !message.contains(c),
                "{what}: the message repeats the character"
            );
        }
        // Workspaces (an OAuth credential may create them).
        send_as(
            &s,
            &oauth,
            Method::POST,
            "/v1/workspaces",
            json!({"displayName": name}),
        )
        .await
        .assert_error(400, "bad_request");

        // OAuth apps (the pages): name and description.
        for (field_name, field_desc) in [(name.as_str(), "fine"), ("fine", name.as_str())] {
            let r = b
                .post(
                    &apps_url,
                    &[
                        ("csrf_token", &csrf),
                        ("name", field_name),
                        ("description", field_desc),
                        ("redirect_uris", "http://127.0.0.1:9/cb"),
                        ("client_type", "public"),
                    ],
                )
                .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
            assert!(r.body.contains(&cp), "{}", r.body);
        }
        // Members: a new user's e-mail address.
        let r = b
            .post(
                &format!("/console/w/{w}/members/users"),
                &[
                    ("csrf_token", &csrf),
                    ("email", &format!("eve{c}@example.com")),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    }

    // Nothing with a hidden character was stored.
    let hidden = |v: &Value| {
        v.to_string().chars().any(|ch| HIDDEN.contains(&ch)) || v.to_string().contains("\\u0007")
    };
    for path in [
        "/v1/projects".to_string(),
        "/v1/databases".to_string(),
        "/v1/connections".to_string(),
        format!("/v1/workspaces/{}/service-tokens", ids.workspace),
    ] {
        let r = s.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        assert!(!hidden(&r.body), "{path}: {}", r.body);
    }
    let r = send_as(&s, &oauth, Method::GET, "/v1/workspaces", Value::Null).await;
    assert!(!hidden(&r.body), "{}", r.body);
    assert_eq!(
        s.get(&format!("/v1/projects/{}", ids.project)).await.body["data"]["name"],
        "edges"
    );
    let apps = b.get(&apps_url).await;
    assert!(!apps.body.contains("invoice"), "{}", apps.body);

    s.stop().await;
}

#[tokio::test]
async fn another_workspaces_service_tokens_are_not_found() {
    let s = TestServer::start().await;
    let ids = fixtures(&s).await;
    // A second workspace with a token of its own, made by the same user over OAuth.
    let oauth = oauth_access_token(&s, &ids.workspace).await;
    let other = send_as(
        &s,
        &oauth,
        Method::POST,
        "/v1/workspaces",
        json!({"displayName": "Other"}),
    )
    .await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.body);
    let other_ws = other.body["data"]["id"].as_str().unwrap().to_string();
    let user = s.get("/v1/me").await.body["data"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let their_token = s
        .services()
        .tokens()
        .create(
            &s.services()
                .access()
                .console(&user, &other_ws)
                .await
                .unwrap()
                .unwrap()
                .workspace_wide_write()
                .unwrap(),
            &other_ws,
            "theirs",
            None,
            &pgfleet_domain::TokenScope::full(),
        )
        .await
        .unwrap()
        .token
        .id;

    // The bootstrap token belongs to the first workspace: the second one's tokens, the
    // workspace itself and a workspace that does not exist all answer the same `not_found`
    // (the token list as 401: its operation lists no 404, see `pgfleet_http::statuses`).
    for ws in [other_ws.as_str(), "wksp_doesnotexist"] {
        s.get(&format!("/v1/workspaces/{ws}/service-tokens"))
            .await
            .assert_error(401, "not_found");
        s.get(&format!("/v1/workspaces/{ws}/service-tokens?limit=1"))
            .await
            .assert_error(401, "not_found");
        s.get(&format!("/v1/workspaces/{ws}"))
            .await
            .assert_error(404, "not_found");
        s.post(
            &format!("/v1/workspaces/{ws}/service-tokens"),
            json!({"name": "x"}),
        )
        .await
        .assert_error(404, "not_found");
    }
    s.delete(&format!(
        "/v1/workspaces/{other_ws}/service-tokens/{their_token}"
    ))
    .await
    .assert_error(404, "not_found");
    // Its own list still answers.
    let mine = s
        .get(&format!("/v1/workspaces/{}/service-tokens", ids.workspace))
        .await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    assert!(!mine.body.to_string().contains(&their_token));

    s.stop().await;
}
