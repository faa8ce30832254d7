//! The example error bodies of `/v1/doc`: for each status an operation documents, the bodies
//! this server really answers with it, built with the same constructors the server uses
//! (extractor rejections, the domain's errors through [`ApiError::shape`], the fitting of
//! [`crate::statuses`]), so that a client author sees the actual `code`, `message` and `hint`.

use axum::http::{Method, StatusCode};
use pgfleet_domain::{AuthFailure, DomainError, PageRequest};

use crate::error::ApiError;
use crate::extract;
use crate::statuses::{self, Operation};

/// What the examples of one operation depend on.
#[derive(Debug)]
pub struct OperationShape<'a> {
    pub method: &'a Method,
    /// The documented path (`/v1/databases/{databaseId}/backups`).
    pub path: &'a str,
    pub has_body: bool,
    pub has_limit: bool,
}

/// The resource an id in `path` names, and a well-formed id of it: `("Database", "db_…")`.
fn resource(path: &str) -> (&'static str, &'static str) {
    let collection = path.split('/').nth(2).unwrap_or_default();
    let first_param = path
        .split('/')
        .find(|s| s.starts_with('{'))
        .unwrap_or_default();
    match (collection, first_param) {
        (_, "{databaseId}" | "{targetDatabaseId}") | ("databases", _) => {
            ("Database", "db_7Hq2x9Lm")
        }
        (_, "{projectId}") | ("projects", _) => ("Project", "proj_4Kd8s1Pz"),
        ("connections", _) => ("Connection", "con_9Wf3k2Qa"),
        ("integrations", _) => ("Integration", "itgr_2Bn6v8Tc"),
        _ => ("Workspace", "wksp_5Jr1m7Xe"),
    }
}

/// serde_json's own sentence for `text` read as `T`.
fn serde_sentence<T: serde::de::DeserializeOwned>(text: &str) -> String {
    serde_json::from_str::<T>(text)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
}

/// The errors answered with `status` before fitting.
fn native(status: StatusCode, op: &OperationShape<'_>) -> Vec<ApiError> {
    let (what, id) = resource(op.path);
    let domain = |e: DomainError| ApiError::shape(e);
    match status {
        StatusCode::BAD_REQUEST => {
            let mut v = Vec::new();
            if op.has_limit {
                if let Err(e) = PageRequest::parse(None, Some("0"), 100) {
                    v.push(domain(e));
                }
            }
            if op.has_body {
                v.push(extract::body_not_json(
                    &serde_sentence::<serde_json::Value>("{"),
                ));
                v.push(extract::body_does_not_fit(&serde_sentence::<String>("42")));
            }
            v.push(domain(DomainError::nul_parameter()));
            v
        }
        StatusCode::UNAUTHORIZED => vec![
            domain(DomainError::Unauthenticated(AuthFailure::Missing)),
            domain(DomainError::Unauthenticated(AuthFailure::Invalid)),
        ],
        StatusCode::FORBIDDEN => {
            let mut v = vec![domain(DomainError::Unauthenticated(
                AuthFailure::InsufficientScope,
            ))];
            if *op.method == Method::DELETE && what == "Database" {
                v.push(domain(DomainError::forbidden(
                    "Cannot delete the default database of a project",
                    Some("Delete the project instead.".to_string()),
                )));
            }
            v
        }
        StatusCode::NOT_FOUND => vec![domain(DomainError::not_found(what, id))],
        StatusCode::CONFLICT if *op.method == Method::POST => {
            vec![domain(DomainError::conflict(
                "A request with this Idempotency-Key is still being processed",
                Some("Retry later with the same key to get its response.".to_string()),
            ))]
        }
        StatusCode::CONFLICT => vec![domain(DomainError::conflict(
            format!("Database {id} is provisioning; its connections cannot change now"),
            None,
        ))],
        StatusCode::PAYLOAD_TOO_LARGE => vec![extract::payload_too_large()],
        StatusCode::UNSUPPORTED_MEDIA_TYPE => vec![extract::unsupported_media_type()],
        StatusCode::UNPROCESSABLE_ENTITY if op.path.ends_with("/service-tokens") => {
            vec![domain(DomainError::unprocessable(
                "expiresAt \"tomorrow\" is not an RFC 3339 date-time",
                Some("Use a form like 2030-01-31T00:00:00Z.".to_string()),
            ))]
        }
        StatusCode::UNPROCESSABLE_ENTITY if op.path.contains("databases") => {
            vec![domain(DomainError::unprocessable(
                "Backup bkp_3Vt8n2Rd is not readable (missing or corrupted archive)",
                Some("Choose another backup.".to_string()),
            ))]
        }
        // The other operations have no 422 of their own: any is fitted from a 400 above.
        StatusCode::UNPROCESSABLE_ENTITY => Vec::new(),
        StatusCode::INTERNAL_SERVER_ERROR => vec![domain(DomainError::internal("example"))],
        StatusCode::SERVICE_UNAVAILABLE => vec![domain(DomainError::Unavailable {
            message: "The metadata store is not reachable right now".to_string(),
            detail: String::new(),
        })],
        _ => Vec::new(),
    }
}

/// The errors an operation answers with `status`: its own, and those fitted to it from a
/// status the operation does not list (see [`statuses::fit`]).
pub fn examples(status: StatusCode, op: &OperationShape<'_>) -> Vec<ApiError> {
    let declared: Option<&Operation> = statuses::operation(op.method, op.path);
    let mut out = Vec::new();
    if let Some(d) = declared {
        for from in [
            StatusCode::BAD_REQUEST,
            StatusCode::UNPROCESSABLE_ENTITY,
            StatusCode::NOT_FOUND,
        ] {
            if let Some((to, code)) = statuses::fit(from, d.statuses) {
                if to == status {
                    for e in native(from, op) {
                        let code = code.unwrap_or(e.code);
                        out.push(e.into_status(to, code));
                    }
                }
            }
        }
    }
    out.extend(native(status, op));
    out
}
