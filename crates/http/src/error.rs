//! The one place errors become HTTP responses.
//!
//! Every 4xx/5xx body is `{"error":{"code","message","hint?"}}`. Codes are lowercase and
//! stable; clients branch on them. The full list:
//!
//! | status | code | when |
//! |---|---|---|
//! | 400 | `bad_request` | malformed JSON, a wrong parameter or field |
//! | 401 | `unauthorized` | no credential was sent |
//! | 401 | `authentication-failed` | the credential is unknown, malformed, expired or revoked |
//! | 401 | `not_found` | an unknown resource (or one the caller may not see) on an operation whose contract lists no 404 (see [`crate::statuses`]) |
//! | 403 | `forbidden` | the credential may not do this |
//! | 403 | `insufficient_scope` | an OAuth access token without `workspace:admin` |
//! | 404 | `not_found` | unknown resource (or one the caller may not see), unknown route |
//! | 405 | `method_not_allowed` | the route exists, the method does not |
//! | 409 | `conflict` | the resource's state does not allow this now |
//! | 413 | `payload_too_large` | the body is over the size cap |
//! | 415 | `unsupported_media_type` | a write whose body, or declared `Content-Type`, is not JSON |
//! | 422 | `validation_error` | a well-formed value that cannot be accepted; any input error (malformed JSON included) on an operation whose contract lists 422 and not 400 (and the reverse: 400 for the 422s of one that lists 400 and not 422; see [`crate::statuses`]) |
//! | 429 | `too_many_requests` | password hashing is at capacity, or the client address is blocked after failed sign-ins; `Retry-After` says when to try again |
//! | 500 | `internal_error` | a bug; details are in the server log under the request id |
//! | 503 | `unavailable` | the metadata store or a Postgres server is not reachable; `Retry-After` says when to try again |

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use pgfleet_api_types::{ErrorBody, ErrorDetail};
use pgfleet_domain::{AuthFailure, DomainError};

/// `Retry-After` (seconds) on a 503: a metadata restart or failover takes a few seconds, and
/// a client that waits this long before retrying does not add to a burst against a store
/// that is coming back.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 2;

/// All error codes, for documentation and tests.
pub const CODES: &[&str] = &[
    "bad_request",
    "unauthorized",
    "authentication-failed",
    "forbidden",
    "insufficient_scope",
    "not_found",
    "method_not_allowed",
    "conflict",
    "payload_too_large",
    "unsupported_media_type",
    "validation_error",
    "too_many_requests",
    "internal_error",
    "unavailable",
];

/// An error on its way to becoming a response. The response keeps a copy in its extensions,
/// so that [`crate::statuses::fit_to_operation`] can fit its status to the operation's list.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub hint: Option<String>,
    /// Sent as `WWW-Authenticate` on 401s.
    pub www_authenticate: Option<&'static str>,
    /// Sent as `Retry-After` (seconds) on 429s.
    pub retry_after_secs: Option<u64>,
    /// The metadata store could not be reached: the response carries [`MetadataDown`], which
    /// opens the circuit breaker ([`crate::breaker`]).
    pub metadata_down: bool,
}

/// Response extension: this response is a 503 because the metadata store was unreachable.
#[derive(Debug, Clone, Copy)]
pub struct MetadataDown;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            hint: None,
            www_authenticate: None,
            retry_after_secs: None,
            metadata_down: false,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn route_not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("No route for {path}"),
        )
        .with_hint("API paths start with /v1; see /v1/doc for the list.")
    }

    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed on {path}"),
        )
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match &e {
            DomainError::Unavailable {
                detail, dependency, ..
            } => {
                tracing::error!(%detail, ?dependency, "dependency unavailable")
            }
            DomainError::Internal(detail) => tracing::error!(%detail, "internal error"),
            _ => {}
        }
        Self::shape(e)
    }
}

impl ApiError {
    /// The status, code, message and hint of a domain error, without logging its detail
    /// (`/v1/doc` builds its examples with it).
    pub fn shape(e: DomainError) -> Self {
        use DomainError as D;
        let with = |status, code, message: String, hint: Option<String>| ApiError {
            status,
            code,
            message,
            hint,
            www_authenticate: None,
            retry_after_secs: None,
            metadata_down: false,
        };
        match e {
            D::NotFound { what, id } => with(StatusCode::NOT_FOUND, "not_found", format!("{what} {id} not found"), None),
            D::Unauthenticated(AuthFailure::Missing) => ApiError {
                www_authenticate: Some(r#"Bearer realm="pgfleet""#),
                ..with(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "Missing authorization token".to_string(),
                    Some("Send `Authorization: Bearer <token>` with a service token or an OAuth access token.".to_string()),
                )
            },
            D::Unauthenticated(AuthFailure::InsufficientScope) => ApiError {
                www_authenticate: Some(r#"Bearer realm="pgfleet", error="insufficient_scope", scope="workspace:admin""#),
                ..with(
                    StatusCode::FORBIDDEN,
                    "insufficient_scope",
                    "The access token lacks the workspace:admin scope".to_string(),
                    Some("Authorize the app again with scope workspace:admin.".to_string()),
                )
            },
            D::Unauthenticated(failure) => {
                let message = match failure {
                    AuthFailure::Expired => "The authorization token has expired",
                    AuthFailure::Malformed => "The authorization header is malformed",
                    _ => "The authorization token is invalid or has been revoked",
                };
                ApiError {
                    www_authenticate: Some(r#"Bearer realm="pgfleet", error="invalid_token""#),
                    ..with(
                        StatusCode::UNAUTHORIZED,
                        "authentication-failed",
                        message.to_string(),
                        Some("Create a new service token, or sign in again.".to_string()),
                    )
                }
            }
            D::Forbidden { message, hint } => with(StatusCode::FORBIDDEN, "forbidden", message, hint),
            D::BadRequest { message, hint } => with(StatusCode::BAD_REQUEST, "bad_request", message, hint),
            D::Unprocessable { message, hint } => {
                with(StatusCode::UNPROCESSABLE_ENTITY, "validation_error", message, hint)
            }
            D::Conflict { message, hint } => with(StatusCode::CONFLICT, "conflict", message, hint),
            D::TooManyRequests { message, hint, retry_after_secs } => ApiError {
                retry_after_secs: Some(retry_after_secs),
                ..with(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message, hint)
            },
            D::Unavailable { message, dependency, .. } => {
                ApiError {
                    retry_after_secs: Some(UNAVAILABLE_RETRY_AFTER_SECS),
                    metadata_down: dependency == pgfleet_domain::Dependency::MetadataStore,
                    ..with(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message, Some("Retry in a moment.".to_string()))
                }
            }
            D::Internal(_) => {
                with(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "Something went wrong on our side".to_string(),
                    Some("The server log has the details under this response's x-request-id.".to_string()),
                )
            }
        }
    }
}

impl ApiError {
    /// The same error answered with another status and code, when an operation does not list
    /// the one it was made with (see [`crate::statuses`]). Every 401 names the scheme; not
    /// `invalid_token`: the token itself is fine.
    pub fn into_status(mut self, status: StatusCode, code: &'static str) -> Self {
        self.status = status;
        self.code = code;
        if status == StatusCode::UNAUTHORIZED && self.www_authenticate.is_none() {
            self.www_authenticate = Some(r#"Bearer realm="pgfleet""#);
        }
        if status == StatusCode::UNAUTHORIZED && code == "not_found" && self.hint.is_none() {
            // Clients that see a 401 think of the token first: say it is the id.
            self.hint = Some(
                "The credential is fine, but it cannot see this resource, or there is none \
                 with this id."
                    .to_string(),
            );
        }
        self
    }

    /// The body clients see.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message.clone(),
                hint: self.hint.clone(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut res = (self.status, axum::Json(body)).into_response();
        res.extensions_mut().insert(self.clone());
        if let Some(v) = self.www_authenticate {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(v));
        }
        set_retry_after(&mut res, self.retry_after_secs);
        if self.metadata_down {
            res.extensions_mut().insert(MetadataDown);
        }
        res
    }
}

/// Sets `Retry-After` (seconds) when there is one: the API's errors and the pages' share it.
pub fn set_retry_after(res: &mut Response, secs: Option<u64>) {
    if let Some(secs) = secs {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
}

/// Result type of handlers.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_many_requests_is_429_with_retry_after() {
        let res = ApiError::from(DomainError::TooManyRequests {
            message: "Too many".to_string(),
            hint: None,
            retry_after_secs: 42,
        })
        .into_response();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            res.headers().get(header::RETRY_AFTER),
            Some(&HeaderValue::from_static("42"))
        );
        assert!(CODES.contains(&"too_many_requests"));
    }

    #[test]
    fn unavailable_is_503_with_retry_after() {
        let res = ApiError::from(DomainError::Unavailable {
            message: "The metadata store is not reachable right now".to_string(),
            detail: "pool timed out".to_string(),
            dependency: pgfleet_domain::Dependency::MetadataStore,
        })
        .into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            res.headers().get(header::RETRY_AFTER),
            Some(&HeaderValue::from(UNAVAILABLE_RETRY_AFTER_SECS))
        );
        assert!(res.extensions().get::<MetadataDown>().is_some());
    }
}
