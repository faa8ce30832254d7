//! The core of the API over real HTTP and real PostgreSQL: projects, databases, connections,
//! transfer and regions, and what a user relies on when connecting to the databases they get
//! (TLS, ownership of what they create, tenant isolation, rotation and deletion of
//! credentials).

use std::collections::HashSet;
use std::time::Duration;

use pgfleet::config::{RegionConfig, Secret};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio_postgres::error::SqlState;

use crate::harness::{cluster, connect_tls, psql, Resp, TestServer};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A server whose `us-east-1` region is the shared test cluster.
async fn start() -> TestServer {
    TestServer::start().await
}

#[track_caller]
fn text(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
        .to_string()
}

async fn patch(s: &TestServer, path: &str, body: Value) -> Resp {
    Resp::from(s.req(Method::PATCH, path).json(&body).send().await.unwrap()).await
}

/// A request with another bearer token.
async fn send_as(
    s: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Resp {
    let mut r = s
        .http
        .request(method, format!("{}{path}", s.base))
        .bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    Resp::from(r.send().await.unwrap()).await
}

/// A POST with a raw body and `Content-Type: application/json`.
async fn post_raw(s: &TestServer, path: &str, body: &str) -> Resp {
    Resp::from(
        s.req(Method::POST, path)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn my_workspace(s: &TestServer) -> String {
    text(&s.get("/v1/me").await.body["data"]["workspace"]["id"])
}

/// `POST /v1/projects` that must succeed; returns `data`.
async fn create_project(s: &TestServer, body: Value) -> Value {
    let r = s.post("/v1/projects", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["data"].clone()
}

/// A project with its default database; returns (project id, database id, connection id,
/// connection string).
async fn project_with_db(s: &TestServer, name: &str) -> (String, String, String, String) {
    let p = create_project(s, json!({ "name": name })).await;
    let db = &p["database"];
    assert_eq!(db["status"], "ready", "{p}");
    (
        text(&p["id"]),
        text(&db["id"]),
        text(&db["defaultConnectionId"]),
        text(&db["connectionString"]),
    )
}

/// The parts of a `postgresql://user:pass@host:port/db?sslmode=require` string.
struct ConnParts {
    user: String,
    password: String,
    host: String,
    port: u16,
    dbname: String,
}

fn parts(conn: &str) -> ConnParts {
    let u = url::Url::parse(conn).unwrap_or_else(|e| panic!("{conn}: {e}"));
    assert!(
        u.scheme() == "postgresql" || u.scheme() == "postgres",
        "{conn}"
    );
    assert!(
        u.query_pairs()
            .any(|(k, v)| k == "sslmode" && v == "require"),
        "connection strings ask for TLS: {conn}"
    );
    ConnParts {
        user: u.username().to_string(),
        password: u.password().unwrap_or_default().to_string(),
        host: u.host_str().unwrap_or_default().to_string(),
        port: u.port().unwrap_or(5432),
        dbname: u.path().trim_start_matches('/').to_string(),
    }
}

/// The same connection string with another database name.
fn with_db(conn: &str, db: &str) -> String {
    let mut u = url::Url::parse(conn).unwrap();
    u.set_path(&format!("/{db}"));
    u.to_string()
}

/// The same connection string with another password.
fn with_password(conn: &str, password: &str) -> String {
    let mut u = url::Url::parse(conn).unwrap();
    u.set_password(Some(password)).unwrap();
    u.to_string()
}

async fn pg_database_exists(name: &str) -> bool {
    cluster()
        .admin("postgres")
        .await
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .unwrap()
        .is_some()
}

async fn pg_role_exists(name: &str) -> bool {
    cluster()
        .admin("postgres")
        .await
        .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&name])
        .await
        .unwrap()
        .is_some()
}

/// Connecting must fail with this SQLSTATE.
#[track_caller]
fn assert_refused(
    r: Result<tokio_postgres::Client, tokio_postgres::Error>,
    code: &SqlState,
    what: &str,
) {
    match r {
        Ok(_) => panic!("{what}: the connection was accepted"),
        Err(e) => assert_eq!(e.code(), Some(code), "{what}: {e:?}"),
    }
}

/// A statement must fail with this SQLSTATE.
#[track_caller]
fn assert_sql_error<T: std::fmt::Debug>(
    r: Result<T, tokio_postgres::Error>,
    code: &SqlState,
    what: &str,
) {
    match r {
        Ok(v) => panic!("{what}: succeeded with {v:?}"),
        Err(e) => assert_eq!(e.code(), Some(code), "{what}: {e:?}"),
    }
}

/// Whether a session is ended (a query on it fails) within a few seconds.
async fn session_ends(c: &tokio_postgres::Client) -> bool {
    for _ in 0..50 {
        if c.simple_query("SELECT 1").await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn scalar_string(c: &tokio_postgres::Client, sql: &str) -> String {
    c.query_one(sql, &[]).await.unwrap().get(0)
}

/// A second workspace and a service token of it, written straight to the metadata store.
async fn second_workspace(s: &TestServer) -> (String, String) {
    let value = "pgfst_second_workspace_token_for_tests_000000";
    let ws = s
        .workspace_with_token("secondworkspace", "Second", value)
        .await;
    (ws, value.to_string())
}

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|x| text(&x["id"]))
        .collect()
}

/// A connection as lists and reads show it: no password anywhere.
#[track_caller]
fn assert_no_secret(c: &Value) {
    assert_eq!(c["type"], "connection", "{c}");
    assert_eq!(c["directConnection"], Value::Null, "{c}");
    let direct = &c["endpoints"]["direct"];
    assert!(direct["host"].is_string(), "{c}");
    assert!(direct.get("connectionString").is_none(), "{c}");
    for k in ["connectionString", "pass", "user", "host"] {
        assert!(c.get(k).is_none(), "{k} in {c}");
    }
}

// ---------------------------------------------------------------------------------------
// 1. Projects
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn projects_create_read_rename_and_refuse_bad_input() {
    let s = start().await;
    let ws = my_workspace(&s).await;

    // Default: the project and its default database, ready, with credentials shown once.
    let r = s
        .post(
            "/v1/projects",
            json!({"name": "alpha", "logicalId": "alpha-1"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let p = r.body["data"].clone();
    let pid = text(&p["id"]);
    assert!(pid.starts_with("proj_"), "{pid}");
    assert_eq!(p["type"], "project");
    assert_eq!(p["name"], "alpha");
    assert_eq!(p["logicalId"], "alpha-1");
    assert_eq!(p["defaultRegion"], "us-east-1");
    assert_eq!(p["url"], format!("{}/v1/projects/{pid}", s.base));
    assert_eq!(p["workspace"]["id"], ws.as_str());
    let db = &p["database"];
    let dbid = text(&db["id"]);
    assert!(dbid.starts_with("db_"), "{dbid}");
    assert_eq!(db["type"], "database");
    assert_eq!(db["status"], "ready");
    assert_eq!(db["isDefault"], true);
    assert_eq!(db["region"]["id"], "us-east-1");
    assert_eq!(db["source"], json!({"type": "empty"}));
    let conns = db["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 1, "{db}");
    assert_eq!(db["defaultConnectionId"], conns[0]["id"]);
    let conn_string = text(&db["connectionString"]);
    assert_eq!(
        conns[0]["endpoints"]["direct"]["connectionString"],
        conn_string.as_str()
    );
    let cp = parts(&conn_string);
    assert_eq!(cp.host, "localhost");
    assert_eq!(cp.port, cluster().port);
    assert_eq!(conns[0]["endpoints"]["direct"]["port"], cluster().port);
    assert_eq!(db["directConnection"]["user"], cp.user.as_str());
    assert_eq!(db["directConnection"]["pass"], cp.password.as_str());
    assert_eq!(
        db["directConnection"]["host"],
        format!("localhost:{}", cluster().port)
    );
    assert_eq!(db["apiKeys"][0]["connectionString"], conn_string.as_str());
    assert!(cp.password.len() >= 32, "a strong password");
    // The database really exists and answers.
    let c = connect_tls(&conn_string).await.expect("connect");
    assert_eq!(
        scalar_string(&c, "SELECT current_database()::text").await,
        cp.dbname
    );

    // Shown once: reads carry no password.
    let got = s.get(&format!("/v1/databases/{dbid}")).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    assert_no_secret(&got.body["data"]["connections"][0]);
    assert!(
        !got.body.to_string().contains(&cp.password),
        "the password is shown once only"
    );
    let got = s.get(&format!("/v1/projects/{pid}")).await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(got.body["data"].get("database").is_none(), "{}", got.body);
    let mut expected = p.clone();
    expected.as_object_mut().unwrap().remove("database");
    assert_eq!(got.body["data"], expected);

    // createDatabase: false.
    let bare = create_project(&s, json!({"name": "bare", "createDatabase": false})).await;
    assert_eq!(bare["database"], Value::Null);
    assert!(bare.as_object().unwrap().contains_key("database"));
    let bare_id = text(&bare["id"]);
    let dbs = s.get(&format!("/v1/projects/{bare_id}/databases")).await;
    assert_eq!(dbs.body["data"], json!([]));
    // No name: a default one.
    let unnamed = create_project(&s, json!({"createDatabase": false})).await;
    assert!(!text(&unnamed["name"]).is_empty());
    // workspaceId of the caller's own workspace is fine.
    let own = create_project(
        &s,
        json!({"name": "own", "createDatabase": false, "workspaceId": ws}),
    )
    .await;
    assert_eq!(own["workspace"]["id"], ws.as_str());

    // List in creation order.
    let list = s.get("/v1/projects").await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(
        ids(&list.body),
        vec![
            pid.clone(),
            bare_id.clone(),
            text(&unnamed["id"]),
            text(&own["id"])
        ]
    );
    assert_eq!(
        list.body["pagination"],
        json!({"nextCursor": null, "hasMore": false})
    );
    assert!(list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x.get("database").is_none()));
    let by_logical = s.get("/v1/projects?logicalId=alpha-1").await;
    assert_eq!(ids(&by_logical.body), vec![pid.clone()]);
    let by_logical = s.get("/v1/projects?logicalId=nothing").await;
    assert_eq!(by_logical.body["data"], json!([]));

    // Rename.
    let r = patch(&s, &format!("/v1/projects/{pid}"), json!({"name": "beta"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["name"], "beta");
    assert_eq!(r.body["data"]["id"], pid.as_str());
    assert_eq!(
        s.get(&format!("/v1/projects/{pid}")).await.body["data"]["name"],
        "beta"
    );
    patch(&s, &format!("/v1/projects/{pid}"), json!({"name": ""}))
        .await
        .assert_error(422, "validation_error");
    patch(&s, &format!("/v1/projects/{pid}"), json!({"name": "   "}))
        .await
        .assert_error(422, "validation_error");
    // 422, not 400: the operation lists 422 only.
    patch(&s, &format!("/v1/projects/{pid}"), json!({"nome": "x"}))
        .await
        .assert_error(422, "validation_error");
    patch(&s, "/v1/projects/proj_doesnotexist", json!({"name": "x"}))
        .await
        .assert_error(404, "not_found");
    assert_eq!(
        s.get(&format!("/v1/projects/{pid}")).await.body["data"]["name"],
        "beta"
    );

    // logicalId taken.
    let r = s
        .post(
            "/v1/projects",
            json!({"name": "dup", "logicalId": "alpha-1"}),
        )
        .await;
    r.assert_error(409, "conflict");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("alpha-1"));

    // Regions: unknown, and known but unavailable; both say which ones are available.
    let r = s
        .post(
            "/v1/projects",
            json!({"name": "x", "region": "mars-north-1"}),
        )
        .await;
    r.assert_error(400, "bad_request");
    assert!(
        r.body["error"]["hint"]
            .as_str()
            .is_some_and(|h| h.contains("us-east-1")),
        "{}",
        r.body
    );
    let r = s
        .post(
            "/v1/projects",
            json!({"name": "x", "region": "eu-central-1"}),
        )
        .await;
    r.assert_error(400, "bad_request");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("eu-central-1"));
    assert!(
        r.body["error"]["hint"]
            .as_str()
            .is_some_and(|h| h.contains("us-east-1") && !h.contains("eu-central-1")),
        "{}",
        r.body
    );

    // Malformed bodies.
    let r = post_raw(&s, "/v1/projects", "{\"name\": ").await;
    r.assert_error(400, "bad_request");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));
    let r = s.post("/v1/projects", json!({"nam": "x"})).await;
    r.assert_error(400, "bad_request");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("nam"));
    s.post("/v1/projects", json!({"name": 5}))
        .await
        .assert_error(400, "bad_request");
    s.post("/v1/projects", json!({"createDatabase": "yes"}))
        .await
        .assert_error(400, "bad_request");

    // Unknown ids, other workspaces.
    s.get("/v1/projects/proj_doesnotexist")
        .await
        .assert_error(404, "not_found");
    s.delete("/v1/projects/proj_doesnotexist")
        .await
        .assert_error(404, "not_found");
    // `POST /v1/projects` lists no 404: a workspace the credential cannot see is 401 with
    // the code `not_found` (see `pgfleet_http::statuses`).
    let (other_ws, other_token) = second_workspace(&s).await;
    s.post(
        "/v1/projects",
        json!({"name": "elsewhere", "workspaceId": other_ws}),
    )
    .await
    .assert_error(401, "not_found");
    s.post(
        "/v1/projects",
        json!({"name": "elsewhere", "workspaceId": "wksp_doesnotexist"}),
    )
    .await
    .assert_error(401, "not_found");
    // The other workspace does not see these projects.
    let theirs = send_as(&s, &other_token, Method::GET, "/v1/projects", None).await;
    assert_eq!(theirs.body["data"], json!([]));
    send_as(
        &s,
        &other_token,
        Method::GET,
        &format!("/v1/projects/{pid}"),
        None,
    )
    .await
    .assert_error(404, "not_found");

    // None of the refused requests created anything.
    assert_eq!(
        s.get("/v1/projects").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(ids(&s.get("/v1/databases").await.body), vec![dbid]);
    s.stop().await;
}

// ---------------------------------------------------------------------------------------
// 2. Pagination
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn projects_paginate_250_in_creation_order() {
    let s = start().await;
    let mut created = Vec::new();
    for i in 0..250 {
        let p = create_project(
            &s,
            json!({"name": format!("p{i:03}"), "createDatabase": false}),
        )
        .await;
        created.push(text(&p["id"]));
    }
    let mut seen: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut sizes = Vec::new();
    loop {
        let q = match &cursor {
            Some(c) => format!("/v1/projects?limit=100&cursor={c}"),
            None => "/v1/projects?limit=100".to_string(),
        };
        let r = s.get(&q).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let data = r.body["data"].as_array().unwrap().clone();
        sizes.push(data.len());
        seen.extend(data);
        if r.body["pagination"]["hasMore"] == false {
            assert_eq!(r.body["pagination"]["nextCursor"], Value::Null);
            break;
        }
        assert_eq!(r.body["pagination"]["hasMore"], true);
        cursor = Some(text(&r.body["pagination"]["nextCursor"]));
        assert!(sizes.len() < 10, "pagination does not end");
    }
    assert_eq!(sizes, vec![100, 100, 50]);
    let seen_ids: Vec<String> = seen.iter().map(|p| text(&p["id"])).collect();
    assert_eq!(seen_ids, created, "every project once, in creation order");
    assert_eq!(seen_ids.iter().collect::<HashSet<_>>().len(), 250);
    assert_eq!(seen[0]["name"], "p000");
    assert_eq!(seen[249]["name"], "p249");
    // Default page size is 100.
    let first = s.get("/v1/projects").await;
    assert_eq!(first.body["data"].as_array().unwrap().len(), 100);
    assert_eq!(first.body["pagination"]["hasMore"], true);

    // Bad cursors and limits.
    for q in [
        "/v1/projects?limit=0",
        "/v1/projects?limit=101",
        "/v1/projects?limit=-1",
        "/v1/projects?limit=ten",
        "/v1/projects?cursor=garbage!",
        "/v1/projects?cursor=bm90LWEtY3Vyc29y",
        "/v1/databases?limit=0",
        "/v1/databases?cursor=garbage!",
        "/v1/connections?limit=500",
        "/v1/connections?cursor=garbage!",
    ] {
        let r = s.get(q).await;
        r.assert_error(400, "bad_request");
        assert!(r.body["error"]["hint"].is_string(), "{q}: {}", r.body);
    }
    let pid = &created[0];
    s.get(&format!("/v1/projects/{pid}/databases?limit=0"))
        .await
        .assert_error(400, "bad_request");
    s.get(&format!("/v1/projects/{pid}/databases?cursor=xyz!"))
        .await
        .assert_error(400, "bad_request");
    s.stop().await;
}

// ---------------------------------------------------------------------------------------
// 3. Databases
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn databases_create_list_rename_delete_really_drop() {
    let s = start().await;
    let (pid, default_db, _default_conn, default_cs) = project_with_db(&s, "shop").await;

    // Through the project path: credentials in the response.
    let r = s
        .post(
            &format!("/v1/projects/{pid}/databases"),
            json!({"name": "second"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let second = r.body["data"].clone();
    let second_id = text(&second["id"]);
    assert!(second_id.starts_with("db_"));
    assert_eq!(second["name"], "second");
    assert_eq!(second["status"], "ready");
    assert_eq!(second["isDefault"], false);
    assert_eq!(second["project"]["id"], pid.as_str());
    assert_eq!(second["project"]["name"], "shop");
    assert_eq!(
        second["region"],
        json!({"id": "us-east-1", "name": "US East (N. Virginia)"})
    );
    let second_cs = text(&second["connectionString"]);
    assert_eq!(second["connections"].as_array().unwrap().len(), 1);
    assert_eq!(
        second["connections"][0]["endpoints"]["direct"]["connectionString"],
        second_cs.as_str()
    );
    let second_parts = parts(&second_cs);
    assert_ne!(second_parts.dbname, parts(&default_cs).dbname);
    assert_ne!(second_parts.user, parts(&default_cs).user);
    let c = connect_tls(&second_cs).await.expect("connect to second");
    c.batch_execute("CREATE TABLE things (id int)")
        .await
        .unwrap();
    drop(c);

    // Through /v1/databases, region inherit.
    let r = s
        .post(
            "/v1/databases",
            json!({"projectId": pid, "name": "third", "region": "inherit"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let third = r.body["data"].clone();
    let third_id = text(&third["id"]);
    assert_eq!(third["isDefault"], false);
    assert_eq!(third["status"], "ready");
    assert_eq!(third["region"]["id"], "us-east-1");
    assert_eq!(third["project"]["id"], pid.as_str());
    // Its default connection's credentials are in the response, once.
    let third_cs = text(&third["connections"][0]["endpoints"]["direct"]["connectionString"]);
    let c = connect_tls(&third_cs).await.expect("connect to third");
    c.simple_query("SELECT 1").await.unwrap();
    drop(c);
    // No name: named after the project.
    let r = s
        .post(&format!("/v1/projects/{pid}/databases"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let fourth_id = text(&r.body["data"]["id"]);
    assert!(!text(&r.body["data"]["name"]).is_empty());

    // Refusals.
    let r = s
        .post(
            &format!("/v1/projects/{pid}/databases"),
            json!({"isDefault": true}),
        )
        .await;
    r.assert_error(400, "bad_request");
    // Sources that do not exist (cloning and restoring work: see backups.rs).
    s.post(
        &format!("/v1/projects/{pid}/databases"),
        json!({"source": {"type": "database", "databaseId": "db_doesnotexist"}}),
    )
    .await
    .assert_error(404, "not_found");
    s.post(
        &format!("/v1/projects/{pid}/databases"),
        json!({"fromDatabase": {"id": "db_doesnotexist"}}),
    )
    .await
    .assert_error(404, "not_found");
    s.post(
        "/v1/databases",
        json!({"projectId": pid, "source": {"type": "backup", "databaseId": default_db, "backupId": "bkp_nope"}}),
    )
    .await
    .assert_error(404, "not_found");
    s.post(
        &format!("/v1/projects/{pid}/databases"),
        json!({"source": {"type": "empty"}, "fromDatabase": {"id": default_db}}),
    )
    .await
    .assert_error(400, "bad_request");
    s.post(
        "/v1/databases",
        json!({"projectId": pid, "fromDatabase": {"id": default_db}}),
    )
    .await
    .assert_error(400, "bad_request");
    let r = s
        .post(
            &format!("/v1/projects/{pid}/databases"),
            json!({"region": "ap-southeast-1"}),
        )
        .await;
    r.assert_error(400, "bad_request");
    assert!(r.body["error"]["hint"]
        .as_str()
        .is_some_and(|h| h.contains("us-east-1")));
    s.post(
        &format!("/v1/projects/{pid}/databases"),
        json!({"region": "nowhere"}),
    )
    .await
    .assert_error(400, "bad_request");
    s.post("/v1/databases", json!({"name": "orphan"}))
        .await
        .assert_error(400, "bad_request");
    s.post("/v1/databases", json!({"projectId": "proj_doesnotexist"}))
        .await
        .assert_error(404, "not_found");
    s.post("/v1/projects/proj_doesnotexist/databases", json!({}))
        .await
        .assert_error(404, "not_found");
    s.post(
        &format!("/v1/projects/{pid}/databases"),
        json!({"nmae": "x"}),
    )
    .await
    .assert_error(400, "bad_request");

    // Lists and reads.
    let all = vec![
        default_db.clone(),
        second_id.clone(),
        third_id.clone(),
        fourth_id.clone(),
    ];
    let by_query = s.get(&format!("/v1/databases?projectId={pid}")).await;
    assert_eq!(by_query.status, StatusCode::OK);
    assert_eq!(ids(&by_query.body), all);
    let by_path = s.get(&format!("/v1/projects/{pid}/databases")).await;
    assert_eq!(ids(&by_path.body), all);
    assert_eq!(ids(&s.get("/v1/databases").await.body), all);
    for d in by_path.body["data"].as_array().unwrap() {
        assert_eq!(d["project"]["id"], pid.as_str());
        for c in d["connections"].as_array().unwrap() {
            assert_no_secret(c);
        }
    }
    // Paged by 2.
    let page1 = s
        .get(&format!("/v1/projects/{pid}/databases?limit=2"))
        .await;
    assert_eq!(ids(&page1.body), all[..2].to_vec());
    let cursor = text(&page1.body["pagination"]["nextCursor"]);
    let page2 = s
        .get(&format!(
            "/v1/projects/{pid}/databases?limit=2&cursor={cursor}"
        ))
        .await;
    assert_eq!(ids(&page2.body), all[2..].to_vec());
    assert_eq!(page2.body["pagination"]["hasMore"], false);
    let other = create_project(&s, json!({"name": "other", "createDatabase": false})).await;
    let other_id = text(&other["id"]);
    assert_eq!(
        s.get(&format!("/v1/databases?projectId={other_id}"))
            .await
            .body["data"],
        json!([])
    );
    s.get("/v1/projects/proj_doesnotexist/databases")
        .await
        .assert_error(404, "not_found");

    let got = s.get(&format!("/v1/databases/{second_id}")).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["data"]["name"], "second");
    assert_eq!(
        got.body["data"]["url"],
        format!("{}/v1/databases/{second_id}", s.base)
    );
    s.get("/v1/databases/db_doesnotexist")
        .await
        .assert_error(404, "not_found");

    // Rename.
    let r = patch(
        &s,
        &format!("/v1/databases/{second_id}"),
        json!({"name": "renamed"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["name"], "renamed");
    assert_eq!(
        s.get(&format!("/v1/databases/{second_id}")).await.body["data"]["name"],
        "renamed"
    );
    patch(
        &s,
        &format!("/v1/databases/{second_id}"),
        json!({"name": ""}),
    )
    .await
    .assert_error(400, "bad_request");
    patch(&s, "/v1/databases/db_doesnotexist", json!({"name": "x"}))
        .await
        .assert_error(404, "not_found");

    // The default database cannot be deleted on its own.
    s.delete(&format!("/v1/databases/{default_db}"))
        .await
        .assert_error(403, "forbidden");
    assert!(pg_database_exists(&parts(&default_cs).dbname).await);

    // Deleting another one drops its Postgres database and roles.
    assert!(pg_database_exists(&second_parts.dbname).await);
    assert!(pg_role_exists(&second_parts.user).await);
    assert!(pg_role_exists(&format!("{}_owner", second_parts.dbname)).await);
    let r = s.delete(&format!("/v1/databases/{second_id}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert!(!pg_database_exists(&second_parts.dbname).await);
    assert!(!pg_role_exists(&second_parts.user).await);
    assert!(!pg_role_exists(&format!("{}_owner", second_parts.dbname)).await);
    s.get(&format!("/v1/databases/{second_id}"))
        .await
        .assert_error(404, "not_found");
    s.delete(&format!("/v1/databases/{second_id}"))
        .await
        .assert_error(404, "not_found");
    assert_refused(
        connect_tls(&second_cs).await,
        &SqlState::INVALID_PASSWORD,
        "credentials of a deleted database",
    );

    // The project cannot go while non-default databases remain; the hint names them.
    let r = s.delete(&format!("/v1/projects/{pid}")).await;
    r.assert_error(400, "bad_request");
    let hint = r.body["error"]["hint"].as_str().unwrap_or_default();
    assert!(
        hint.contains(&third_id) && hint.contains(&fourth_id),
        "{}",
        r.body
    );
    assert_eq!(
        s.get(&format!("/v1/projects/{pid}")).await.status,
        StatusCode::OK
    );
    assert!(connect_tls(&default_cs).await.is_ok());

    for id in [&third_id, &fourth_id] {
        let r = s.delete(&format!("/v1/databases/{id}")).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    }
    let default_parts = parts(&default_cs);
    let r = s.delete(&format!("/v1/projects/{pid}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    s.get(&format!("/v1/projects/{pid}"))
        .await
        .assert_error(404, "not_found");
    s.get(&format!("/v1/databases/{default_db}"))
        .await
        .assert_error(404, "not_found");
    assert!(!pg_database_exists(&default_parts.dbname).await);
    assert!(!pg_role_exists(&default_parts.user).await);
    assert!(!pg_role_exists(&format!("{}_owner", default_parts.dbname)).await);
    assert_eq!(
        ids(&s.get("/v1/databases").await.body),
        Vec::<String>::new()
    );
    s.delete(&format!("/v1/projects/{pid}"))
        .await
        .assert_error(404, "not_found");
    // A project without databases goes at once.
    assert_eq!(
        s.delete(&format!("/v1/projects/{other_id}")).await.status,
        StatusCode::NO_CONTENT
    );
    s.get(&format!("/v1/projects/{other_id}"))
        .await
        .assert_error(404, "not_found");
    s.stop().await;
}

// ---------------------------------------------------------------------------------------
// 4. Connecting
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn connection_string_works_over_tls_with_tokio_postgres_and_psql() {
    let s = start().await;
    let (_pid, dbid, _cid, cs) = project_with_db(&s, "app").await;
    let cp = parts(&cs);
    let owner = format!("{}_owner", cp.dbname);

    let c = connect_tls(&cs).await.expect("connect over TLS");
    c.batch_execute(
        "CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL);
         INSERT INTO notes VALUES (1, 'hello'), (2, 'world');",
    )
    .await
    .unwrap();
    let rows = c
        .query("SELECT id, body FROM notes ORDER BY id", &[])
        .await
        .unwrap();
    let got: Vec<(i32, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        got,
        vec![(1, "hello".to_string()), (2, "world".to_string())]
    );
    let who = c
        .query_one("SELECT session_user::text, current_user::text", &[])
        .await
        .unwrap();
    assert_eq!(
        who.get::<_, String>(0),
        cp.user,
        "session_user is the connection's role"
    );
    assert_eq!(
        who.get::<_, String>(1),
        owner,
        "sessions act as the database owner"
    );
    assert_eq!(
        scalar_string(
            &c,
            "SELECT tableowner::text FROM pg_tables WHERE tablename = 'notes'"
        )
        .await,
        owner,
        "what a connection creates belongs to the database"
    );
    // The session is encrypted (seen by the superuser: a session acting as the owner role
    // does not see its own login role's rows in pg_stat_*).
    let ssl: Vec<bool> = cluster()
        .admin("postgres")
        .await
        .query(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.usename = $1",
            &[&cp.user],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ssl, vec![true], "the session is encrypted");

    // A second connection of the same database reads, writes and alters the table.
    let r = s
        .post(
            &format!("/v1/databases/{dbid}/connections"),
            json!({"name": "worker"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let cs2 = text(&r.body["data"]["connectionString"]);
    let c2 = connect_tls(&cs2).await.expect("connect second connection");
    assert_ne!(
        scalar_string(&c2, "SELECT session_user::text").await,
        cp.user
    );
    assert_eq!(scalar_string(&c2, "SELECT current_user::text").await, owner);
    c2.batch_execute(
        "INSERT INTO notes VALUES (3, 'from worker');
         ALTER TABLE notes ADD COLUMN tag text;
         UPDATE notes SET tag = 'x' WHERE id = 1;
         CREATE TABLE worker_table (v int); INSERT INTO worker_table VALUES (42);",
    )
    .await
    .unwrap();
    let n: i64 = c
        .query_one("SELECT count(*) FROM notes WHERE tag IS NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
    let v: i32 = c
        .query_one("SELECT v FROM worker_table", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, 42);
    c.batch_execute("DROP TABLE worker_table").await.unwrap();

    // psql, with the string exactly as returned.
    let (ok, out, err) = psql(
        &cs,
        "INSERT INTO notes (id, body) VALUES (4, 'psql'); SELECT string_agg(body, ',' ORDER BY id) FROM notes",
    )
    .await;
    assert!(ok, "psql failed: {err}");
    assert_eq!(
        out.lines().last().unwrap_or_default(),
        "hello,world,from worker,psql"
    );
    let (ok, out, err) = psql(
        &cs2,
        "SELECT session_user = current_user; SET ROLE NONE; SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    .await;
    assert!(ok, "psql failed: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"f"), "{out}");
    assert_eq!(lines.last(), Some(&"t"), "TLS: {out}");

    // Plain TCP without TLS is refused by the server, with the right password too.
    let mut plain: tokio_postgres::Config = cs.parse().unwrap();
    plain
        .ssl_mode(tokio_postgres::config::SslMode::Disable)
        .connect_timeout(Duration::from_secs(5));
    match plain.connect(tokio_postgres::NoTls).await {
        Ok(_) => panic!("a plain TCP connection was accepted"),
        Err(e) => assert_eq!(
            e.code(),
            Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION),
            "{e:?}"
        ),
    }
    let plain_cs = cs.replace("sslmode=require", "sslmode=disable");
    let (ok, _, err) = psql(&plain_cs, "SELECT 1").await;
    assert!(!ok, "psql without TLS was accepted");
    assert!(
        err.contains("no encryption") || err.contains("rejects"),
        "{err}"
    );
    // A wrong password is refused.
    assert_refused(
        connect_tls(&with_password(&cs, "not-the-password")).await,
        &SqlState::INVALID_PASSWORD,
        "wrong password",
    );
    s.stop().await;
}

// ---------------------------------------------------------------------------------------
// 5. Tenant isolation
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn tenants_are_isolated_from_each_other_and_the_server() {
    let s = start().await;
    let (_pa, _dba, _ca, cs_a) = project_with_db(&s, "tenant-a").await;
    let (_pb, _dbb, _cb, cs_b) = project_with_db(&s, "tenant-b").await;
    let a = parts(&cs_a);
    let b = parts(&cs_b);
    let owner_a = format!("{}_owner", a.dbname);
    let owner_b = format!("{}_owner", b.dbname);

    let cb = connect_tls(&cs_b).await.expect("connect B");
    cb.batch_execute("CREATE TABLE secret (v text); INSERT INTO secret VALUES ('b-only')")
        .await
        .unwrap();

    // A's credentials open A's database only.
    assert_refused(
        connect_tls(&with_db(&cs_a, &b.dbname)).await,
        &SqlState::INSUFFICIENT_PRIVILEGE,
        "A's role into B's database",
    );
    assert_refused(
        connect_tls(&with_db(&cs_a, "postgres")).await,
        &SqlState::INSUFFICIENT_PRIVILEGE,
        "A's role into the postgres database",
    );
    assert_refused(
        connect_tls(&with_db(&cs_a, "template1")).await,
        &SqlState::INSUFFICIENT_PRIVILEGE,
        "A's role into template1",
    );
    let metadata_db: String = sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(s.services().store().pool())
        .await
        .unwrap();
    assert_refused(
        connect_tls(&with_db(&cs_a, &metadata_db)).await,
        &SqlState::INSUFFICIENT_PRIVILEGE,
        "A's role into pgfleet's metadata database",
    );
    // B's user with A's password.
    let mut b_user_a_pass = url::Url::parse(&cs_b).unwrap();
    b_user_a_pass.set_password(Some(&a.password)).unwrap();
    assert_refused(
        connect_tls(b_user_a_pass.as_str()).await,
        &SqlState::INVALID_PASSWORD,
        "B's user with A's password",
    );

    let ca = connect_tls(&cs_a).await.expect("connect A");
    // B's tables are not visible from A (catalogs are per database).
    let n: i64 = ca
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE tablename = 'secret'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    assert_sql_error(
        ca.simple_query("SELECT * FROM secret").await,
        &SqlState::UNDEFINED_TABLE,
        "B's table from A",
    );
    assert!(ca
        .simple_query(&format!("SELECT * FROM \"{}\".public.secret", b.dbname))
        .await
        .is_err());

    // No privileged actions.
    assert_sql_error(
        ca.simple_query("CREATE ROLE intruder LOGIN PASSWORD 'x'")
            .await,
        &SqlState::INSUFFICIENT_PRIVILEGE,
        "CREATE ROLE",
    );
    assert_sql_error(
        ca.simple_query("CREATE DATABASE intruder").await,
        &SqlState::INSUFFICIENT_PRIVILEGE,
        "CREATE DATABASE",
    );
    assert_sql_error(
        ca.simple_query(&format!("SET ROLE \"{owner_b}\"")).await,
        &SqlState::INSUFFICIENT_PRIVILEGE,
        "SET ROLE to B's owner",
    );
    assert_sql_error(
        ca.simple_query("SET ROLE postgres").await,
        &SqlState::INSUFFICIENT_PRIVILEGE,
        "SET ROLE postgres",
    );
    assert_sql_error(
        ca.simple_query(&format!("GRANT \"{owner_b}\" TO \"{}\"", a.user))
            .await,
        &SqlState::INSUFFICIENT_PRIVILEGE,
        "GRANT B's owner to A",
    );
    assert_sql_error(
        ca.simple_query("ALTER SYSTEM SET work_mem = '1GB'").await,
        &SqlState::INSUFFICIENT_PRIVILEGE,
        "ALTER SYSTEM",
    );
    assert_sql_error(
        ca.simple_query("COPY (SELECT 1) TO '/tmp/pgfleet-escape'")
            .await,
        &SqlState::INSUFFICIENT_PRIVILEGE,
        "COPY TO a server file",
    );
    let who = ca
        .query_one("SELECT session_user::text, current_user::text", &[])
        .await
        .unwrap();
    assert_eq!(who.get::<_, String>(0), a.user);
    assert_eq!(who.get::<_, String>(1), owner_a);
    let rows = ca
        .query(
            "SELECT rolname::text, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls
               FROM pg_roles WHERE rolname IN (session_user, current_user) ORDER BY rolname",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "session_user and current_user rows");
    for r in &rows {
        let name: String = r.get(0);
        for i in 1..=5 {
            assert!(!r.get::<_, bool>(i), "{name}: privileged attribute #{i}");
        }
    }
    let member_of_privileged: i64 = ca
        .query_one(
            "SELECT count(*) FROM pg_roles r
              WHERE r.rolname IN ('pg_read_server_files', 'pg_write_server_files',
                                  'pg_execute_server_program', 'pg_read_all_data',
                                  'pg_write_all_data', 'pg_signal_backend', 'postgres')
                AND pg_has_role(session_user, r.oid, 'MEMBER')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(member_of_privileged, 0);
    // Acting as itself (SET ROLE NONE) the login role is unprivileged too.
    ca.batch_execute("SET ROLE NONE").await.unwrap();
    assert_eq!(
        scalar_string(&ca, "SELECT current_user::text").await,
        a.user
    );
    assert_sql_error(
        ca.simple_query("CREATE DATABASE intruder2").await,
        &SqlState::INSUFFICIENT_PRIVILEGE,
        "CREATE DATABASE as the login role",
    );

    // PUBLIC has no CONNECT on tenant databases (checked as superuser).
    let admin = cluster().admin("postgres").await;
    for db in [&a.dbname, &b.dbname] {
        let public_connect: bool = admin
            .query_one(
                "SELECT has_database_privilege('public', $1, 'CONNECT')",
                &[db],
            )
            .await
            .unwrap()
            .get(0);
        assert!(!public_connect, "PUBLIC may connect to {db}");
        let grantees: Vec<String> = admin
            .query(
                "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END
                   FROM pg_database d, aclexplode(d.datacl) a
                  WHERE d.datname = $1 AND a.privilege_type = 'CONNECT' AND a.grantee <> d.datdba",
                &[db],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(grantees, vec![format!("{db}_owner")], "CONNECT on {db}");
        // The database belongs to pgfleet's superuser: its limits are not the tenant's.
        let owner_is_super: bool = admin
            .query_one(
                "SELECT r.rolsuper FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE d.datname = $1",
                &[db],
            )
            .await
            .unwrap()
            .get(0);
        assert!(owner_is_super, "{db} is owned by the tenant");
    }
    for db in ["postgres", metadata_db.as_str()] {
        let public_connect: bool = admin
            .query_one(
                "SELECT has_database_privilege('public', $1, 'CONNECT')",
                &[&db],
            )
            .await
            .unwrap()
            .get(0);
        assert!(!public_connect, "PUBLIC may connect to {db}");
    }
    s.stop().await;
}

// ---------------------------------------------------------------------------------------
// 6. Rotate and delete credentials
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn rotate_and_delete_connection_cut_off_old_credentials_and_sessions() {
    let s = start().await;
    let (_pid, dbid, cid, cs1) = project_with_db(&s, "rotating").await;
    let p1 = parts(&cs1);

    let before = connect_tls(&cs1).await.expect("connect");
    before
        .batch_execute("CREATE TABLE kept (v int); INSERT INTO kept VALUES (1)")
        .await
        .unwrap();

    // Rotate.
    let r = s
        .post(&format!("/v1/connections/{cid}/rotate"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let d = &r.body["data"];
    assert_eq!(d["id"], cid.as_str());
    assert_eq!(d["type"], "connection");
    let cs2 = text(&d["connectionString"]);
    assert_eq!(d["endpoints"]["direct"]["connectionString"], cs2.as_str());
    let p2 = parts(&cs2);
    assert_eq!(p2.user, p1.user, "the role stays");
    assert_eq!(p2.dbname, p1.dbname);
    assert_ne!(p2.password, p1.password, "a new password");
    assert_eq!(d["pass"], p2.password.as_str());
    assert_eq!(d["user"], p2.user.as_str());
    assert_eq!(d["directConnection"]["pass"], p2.password.as_str());

    assert!(
        session_ends(&before).await,
        "a session opened with the old password survives the rotation"
    );
    let after = connect_tls(&cs2).await.expect("the new password works");
    let v: i32 = after
        .query_one("SELECT v FROM kept", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, 1, "data survives a rotation");
    assert_refused(
        connect_tls(&cs1).await,
        &SqlState::INVALID_PASSWORD,
        "the old password",
    );
    let (ok, _, err) = psql(&cs1, "SELECT 1").await;
    assert!(
        !ok && err.contains("password authentication failed"),
        "{err}"
    );
    let (ok, out, err) = psql(&cs2, "SELECT count(*) FROM kept").await;
    assert!(ok, "{err}");
    assert_eq!(out, "1");
    // Rotating twice: the second password replaces the first.
    let r = s
        .post(&format!("/v1/connections/{cid}/rotate"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let cs3 = text(&r.body["data"]["connectionString"]);
    assert!(session_ends(&after).await);
    assert_refused(
        connect_tls(&cs2).await,
        &SqlState::INVALID_PASSWORD,
        "the second password",
    );
    let default_session = connect_tls(&cs3).await.expect("the third password works");
    s.post("/v1/connections/con_doesnotexist/rotate", json!({}))
        .await
        .assert_error(404, "not_found");

    // Delete a connection: role dropped, its session ended, its data kept.
    let r = s
        .post(
            "/v1/connections",
            json!({"databaseId": dbid, "name": "temporary"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let tmp_id = text(&r.body["data"]["id"]);
    let tmp_cs = text(&r.body["data"]["connectionString"]);
    let tmp = parts(&tmp_cs);
    let tmp_session = connect_tls(&tmp_cs).await.expect("connect temporary");
    tmp_session
        .batch_execute(
            "CREATE TABLE made_by_temporary (v int); INSERT INTO made_by_temporary VALUES (7)",
        )
        .await
        .unwrap();
    assert!(pg_role_exists(&tmp.user).await);
    let r = s.delete(&format!("/v1/connections/{tmp_id}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert!(!pg_role_exists(&tmp.user).await, "the role is dropped");
    assert!(session_ends(&tmp_session).await, "its session is ended");
    assert_refused(
        connect_tls(&tmp_cs).await,
        &SqlState::INVALID_PASSWORD,
        "a deleted connection's credentials",
    );
    s.get(&format!("/v1/connections/{tmp_id}"))
        .await
        .assert_error(404, "not_found");
    s.delete(&format!("/v1/connections/{tmp_id}"))
        .await
        .assert_error(404, "not_found");
    s.post(&format!("/v1/connections/{tmp_id}/rotate"), json!({}))
        .await
        .assert_error(404, "not_found");
    // The other connection is untouched, and what the deleted one created is still there.
    let v: i32 = default_session
        .query_one("SELECT v FROM made_by_temporary", &[])
        .await
        .expect("the default connection's session is still open")
        .get(0);
    assert_eq!(v, 7);
    let conns = s.get(&format!("/v1/databases/{dbid}/connections")).await;
    assert_eq!(ids(&conns.body), vec![cid.clone()]);

    // Deleting the default connection clears defaultConnectionId.
    let r = s.delete(&format!("/v1/connections/{cid}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert!(session_ends(&default_session).await);
    assert!(!pg_role_exists(&p1.user).await);
    let db = s.get(&format!("/v1/databases/{dbid}")).await;
    assert_eq!(
        db.body["data"]["defaultConnectionId"],
        Value::Null,
        "{}",
        db.body
    );
    assert_eq!(db.body["data"]["connections"], json!([]));
    // The database itself stays.
    assert!(pg_database_exists(&p1.dbname).await);
    s.stop().await;
}

// ---------------------------------------------------------------------------------------
// 7. Connections API
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn connections_api_creates_lists_without_secrets_and_validates() {
    let s = start().await;
    let (_pid, dbid, default_cid, default_cs) = project_with_db(&s, "conns").await;
    let (_pid2, dbid2, other_cid, other_cs) = project_with_db(&s, "elsewhere").await;
    let mut passwords = vec![parts(&default_cs).password, parts(&other_cs).password];

    let r = s
        .post(
            &format!("/v1/databases/{dbid}/connections"),
            json!({"name": "reader"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let a = r.body["data"].clone();
    let a_id = text(&a["id"]);
    assert_eq!(a["type"], "connection");
    assert_eq!(a["name"], "reader");
    assert_eq!(a["kind"], "postgres");
    assert_eq!(a["url"], format!("{}/v1/connections/{a_id}", s.base));
    assert_eq!(a["database"]["id"], dbid.as_str());
    assert_eq!(a["database"]["name"], "conns");
    let a_cs = text(&a["connectionString"]);
    assert_eq!(a["endpoints"]["direct"]["connectionString"], a_cs.as_str());
    assert_eq!(a["endpoints"]["direct"]["host"], "localhost");
    assert_eq!(a["endpoints"]["direct"]["port"], cluster().port);
    let ap = parts(&a_cs);
    assert_eq!(a["user"], ap.user.as_str());
    assert_eq!(a["pass"], ap.password.as_str());
    assert_eq!(a["host"], format!("localhost:{}", cluster().port));
    assert_eq!(
        a["directConnection"],
        json!({"host": format!("localhost:{}", cluster().port), "user": ap.user, "pass": ap.password})
    );
    assert!(chrono::DateTime::parse_from_rfc3339(&text(&a["createdAt"])).is_ok());
    passwords.push(ap.password.clone());
    connect_tls(&a_cs)
        .await
        .expect("the new connection works")
        .simple_query("SELECT 1")
        .await
        .unwrap();

    let r = s
        .post(
            "/v1/connections",
            json!({"databaseId": dbid, "name": "writer"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let b_id = text(&r.body["data"]["id"]);
    let b_cs = text(&r.body["data"]["connectionString"]);
    passwords.push(parts(&b_cs).password);
    connect_tls(&b_cs).await.expect("the new connection works");

    // Lists and reads: no password anywhere.
    let all_of_db = vec![default_cid.clone(), a_id.clone(), b_id.clone()];
    let lists = [
        ("/v1/connections".to_string(), {
            let mut v = all_of_db.clone();
            v.insert(1, other_cid.clone());
            v
        }),
        (
            format!("/v1/connections?databaseId={dbid}"),
            all_of_db.clone(),
        ),
        (
            format!("/v1/databases/{dbid}/connections"),
            all_of_db.clone(),
        ),
        (
            format!("/v1/databases/{dbid2}/connections"),
            vec![other_cid.clone()],
        ),
    ];
    for (path, expected) in &lists {
        let r = s.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        assert_eq!(&ids(&r.body), expected, "{path}");
        for c in r.body["data"].as_array().unwrap() {
            assert_no_secret(c);
        }
        let raw = r.body.to_string();
        for p in &passwords {
            assert!(!raw.contains(p.as_str()), "{path} shows a password");
        }
    }
    for path in [
        format!("/v1/connections/{a_id}"),
        format!("/v1/databases/{dbid}"),
        "/v1/databases".to_string(),
        "/v1/projects".to_string(),
    ] {
        let r = s.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        let raw = r.body.to_string();
        for p in &passwords {
            assert!(!raw.contains(p.as_str()), "{path} shows a password");
        }
    }
    let one = s.get(&format!("/v1/connections/{a_id}")).await;
    assert_no_secret(&one.body["data"]);
    assert_eq!(one.body["data"]["name"], "reader");
    let db = s.get(&format!("/v1/databases/{dbid}")).await;
    let in_db: Vec<String> = db.body["data"]["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| text(&c["id"]))
        .collect();
    assert_eq!(in_db, all_of_db);
    // Paged.
    let p1 = s.get("/v1/connections?limit=2").await;
    assert_eq!(p1.body["data"].as_array().unwrap().len(), 2);
    let cursor = text(&p1.body["pagination"]["nextCursor"]);
    let p2 = s
        .get(&format!("/v1/connections?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(p2.body["data"].as_array().unwrap().len(), 2);
    assert_eq!(p2.body["pagination"]["hasMore"], false);

    // Refusals.
    s.post(
        "/v1/databases/db_doesnotexist/connections",
        json!({"name": "x"}),
    )
    .await
    .assert_error(404, "not_found");
    s.post(
        "/v1/connections",
        json!({"databaseId": "db_doesnotexist", "name": "x"}),
    )
    .await
    .assert_error(404, "not_found");
    // The contract lists only 200 and 401 here (see `pgfleet_http::statuses`).
    s.get("/v1/databases/db_doesnotexist/connections")
        .await
        .assert_error(401, "not_found");
    s.get("/v1/connections/con_doesnotexist")
        .await
        .assert_error(404, "not_found");
    s.delete("/v1/connections/con_doesnotexist")
        .await
        .assert_error(404, "not_found");
    s.post(
        &format!("/v1/databases/{dbid}/connections"),
        json!({"name": ""}),
    )
    .await
    .assert_error(400, "bad_request");
    s.post("/v1/connections", json!({"databaseId": dbid, "name": "  "}))
        .await
        .assert_error(400, "bad_request");
    s.post("/v1/connections", json!({"name": "x"}))
        .await
        .assert_error(400, "bad_request");
    s.post("/v1/connections", json!({"databaseId": dbid}))
        .await
        .assert_error(400, "bad_request");
    s.post(&format!("/v1/databases/{dbid}/connections"), json!({}))
        .await
        .assert_error(400, "bad_request");
    s.post(
        &format!("/v1/databases/{dbid}/connections"),
        json!({"name": "x", "databaseId": dbid2}),
    )
    .await
    .assert_error(400, "bad_request");
    s.post(
        &format!("/v1/databases/{dbid}/connections"),
        json!({"name": "x", "extra": 1}),
    )
    .await
    .assert_error(400, "bad_request");
    // Nothing was created by the refused requests.
    assert_eq!(
        ids(&s
            .get(&format!("/v1/databases/{dbid}/connections"))
            .await
            .body),
        all_of_db
    );
    s.stop().await;
}

// ---------------------------------------------------------------------------------------
// 8. Transfer
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn transfer_moves_project_to_recipient_workspace() {
    let s = start().await;
    let (pid, dbid, cid, cs) = project_with_db(&s, "moving").await;
    let r = s
        .post(
            &format!("/v1/databases/{dbid}/connections"),
            json!({"name": "extra"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let extra_id = text(&r.body["data"]["id"]);
    let c = connect_tls(&cs).await.expect("connect");
    c.batch_execute("CREATE TABLE cargo (v text); INSERT INTO cargo VALUES ('precious')")
        .await
        .unwrap();
    let (ws2, token2) = second_workspace(&s).await;

    // Before: invisible to the recipient.
    send_as(
        &s,
        &token2,
        Method::GET,
        &format!("/v1/projects/{pid}"),
        None,
    )
    .await
    .assert_error(404, "not_found");
    let r = send_as(
        &s,
        &token2,
        Method::POST,
        &format!("/v1/projects/{pid}/transfer"),
        Some(json!({"recipientAccessToken": s.token})),
    )
    .await;
    r.assert_error(404, "not_found");

    // Refusals.
    let r = s
        .post(
            &format!("/v1/projects/{pid}/transfer"),
            json!({"recipientAccessToken": "pgfst_not_a_real_token"}),
        )
        .await;
    r.assert_error(400, "bad_request");
    assert!(r.body["error"]["hint"].is_string());
    s.post(
        "/v1/projects/proj_doesnotexist/transfer",
        json!({"recipientAccessToken": token2}),
    )
    .await
    .assert_error(404, "not_found");
    s.post(&format!("/v1/projects/{pid}/transfer"), json!({}))
        .await
        .assert_error(400, "bad_request");
    s.post(
        &format!("/v1/projects/{pid}/transfer"),
        json!({"recipientAccessToken": 7}),
    )
    .await
    .assert_error(400, "bad_request");
    assert_eq!(
        s.get(&format!("/v1/projects/{pid}")).await.status,
        StatusCode::OK
    );

    // Transfer.
    let r = s
        .post(
            &format!("/v1/projects/{pid}/transfer"),
            json!({"recipientAccessToken": token2}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);

    // Gone for the sender.
    for path in [
        format!("/v1/projects/{pid}"),
        format!("/v1/databases/{dbid}"),
        format!("/v1/connections/{cid}"),
        format!("/v1/connections/{extra_id}"),
        format!("/v1/projects/{pid}/databases"),
    ] {
        s.get(&path).await.assert_error(404, "not_found");
    }
    // The contract lists no 404 for a database's connections: 401, code `not_found`.
    s.get(&format!("/v1/databases/{dbid}/connections"))
        .await
        .assert_error(401, "not_found");
    for path in ["/v1/projects", "/v1/databases", "/v1/connections"] {
        assert_eq!(s.get(path).await.body["data"], json!([]), "{path}");
    }
    s.post(&format!("/v1/connections/{cid}/rotate"), json!({}))
        .await
        .assert_error(404, "not_found");
    s.delete(&format!("/v1/databases/{dbid}"))
        .await
        .assert_error(404, "not_found");

    // Visible to the recipient, in its workspace.
    let p = send_as(
        &s,
        &token2,
        Method::GET,
        &format!("/v1/projects/{pid}"),
        None,
    )
    .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert_eq!(p.body["data"]["workspace"]["id"], ws2.as_str());
    assert_eq!(p.body["data"]["workspace"]["name"], "Second");
    assert_eq!(
        ids(&send_as(&s, &token2, Method::GET, "/v1/projects", None)
            .await
            .body),
        vec![pid.clone()]
    );
    assert_eq!(
        ids(&send_as(&s, &token2, Method::GET, "/v1/databases", None)
            .await
            .body),
        vec![dbid.clone()]
    );
    assert_eq!(
        ids(&send_as(
            &s,
            &token2,
            Method::GET,
            &format!("/v1/databases/{dbid}/connections"),
            None
        )
        .await
        .body),
        vec![cid.clone(), extra_id.clone()]
    );
    assert_eq!(
        send_as(
            &s,
            &token2,
            Method::GET,
            &format!("/v1/connections/{cid}"),
            None
        )
        .await
        .status,
        StatusCode::OK
    );

    // The database goes on working with its existing credentials.
    let c = connect_tls(&cs).await.expect("old credentials still work");
    assert_eq!(scalar_string(&c, "SELECT v FROM cargo").await, "precious");

    // The recipient manages it now.
    let r = send_as(
        &s,
        &token2,
        Method::DELETE,
        &format!("/v1/connections/{extra_id}"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = send_as(
        &s,
        &token2,
        Method::POST,
        &format!("/v1/projects/{pid}/databases"),
        Some(json!({"name": "new-home"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    s.stop().await;
}

// ---------------------------------------------------------------------------------------
// 9. Idempotency on a provisioning call
// ---------------------------------------------------------------------------------------

async fn post_idem(s: &TestServer, key: &str) -> Resp {
    Resp::from(
        s.req(Method::POST, "/v1/projects")
            .header("idempotency-key", key)
            .json(&json!({"name": "idem"}))
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn project_create_with_idempotency_key_provisions_once() {
    let s = start().await;
    let first = post_idem(&s, "create-idem-project").await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let second = post_idem(&s, "create-idem-project").await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.body);
    assert_eq!(
        second
            .headers
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    assert_eq!(second.body["data"]["id"], first.body["data"]["id"]);
    assert_eq!(
        second.body["data"]["database"]["id"],
        first.body["data"]["database"]["id"]
    );
    let projects = s.get("/v1/projects").await;
    assert_eq!(ids(&projects.body), vec![text(&first.body["data"]["id"])]);
    let dbs = s.get("/v1/databases").await;
    assert_eq!(
        ids(&dbs.body),
        vec![text(&first.body["data"]["database"]["id"])]
    );
    // The credentials of the replay are the real ones.
    let cs = text(&second.body["data"]["database"]["connectionString"]);
    connect_tls(&cs)
        .await
        .expect("replayed credentials work")
        .simple_query("SELECT 1")
        .await
        .unwrap();
    // Another key: another project.
    let r = Resp::from(
        s.req(Method::POST, "/v1/projects")
            .header("idempotency-key", "create-idem-project-2")
            .json(&json!({"name": "idem", "createDatabase": false}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_ne!(r.body["data"]["id"], first.body["data"]["id"]);
    assert_eq!(ids(&s.get("/v1/projects").await.body).len(), 2);
    s.stop().await;
}

// ---------------------------------------------------------------------------------------
// 10. Regions
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn regions_list_us_east_available_and_others_unavailable() {
    let s = start().await;
    let r = s.get("/v1/regions/postgres").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let data = r.body["data"].as_array().unwrap();
    let expected = [
        ("us-east-1", "US East (N. Virginia)"),
        ("us-west-1", "US West (N. California)"),
        ("eu-west-3", "Europe (Paris)"),
        ("eu-central-1", "Europe (Frankfurt)"),
        ("ap-northeast-1", "Asia Pacific (Tokyo)"),
        ("ap-southeast-1", "Asia Pacific (Singapore)"),
    ];
    assert_eq!(data.len(), expected.len(), "{}", r.body);
    for (id, name) in expected {
        let region = data
            .iter()
            .find(|x| x["id"] == id)
            .unwrap_or_else(|| panic!("{id} missing: {}", r.body));
        let status = if id == "us-east-1" {
            "available"
        } else {
            "unavailable"
        };
        assert_eq!(
            region,
            &json!({"id": id, "type": "region", "name": name, "status": status})
        );
    }

    let all = s.get("/v1/regions").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    let all_data = all.body["data"].as_array().unwrap();
    // The postgres regions, then those the prisma+postgres:// endpoint serves (on by
    // default: the available one).
    let (pg_data, accel_data): (Vec<&Value>, Vec<&Value>) =
        all_data.iter().partition(|x| x["product"] == "postgres");
    assert_eq!(pg_data.len(), expected.len());
    assert_eq!(
        accel_data,
        vec![
            &json!({"id": "us-east-1", "type": "region", "name": "US East (N. Virginia)",
                     "product": "accelerate", "status": "available"})
        ]
    );
    for x in pg_data {
        assert_eq!(x["product"], "postgres", "{x}");
        assert_eq!(x["type"], "region");
        let pg = data.iter().find(|y| y["id"] == x["id"]).unwrap();
        assert_eq!(x["status"], pg["status"]);
        assert_eq!(x["name"], pg["name"]);
    }
    let pg_only = s.get("/v1/regions?product=postgres").await;
    assert_eq!(
        pg_only.body["data"].as_array().unwrap().len(),
        expected.len()
    );
    let accelerate = s.get("/v1/regions?product=accelerate").await;
    assert_eq!(accelerate.status, StatusCode::OK);
    assert_eq!(accelerate.body["data"], json!(accel_data));
    s.get("/v1/regions?product=bogus")
        .await
        .assert_error(400, "bad_request");
    // Without a credential: 401.
    let r = Resp::from(
        s.http
            .get(format!("{}/v1/regions/postgres", s.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert_error(401, "unauthorized");
    s.stop().await;
}

// ---------------------------------------------------------------------------------------
// The region server URL as the harness writes it
// ---------------------------------------------------------------------------------------

/// `postgres://postgres@localhost/postgres?host=<socket dir>&port=<port>` means, as libpq
/// reads it, the server at that socket directory and port; its TCP listener is on the same
/// port. Connection strings must advertise that port, not 5432.
#[tokio::test]
async fn region_url_with_socket_host_advertises_the_servers_port() {
    let s = TestServer::start().await;
    let p = create_project(&s, json!({"name": "harness-url"})).await;
    let db = &p["database"];
    let cs = text(&db["connectionString"]);
    let cp = parts(&cs);
    assert_eq!(cp.host, "localhost");
    assert_eq!(cp.port, cluster().port, "advertised port of {cs}");
    assert_eq!(
        db["connections"][0]["endpoints"]["direct"]["port"],
        cluster().port
    );
    connect_tls(&cs)
        .await
        .expect("the advertised connection string works")
        .simple_query("SELECT 1")
        .await
        .unwrap();
    s.stop().await;
}

/// `GET /v1/databases/{id}` is served from a short-lived cache: every write must show at
/// once in the next read.
#[tokio::test]
async fn cached_database_reads_see_every_write_at_once() {
    let s = start().await;
    let (project_id, _db, _, _) = project_with_db(&s, "cache").await;
    let r = s
        .post(
            &format!("/v1/projects/{project_id}/databases"),
            json!({"name": "c1"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["data"]["id"].as_str().unwrap().to_string();
    let path = format!("/v1/databases/{id}");
    let read = |s: &TestServer| {
        let path = path.clone();
        let s = s.req(reqwest::Method::GET, &path);
        async move { Resp::from(s.send().await.unwrap()).await }
    };
    assert_eq!(read(&s).await.body["data"]["name"], "c1");
    assert_eq!(read(&s).await.body["data"]["name"], "c1");

    assert_eq!(
        patch(&s, &path, json!({"name": "c2"})).await.status,
        StatusCode::OK
    );
    assert_eq!(read(&s).await.body["data"]["name"], "c2");

    let c = s
        .post(&format!("{path}/connections"), json!({"name": "extra"}))
        .await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.body);
    let conn_id = c.body["data"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        read(&s).await.body["data"]["connections"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    assert_eq!(
        s.delete(&format!("/v1/connections/{conn_id}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        read(&s).await.body["data"]["connections"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    assert_eq!(s.delete(&path).await.status, StatusCode::NO_CONTENT);
    read(&s).await.assert_error(404, "not_found");
    s.stop().await;
}

/// A region with two servers: new databases go to the least loaded one.
#[tokio::test]
async fn new_databases_go_to_the_least_loaded_server() {
    let c = cluster();
    // Two entries that name the same cluster differently count as two servers.
    let a = format!(
        "postgres://postgres@localhost/postgres?host={}&port={}",
        c.socket_dir.display(),
        c.port
    );
    let b = format!(
        "postgres:///postgres?host={}&port={}&user=postgres",
        c.socket_dir.display(),
        c.port
    );
    let s = TestServer::start_with(move |cfg| {
        cfg.regions.insert(
            "us-east-1".to_string(),
            RegionConfig {
                name: None,
                servers: vec![Secret::new(a), Secret::new(b)],
            },
        );
    })
    .await;
    let p = create_project(&s, json!({"name": "spread", "createDatabase": false})).await;
    let pid = text(&p["id"]);
    for i in 0..4 {
        let r = s
            .post(
                &format!("/v1/projects/{pid}/databases"),
                json!({"name": format!("d{i}")}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.body["data"]["status"], "ready");
    }
    let counts: Vec<(Option<String>, i64)> =
        sqlx::query_as("SELECT server_id, count(*) FROM databases GROUP BY server_id ORDER BY 2")
            .fetch_all(s.services().store().pool())
            .await
            .unwrap();
    assert_eq!(counts.len(), 2, "{counts:?}");
    assert!(counts.iter().all(|(_, n)| *n == 2), "{counts:?}");
    s.stop().await;
}
