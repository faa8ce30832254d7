//! The MCP server's SQL limits (through the domain service its tools call: row cap, statement
//! timeout, one statement only, read-only unless asked, the statement size, run as the
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
