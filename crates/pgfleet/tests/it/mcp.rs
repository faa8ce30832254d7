//! The MCP server's SQL limits (through the domain service its tools call: row cap, statement
//! timeout, one statement only, read-only unless asked, a read-only token refused a write, the
//! statement size, run as the
//! database's agent role and never a superuser, the role dropped with its database) and the
//! authorization face of `/mcp` (401 challenge, protected-resource metadata, a service token
//! accepted). The tools themselves are exercised by the official TypeScript SDK in
//! `tests/node/mcp.test.mjs`.

use pgfleet_domain::{DomainError, WorkspaceAccess};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{cluster, eventually, TestServer};
use crate::tenant_limits::tenant;

async fn access(s: &TestServer) -> WorkspaceAccess {
    let p = s
        .services()
        .tokens()
        .authenticate_bearer(&s.token)
        .await
        .unwrap();
    s.services().access().api(p)
}

fn refused(r: Result<pgfleet_dataplane::query::QueryOutput, DomainError>) -> String {
    match r {
        Err(DomainError::Unprocessable { message, .. }) => message,
        other => panic!("expected the statement to fail, got {other:?}"),
    }
}

#[tokio::test]
async fn sql_runs_bounded_and_as_the_database_role() {
    let s = crate::tenant_limits::start(|cfg| {
        cfg.mcp.max_rows = 5;
        cfg.mcp.statement_timeout_secs = 1;
        cfg.mcp.max_statement_bytes = 200;
    })
    .await;
    let t = tenant(&s, "mcp-sql").await;
    let a = access(&s).await;
    let sql = s.services().sql();

    // Row cap: 5 of 100 rows, marked truncated.
    let out = sql
        .execute(
            &a,
            &t.db_id,
            "SELECT g FROM generate_series(1, 100) g",
            false,
        )
        .await
        .unwrap();
    assert_eq!(out.rows.len(), 5);
    assert!(out.truncated);
    assert_eq!(out.rows[0]["g"], json!(1));

    // The statement timeout ends a long statement.
    let msg = refused(
        sql.execute(&a, &t.db_id, "SELECT pg_sleep(30)", false)
            .await,
    );
    assert!(msg.contains("57014"), "{msg}");

    // One statement only.
    let msg = refused(sql.execute(&a, &t.db_id, "SELECT 1; SELECT 2", false).await);
    assert!(msg.contains("multiple commands"), "{msg}");

    // Read-only unless asked: the write is refused and nothing is left.
    let msg = refused(
        sql.execute(&a, &t.db_id, "CREATE TABLE t (id int)", false)
            .await,
    );
    assert!(msg.contains("read-only transaction"), "{msg}");
    let out = sql
        .execute(&a, &t.db_id, "CREATE TABLE t (id int)", true)
        .await
        .unwrap();
    assert!(out.committed);
    let out = sql
        .execute(&a, &t.db_id, "INSERT INTO t VALUES (1), (2)", true)
        .await
        .unwrap();
    assert_eq!(out.row_count, Some(2));
    // `SET TRANSACTION READ WRITE` cannot undo the read-only transaction.
    let msg = refused(
        sql.execute(&a, &t.db_id, "SET TRANSACTION READ WRITE", false)
            .await,
    );
    assert!(msg.contains("25001") || msg.contains("read-write"), "{msg}");

    // As the database's role (through its agent login), never a superuser.
    let out = sql
        .execute(
            &a,
            &t.db_id,
            "SELECT current_user::text cu, session_user::text su, (SELECT bool_or(rolsuper) \
             FROM pg_roles WHERE rolname IN (current_user, session_user)) su_any",
            false,
        )
        .await
        .unwrap();
    let row = &out.rows[0];
    assert_eq!(row["su_any"], json!(false));
    assert!(row["cu"].as_str().unwrap().ends_with("_owner"), "{row:?}");
    let agent = row["su"].as_str().unwrap().to_string();
    assert!(agent.ends_with("_agent"), "{row:?}");
    // Its statements stay out of the server log, and it cannot turn logging back on.
    let out = sql
        .execute(
            &a,
            &t.db_id,
            "SELECT current_setting('log_min_error_statement') AS l",
            false,
        )
        .await
        .unwrap();
    assert_eq!(out.rows[0]["l"], json!("panic"));
    let msg = refused(
        sql.execute(&a, &t.db_id, "SET log_min_error_statement = error", false)
            .await,
    );
    assert!(msg.contains("42501"), "{msg}");
    // The tenant's own tables belong to the database's role, not the agent's login.
    let out = sql
        .execute(
            &a,
            &t.db_id,
            "SELECT tableowner::text AS o FROM pg_tables WHERE tablename = 't'",
            false,
        )
        .await
        .unwrap();
    assert_eq!(out.rows[0]["o"], row["cu"]);

    // A read-only credential may read, and is refused a write even when it asks for one.
    let r = s
        .post(
            &format!("/v1/workspaces/{}/service-tokens", a.workspace_id()),
            json!({ "name": "ro", "readOnly": true }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let ro = s
        .services()
        .tokens()
        .authenticate_bearer(r.body["data"]["value"].as_str().unwrap())
        .await
        .unwrap();
    let ro = s.services().access().api(ro);
    assert!(matches!(
        sql.execute(&ro, &t.db_id, "INSERT INTO t VALUES (3)", true)
            .await,
        Err(DomainError::Forbidden { .. })
    ));
    let out = sql
        .execute(&ro, &t.db_id, "SELECT count(*) AS n FROM t", false)
        .await
        .unwrap();
    assert_eq!(out.rows[0]["n"], json!(2));

    // The statement's size is bounded before anything runs.
    let long = format!("SELECT '{}'", "x".repeat(300));
    assert!(matches!(
        sql.execute(&a, &t.db_id, &long, false).await,
        Err(DomainError::BadRequest { .. })
    ));

    // Another workspace's database, or none: not found.
    assert!(matches!(
        sql.execute(&a, "db_nope", "SELECT 1", false).await,
        Err(DomainError::NotFound { .. })
    ));

    // The agent role goes with its database.
    let admin = cluster().admin("postgres").await;
    assert!(admin
        .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&agent])
        .await
        .unwrap()
        .is_some());
    let r = s.delete(&format!("/v1/projects/{}", t.project_id)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let admin = &admin;
    eventually("the agent role is dropped with its database", || {
        let agent = agent.clone();
        async move {
            admin
                .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&agent])
                .await
                .unwrap()
                .is_none()
        }
    })
    .await;
    s.stop().await;
}

#[tokio::test]
async fn mcp_http_asks_for_a_token_and_describes_its_authorization() {
    let s = TestServer::start().await;
    let url = format!("{}/mcp", s.base);
    let init = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": { "name": "it", "version": "1" }
        }
    });
    let r = s
        .http
        .post(&url)
        .header("accept", "application/json, text/event-stream")
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        challenge,
        format!(
            "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
            s.base
        )
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");

    let meta: Value = s
        .http
        .get(format!(
            "{}/.well-known/oauth-protected-resource/mcp",
            s.base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["resource"], json!(url));
    assert_eq!(meta["authorization_servers"], json!([s.base]));

    // A service token as Bearer: the server initializes.
    let r = s
        .http
        .post(&url)
        .bearer_auth(&s.token)
        .header("accept", "application/json, text/event-stream")
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert!(text.contains("\"serverInfo\""), "{text}");
    assert!(text.contains("\"pgfleet\""), "{text}");
    s.stop().await;
}

#[tokio::test]
async fn mcp_clients_register_themselves_within_bounds() {
    let s = TestServer::start().await;
    let meta: Value = s
        .http
        .get(format!("{}/.well-known/oauth-authorization-server", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        meta["registration_endpoint"],
        json!(format!("{}/register", s.base))
    );
    let register = |body: Value| {
        let http = s.http.clone();
        let url = format!("{}/register", s.base);
        async move {
            let r = http.post(url).json(&body).send().await.unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap())
        }
    };

    let (status, c) = register(json!({
        "client_name": "An agent",
        "redirect_uris": ["http://127.0.0.1:4711/callback"],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
    }))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{c}");
    assert!(!c["client_id"].as_str().unwrap().is_empty());
    assert_eq!(c["token_endpoint_auth_method"], "none");
    assert!(c.get("client_secret").is_none());

    // Refused: a non-loopback http redirect, a private-use scheme, too many URIs, a secret.
    for (body, error) in [
        (
            json!({ "redirect_uris": ["http://app.example/cb"] }),
            "invalid_redirect_uri",
        ),
        (
            json!({ "redirect_uris": ["myapp://cb"] }),
            "invalid_redirect_uri",
        ),
        (json!({ "redirect_uris": [] }), "invalid_redirect_uri"),
        (
            json!({ "redirect_uris": (0..6).map(|i| format!("https://a.example/{i}")).collect::<Vec<_>>() }),
            "invalid_redirect_uri",
        ),
        (
            json!({ "redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "client_secret_post" }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": ["https://a.example/cb"], "grant_types": ["client_credentials"] }),
            "invalid_client_metadata",
        ),
    ] {
        let (status, e) = register(body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {e}");
        assert_eq!(e["error"], error, "{body} -> {e}");
    }
    // A body past the registration endpoint's size cap.
    let big =
        json!({ "redirect_uris": ["https://a.example/cb"], "client_name": "x".repeat(20_000) });
    let r = s
        .http
        .post(format!("{}/register", s.base))
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // The hourly cap, counted in the metadata store (one registration was made above).
    let cap = pgfleet_domain::services::oauth::registration::MAX_PER_HOUR;
    for _ in 1..cap {
        let (status, e) = register(json!({ "redirect_uris": ["https://a.example/cb"] })).await;
        assert_eq!(status, StatusCode::CREATED, "{e}");
    }
    let (status, e) = register(json!({ "redirect_uris": ["https://a.example/cb"] })).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{e}");

    // RFC 8707: a token for another resource is refused.
    let r = s
        .http
        .post(format!("{}/token", s.base))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("client_id", c["client_id"].as_str().unwrap()),
            ("resource", "https://elsewhere.example/mcp"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_target");
    s.stop().await;
}

/// On a server reached over TCP (TLS required by the URL, password login), the agent role logs in with its derived
/// password; a password changed behind pgfleet's back is put back on the next call.
#[tokio::test]
async fn sql_logs_in_with_scram_over_tcp_and_repairs_the_agent_role() {
    let s = crate::accelerate_tcp::tcp_region_server().await;
    let t = tenant(&s, "mcp-tcp").await;
    let a = access(&s).await;
    let sql = s.services().sql();
    let who = "SELECT session_user::text AS su, current_user::text AS cu, \
               inet_client_addr() IS NOT NULL AS tcp";
    let out = sql.execute(&a, &t.db_id, who, false).await.unwrap();
    let agent = out.rows[0]["su"].as_str().unwrap().to_string();
    assert!(agent.ends_with("_agent"), "{:?}", out.rows);
    assert_eq!(out.rows[0]["tcp"], json!(true));

    let admin = cluster().admin("postgres").await;
    admin
        .batch_execute(&format!(
            "ALTER ROLE \"{agent}\" PASSWORD 'changed-elsewhere'"
        ))
        .await
        .unwrap();
    let out = sql.execute(&a, &t.db_id, who, false).await.unwrap();
    assert_eq!(out.rows[0]["su"], json!(agent));
    s.stop().await;
}
