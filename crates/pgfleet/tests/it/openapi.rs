//! The OpenAPI document (`GET /v1/doc`) against the contract
//! (`shared/contract/management-api-v1.d.ts`), a snapshot of the whole document, and the
//! interactive docs (`/docs`, `/v1/swagger-editor`) with their vendored assets.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{Resp, TestServer};

/// The contract beside the repository (`<root>/../shared/contract/`), as in every checkout and
/// in CI.
const CONTRACT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/contract/management-api-v1.d.ts"
);

/// Contract operations this server does not implement (yet), as `(METHOD, path, reason)`.
/// Each entry must still be missing from the document: the test fails when one appears, so
/// the list only shrinks.
const NOT_IMPLEMENTED: &[(&str, &str, &str)] = &[];

/// `(method, path, operationId)` of every operation of the contract's `paths` interface.
/// Methods the contract marks `?: never` are not operations.
fn contract_operations() -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(CONTRACT)
        .unwrap_or_else(|e| panic!("cannot read the contract at {CONTRACT}: {e}"));
    let mut ops = Vec::new();
    let mut path: Option<String> = None;
    for line in text.lines() {
        if line.starts_with("interface operations") {
            break;
        }
        // `  "/v1/projects/{id}": {`
        if let Some(rest) = line.strip_prefix("  \"/v1") {
            let p = rest.split('"').next().unwrap();
            path = Some(format!("/v1{p}"));
            continue;
        }
        // `    get: operations["getV1Workspaces"];`
        let t = line.trim();
        for method in [
            "get", "put", "post", "delete", "options", "head", "patch", "trace",
        ] {
            if let Some(rest) = t.strip_prefix(&format!("{method}: operations[\"")) {
                let id = rest.split('"').next().unwrap().to_string();
                let p = path.clone().expect("an operation outside a path");
                ops.push((method.to_uppercase(), p, id));
            }
        }
    }
    ops
}

fn documented_operations(doc: &Value) -> Vec<(String, String, String)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if method == "parameters" || method == "summary" || method == "description" {
                continue;
            }
            let id = op["operationId"].as_str().unwrap_or_default().to_string();
            ops.push((method.to_uppercase(), path.clone(), id));
        }
    }
    ops
}

#[test]
fn the_contract_parses() {
    let ops = contract_operations();
    // 37 operations in the contract as of @prisma/management-api-sdk 1.80.0; more is fine.
    assert!(ops.len() >= 37, "only {} operations parsed", ops.len());
    assert!(ops.contains(&(
        "GET".to_string(),
        "/v1/workspaces".to_string(),
        "getV1Workspaces".to_string()
    )));
    assert!(ops.contains(&(
        "DELETE".to_string(),
        "/v1/workspaces/{workspaceId}/service-tokens/{serviceTokenId}".to_string(),
        "deleteV1WorkspacesByWorkspaceIdService-tokensByServiceTokenId".to_string()
    )));
    assert!(
        !ops.iter().any(|(m, p, _)| m == "PUT" || p.contains(' ')),
        "`?: never` lines must not count: {ops:?}"
    );
}

#[tokio::test]
async fn every_contract_operation_is_in_the_document() {
    let s = TestServer::start().await;
    let doc = s.get("/v1/doc").await;
    assert_eq!(doc.status, StatusCode::OK);
    let documented = documented_operations(&doc.body);
    let by_route: BTreeSet<(&str, &str)> = documented
        .iter()
        .map(|(m, p, _)| (m.as_str(), p.as_str()))
        .collect();

    let mut missing = Vec::new();
    let mut wrong_ids = Vec::new();
    for (method, path, id) in contract_operations() {
        let allowed = NOT_IMPLEMENTED
            .iter()
            .any(|(m, p, _)| *m == method && *p == path);
        match documented
            .iter()
            .find(|(m, p, _)| *m == method && *p == path)
        {
            None if allowed => {}
            None => missing.push(format!("{method} {path} ({id})")),
            Some(_) if allowed => {
                panic!("{method} {path} is documented now: remove it from NOT_IMPLEMENTED")
            }
            Some((_, _, doc_id)) if *doc_id != id => {
                wrong_ids.push(format!("{method} {path}: {doc_id}, contract {id}"))
            }
            Some(_) => {}
        }
    }
    assert!(
        missing.is_empty(),
        "contract operations missing from /v1/doc:\n  {}",
        missing.join("\n  ")
    );
    assert!(
        wrong_ids.is_empty(),
        "operationIds that differ from the contract:\n  {}",
        wrong_ids.join("\n  ")
    );

    // Every documented operation is routed: without a credential it answers 401 (the
    // credential is checked before anything else), never the router's 404 or 405.
    for (method, path) in by_route {
        let url = format!("{}{}", s.base, path.replace('{', "x").replace('}', ""));
        let r = Resp::from(
            s.http
                .request(method.parse().unwrap(), &url)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} is documented but answers {}: {}",
            r.status,
            r.body
        );
    }
    s.stop().await;
}

/// The whole document, with the server's URL normalised. When an annotation or schema changes
/// on purpose, refresh it with
/// `INSTA_UPDATE=always cargo test -p pgfleet --test it openapi::document_snapshot` and review
/// the diff of `snapshots/it__openapi__openapi_document.snap` (CI, with `CI` set, never writes
/// snapshots and fails on any difference).
#[tokio::test]
async fn document_snapshot() {
    let s = TestServer::start().await;
    let doc = s.get("/v1/doc").await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(doc.body["openapi"], "3.1.0");
    // The server's own URL (port 0 picks a new one each run) is the one varying part: the
    // `servers` entry and the OAuth endpoints (the issuer defaults to the public URL).
    assert_eq!(doc.body["servers"][0]["url"], s.base.as_str());
    let flow = &doc.body["components"]["securitySchemes"]["oauth2"]["flows"]["authorizationCode"];
    assert_eq!(flow["authorizationUrl"], format!("{}/authorize", s.base));
    assert_eq!(flow["tokenUrl"], format!("{}/token", s.base));
    let text = serde_json::to_string(&doc.body)
        .unwrap()
        .replace(&s.base, "http://pgfleet.test");
    let normalised: Value = serde_json::from_str(&text).unwrap();
    insta::assert_json_snapshot!("openapi_document", normalised);
    s.stop().await;
}

/// `href`/`src` values of a page that point under `/docs/assets/`.
fn asset_links(html: &str) -> Vec<String> {
    let mut links = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            let link = part.split('"').next().unwrap();
            if link.starts_with("/docs/assets/") {
                links.push(link.to_string());
            }
        }
    }
    links
}

#[tokio::test]
async fn swagger_ui_is_served_from_vendored_assets() {
    let s = TestServer::start().await;
    let mut pages = Vec::new();
    for path in ["/docs", "/v1/swagger-editor"] {
        let r = s
            .http
            .get(format!("{}{path}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let h = r.headers().clone();
        assert_eq!(h["content-type"], "text/html; charset=utf-8", "{path}");
        let csp = h["content-security-policy"].to_str().unwrap().to_string();
        assert!(csp.contains("script-src 'self';"), "{path}: {csp}");
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        assert_eq!(h["x-content-type-options"], "nosniff");
        let html = r.text().await.unwrap();
        assert!(
            !html.contains("<script>") && !html.contains("<script type"),
            "{path}: no inline script (the CSP forbids it)"
        );
        assert!(html.contains("data-spec-url=\"/v1/doc\""), "{path}");
        assert!(
            html.contains(&format!("{}/docs/oauth2-redirect.html", s.base)),
            "{path}: the redirect URI to register"
        );
        pages.push(html);
    }
    assert_eq!(pages[0], pages[1], "both paths serve the same page");

    let links = asset_links(&pages[0]);
    let expect = [
        ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
        ("init.js", "text/javascript; charset=utf-8"),
        ("swagger-ui.css", "text/css; charset=utf-8"),
        ("docs.css", "text/css; charset=utf-8"),
        ("favicon-32x32.png", "image/png"),
    ];
    for (name, content_type) in expect {
        let link = links
            .iter()
            .find(|l| l.starts_with(&format!("/docs/assets/{name}?v=")))
            .unwrap_or_else(|| panic!("the page does not link {name}: {links:?}"));
        let r = s
            .http
            .get(format!("{}{link}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{link}");
        assert_eq!(r.headers()["content-type"], content_type, "{link}");
        assert_eq!(
            r.headers()["cache-control"],
            "public, max-age=31536000, immutable",
            "{link}"
        );
        let body = r.bytes().await.unwrap();
        assert!(!body.is_empty(), "{link}");
        if name == "swagger-ui-bundle.js" {
            assert!(
                body.len() > 1_000_000,
                "the whole bundle: {} bytes",
                body.len()
            );
            assert!(String::from_utf8_lossy(&body).contains("SwaggerUIBundle"));
        }
    }
    for (name, needle) in [
        ("LICENSE", "Apache License"),
        ("oauth2-redirect.js", "swaggerUIRedirectOauth2"),
    ] {
        let r = s
            .http
            .get(format!("{}/docs/assets/{name}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{name}");
        assert!(r.text().await.unwrap().contains(needle), "{name}");
    }

    let r = s
        .http
        .get(format!("{}/docs/oauth2-redirect.html", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("script-src 'self'"));
    let html = r.text().await.unwrap();
    assert!(asset_links(&html)
        .iter()
        .any(|l| l.starts_with("/docs/assets/oauth2-redirect.js?v=")));

    let r = Resp::from(
        s.http
            .get(format!("{}/docs/assets/nope.js", s.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert_error(404, "not_found");
    s.stop().await;
}

/// Found by schemathesis: a NUL character (`%00` in a path or query, `\u0000` in a JSON body)
/// in an id or filter reached the metadata store, which refused it (PostgreSQL text cannot
/// hold NUL), and the API answered 500. It is a wrong parameter: 400 `bad_request`.
#[tokio::test]
async fn nul_characters_in_ids_are_bad_requests() {
    let s = TestServer::start().await;
    for path in [
        "/v1/projects/proj_a%00b",
        "/v1/databases/db_a%00b",
        "/v1/connections/con_a%00b",
        "/v1/integrations/itgr_a%00b",
        "/v1/projects?logicalId=a%00",
        "/v1/databases?projectId=proj_a%00",
        "/v1/databases?logicalId=a%00",
        "/v1/connections?databaseId=db_a%00",
        "/v1/databases/db_a%00/backups",
        "/v1/databases/db_a%00/usage",
    ] {
        let r = s.get(path).await;
        // 422 where the operation lists it instead of 400 (`…/backups`); 401 where it lists
        // no 404 (see `pgfleet_http::statuses`).
        assert!(
            [400, 401, 404, 422].contains(&r.status.as_u16()),
            "GET {path}: {} {}",
            r.status,
            r.body
        );
        r.assert_error(r.status.as_u16(), r.body["error"]["code"].as_str().unwrap());
    }
    for (path, body) in [
        (
            "/v1/connections",
            serde_json::json!({"name": "x", "databaseId": "db_a\u{0}"}),
        ),
        (
            "/v1/databases",
            serde_json::json!({"projectId": "proj_a\u{0}", "logicalId": "x"}),
        ),
        (
            "/v1/projects",
            serde_json::json!({"workspaceId": "wksp_a\u{0}", "createDatabase": false}),
        ),
    ] {
        let r = s.post(path, body).await;
        // 401 `not_found` where the operation lists no 404 (`POST /v1/projects`).
        assert!(
            [400, 401, 404].contains(&r.status.as_u16()),
            "POST {path}: {} {}",
            r.status,
            r.body
        );
    }
    s.stop().await;
}
