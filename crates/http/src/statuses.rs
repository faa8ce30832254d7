//! The statuses each contract operation may answer, and the one rule that keeps every error
//! answer inside that list.
//!
//! A strict client generated from the contract (`shared/contract/management-api-v1.d.ts`)
//! treats a status its operation does not list as a failure it cannot branch on. The errors
//! themselves are decided where they arise (a service, an extractor) and mapped to one status
//! in [`crate::error`]; this module then fits that status to the operation's own list
//! ([`OPERATIONS`], copied from the contract and checked against it by the integration test
//! `conformance`) with [`fit`]:
//!
//! * an input error (400 `bad_request` or 422 `validation_error`) answers the one of the two
//!   the operation lists. An operation that lists both keeps what the source said (422 for a
//!   well-formed value that cannot be accepted, 400 for malformed JSON or a wrong parameter);
//!   one that lists neither keeps it too, and `/v1/doc` documents that status as this
//!   server's addition — there is no listed status with that meaning to give instead;
//! * a resource the caller cannot see (404 `not_found`) on an operation that lists no 404 (the
//!   lists scoped to a parent, e.g. the service tokens of another workspace) answers 401 — the
//!   credential is not valid for that parent — keeping the code `not_found` and its message,
//!   so a client that branches on `error.code` still tells it apart from a bad token;
//! * a refusal of an OAuth token's scopes (403 `insufficient_scope`) on an operation that
//!   lists no 403 answers 401 (listed everywhere), keeping its code. A refusal by the
//!   credential's own limits (403 `forbidden`: a read-only or project-scoped service token,
//!   the contract's "agent permission policy" 403) stays 403 on every operation — that is
//!   what the caller asked for when it made the token, and `/v1/doc` lists 403 on every
//!   operation;
//! * a body the server will not read (413 `payload_too_large`, 415 `unsupported_media_type`)
//!   on an operation that lists neither answers the operation's input error, 422 or else 400,
//!   keeping its code — a client branches on the input status, and the code says what to fix;
//! * every other status is left as it is (401 is listed everywhere; 409, 429, 500 and 503
//!   mean what they say, and `/v1/doc` lists each one an operation can give).
//!
//! The fitting happens in one middleware ([`fit_to_operation`]) over the `/v1` routes, on the
//! [`ApiError`] each error response carries in its extensions, so handlers stay thin.

use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

const OK: StatusCode = StatusCode::OK;
const CREATED: StatusCode = StatusCode::CREATED;
const NO_CONTENT: StatusCode = StatusCode::NO_CONTENT;
const BAD_REQUEST: StatusCode = StatusCode::BAD_REQUEST;
const UNAUTHORIZED: StatusCode = StatusCode::UNAUTHORIZED;
const FORBIDDEN: StatusCode = StatusCode::FORBIDDEN;
const NOT_FOUND: StatusCode = StatusCode::NOT_FOUND;
const CONFLICT: StatusCode = StatusCode::CONFLICT;
const TOO_LARGE: StatusCode = StatusCode::PAYLOAD_TOO_LARGE;
const UNSUPPORTED: StatusCode = StatusCode::UNSUPPORTED_MEDIA_TYPE;
const UNPROCESSABLE: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;
const INTERNAL: StatusCode = StatusCode::INTERNAL_SERVER_ERROR;
const UNAVAILABLE: StatusCode = StatusCode::SERVICE_UNAVAILABLE;

/// One operation of the contract and the statuses it lists.
#[derive(Debug)]
pub struct Operation {
    pub method: Method,
    /// The contract's path, with its own parameter names.
    pub path: &'static str,
    pub operation_id: &'static str,
    pub statuses: &'static [StatusCode],
}

const fn op(
    method: Method,
    path: &'static str,
    operation_id: &'static str,
    statuses: &'static [StatusCode],
) -> Operation {
    Operation {
        method,
        path,
        operation_id,
        statuses,
    }
}

/// Every contract operation with the statuses it lists (`responses` of the contract's
/// `operations` interface).
#[rustfmt::skip]
pub const OPERATIONS: &[Operation] = &[
    op(Method::GET, "/v1/workspaces", "getV1Workspaces", &[OK, UNAUTHORIZED]),
    op(Method::POST, "/v1/workspaces", "postV1Workspaces", &[CREATED, UNAUTHORIZED, FORBIDDEN, TOO_LARGE]),
    op(Method::GET, "/v1/workspaces/{id}", "getV1WorkspacesById", &[OK, UNAUTHORIZED, NOT_FOUND]),
    op(Method::GET, "/v1/me", "getV1Me", &[OK, UNAUTHORIZED]),
    op(Method::GET, "/v1/projects", "getV1Projects", &[OK, UNAUTHORIZED]),
    op(Method::POST, "/v1/projects", "postV1Projects", &[CREATED, UNAUTHORIZED, CONFLICT, TOO_LARGE]),
    op(Method::GET, "/v1/projects/{id}", "getV1ProjectsById", &[OK, UNAUTHORIZED, NOT_FOUND]),
    op(Method::PATCH, "/v1/projects/{id}", "patchV1ProjectsById", &[OK, UNAUTHORIZED, FORBIDDEN, NOT_FOUND, TOO_LARGE, UNPROCESSABLE]),
    op(Method::DELETE, "/v1/projects/{id}", "deleteV1ProjectsById", &[NO_CONTENT, BAD_REQUEST, UNAUTHORIZED, NOT_FOUND]),
    op(Method::POST, "/v1/projects/{id}/transfer", "postV1ProjectsByIdTransfer", &[NO_CONTENT, UNAUTHORIZED, NOT_FOUND, CONFLICT, TOO_LARGE]),
    op(Method::GET, "/v1/projects/{projectId}/databases", "getV1ProjectsByProjectIdDatabases", &[OK, UNAUTHORIZED, NOT_FOUND]),
    op(Method::POST, "/v1/projects/{projectId}/databases", "postV1ProjectsByProjectIdDatabases", &[CREATED, BAD_REQUEST, UNAUTHORIZED, FORBIDDEN, NOT_FOUND, TOO_LARGE]),
    op(Method::GET, "/v1/databases", "getV1Databases", &[OK, UNAUTHORIZED, FORBIDDEN]),
    op(Method::POST, "/v1/databases", "postV1Databases", &[CREATED, BAD_REQUEST, UNAUTHORIZED, FORBIDDEN, NOT_FOUND, CONFLICT, TOO_LARGE]),
    op(Method::GET, "/v1/databases/{databaseId}", "getV1DatabasesByDatabaseId", &[OK, UNAUTHORIZED, FORBIDDEN, NOT_FOUND]),
    op(Method::PATCH, "/v1/databases/{databaseId}", "patchV1DatabasesByDatabaseId", &[OK, UNAUTHORIZED, FORBIDDEN, NOT_FOUND, CONFLICT, TOO_LARGE]),
    op(Method::DELETE, "/v1/databases/{databaseId}", "deleteV1DatabasesByDatabaseId", &[NO_CONTENT, UNAUTHORIZED, FORBIDDEN, NOT_FOUND]),
    op(Method::GET, "/v1/databases/{databaseId}/usage", "getV1DatabasesByDatabaseIdUsage", &[OK, BAD_REQUEST, UNAUTHORIZED, NOT_FOUND, INTERNAL, UNAVAILABLE]),
    op(Method::GET, "/v1/databases/{databaseId}/connections", "getV1DatabasesByDatabaseIdConnections", &[OK, UNAUTHORIZED]),
    op(Method::POST, "/v1/databases/{databaseId}/connections", "postV1DatabasesByDatabaseIdConnections", &[OK, UNAUTHORIZED, NOT_FOUND]),
    op(Method::GET, "/v1/connections", "getV1Connections", &[OK, UNAUTHORIZED]),
    op(Method::POST, "/v1/connections", "postV1Connections", &[CREATED, UNAUTHORIZED, NOT_FOUND]),
    op(Method::GET, "/v1/connections/{id}", "getV1ConnectionsById", &[OK, UNAUTHORIZED, NOT_FOUND]),
    op(Method::DELETE, "/v1/connections/{id}", "deleteV1ConnectionsById", &[NO_CONTENT, UNAUTHORIZED, NOT_FOUND]),
    op(Method::POST, "/v1/connections/{id}/rotate", "postV1ConnectionsByIdRotate", &[OK, UNAUTHORIZED, NOT_FOUND]),
    op(Method::GET, "/v1/databases/{databaseId}/backups", "getV1DatabasesByDatabaseIdBackups", &[OK, UNAUTHORIZED, NOT_FOUND, UNPROCESSABLE]),
    op(Method::POST, "/v1/databases/{targetDatabaseId}/restore", "postV1DatabasesByTargetDatabaseIdRestore", &[OK, UNAUTHORIZED, NOT_FOUND, CONFLICT, UNPROCESSABLE]),
    op(Method::GET, "/v1/workspaces/{workspaceId}/integrations", "getV1WorkspacesByWorkspaceIdIntegrations", &[OK, UNAUTHORIZED, NOT_FOUND]),
    op(Method::DELETE, "/v1/workspaces/{workspaceId}/integrations/{clientId}", "deleteV1WorkspacesByWorkspaceIdIntegrationsByClientId", &[NO_CONTENT, UNAUTHORIZED, NOT_FOUND]),
    op(Method::GET, "/v1/integrations", "getV1Integrations", &[OK, UNAUTHORIZED]),
    op(Method::GET, "/v1/integrations/{id}", "getV1IntegrationsById", &[OK, UNAUTHORIZED, NOT_FOUND]),
    op(Method::DELETE, "/v1/integrations/{id}", "deleteV1IntegrationsById", &[NO_CONTENT, UNAUTHORIZED, NOT_FOUND]),
    op(Method::GET, "/v1/regions", "getV1Regions", &[OK, UNAUTHORIZED]),
    op(Method::GET, "/v1/regions/postgres", "getV1RegionsPostgres", &[OK, UNAUTHORIZED]),
    op(Method::GET, "/v1/workspaces/{workspaceId}/service-tokens", "getV1WorkspacesByWorkspaceIdService-tokens", &[OK, UNAUTHORIZED]),
    op(Method::POST, "/v1/workspaces/{workspaceId}/service-tokens", "postV1WorkspacesByWorkspaceIdService-tokens", &[CREATED, UNAUTHORIZED, NOT_FOUND, UNPROCESSABLE]),
    op(Method::DELETE, "/v1/workspaces/{workspaceId}/service-tokens/{serviceTokenId}", "deleteV1WorkspacesByWorkspaceIdService-tokensByServiceTokenId", &[NO_CONTENT, UNAUTHORIZED, NOT_FOUND]),
];

/// A path with every `{parameter}` reduced to `{}`: the router's names (`{id}`) and the
/// contract's (`{databaseId}`) differ, the shapes do not.
fn shape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push('{');
            }
            '}' => {
                in_param = false;
                out.push('}');
            }
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

/// The contract operation a route (method and path template, either naming) is.
pub fn operation(method: &Method, path: &str) -> Option<&'static Operation> {
    let wanted = shape(path);
    OPERATIONS
        .iter()
        .find(|o| o.method == *method && shape(o.path) == wanted)
}

/// What an error answered with `status` becomes on an operation that lists `listed`: the new
/// status and, when the meaning changes with it, the new code (see the module documentation).
/// `None`: unchanged.
pub fn fit(
    status: StatusCode,
    listed: &[StatusCode],
) -> Option<(StatusCode, Option<&'static str>)> {
    if listed.contains(&status) {
        return None;
    }
    match status {
        BAD_REQUEST if listed.contains(&UNPROCESSABLE) => {
            Some((UNPROCESSABLE, Some("validation_error")))
        }
        UNPROCESSABLE if listed.contains(&BAD_REQUEST) => Some((BAD_REQUEST, Some("bad_request"))),
        NOT_FOUND | FORBIDDEN if listed.contains(&UNAUTHORIZED) => Some((UNAUTHORIZED, None)),
        TOO_LARGE | UNSUPPORTED => [UNPROCESSABLE, BAD_REQUEST]
            .into_iter()
            .find(|s| listed.contains(s))
            .map(|s| (s, None)),
        _ => None,
    }
}

/// The statuses [`fit`] may answer with another one: what `/v1/doc` looks at to document
/// each fitted answer under the status it really gets.
pub const FITTED: &[StatusCode] = &[
    BAD_REQUEST,
    UNPROCESSABLE,
    NOT_FOUND,
    FORBIDDEN,
    TOO_LARGE,
    UNSUPPORTED,
];

/// True for an error that is never fitted: a refusal by the credential's own limits (403
/// `forbidden`, see the module documentation).
pub fn keeps_status(status: StatusCode, code: &str) -> bool {
    status == FORBIDDEN && code == "forbidden"
}

/// Middleware of the `/v1` routes: an error answer whose status the operation does not list is
/// fitted to the list with [`fit`].
pub async fn fit_to_operation(req: Request, next: Next) -> Response {
    // Only `/v1` operations are fitted; the others (pages, OAuth endpoints) are not in the
    // contract.
    let found = req.extensions().get::<MatchedPath>().and_then(|p| {
        // Inside the nested `/v1` router the template may come without its prefix.
        let p = p.as_str();
        if p.starts_with("/v1/") {
            operation(req.method(), p)
        } else {
            operation(req.method(), &format!("/v1{p}"))
        }
    });
    let res = next.run(req).await;
    let Some(op) = found else {
        return res;
    };
    let Some((status, code)) = fit(res.status(), op.statuses) else {
        return res;
    };
    let Some(error) = res.extensions().get::<ApiError>() else {
        return res;
    };
    if keeps_status(res.status(), error.code) {
        return res;
    }
    let code = code.unwrap_or(error.code);
    let mut fitted = error.clone().into_status(status, code).into_response();
    // Headers set on the way out by inner layers (request id, idempotency replay marker).
    for (name, value) in res.headers() {
        if !fitted.headers().contains_key(name) {
            fitted.headers_mut().insert(name.clone(), value.clone());
        }
    }
    fitted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_contract_paths_meet() {
        let o = operation(&Method::GET, "/v1/databases/{id}/connections");
        assert_eq!(
            o.map(|o| o.operation_id),
            Some("getV1DatabasesByDatabaseIdConnections")
        );
        assert!(operation(&Method::PUT, "/v1/databases/{id}").is_none());
        assert_eq!(OPERATIONS.len(), 37);
    }

    #[test]
    fn input_errors_answer_the_listed_one() {
        assert_eq!(
            fit(BAD_REQUEST, &[OK, UNPROCESSABLE]),
            Some((UNPROCESSABLE, Some("validation_error")))
        );
        assert_eq!(
            fit(UNPROCESSABLE, &[OK, BAD_REQUEST]),
            Some((BAD_REQUEST, Some("bad_request")))
        );
        assert_eq!(fit(BAD_REQUEST, &[OK, BAD_REQUEST, UNPROCESSABLE]), None);
        assert_eq!(fit(BAD_REQUEST, &[OK, UNAUTHORIZED]), None);
        assert_eq!(
            fit(NOT_FOUND, &[OK, UNAUTHORIZED]),
            Some((UNAUTHORIZED, None))
        );
        assert_eq!(fit(NOT_FOUND, &[OK, UNAUTHORIZED, NOT_FOUND]), None);
        assert_eq!(fit(CONFLICT, &[OK, UNAUTHORIZED]), None);
    }

    #[test]
    fn refusals_and_unread_bodies_answer_listed_statuses_with_their_code() {
        assert_eq!(
            fit(FORBIDDEN, &[OK, UNAUTHORIZED]),
            Some((UNAUTHORIZED, None))
        );
        assert_eq!(fit(FORBIDDEN, &[OK, UNAUTHORIZED, FORBIDDEN]), None);
        assert_eq!(
            fit(TOO_LARGE, &[OK, BAD_REQUEST, UNPROCESSABLE]),
            Some((UNPROCESSABLE, None))
        );
        assert_eq!(
            fit(UNSUPPORTED, &[OK, BAD_REQUEST]),
            Some((BAD_REQUEST, None))
        );
        assert_eq!(fit(TOO_LARGE, &[OK, TOO_LARGE, BAD_REQUEST]), None);
        assert_eq!(fit(UNSUPPORTED, &[OK, UNAUTHORIZED]), None);
    }
}
