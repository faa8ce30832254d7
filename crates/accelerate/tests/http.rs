//! The HTTP surface without a database: authentication, unknown routes, malformed and
//! oversized bodies, unsupported plans and transaction-manager answers are decided before a
//! connection is taken.

use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::http::{Request, StatusCode};
use pgfleet_accelerate::{router, Backend, BackendError, Limits};
use tower::ServiceExt;

struct NoDatabase;

impl Backend for NoDatabase {
    type Target = ();
    type Conn = Box<tokio_postgres::Client>;

    async fn resolve(&self, api_key: &str) -> Result<(), BackendError> {
        if api_key == "good" {
            Ok(())
        } else {
            Err(BackendError::UnknownKey)
        }
    }

    async fn connect(&self, _target: &()) -> Result<Self::Conn, BackendError> {
        Err(BackendError::Unavailable("no database in this test".into()))
    }
}

fn app() -> axum::Router {
    router(
        NoDatabase,
        Limits {
            query_timeout: Duration::from_secs(5),
            max_transaction_timeout: Duration::from_secs(5),
            max_request_bytes: 1024,
            max_concurrent_queries: 4,
        },
    )
}

async fn call(method: &str, path: &str, key: &str, body: &str) -> (StatusCode, String) {
    let Ok(request) = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
    else {
        return (StatusCode::IM_A_TEAPOT, "request could not be built".into());
    };
    let response = app().oneshot(request).await.unwrap_or_else(|e| match e {});
    let status = response.status();
    let bytes = to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn connection_info_needs_a_valid_key() {
    let (status, body) = call("GET", "/connection-info", "good", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        r#"{"provider":"postgres","connectionInfo":{"supportsRelationJoins":true}}"#
    );
    let (status, body) = call("GET", "/connection-info", "bad", "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains(r#""code":"P6002""#), "{body}");
}

#[tokio::test]
async fn unknown_routes_and_malformed_bodies() {
    let (status, body) = call("GET", "/nope", "good", "").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::NOT_FOUND, "404 Not Found")
    );
    let (status, body) = call("POST", "/query", "good", "{not json").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::BAD_REQUEST, "Malformed JSON in request body")
    );
    let (status, body) = call("POST", "/query", "good", r#"{"operation":"findMany"}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("ZodError"), "{body}");
    let big = format!(
        r#"{{"operation":"x","plan":{{}},"params":{{"a":"{}"}}}}"#,
        "x".repeat(2000)
    );
    let (status, body) = call("POST", "/query", "good", &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(body.contains(r#""code":"P6005""#), "{body}");
}

#[tokio::test]
async fn unsupported_plans_get_a_clear_prisma_error() {
    let plan = r#"{"operation":"findMany","plan":{"type":"teleport","args":{}},"params":{}}"#;
    let (status, body) = call("POST", "/query", "good", plan).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.contains(r#""code":"P6006""#) && body.contains("'teleport'"),
        "{body}"
    );
}

#[tokio::test]
async fn transaction_manager_answers() {
    let (status, body) = call("POST", "/transaction/start", "good", r#"{"timeout":5000}"#).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body.contains("Transaction API error: maxWait is required"),
        "{body}"
    );
    let snapshot = r#"{"timeout":5000,"maxWait":2000,"isolationLevel":"SNAPSHOT"}"#;
    let (status, body) = call("POST", "/transaction/start", "good", snapshot).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body.contains(r#""meta":{"isolationLevel":"SNAPSHOT"}"#),
        "{body}"
    );
    let (status, body) = call(
        "POST",
        "/transaction/0d2a5b6e-1111-4222-8333-944455556666/commit",
        "good",
        "",
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body.contains("Transaction not found."), "{body}");
    let (status, body) = call(
        "POST",
        "/transaction/start",
        "good",
        r#"{"timeout":5000,"maxWait":2000}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains(r#""code":"P1001""#), "{body}");
}
