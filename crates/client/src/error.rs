//! Errors of the SDK: the server's own error (status, code, message, hint, request id), a
//! transport failure, an OAuth protocol error, or a response the SDK could not read.

use pgfleet_api_types::ErrorBody;

/// What can go wrong with a call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with an error body `{"error":{"code","message","hint?"}}`.
    #[error("{message} ({code}, HTTP {status})")]
    Api {
        /// HTTP status (400…599).
        status: u16,
        /// Stable machine-readable code, e.g. `not_found`, `authentication-failed`.
        code: String,
        /// A sentence for a person.
        message: String,
        /// The way out, when the server has one.
        hint: Option<String>,
        /// The `x-request-id` header: the server log has the same id.
        request_id: Option<String>,
    },
    /// The request did not get an answer (connection refused, timeout, broken body…).
    #[error("cannot reach the server: {0}")]
    Transport(#[from] reqwest::Error),
    /// The authorization server refused (RFC 6749 §5.2 `error`), or the callback carried
    /// an `error` parameter.
    #[error("OAuth error {error}{}", .description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    OAuth {
        /// HTTP status of the token endpoint's answer; `None` for a callback error.
        status: Option<u16>,
        /// `invalid_grant`, `access_denied`, …
        error: String,
        /// `error_description`.
        description: Option<String>,
    },
    /// The callback URL is not the answer to our login request (state mismatch, no code).
    #[error("OAuth callback rejected: {0}")]
    Callback(String),
    /// A response the SDK could not read as the documented type.
    #[error("unexpected response (HTTP {status}): {message}")]
    Decode {
        /// HTTP status of the response.
        status: u16,
        /// What did not parse.
        message: String,
    },
    /// A base URL that cannot carry API paths.
    #[error("invalid URL {url:?}: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// OAuth mode without tokens in the storage: sign in first.
    #[error("not signed in: the token storage is empty")]
    NotAuthenticated,
    /// The [`TokenStorage`](crate::TokenStorage) failed.
    #[error("token storage: {0}")]
    Storage(Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// The server's error code (`not_found`, `conflict`, …), or the OAuth `error`.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            Self::OAuth { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The HTTP status of the answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } | Self::Decode { status, .. } => Some(*status),
            Self::OAuth { status, .. } => *status,
            Self::Transport(e) => e.status().map(|s| s.as_u16()),
            _ => None,
        }
    }

    /// The server's hint, when there is one.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Self::Api { hint, .. } => hint.as_deref(),
            _ => None,
        }
    }

    /// `true` for `not_found`: a 404, or the 401 of an operation whose contract lists no 404
    /// (e.g. the service tokens of a workspace the credential cannot see).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Api { status: 404, .. })
            || matches!(self, Self::Api { status: 401, code, .. } if code == "not_found")
    }

    /// Builds [`Error::Api`] (or [`Error::Decode`]) from an error response's parts.
    pub(crate) fn from_response(status: u16, request_id: Option<String>, body: &[u8]) -> Self {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(b) => Self::Api {
                status,
                code: b.error.code,
                message: b.error.message,
                hint: b.error.hint,
                request_id,
            },
            Err(_) => {
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                Self::Api {
                    status,
                    code: format!("http_{status}"),
                    message: if text.is_empty() {
                        format!("HTTP {status} without an error body")
                    } else {
                        text.chars().take(500).collect()
                    },
                    hint: None,
                    request_id,
                }
            }
        }
    }
}

/// `Result` with the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
