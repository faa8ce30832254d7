//! Every operation of the contract (`shared/contract/management-api-v1.d.ts`, parsed here:
//! paths, path parameters, request body fields and the statuses each operation lists), asked
//! the wrong way — no credential, a nonexistent id in each path parameter, a body of the wrong
//! type, a field of the wrong type, a missing required field, an unknown enum value, a body
//! over the size cap, a body that is not JSON — answers
//! a status its operation lists, with the contract's error body, and one that `/v1/doc`
//! documents with an example of the same code.
//!
//! One exception, derived from the contract and not copied from it: an operation that lists
//! neither 400 nor 422 has no status for invalid input; there the server answers 400 (or 422,
//! or 413/415 for a body it does not read) as `/v1/doc` documents (see
//! `pgfleet_http::statuses`).

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{Resp, TestServer};

const CONTRACT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/contract/management-api-v1.d.ts"
);

/// A top-level field of a request body.
#[derive(Debug, Clone)]
struct Field {
    name: String,
    required: bool,
    /// The TypeScript type as written (`string`, `boolean`, `"a" | "b"`, `{` for an object).
    ty: String,
    /// For an object field: its required sub-fields, and the values of a `type` constant.
    required_children: Vec<String>,
    type_constants: Vec<String>,
}

/// One operation as the contract gives it.
#[derive(Debug, Clone)]
struct Op {
    method: Method,
    path: String,
    id: String,
    path_params: Vec<String>,
    statuses: Vec<u16>,
    /// `Some` when the operation takes a JSON body.
    body: Option<Vec<Field>>,
    /// The keys of the error object, and whether each is required.
    error_keys: Vec<(String, bool)>,
}

fn contract_text() -> String {
    std::fs::read_to_string(CONTRACT)
        .unwrap_or_else(|e| panic!("cannot read the contract at {CONTRACT}: {e}"))
}

/// `name?: type;` → `(name, required, type)`.
fn field_line(line: &str) -> Option<(String, bool, String)> {
    let t = line.trim();
    if t.starts_with("/*") || t.starts_with('*') || t.starts_with('}') {
        return None;
    }
    let (name, ty) = t.split_once(": ")?;
    let (name, required) = match name.strip_suffix('?') {
        Some(n) => (n, false),
        None => (name, true),
    };
    let name = name.trim_matches('"');
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    Some((
        name.to_string(),
        required,
        ty.trim_end_matches(';').to_string(),
    ))
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The lines of the block opened by `lines[start]` (which ends with `{`), without the
/// opening and closing lines.
fn block<'a>(lines: &[&'a str], start: usize) -> Vec<&'a str> {
    let depth = indent(lines[start]);
    let mut out = Vec::new();
    for line in &lines[start + 1..] {
        if indent(line) == depth && line.trim_start().starts_with('}') {
            break;
        }
        out.push(*line);
    }
    out
}

fn parse_body(lines: &[&str]) -> Vec<Field> {
    // The fields of `"application/json": {` at its first level.
    let Some(start) = lines
        .iter()
        .position(|l| l.trim() == "\"application/json\": {")
    else {
        return Vec::new();
    };
    let inner = block(lines, start);
    let level = inner.iter().map(|l| indent(l)).min().unwrap_or(0);
    let mut fields = Vec::new();
    for (i, line) in inner.iter().enumerate() {
        if indent(line) != level {
            continue;
        }
        let Some((name, required, ty)) = field_line(line) else {
            continue;
        };
        let mut required_children = Vec::new();
        let mut type_constants = Vec::new();
        if ty.starts_with('{') {
            // The object (or union of objects) down to the line back at this level.
            for l in inner[i + 1..].iter().take_while(|l| indent(l) > level) {
                if let Some((n, req, t)) = field_line(l) {
                    if n == "type" && t.starts_with('"') {
                        type_constants.push(t.trim_matches('"').to_string());
                    } else if req && !required_children.contains(&n) {
                        required_children.push(n);
                    }
                }
            }
        }
        fields.push(Field {
            name,
            required,
            ty,
            required_children,
            type_constants,
        });
    }
    fields
}

/// Every operation of the contract with what this test needs of it.
fn contract() -> Vec<Op> {
    let text = contract_text();
    let (paths_part, ops_part) = text
        .split_once("interface operations {")
        .expect("an operations interface");
    // operationId → (method, path)
    let mut routes = BTreeMap::new();
    let mut path = String::new();
    for line in paths_part.lines() {
        if let Some(rest) = line.strip_prefix("  \"/v1") {
            path = format!("/v1{}", rest.split('"').next().unwrap());
        }
        let t = line.trim();
        for m in ["get", "post", "patch", "delete", "put"] {
            if let Some(rest) = t.strip_prefix(&format!("{m}: operations[\"")) {
                let id = rest.split('"').next().unwrap().to_string();
                routes.insert(
                    id,
                    (m.to_uppercase().parse::<Method>().unwrap(), path.clone()),
                );
            }
        }
    }
    let lines: Vec<&str> = ops_part.lines().collect();
    let mut ops = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if indent(line) != 2 || !line.trim_end().ends_with(": {") {
            continue;
        }
        let id = line
            .trim()
            .trim_end_matches(": {")
            .trim_matches('"')
            .to_string();
        let body_lines = block(&lines, i);
        let section = |name: &str| {
            body_lines
                .iter()
                .position(|l| indent(l) == 4 && l.trim().starts_with(name) && l.ends_with('{'))
                .map(|at| block(&body_lines, at))
        };
        let path_params = body_lines
            .iter()
            .position(|l| indent(l) == 6 && l.trim() == "path: {")
            .map(|at| {
                block(&body_lines, at)
                    .iter()
                    .filter_map(|l| field_line(l).map(|(n, _, _)| n))
                    .collect()
            })
            .unwrap_or_default();
        let body = section("requestBody").map(|b| parse_body(&b));
        let responses = section("responses:").expect("responses");
        let mut statuses = Vec::new();
        let mut error_keys = Vec::new();
        for (j, l) in responses.iter().enumerate() {
            let Some(code) = l.trim().strip_suffix(": {") else {
                continue;
            };
            if indent(l) != 6 {
                continue;
            }
            let Ok(code) = code.parse::<u16>() else {
                continue;
            };
            statuses.push(code);
            if code >= 400 && error_keys.is_empty() {
                let resp = block(&responses, j);
                if let Some(at) = resp.iter().position(|l| l.trim() == "error: {") {
                    error_keys = block(&resp, at)
                        .iter()
                        .filter_map(|l| field_line(l).map(|(n, r, _)| (n, r)))
                        .collect();
                }
            }
        }
        let (method, path) = routes
            .get(&id)
            .unwrap_or_else(|| panic!("operation {id} has no path"))
            .clone();
        ops.push(Op {
            method,
            path,
            id,
            path_params,
            statuses,
            body,
            error_keys,
        });
    }
    ops
}

#[test]
fn the_contract_parses_with_statuses_bodies_and_errors() {
    let ops = contract();
    assert!(ops.len() >= 37, "{} operations", ops.len());
    let by_id = |id: &str| ops.iter().find(|o| o.id == id).unwrap().clone();
    let restore = by_id("postV1DatabasesByTargetDatabaseIdRestore");
    assert_eq!(restore.statuses, vec![200, 401, 404, 409, 422]);
    assert_eq!(restore.path_params, vec!["targetDatabaseId"]);
    let source = &restore.body.as_ref().unwrap()[0];
    assert_eq!(source.name, "source");
    assert!(source.required);
    assert_eq!(source.type_constants, vec!["backup"]);
    assert_eq!(source.required_children, vec!["databaseId", "backupId"]);
    assert_eq!(
        restore.error_keys,
        vec![
            ("code".to_string(), true),
            ("message".to_string(), true),
            ("hint".to_string(), false)
        ]
    );
    let delete = by_id("deleteV1WorkspacesByWorkspaceIdService-tokensByServiceTokenId");
    assert_eq!(delete.method, Method::DELETE);
    assert_eq!(delete.path_params, vec!["workspaceId", "serviceTokenId"]);
    assert!(delete.body.is_none());
    let project = by_id("postV1Projects");
    let region = project
        .body
        .unwrap()
        .into_iter()
        .find(|f| f.name == "region");
    assert!(region.is_some_and(|r| !r.required && r.ty.starts_with("\"us-east-1\"")));
    assert!(ops.iter().all(|o| o.error_keys.len() == 3), "{ops:?}");
}

/// Real resources to point the requests at.
struct Real {
    workspace: String,
    project: String,
    database: String,
    connection: String,
    backup: String,
}

impl Real {
    /// The value of a path parameter: real, or a well-formed id of nothing.
    fn param(&self, op: &Op, name: &str, wrong: bool) -> String {
        let collection = op.path.split('/').nth(2).unwrap_or_default();
        let (prefix, real) = match (name, collection) {
            ("databaseId" | "targetDatabaseId", _) => ("db_", &self.database),
            ("projectId", _) | ("id", "projects") => ("proj_", &self.project),
            ("workspaceId", _) | ("id", "workspaces") => ("wksp_", &self.workspace),
            ("id", "connections") => ("con_", &self.connection),
            ("id", "integrations") | ("clientId", _) => ("itgr_", &self.workspace),
            ("serviceTokenId", _) => ("stk_", &self.workspace),
            other => panic!("no value for path parameter {other:?} of {}", op.id),
        };
        if wrong || matches!(prefix, "itgr_" | "stk_") {
            format!("{prefix}0conformance0nothing")
        } else {
            real.clone()
        }
    }

    fn url(&self, op: &Op, wrong: Option<&str>) -> String {
        let mut url = op.path.clone();
        for p in &op.path_params {
            let value = self.param(op, p, wrong == Some(p.as_str()));
            url = url.replace(&format!("{{{p}}}"), &value);
        }
        url
    }

    /// A value of the right type for a required field.
    fn value(&self, f: &Field) -> Value {
        match f.name.as_str() {
            "databaseId" => json!(self.database),
            "projectId" => json!(self.project),
            "source" => {
                json!({"type": "backup", "databaseId": self.database, "backupId": self.backup})
            }
            _ if f.ty == "boolean" => json!(false),
            _ => json!("conformance"),
        }
    }

    /// A body with every required field, right.
    fn valid_body(&self, fields: &[Field]) -> serde_json::Map<String, Value> {
        fields
            .iter()
            .filter(|f| f.required)
            .map(|f| (f.name.clone(), self.value(f)))
            .collect()
    }
}

/// The bodies of the wrong kinds for an operation that takes one: `(what, body)`.
fn wrong_bodies(real: &Real, fields: &[Field]) -> Vec<(String, Value)> {
    let valid = real.valid_body(fields);
    let mut out = vec![
        ("a JSON number".to_string(), json!(42)),
        ("a JSON array".to_string(), json!([])),
        ("a JSON string".to_string(), json!("x")),
        ("malformed JSON".to_string(), Value::Null), // sent as `{` (see `send`)
    ];
    for f in fields {
        let wrong = if f.ty == "boolean" {
            json!("yes")
        } else {
            json!(42)
        };
        let mut b = valid.clone();
        b.insert(f.name.clone(), wrong);
        out.push((format!("`{}` of the wrong type", f.name), Value::Object(b)));
        if f.required {
            let mut b = valid.clone();
            b.remove(&f.name);
            out.push((format!("no `{}`", f.name), Value::Object(b)));
        }
        if f.ty.starts_with('"') {
            let mut b = valid.clone();
            b.insert(f.name.clone(), json!("nowhere-9"));
            out.push((format!("an unknown `{}`", f.name), Value::Object(b)));
        }
        if let Some(Value::Object(sub)) = valid.get(&f.name) {
            for child in &f.required_children {
                let mut s = sub.clone();
                s.remove(child);
                let mut b = valid.clone();
                b.insert(f.name.clone(), Value::Object(s));
                out.push((format!("no `{}.{child}`", f.name), Value::Object(b)));
            }
            if !f.type_constants.is_empty() {
                let mut s = sub.clone();
                s.insert("type".to_string(), json!("nonsense"));
                let mut b = valid.clone();
                b.insert(f.name.clone(), Value::Object(s));
                out.push((format!("an unknown `{}.type`", f.name), Value::Object(b)));
            }
        }
    }
    out
}

async fn send(s: &TestServer, op: &Op, url: &str, body: Option<&Value>, auth: bool) -> Resp {
    let mut req = s
        .http
        .request(op.method.clone(), format!("{}{url}", s.base));
    if auth {
        req = req.bearer_auth(&s.token);
    }
    req = match body {
        Some(Value::Null) => req.header("content-type", "application/json").body("{"),
        Some(b) => req.json(b),
        None => req,
    };
    Resp::from(req.send().await.unwrap()).await
}

/// The statuses `/v1/doc` documents for an operation, each with the codes of its examples.
fn documented(doc: &Value, op: &Op) -> BTreeMap<u16, Vec<String>> {
    let o = &doc["paths"][&op.path][op.method.as_str().to_lowercase()];
    let mut out = BTreeMap::new();
    for (status, resp) in o["responses"].as_object().into_iter().flatten() {
        let resp = match resp["$ref"].as_str() {
            Some(r) => &doc["components"]["responses"][r.rsplit('/').next().unwrap()],
            None => resp,
        };
        let codes = resp["content"]["application/json"]["examples"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(_, e)| e["value"]["error"]["code"].as_str().map(String::from))
            .collect();
        out.insert(status.parse().unwrap(), codes);
    }
    out
}

/// Checks one answer: listed by the contract (or the one documented exception), the
/// contract's error body, and documented in `/v1/doc` with an example of its code.
fn check(op: &Op, doc: &Value, what: &str, r: &Resp, failures: &mut Vec<String>) {
    let status = r.status.as_u16();
    let docs = documented(doc, op);
    // A body the server does not read (413, 415) is an input error too: where the operation
    // lists none, it keeps its own status (and `/v1/doc` documents it).
    let input_error = matches!(status, 400 | 413 | 415 | 422);
    let no_input_status = !op.statuses.contains(&400) && !op.statuses.contains(&422);
    let listed = op.statuses.contains(&status) || (input_error && no_input_status);
    let context = format!("{} {} ({what}): {status} {}", op.method, op.path, r.body);
    if !listed {
        failures.push(format!(
            "{context}\n    the contract lists {:?}",
            op.statuses
        ));
    }
    if status < 400 {
        failures.push(format!("{context}\n    accepted"));
        return;
    }
    let keys_ok = r.body.as_object().is_some_and(|o| o.len() == 1)
        && r.body["error"].as_object().is_some_and(|e| {
            e.keys().all(|k| op.error_keys.iter().any(|(n, _)| n == k))
                && op.error_keys.iter().all(|(n, required)| {
                    e.get(n)
                        .map_or(!required, |v| v.as_str().is_some_and(|s| !s.is_empty()))
                })
        });
    if !keys_ok {
        failures.push(format!(
            "{context}\n    not the contract's error body {:?}",
            op.error_keys
        ));
    }
    let code = r.body["error"]["code"].as_str().unwrap_or_default();
    match docs.get(&status) {
        None => failures.push(format!("{context}\n    /v1/doc does not list {status}")),
        Some(codes) if !codes.iter().any(|c| c == code) => failures.push(format!(
            "{context}\n    /v1/doc has no example with code {code} for {status}: {codes:?}"
        )),
        Some(_) => {}
    }
}

#[tokio::test]
async fn every_operation_answers_only_listed_statuses() {
    let s = TestServer::start().await;
    let me = s.get("/v1/me").await;
    let workspace = me.body["data"]["workspace"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (database, conn) = s.database_with_connection("conformance").await;
    let project = s.get(&format!("/v1/databases/{database}")).await.body["data"]["project"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let backup = crate::harness::backup_now(&s, &database).await;
    let real = Real {
        workspace,
        project,
        database,
        connection: conn["id"].as_str().unwrap().to_string(),
        backup,
    };
    let doc = s.get("/v1/doc").await.body;
    let ops = contract();
    let mut failures = Vec::new();
    let mut asked = 0;
    for op in &ops {
        let valid = op.body.as_ref().map(|f| Value::Object(real.valid_body(f)));

        // No credential: 401 `unauthorized`, before anything else is looked at.
        let r = send(&s, op, &real.url(op, None), valid.as_ref(), false).await;
        check(op, &doc, "no credential", &r, &mut failures);
        if r.status != StatusCode::UNAUTHORIZED || r.body["error"]["code"] != "unauthorized" {
            failures.push(format!(
                "{} {}: no credential answers {}",
                op.method, op.path, r.body
            ));
        }
        asked += 1;

        // A well-formed id of nothing in each path parameter: `not_found`, as 404 where the
        // operation lists it and 401 where it does not.
        for p in &op.path_params {
            let r = send(&s, op, &real.url(op, Some(p)), valid.as_ref(), true).await;
            check(op, &doc, &format!("a wrong {p}"), &r, &mut failures);
            let expect = if op.statuses.contains(&404) { 404 } else { 401 };
            if r.status.as_u16() != expect || r.body["error"]["code"] != "not_found" {
                failures.push(format!(
                    "{} {} with a wrong {p}: {} {}, expected {expect} not_found",
                    op.method, op.path, r.status, r.body
                ));
            }
            asked += 1;
        }

        // Bodies of the wrong kinds, at real resources.
        if let Some(fields) = &op.body {
            for (what, body) in wrong_bodies(&real, fields) {
                let r = send(&s, op, &real.url(op, None), Some(&body), true).await;
                check(op, &doc, &what, &r, &mut failures);
                asked += 1;
            }
            // Over the size cap, and not JSON: listed statuses, each with its own code.
            let big = json!({ "name": "x".repeat((1 << 20) + 1000) });
            let not_json = s
                .http
                .request(
                    op.method.clone(),
                    format!("{}{}", s.base, real.url(op, None)),
                )
                .bearer_auth(&s.token)
                .header("content-type", "text/plain")
                .body(valid.as_ref().map(Value::to_string).unwrap_or_default());
            let answers = [
                (
                    "an oversized body",
                    "payload_too_large",
                    send(&s, op, &real.url(op, None), Some(&big), true).await,
                ),
                (
                    "a body that is not JSON",
                    "unsupported_media_type",
                    Resp::from(not_json.send().await.unwrap()).await,
                ),
            ];
            for (what, code, r) in answers {
                check(op, &doc, what, &r, &mut failures);
                if r.body["error"]["code"] != code {
                    failures.push(format!(
                        "{} {} with {what}: {} {}, expected code {code}",
                        op.method, op.path, r.status, r.body
                    ));
                }
                asked += 1;
            }
        }
    }
    eprintln!("{asked} requests to {} operations", ops.len());
    assert!(asked > 150, "only {asked} requests");
    assert!(
        failures.is_empty(),
        "{} of {asked} answers break the contract:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
    s.stop().await;
}

/// The answers issue 16 found outside their operation's list, one by one.
#[tokio::test]
async fn the_reported_answers_are_the_listed_ones() {
    let s = TestServer::start().await;
    let ws = s.get("/v1/me").await.body["data"]["workspace"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (db, _) = s.database_with_connection("reported").await;
    let project = s.get(&format!("/v1/databases/{db}")).await.body["data"]["project"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let patch = Resp::from(
        s.req(Method::PATCH, &format!("/v1/projects/{project}"))
            .json(&json!({"name": 42}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    patch.assert_error(422, "validation_error");
    assert!(
        patch.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid type"),
        "{}",
        patch.body
    );
    s.post(&format!("/v1/workspaces/{ws}/service-tokens"), json!({}))
        .await
        .assert_error(422, "validation_error");
    let restore = format!("/v1/databases/{db}/restore");
    s.post(
        &restore,
        json!({"source": {"type": "snapshot", "databaseId": db, "backupId": "bkp_x"}}),
    )
    .await
    .assert_error(422, "validation_error");
    s.post(
        &restore,
        json!({"source": {"type": "backup", "databaseId": db}}),
    )
    .await
    .assert_error(422, "validation_error");
    // Malformed JSON too, where the operation lists 422 and not 400.
    let r = Resp::from(
        s.req(Method::POST, &restore)
            .header("content-type", "application/json")
            .body("{")
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert_error(422, "validation_error");
    // A bad `limit` where the operation lists 400 (or nothing for input): 400.
    s.get("/v1/projects?limit=0")
        .await
        .assert_error(400, "bad_request");
    // The service tokens of a workspace the credential cannot see: the operation lists only
    // 200 and 401.
    let other = s
        .get("/v1/workspaces/wksp_0conformance0nothing/service-tokens")
        .await;
    other.assert_error(401, "not_found");
    assert!(other.headers.contains_key("www-authenticate"));
    assert!(
        other.body["error"]["hint"]
            .as_str()
            .is_some_and(|h| h.contains("cannot see")),
        "{}",
        other.body
    );
    // The Rust SDK reads it as `not_found`, not as a bad token.
    let c = pgfleet_client::Client::new(&s.base, &s.token).unwrap();
    let e = c
        .service_tokens("wksp_0conformance0nothing")
        .list(pgfleet_client::PageParams::default())
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    s.stop().await;
}

/// The server's own copy of the lists (`pgfleet_http::statuses::OPERATIONS`, which decides
/// what an error becomes) is the contract's, operation by operation.
#[test]
fn the_servers_status_lists_are_the_contracts() {
    let ops = contract();
    let server = pgfleet_http::statuses::OPERATIONS;
    assert_eq!(server.len(), ops.len());
    for op in &ops {
        let mine = server
            .iter()
            .find(|o| o.operation_id == op.id)
            .unwrap_or_else(|| panic!("{} is not declared", op.id));
        assert_eq!(mine.method.as_str(), op.method.as_str(), "{}", op.id);
        assert_eq!(mine.path, op.path, "{}", op.id);
        let statuses: Vec<u16> = mine.statuses.iter().map(|s| s.as_u16()).collect();
        let mut listed = op.statuses.clone();
        listed.sort_unstable();
        let mut statuses = statuses;
        statuses.sort_unstable();
        assert_eq!(statuses, listed, "{}", op.id);
    }
}
