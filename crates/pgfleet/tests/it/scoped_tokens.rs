//! Scoped service tokens (`projectId`, `readOnly`) over real HTTP: every operation of the
//! API has a decision in [`RULES`] (the list is checked against `/v1/doc`, so a new route
//! without one fails here), and each decision holds for a read-only token (reads answer,
//! every write is 403 `forbidden` and changes nothing) and for a project-scoped one (its
//! project answers, another answers 404 exactly like a missing one and is left out of
//! lists, workspace administration is 403). The escalation cases, what happens to a scoped
//! token when its project leaves, the SDK, CLI and console are in [`super::scoped_tokens_more`].

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{send_as, Resp, TestServer};

/// What a limited token may do on one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// A read of the workspace as a whole (lists are filtered to the token's project).
    WorkspaceRead,
    /// A read of one project's resource: the token's project answers, others 404.
    ProjectRead,
    /// A change inside one project: refused to read-only; others 404 to a project token.
    ProjectWrite,
    /// A read of workspace administration: refused (403) to a project token.
    AdminRead,
    /// A change at workspace level: refused (403) to read-only and project tokens.
    AdminWrite,
}
use Rule::*;

/// Every operation of `/v1/doc` and its rule. `{…}` parameters are filled by [`fill`].
const RULES: &[(&str, &str, Rule)] = &[
    ("GET", "/v1/me", WorkspaceRead),
    ("GET", "/v1/workspaces", WorkspaceRead),
    ("POST", "/v1/workspaces", AdminWrite),
    ("GET", "/v1/workspaces/{id}", WorkspaceRead),
    ("GET", "/v1/regions", WorkspaceRead),
    ("GET", "/v1/regions/postgres", WorkspaceRead),
    ("GET", "/v1/regions/accelerate", WorkspaceRead),
    ("GET", "/v1/projects", WorkspaceRead),
    ("POST", "/v1/projects", AdminWrite),
    ("GET", "/v1/projects/{id}", ProjectRead),
    ("PATCH", "/v1/projects/{id}", ProjectWrite),
    ("DELETE", "/v1/projects/{id}", AdminWrite),
    ("POST", "/v1/projects/{id}/transfer", AdminWrite),
    ("GET", "/v1/projects/{projectId}/databases", ProjectRead),
    ("POST", "/v1/projects/{projectId}/databases", ProjectWrite),
    ("GET", "/v1/databases", WorkspaceRead),
    ("POST", "/v1/databases", ProjectWrite),
    ("GET", "/v1/databases/{databaseId}", ProjectRead),
    ("PATCH", "/v1/databases/{databaseId}", ProjectWrite),
    ("DELETE", "/v1/databases/{databaseId}", ProjectWrite),
    ("GET", "/v1/databases/{databaseId}/usage", ProjectRead),
    ("GET", "/v1/databases/{databaseId}/connections", ProjectRead),
    (
        "POST",
        "/v1/databases/{databaseId}/connections",
        ProjectWrite,
    ),
    ("GET", "/v1/databases/{databaseId}/backups", ProjectRead),
    ("POST", "/v1/databases/{databaseId}/backups", ProjectWrite),
    (
        "POST",
        "/v1/databases/{targetDatabaseId}/restore",
        ProjectWrite,
    ),
    ("GET", "/v1/connections", WorkspaceRead),
    ("POST", "/v1/connections", ProjectWrite),
    ("GET", "/v1/connections/{id}", ProjectRead),
    ("DELETE", "/v1/connections/{id}", ProjectWrite),
    ("POST", "/v1/connections/{id}/rotate", ProjectWrite),
    (
        "GET",
        "/v1/workspaces/{workspaceId}/service-tokens",
        AdminRead,
    ),
    (
        "POST",
        "/v1/workspaces/{workspaceId}/service-tokens",
        AdminWrite,
    ),
    (
        "DELETE",
        "/v1/workspaces/{workspaceId}/service-tokens/{serviceTokenId}",
        AdminWrite,
    ),
    (
        "GET",
        "/v1/workspaces/{workspaceId}/integrations",
        AdminRead,
    ),
    (
        "DELETE",
        "/v1/workspaces/{workspaceId}/integrations/{clientId}",
        AdminWrite,
    ),
    ("GET", "/v1/workspaces/{workspaceId}/webhooks", AdminRead),
    ("POST", "/v1/workspaces/{workspaceId}/webhooks", AdminWrite),
    (
        "DELETE",
        "/v1/workspaces/{workspaceId}/webhooks/{webhookId}",
        AdminWrite,
    ),
    (
        "GET",
        "/v1/workspaces/{workspaceId}/webhooks/{webhookId}/deliveries",
        AdminRead,
    ),
    ("GET", "/v1/integrations", AdminRead),
    ("GET", "/v1/integrations/{id}", AdminRead),
    ("DELETE", "/v1/integrations/{id}", AdminWrite),
];

/// The ids a request is made with: one project's (or the workspace's).
struct Ids {
    workspace: String,
    project: String,
    database: String,
    connection: String,
    token: String,
    /// A live full-scope token (the recipient of a transfer).
    recipient: String,
}

/// `path` with its parameters filled from `ids`, and a valid body for the operation (so
/// that a refusal comes from the token, not from the input).
fn fill(method: &str, path: &str, ids: &Ids) -> (String, Value) {
    let by_collection = |p: &str| {
        if p.starts_with("/v1/projects/") {
            ids.project.clone()
        } else if p.starts_with("/v1/connections/") {
            ids.connection.clone()
        } else if p.starts_with("/v1/integrations/") {
            "itgr_nope".to_string()
        } else {
            ids.workspace.clone()
        }
    };
    let query = if path == "/v1/integrations" {
        format!("?workspaceId={}", ids.workspace)
    } else {
        String::new()
    };
    let url = path
        .replace("{projectId}", &ids.project)
        .replace("{databaseId}", &ids.database)
        .replace("{targetDatabaseId}", &ids.database)
        .replace("{workspaceId}", &ids.workspace)
        .replace("{serviceTokenId}", &ids.token)
        .replace("{clientId}", "cli_nope")
        .replace("{webhookId}", "whk_nope")
        .replace("{id}", &by_collection(path))
        + &query;
    let body = match (method, path) {
        ("POST", "/v1/workspaces") => json!({ "displayName": "Escalated" }),
        ("POST", "/v1/projects") => json!({ "name": "Escalated", "createDatabase": false }),
        ("PATCH", "/v1/projects/{id}") => json!({ "name": "Renamed" }),
        ("POST", "/v1/projects/{id}/transfer") => {
            json!({ "recipientAccessToken": ids.recipient })
        }
        ("POST", "/v1/projects/{projectId}/databases") => json!({ "name": "extra" }),
        ("POST", "/v1/databases") => json!({ "projectId": ids.project, "name": "extra" }),
        ("PATCH", "/v1/databases/{databaseId}") => json!({ "name": "renamed" }),
        ("POST", "/v1/databases/{databaseId}/connections") => json!({ "name": "extra" }),
        ("POST", "/v1/connections") => json!({ "databaseId": ids.database, "name": "extra" }),
        ("POST", "/v1/databases/{targetDatabaseId}/restore") => json!({
            "source": { "type": "backup", "databaseId": ids.database, "backupId": "bkp_nope" }
        }),
        ("POST", "/v1/workspaces/{workspaceId}/service-tokens") => json!({ "name": "wider" }),
        // Never reached: the token is refused before the destination is looked at.
        ("POST", "/v1/workspaces/{workspaceId}/webhooks") => {
            json!({ "url": "https://hooks.example/pgfleet" })
        }
        _ => json!({}),
    };
    (url, body)
}

async fn call(s: &TestServer, token: &str, method: &str, url: &str, body: Value) -> Resp {
    let m = Method::from_bytes(method.as_bytes()).unwrap();
    if m == Method::GET || m == Method::DELETE {
        let r = s
            .http
            .request(m, format!("{}{url}", s.base))
            .bearer_auth(token);
        return Resp::from(r.send().await.unwrap()).await;
    }
    send_as(s, token, m, url, body).await
}

/// A project with its default database; (project, database, connection).
pub(crate) async fn project(s: &TestServer, name: &str) -> (String, String, String) {
    let r = s.post("/v1/projects", json!({ "name": name })).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let d = &r.body["data"];
    assert_eq!(d["database"]["status"], "ready", "{d}");
    (
        d["id"].as_str().unwrap().to_string(),
        d["database"]["id"].as_str().unwrap().to_string(),
        d["database"]["defaultConnectionId"]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

/// Creates a service token with the full token; (id, value).
pub(crate) async fn token(s: &TestServer, ws: &str, body: Value) -> (String, String) {
    let r = s
        .post(&format!("/v1/workspaces/{ws}/service-tokens"), body)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    (
        r.body["data"]["id"].as_str().unwrap().to_string(),
        r.body["data"]["value"].as_str().unwrap().to_string(),
    )
}

/// Ids of `data` of a list answered to the full token.
async fn ids_of(s: &TestServer, path: &str) -> BTreeSet<String> {
    let r = s.get(path).await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
    r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| format!("{}:{}", x["id"], x["name"]))
        .collect()
}

/// What the workspace holds, as the full token sees it (ids and names).
async fn state(s: &TestServer, ws: &str, dbs: &[&str]) -> Vec<BTreeSet<String>> {
    let mut out = vec![
        ids_of(s, "/v1/projects").await,
        ids_of(s, "/v1/databases").await,
        ids_of(s, "/v1/connections").await,
        ids_of(s, &format!("/v1/workspaces/{ws}/service-tokens")).await,
    ];
    for db in dbs {
        out.push(ids_of(s, &format!("/v1/databases/{db}/backups")).await);
    }
    out
}

#[track_caller]
pub(crate) fn refused(r: &Resp, what: &str) {
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}: {}", r.body);
    assert_eq!(r.body["error"]["code"], "forbidden", "{what}: {}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("read-only") || m.contains("limited to project")),
        "{what}: a message for a person: {}",
        r.body
    );
}

/// `r` (another project's resource) is answered exactly as a missing one is to the full
/// token: `not_found`, with the status the operation gives it (404, or 401 where the
/// contract lists no 404, see http's `statuses`).
async fn like_missing(
    s: &TestServer,
    r: &Resp,
    method: &str,
    path: &str,
    missing: &Ids,
    what: &str,
) {
    let (url, body) = fill(method, path, missing);
    let m = call(s, &s.token, method, &url, body).await;
    assert_eq!(
        m.body["error"]["code"], "not_found",
        "{what} (missing): {}",
        m.body
    );
    assert_eq!(r.status, m.status, "{what}: {}", r.body);
    assert_eq!(r.body["error"]["code"], "not_found", "{what}: {}", r.body);
}

#[track_caller]
pub(crate) fn not_found(r: &Resp, what: &str) {
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{what}: {}", r.body);
    assert_eq!(r.body["error"]["code"], "not_found", "{what}: {}", r.body);
}

#[tokio::test]
async fn every_operation_has_a_decision_and_each_holds() {
    let s = TestServer::start().await;
    let ws = s.get("/v1/me").await.body["data"]["workspace"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // The rules cover exactly the documented operations.
    let doc = s.get("/v1/doc").await.body;
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "patch", "put", "delete"].contains(&method.as_str()) {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let ruled: BTreeSet<(String, String)> = RULES
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        documented, ruled,
        "every API operation needs a scoped-token decision in RULES"
    );

    let (pa, da, ca) = project(&s, "Alpha").await;
    let (pb, db, cb) = project(&s, "Beta").await;
    let (spare_id, _) = token(&s, &ws, json!({ "name": "spare" })).await;
    let (ro_id, ro) = token(&s, &ws, json!({ "name": "reader", "readOnly": true })).await;
    let (pt_id, pt) = token(&s, &ws, json!({ "name": "alpha-only", "projectId": pa })).await;
    let own = Ids {
        workspace: ws.clone(),
        project: pa.clone(),
        database: da.clone(),
        connection: ca.clone(),
        token: spare_id.clone(),
        recipient: s.token.clone(),
    };
    let missing = Ids {
        workspace: ws.clone(),
        project: "proj_nope".to_string(),
        database: "db_nope".to_string(),
        connection: "con_nope".to_string(),
        token: spare_id.clone(),
        recipient: s.token.clone(),
    };
    let other = Ids {
        workspace: ws.clone(),
        project: pb.clone(),
        database: db.clone(),
        connection: cb.clone(),
        token: spare_id.clone(),
        recipient: s.token.clone(),
    };

    // The token objects carry their scope, in the create answer and in the list.
    let listed = s
        .get(&format!("/v1/workspaces/{ws}/service-tokens"))
        .await
        .body;
    let find = |id: &str| {
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(find(&ro_id)["readOnly"], true);
    assert_eq!(find(&ro_id)["projectId"], Value::Null);
    assert_eq!(find(&pt_id)["projectId"], pa.as_str());
    assert_eq!(find(&pt_id)["readOnly"], false);
    assert_eq!(find(&spare_id)["readOnly"], false);
    // ... and `/v1/me` tells a credential its own limits.
    let me = call(&s, &pt, "GET", "/v1/me", json!(null)).await.body;
    assert_eq!(me["data"]["credential"]["projectId"], pa.as_str(), "{me}");
    assert_eq!(me["data"]["credential"]["readOnly"], false, "{me}");
    let me = call(&s, &ro, "GET", "/v1/me", json!(null)).await.body;
    assert_eq!(me["data"]["credential"]["projectId"], Value::Null, "{me}");
    assert_eq!(me["data"]["credential"]["readOnly"], true, "{me}");

    // Read-only: every read answers, every write is 403 and changes nothing.
    let before = state(&s, &ws, &[&da, &db]).await;
    for (method, path, rule) in RULES {
        let (url, body) = fill(method, path, &own);
        let r = call(&s, &ro, method, &url, body).await;
        let what = format!("read-only {method} {path}");
        match rule {
            WorkspaceRead | ProjectRead | AdminRead
                if *path == "/v1/integrations/{id}" || path.contains("{webhookId}") =>
            {
                not_found(&r, &what)
            }
            WorkspaceRead | ProjectRead | AdminRead => {
                assert!(r.status.is_success(), "{what}: {} {}", r.status, r.body)
            }
            ProjectWrite | AdminWrite => refused(&r, &what),
        }
    }
    assert_eq!(
        before,
        state(&s, &ws, &[&da, &db]).await,
        "read-only changed nothing"
    );

    // Project-scoped: its project answers, another is 404 (nothing changed there), the
    // workspace's administration is 403.
    for (method, path, rule) in RULES {
        let what = format!("project-scoped {method} {path}");
        match rule {
            AdminRead | AdminWrite => {
                let (url, body) = fill(method, path, &own);
                refused(&call(&s, &pt, method, &url, body).await, &what);
            }
            WorkspaceRead => {
                let (url, body) = fill(method, path, &own);
                let r = call(&s, &pt, method, &url, body).await;
                assert!(r.status.is_success(), "{what}: {} {}", r.status, r.body);
            }
            ProjectRead => {
                let (url, body) = fill(method, path, &own);
                let r = call(&s, &pt, method, &url, body).await;
                assert!(r.status.is_success(), "{what}: {} {}", r.status, r.body);
                let (url, body) = fill(method, path, &other);
                let r = call(&s, &pt, method, &url, body).await;
                like_missing(&s, &r, method, path, &missing, &what).await;
            }
            ProjectWrite => {
                let (url, body) = fill(method, path, &other);
                let r = call(&s, &pt, method, &url, body).await;
                like_missing(&s, &r, method, path, &missing, &what).await;
            }
        }
    }
    assert_eq!(before, state(&s, &ws, &[&da, &db]).await, "nothing changed");

    // Lists are filtered to the project.
    let r = send_as(&s, &pt, Method::GET, "/v1/projects", json!(null)).await;
    let projects: Vec<&str> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(projects, vec![pa.as_str()], "{}", r.body);
    for path in [
        "/v1/databases".to_string(),
        format!("/v1/databases?projectId={pb}"),
    ] {
        let r = call(&s, &pt, "GET", &path, json!(null)).await;
        for d in r.body["data"].as_array().unwrap() {
            assert_eq!(d["project"]["id"], pa.as_str(), "{path}: {}", r.body);
        }
    }
    let r = call(&s, &pt, "GET", "/v1/databases", json!(null)).await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1, "{}", r.body);
    let r = call(&s, &pt, "GET", "/v1/connections", json!(null)).await;
    let conns: Vec<&str> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(conns, vec![ca.as_str()], "{}", r.body);
    // The full token still sees both.
    let r = s.get("/v1/projects").await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 2, "{}", r.body);

    // Writes inside its own project work.
    let r = call(
        &s,
        &pt,
        "PATCH",
        &format!("/v1/projects/{pa}"),
        json!({ "name": "Alpha2" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = call(
        &s,
        &pt,
        "POST",
        &format!("/v1/databases/{da}/connections"),
        json!({ "name": "mine" }),
    )
    .await;
    assert!(r.status.is_success(), "{}", r.body);
    let mine = r.body["data"]["id"].as_str().unwrap().to_string();
    let r = call(
        &s,
        &pt,
        "POST",
        &format!("/v1/connections/{mine}/rotate"),
        json!({}),
    )
    .await;
    assert!(r.status.is_success(), "{}", r.body);
    let r = call(
        &s,
        &pt,
        "DELETE",
        &format!("/v1/connections/{mine}"),
        json!(null),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = call(
        &s,
        &pt,
        "POST",
        "/v1/databases",
        json!({ "projectId": pa, "name": "second" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let second = r.body["data"]["id"].as_str().unwrap().to_string();
    let r = call(
        &s,
        &pt,
        "PATCH",
        &format!("/v1/databases/{second}"),
        json!({ "name": "second2" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = call(
        &s,
        &pt,
        "POST",
        &format!("/v1/databases/{da}/backups"),
        json!({}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let r = call(
        &s,
        &pt,
        "DELETE",
        &format!("/v1/databases/{second}"),
        json!(null),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);

    // Its own restore is not refused by the scope (the backup is what is missing).
    let (url, body) = fill("POST", "/v1/databases/{targetDatabaseId}/restore", &own);
    let r = call(&s, &pt, "POST", &url, body).await;
    assert_ne!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bkp_nope"),
        "{}",
        r.body
    );

    // A workspace-wide token still does everything: it deletes the spare token.
    let r = s
        .delete(&format!("/v1/workspaces/{ws}/service-tokens/{spare_id}"))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    s.stop().await;
}
