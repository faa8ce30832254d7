//! The error rule of pgfleet.
//!
//! Every failure a user can cause or see is a [`DomainError`] variant carrying a `message`
//! written for a person ("Database db_x not found") and, where there is a way out, a `hint`.
//! Internal detail (SQL errors, I/O, Postgres messages) never reaches the response: it is
//! kept in [`DomainError::Internal`], logged by the HTTP layer with the request id, and the
//! client sees a generic message. The http crate maps each variant to exactly one status and
//! one stable error code in one place (`pgfleet_http::error`). Layers below (storage,
//! dataplane) have their own `thiserror` enums; `anyhow` is only used in the binary.

use std::fmt;

pub type Result<T, E = DomainError> = std::result::Result<T, E>;

/// Why a bearer credential was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Malformed,
    Invalid,
    Expired,
    /// A valid token without the scope this API needs (403, not 401).
    InsufficientScope,
}

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// 404: the resource does not exist, or the caller may not know it exists.
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    /// 401.
    #[error("authentication failed: {0:?}")]
    Unauthenticated(AuthFailure),
    /// 403: known caller, action not allowed.
    #[error("{message}")]
    Forbidden {
        message: String,
        hint: Option<String>,
    },
    /// 400: the request is malformed or a parameter is wrong.
    #[error("{message}")]
    BadRequest {
        message: String,
        hint: Option<String>,
    },
    /// 422: well-formed, but a field's value cannot be accepted.
    #[error("{message}")]
    Unprocessable {
        message: String,
        hint: Option<String>,
    },
    /// 409: the resource's state does not allow this now.
    #[error("{message}")]
    Conflict {
        message: String,
        hint: Option<String>,
    },
    /// 429: too many requests of this kind right now (password hashing at capacity, or a
    /// client address throttled after failed sign-ins); answered with `Retry-After`.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        hint: Option<String>,
        retry_after_secs: u64,
    },
    /// 503: a dependency (metadata store, a Postgres server) is not reachable.
    #[error("{message}")]
    Unavailable {
        message: String,
        detail: String,
        /// Which one: an unreachable metadata store opens the HTTP layer's circuit breaker.
        dependency: Dependency,
    },
    /// 500: a bug or an unexpected failure; `detail` is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The dependency a [`DomainError::Unavailable`] could not reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    /// The metadata store (every request needs it).
    MetadataStore,
    /// A region's Postgres server (only requests about its databases need it).
    PostgresServer,
}

impl DomainError {
    pub fn not_found(what: &'static str, id: impl fmt::Display) -> Self {
        Self::NotFound {
            what,
            id: id.to_string(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest {
            message: message.into(),
            hint: None,
        }
    }
    pub fn bad_request_hint(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::BadRequest {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
    pub fn unprocessable(message: impl Into<String>, hint: Option<String>) -> Self {
        Self::Unprocessable {
            message: message.into(),
            hint,
        }
    }
    /// The same refusal as a 422, for operations whose contract lists 422 and no 400 for a
    /// field it cannot accept (a `BadRequest` is turned, anything else kept).
    pub fn as_unprocessable(self) -> Self {
        match self {
            Self::BadRequest { message, hint } => Self::Unprocessable { message, hint },
            other => other,
        }
    }
    pub fn forbidden(message: impl Into<String>, hint: Option<String>) -> Self {
        Self::Forbidden {
            message: message.into(),
            hint,
        }
    }
    pub fn conflict(message: impl Into<String>, hint: Option<String>) -> Self {
        Self::Conflict {
            message: message.into(),
            hint,
        }
    }
    /// A NUL character in an id, name or filter: PostgreSQL text cannot hold one.
    pub fn nul_parameter() -> Self {
        Self::BadRequest {
            message: "A parameter contains a character that is never valid here (NUL)".to_string(),
            hint: Some("Remove the \\u0000 character from the request.".to_string()),
        }
    }
    pub fn internal(detail: impl fmt::Display) -> Self {
        Self::Internal(detail.to_string())
    }
}

impl From<pgfleet_storage::StorageError> for DomainError {
    fn from(e: pgfleet_storage::StorageError) -> Self {
        if e.is_unavailable() {
            DomainError::Unavailable {
                message: "The metadata store is not reachable right now".to_string(),
                detail: e.to_string(),
                dependency: Dependency::MetadataStore,
            }
        } else if e.is_invalid_text() {
            // No id, name or filter can contain a NUL character: a wrong parameter (found by
            // schemathesis as 500s on `GET /v1/projects/a%00b` and `{"databaseId":"\u0000"}`).
            DomainError::nul_parameter()
        } else {
            DomainError::Internal(e.to_string())
        }
    }
}

impl From<pgfleet_dataplane::DataplaneError> for DomainError {
    fn from(e: pgfleet_dataplane::DataplaneError) -> Self {
        DomainError::Internal(e.to_string())
    }
}
