//! The example error bodies of `/v1/doc`: for each status an operation documents, the bodies
//! this server really answers with it, built with the same constructors the server uses
//! (extractor rejections, the domain's errors through [`ApiError::shape`], the fitting of
//! [`crate::statuses`]), so that a client author sees the actual `code`, `message` and `hint`.

use axum::http::{Method, StatusCode};
use pgfleet_domain::{access, AuthFailure, DomainError, PageRequest};
use utoipa::openapi::example::{Example, ExampleBuilder};
use utoipa::openapi::path::Operation as DocOperation;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

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

/// The operations a credential limited to one project is refused (403): the workspace's
/// service tokens and integrations, creating, deleting and transferring projects, creating
/// workspaces.
fn workspace_level(op: &OperationShape<'_>) -> bool {
    let p = op.path;
    p.contains("/service-tokens")
        || p.contains("integrations")
        || (*op.method == Method::POST && (p == "/v1/projects" || p == "/v1/workspaces"))
        || (*op.method == Method::DELETE && p == "/v1/projects/{id}")
        || p.ends_with("/transfer")
}

/// serde_json's own sentence for `text` read as `T`.
fn serde_sentence<T: serde::de::DeserializeOwned>(text: &str) -> String {
    serde_json::from_str::<T>(text)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
}

/// An example's name in the document (the situation it shows) and the error.
pub type Named = (&'static str, ApiError);

/// The errors answered with `status` before fitting.
fn native(status: StatusCode, op: &OperationShape<'_>) -> Vec<Named> {
    let (what, id) = resource(op.path);
    let domain = ApiError::shape;
    match status {
        StatusCode::BAD_REQUEST => {
            let mut v = Vec::new();
            if op.has_limit {
                if let Err(e) = PageRequest::parse(None, Some("0"), 100) {
                    v.push(("bad_limit", domain(e)));
                }
            }
            if op.has_body {
                let not_json = serde_sentence::<serde_json::Value>("{");
                v.push(("malformed_json", extract::body_not_json(&not_json)));
                let wrong = serde_sentence::<String>("42");
                v.push(("wrong_type", extract::body_does_not_fit(&wrong)));
            }
            v.push(("nul_character", domain(DomainError::nul_parameter())));
            v
        }
        StatusCode::UNAUTHORIZED => vec![
            (
                "no_token",
                domain(DomainError::Unauthenticated(AuthFailure::Missing)),
            ),
            (
                "invalid_token",
                domain(DomainError::Unauthenticated(AuthFailure::Invalid)),
            ),
        ],
        StatusCode::FORBIDDEN => {
            let scope = DomainError::Unauthenticated(AuthFailure::InsufficientScope);
            let mut v = vec![("insufficient_scope", domain(scope))];
            // A service token's own limits (`readOnly`, `projectId`): 403 on every operation.
            if *op.method != Method::GET {
                v.push(("read_only_token", domain(access::read_only_refused())));
            }
            if workspace_level(op) {
                let e = access::project_scope_refused("proj_4Kd8s1Pz");
                v.push(("project_scoped_token", domain(e)));
            }
            if *op.method == Method::DELETE && what == "Database" {
                let e = DomainError::forbidden(
                    "Cannot delete the default database of a project",
                    Some("Delete the project instead.".to_string()),
                );
                v.push(("default_database", domain(e)));
            }
            v
        }
        StatusCode::NOT_FOUND => vec![("not_found", domain(DomainError::not_found(what, id)))],
        StatusCode::CONFLICT if *op.method == Method::POST => {
            let e = DomainError::conflict(
                "A request with this Idempotency-Key is still being processed",
                Some("Retry later with the same key to get its response.".to_string()),
            );
            vec![("idempotency_key_in_use", domain(e))]
        }
        StatusCode::CONFLICT => {
            let e = DomainError::conflict(
                format!("Database {id} is provisioning; its connections cannot change now"),
                None,
            );
            vec![("not_now", domain(e))]
        }
        // Only where a body is read (the fitted examples of other statuses come from here).
        StatusCode::PAYLOAD_TOO_LARGE if op.has_body => {
            vec![("too_large", extract::payload_too_large())]
        }
        // Reads take no body; writes refuse one that is not JSON even where they take none.
        StatusCode::UNSUPPORTED_MEDIA_TYPE if op.has_body || *op.method != Method::GET => {
            vec![("not_json", extract::unsupported_media_type())]
        }
        StatusCode::UNPROCESSABLE_ENTITY if op.path.ends_with("/service-tokens") => {
            let e = DomainError::unprocessable(
                "expiresAt \"tomorrow\" is not an RFC 3339 date-time",
                Some("Use a form like 2030-01-31T00:00:00Z.".to_string()),
            );
            vec![("bad_expires_at", domain(e))]
        }
        StatusCode::UNPROCESSABLE_ENTITY if op.path.contains("databases") => {
            let e = DomainError::unprocessable(
                "Backup bkp_3Vt8n2Rd is not readable (missing or corrupted archive)",
                Some("Choose another backup.".to_string()),
            );
            vec![("unreadable_backup", domain(e))]
        }
        // The other operations have no 422 of their own: any is fitted from a 400
        // ([`examples`]).
        StatusCode::UNPROCESSABLE_ENTITY => Vec::new(),
        StatusCode::INTERNAL_SERVER_ERROR => {
            vec![("bug", domain(DomainError::internal("example")))]
        }
        StatusCode::SERVICE_UNAVAILABLE => {
            let e = DomainError::Unavailable {
                message: "The metadata store is not reachable right now".to_string(),
                detail: String::new(),
                dependency: pgfleet_domain::Dependency::MetadataStore,
            };
            vec![("metadata_store_down", domain(e))]
        }
        _ => Vec::new(),
    }
}

/// The errors an operation answers with `status`, named: its own, and those fitted to it
/// from a status the operation does not list (see [`statuses::fit`]).
pub fn examples(status: StatusCode, op: &OperationShape<'_>) -> Vec<Named> {
    let declared: Option<&Operation> = statuses::operation(op.method, op.path);
    let mut out = Vec::new();
    if let Some(d) = declared {
        for &from in statuses::FITTED {
            if let Some((to, code)) = statuses::fit(from, d.statuses) {
                if to == status {
                    // A credential's own limits (403 `forbidden`) are never fitted.
                    let native = native(from, op)
                        .into_iter()
                        .filter(|(_, e)| !statuses::keeps_status(e.status, e.code));
                    for (name, e) in native {
                        let code = code.unwrap_or(e.code);
                        out.push((name, e.into_status(to, code)));
                    }
                }
            }
        }
    }
    // Those fitted away from this status (above, under the status they get) are not its own.
    out.extend(native(status, op).into_iter().filter(|(_, e)| {
        declared.is_none_or(|d| {
            statuses::keeps_status(e.status, e.code)
                || statuses::fit(e.status, d.statuses).is_none()
        })
    }));
    out
}

/// Drops the error statuses [`statuses::fit`] never lets this operation answer (they are
/// answered with another status), and gives every error response the bodies the server
/// really answers with it as named examples ([`examples`]).
pub fn complete(op: &mut DocOperation, method: &Method, path: &str) {
    let has_limit = op
        .parameters
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|p| p.name == "limit");
    let shape = OperationShape {
        method,
        path,
        has_body: op.request_body.is_some(),
        has_limit,
    };
    let declared = statuses::operation(method, path);
    // A 403 that is answered (a token's own limits) is documented even where the contract
    // lists none.
    let answers_403 = !examples(StatusCode::FORBIDDEN, &shape).is_empty();
    let responses = &mut op.responses.responses;
    responses.retain(|status, _| {
        let (Some(d), Ok(status)) = (declared, status.parse::<StatusCode>()) else {
            return true;
        };
        // 403 stays: a read-only or project-scoped token's refusal keeps it everywhere.
        (status == StatusCode::FORBIDDEN && answers_403)
            || statuses::fit(status, d.statuses).is_none()
    });
    for (status, response) in responses.iter_mut() {
        let (Ok(status), RefOr::T(response)) = (status.parse::<StatusCode>(), response) else {
            continue;
        };
        if !status.is_client_error() && !status.is_server_error() {
            continue;
        }
        let mut named: Vec<(String, RefOr<Example>)> = Vec::new();
        for (name, e) in examples(status, &shape) {
            let value = serde_json::to_value(e.body()).ok();
            let example = ExampleBuilder::new()
                .summary(e.message.clone())
                .value(value);
            named.push((name.to_string(), RefOr::T(example.build())));
        }
        response.content.insert(
            "application/json".to_string(),
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .examples_from_iter(named)
                .build(),
        );
    }
}

/// Shared error responses, by component name: every one carries an [`ErrorBody`].
const ERROR_RESPONSES: &[(&str, &str)] = &[
    (
        "BadRequest",
        "`bad_request`: malformed JSON, a wrong parameter or field, a bad `limit` or `cursor`; \
         `payload_too_large` or `unsupported_media_type` (only where the operation lists \
         neither that status, 413 or 415, nor 422): a body over the size cap, or not JSON.",
    ),
    (
        "Unauthorized",
        "`unauthorized`: no credential was sent; `authentication-failed`: the credential is \
         unknown, malformed, expired or revoked; `not_found` (only where the operation lists \
         no 404): the credential cannot see the named resource; `forbidden` or \
         `insufficient_scope` (only where the operation lists no 403): the credential may not \
         do this.",
    ),
    (
        "Forbidden",
        "`forbidden`: the credential may not do this; `insufficient_scope`: an OAuth access \
         token without `workspace:admin`.",
    ),
    (
        "NotFound",
        "`not_found`: the resource does not exist or the caller may not see it.",
    ),
    (
        "Conflict",
        "`conflict`: the resource's state does not allow this now, or the `Idempotency-Key` \
         was used with another body or its first request still runs.",
    ),
    (
        "PayloadTooLarge",
        "`payload_too_large`: the body is over this server's size cap.",
    ),
    (
        "UnsupportedMediaType",
        "`unsupported_media_type`: a body, or a `Content-Type`, that is not \
         `application/json`.",
    ),
    (
        "ValidationError",
        "`validation_error`: a well-formed value that cannot be accepted; \
         `payload_too_large` or `unsupported_media_type` (only where the operation does not \
         list that status, 413 or 415): a body over the size cap, or not JSON.",
    ),
    (
        "InternalError",
        "`internal_error`: a bug; the server log has the details under the response's \
         `x-request-id`.",
    ),
    (
        "Unavailable",
        "`unavailable`: the metadata store or a Postgres server is not reachable; retry.",
    ),
];

/// An error response of one of the [`ERROR_RESPONSES`] kinds, by name; its examples are
/// added by [`complete`].
pub fn error_response(name: &str) -> utoipa::openapi::Response {
    let description = ERROR_RESPONSES
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("", |(_, d)| *d);
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}
