//! The OAuth 2.0 authorization server: apps (clients), the authorization-code flow with PKCE
//! (S256 only), refresh-token rotation with reuse detection, revocation, and the
//! integrations it produces.
//!
//! Errors of the token and revocation endpoints are RFC 6749 §5.2 bodies ([`OAuthError`]);
//! authorization errors either show an error page (unknown client or redirect URI: never
//! redirect there) or redirect back with `error=…` ([`AuthorizeError`]).
//!
//! This module owns the types, the shared helpers and [`OAuth`]; its operations are in
//! [`clients`], [`registration`] (RFC 7591 dynamic registration), [`authorize`], [`token`],
//! [`keys`] and [`integrations`]. Both endpoints take the RFC 8707 `resource` parameter when
//! it names this server (its address, or its `/mcp` endpoint): every token of this server is
//! good for both, so there is no audience to narrow.

mod authorize;
mod clients;
mod integrations;
mod keys;
pub mod registration;
mod token;

pub use clients::{App, ClientType};

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use pgfleet_api_types::{ts, List};
use pgfleet_storage::oauth::{self as store, ClientRow, IntegrationRow};
use pgfleet_storage::StorageError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::{new_id, INTEGRATION, OAUTH_CLIENT};
use crate::{AuthFailure, CredentialKind, DomainError, PageRequest, Principal, Result};

/// Scopes this server knows, with the words the consent page shows.
pub const SCOPES: &[(&str, &str)] = &[
    (
        "workspace:admin",
        "Manage everything in the workspace: projects, databases, connections and tokens",
    ),
    (
        "offline_access",
        "Stay signed in: keep access after you close the app (refresh tokens)",
    ),
];
pub const ADMIN_SCOPE: &str = "workspace:admin";
pub const OFFLINE_SCOPE: &str = "offline_access";
const CODE_TTL_MINUTES: i64 = 10;
const REFRESH_PREFIX: &str = "pgfrt_";
const CLIENT_SECRET_PREFIX: &str = "pgfcs_";

/// What the token endpoints answer on error (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// 400, or 401 for `invalid_client`.
    pub status: u16,
    pub error: &'static str,
    pub description: String,
    /// `invalid_client` after HTTP Basic authentication: answer `WWW-Authenticate: Basic`.
    pub basic_challenge: bool,
}

impl OAuthError {
    fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status: 400,
            error,
            description: description.into(),
            basic_challenge: false,
        }
    }
    fn invalid_client(description: impl Into<String>, basic: bool) -> Self {
        Self {
            status: 401,
            error: "invalid_client",
            description: description.into(),
            basic_challenge: basic,
        }
    }
    fn grant(description: impl Into<String>) -> Self {
        Self::new("invalid_grant", description)
    }
}

impl From<DomainError> for OAuthError {
    fn from(e: DomainError) -> Self {
        tracing::error!(error = %e, "token endpoint failure");
        Self {
            status: 500,
            error: "server_error",
            description: "Try again later".to_string(),
            basic_challenge: false,
        }
    }
}

impl From<StorageError> for OAuthError {
    fn from(e: StorageError) -> Self {
        DomainError::from(e).into()
    }
}

/// A validated authorization request, carried through sign-in and consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    pub client_id: String,
    pub client_name: String,
    pub client_description: Option<String>,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub code_challenge: String,
}

impl AuthorizeRequest {
    /// The scopes with the words the consent page shows.
    pub fn scope_words(&self) -> Vec<(String, String)> {
        self.scopes
            .iter()
            .map(|s| {
                let words = SCOPES
                    .iter()
                    .find(|(k, _)| k == s)
                    .map(|(_, w)| w.to_string())
                    .unwrap_or_default();
                (s.clone(), words)
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// Show this on an error page; never redirect (unknown client or redirect URI).
    Page(String),
    /// Redirect the browser here (the client's redirect URI with `error=…`).
    Redirect(String),
}

/// A successful token response.
#[derive(Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    pub workspace_id: String,
    /// Token family (one per code exchange).
    pub fam: String,
    /// Grant (integration) id.
    pub gid: String,
}

/// A created app; `client_secret` is shown once.
#[derive(Clone)]
pub struct CreatedClient {
    pub client: App,
    pub client_secret: Option<String>,
}

impl std::fmt::Debug for CreatedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedClient")
            .field("client", &self.client.id)
            .finish_non_exhaustive()
    }
}

/// Client credentials as presented: HTTP Basic, or form fields.
#[derive(Clone, Default)]
pub struct ClientAuth {
    pub basic: Option<(String, String)>,
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn valid_redirect_uri(u: &str) -> bool {
    match url::Url::parse(u) {
        // Any absolute URI without a fragment (RFC 6749 §3.1.2), including the private-use
        // schemes of native apps (RFC 8252 §7.1).
        Ok(url) => url.fragment().is_none(),
        Err(_) => false,
    }
}

/// Whether `requested` is one of an app's `registered` redirect URIs: the same string, or
/// (RFC 8252 §7.3, native apps) a loopback IP literal over http that differs only in its
/// port, since a CLI listens on whatever port is free.
pub fn redirect_uri_registered(registered: &[String], requested: &str) -> bool {
    if registered.iter().any(|u| u == requested) {
        return true;
    }
    let Ok(req) = url::Url::parse(requested) else {
        return false;
    };
    let loopback = |u: &url::Url| {
        u.scheme() == "http"
            && match u.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                _ => false,
            }
            && u.username().is_empty()
            && u.password().is_none()
            && u.fragment().is_none()
    };
    loopback(&req)
        && registered.iter().any(|r| {
            url::Url::parse(r).is_ok_and(|r| {
                loopback(&r)
                    && r.host() == req.host()
                    && r.path() == req.path()
                    && r.query() == req.query()
            })
        })
}

fn with_query(redirect_uri: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in pairs {
                    q.append_pair(k, v);
                }
            }
            u.to_string()
        }
        Err(_) => redirect_uri.to_string(),
    }
}

/// Longest app description, in characters (the consent page shows it).
const MAX_DESCRIPTION_CHARS: usize = 1000;

fn validate_description(description: Option<&str>) -> Result<()> {
    match description {
        Some(d) => crate::names::validate_text("description", d, MAX_DESCRIPTION_CHARS),
        None => Ok(()),
    }
}

/// The authorization server: clients, authorize, token, keys, and the integrations it granted. Obtained from [`super::Services::oauth`].
#[derive(Debug, Clone, Copy)]
pub struct OAuth<'a> {
    pub(super) ctx: &'a std::sync::Arc<super::Ctx>,
}

#[cfg(test)]
mod tests {
    use super::redirect_uri_registered;

    #[test]
    fn loopback_redirect_uris_match_on_any_port_and_nothing_else_does() {
        let reg = |u: &str| vec![u.to_string()];
        let cli = reg("http://127.0.0.1:8976/callback");
        assert!(redirect_uri_registered(
            &cli,
            "http://127.0.0.1:8976/callback"
        ));
        assert!(redirect_uri_registered(
            &cli,
            "http://127.0.0.1:40123/callback"
        ));
        assert!(redirect_uri_registered(
            &reg("http://127.0.0.1/callback"),
            "http://127.0.0.1:40123/callback"
        ));
        assert!(redirect_uri_registered(
            &reg("http://[::1]:1/cb?x=1"),
            "http://[::1]:2/cb?x=1"
        ));
        for other in [
            "http://127.0.0.1:40123/other",
            "http://127.0.0.1:40123/callback/",
            "http://127.0.0.1:40123/callback?x=1",
            "http://127.0.0.2:8976/callback",
            "http://localhost:8976/callback",
            "https://127.0.0.1:8976/callback",
            "http://user@127.0.0.1:8976/callback",
            "http://127.0.0.1:8976/callback#f",
        ] {
            assert!(!redirect_uri_registered(&cli, other), "{other}");
        }
        // Not a loopback IP: exact match only.
        let web = reg("https://app.example/cb");
        assert!(redirect_uri_registered(&web, "https://app.example/cb"));
        assert!(!redirect_uri_registered(
            &web,
            "https://app.example:8443/cb"
        ));
        let named = reg("http://localhost:3000/cb");
        assert!(!redirect_uri_registered(&named, "http://localhost:3001/cb"));
    }
}
