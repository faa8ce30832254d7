//! The OAuth 2.0 half: a public client doing the authorization-code flow with PKCE (S256)
//! and a random `state`, the code exchange and refresh at the server's `/token`, revocation
//! at `/revoke`, and where the tokens live ([`TokenStorage`]).

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use url::Url;

use crate::error::{Error, Result};

/// Scope of full access to the signed-in workspace.
pub const ADMIN_SCOPE: &str = "workspace:admin";
/// Scope that yields a refresh token.
pub const OFFLINE_SCOPE: &str = "offline_access";
/// What a CLI or long-running tool asks for: admin access and a refresh token.
pub const DEFAULT_SCOPE: &str = "workspace:admin offline_access";

/// The tokens of a signed-in session.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tokens {
    /// Bearer token sent with every API request.
    pub access_token: String,
    /// Present when `offline_access` was granted; rotated at every refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// When the access token expires, in Unix seconds (as computed from `expires_in`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// Granted scopes, space-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Where a client keeps its [`Tokens`]: in memory, a file, a keychain…
///
/// The client reads the tokens before each request and writes the new ones after a
/// refresh, so an implementation that persists them keeps the session across runs.
#[async_trait::async_trait]
pub trait TokenStorage: Send + Sync + 'static {
    /// The stored tokens, if any.
    async fn get(&self) -> Result<Option<Tokens>>;
    /// Replaces the stored tokens.
    async fn set(&self, tokens: Tokens) -> Result<()>;
    /// Forgets the tokens (sign-out).
    async fn clear(&self) -> Result<()>;
}

/// A [`TokenStorage`] in memory: the session ends with the process.
#[derive(Debug, Default)]
pub struct MemoryTokenStorage {
    tokens: Mutex<Option<Tokens>>,
}

impl MemoryTokenStorage {
    /// An empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    /// A storage holding these tokens.
    pub fn with_tokens(tokens: Tokens) -> Self {
        Self {
            tokens: Mutex::new(Some(tokens)),
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Tokens>> {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl TokenStorage for MemoryTokenStorage {
    async fn get(&self) -> Result<Option<Tokens>> {
        Ok(self.slot().clone())
    }
    async fn set(&self, tokens: Tokens) -> Result<()> {
        *self.slot() = Some(tokens);
        Ok(())
    }
    async fn clear(&self) -> Result<()> {
        *self.slot() = None;
        Ok(())
    }
}

/// A login in progress: send the user to `url`, keep `state` and `verifier` for
/// [`OAuthClient::handle_callback`].
pub type LoginRequest = (Url, String, String);

/// A public OAuth client (no secret: PKCE protects the code) of one authorization server.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    http: reqwest::Client,
    client_id: String,
    redirect_uri: String,
    auth_base: Url,
    authorize_endpoint: Url,
    token_endpoint: Url,
    revocation_endpoint: Url,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Deserialize)]
struct OAuthErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    issuer: Option<String>,
    authorization_endpoint: String,
    token_endpoint: String,
    #[serde(default)]
    revocation_endpoint: Option<String>,
}

fn parse_url(s: &str) -> Result<Url> {
    let url = Url::parse(s).map_err(|e| Error::Url {
        url: s.to_string(),
        reason: e.to_string(),
    })?;
    if url.cannot_be_a_base() {
        return Err(Error::Url {
            url: s.to_string(),
            reason: "not a base URL".to_string(),
        });
    }
    Ok(url)
}

/// `base` + `/segment`, keeping any path `base` already has.
fn join(base: &Url, segments: &[&str]) -> Url {
    let mut u = base.clone();
    if let Ok(mut p) = u.path_segments_mut() {
        p.pop_if_empty().extend(segments);
    }
    u
}

fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// The S256 code challenge of a PKCE verifier.
pub fn code_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl OAuthClient {
    /// A client of the authorization server at `auth_base` (pgfleet's own base URL unless
    /// `oauth.issuer` says otherwise): `{auth_base}/authorize`, `{auth_base}/token`,
    /// `{auth_base}/revoke`. `redirect_uri` must be registered for the app exactly.
    pub fn new(
        auth_base: &str,
        client_id: impl Into<String>,
        redirect_uri: impl Into<String>,
    ) -> Result<Self> {
        let base = parse_url(auth_base)?;
        Ok(Self {
            http: reqwest::Client::new(),
            client_id: client_id.into(),
            redirect_uri: redirect_uri.into(),
            authorize_endpoint: join(&base, &["authorize"]),
            token_endpoint: join(&base, &["token"]),
            revocation_endpoint: join(&base, &["revoke"]),
            auth_base: base,
        })
    }

    /// Like [`OAuthClient::new`], with the endpoints read from the server's RFC 8414
    /// metadata at `{base}/.well-known/oauth-authorization-server`.
    pub async fn discover(
        base: &str,
        client_id: impl Into<String>,
        redirect_uri: impl Into<String>,
    ) -> Result<Self> {
        Self::discover_with(reqwest::Client::new(), base, client_id, redirect_uri).await
    }

    /// [`OAuthClient::discover`] through `http` (e.g. one trusting a private CA).
    pub async fn discover_with(
        http: reqwest::Client,
        base: &str,
        client_id: impl Into<String>,
        redirect_uri: impl Into<String>,
    ) -> Result<Self> {
        let mut c = Self::new(base, client_id, redirect_uri)?.with_http_client(http);
        let url = join(
            &parse_url(base)?,
            &[".well-known", "oauth-authorization-server"],
        );
        let resp = c.http.get(url).send().await?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await?;
        if !(200..300).contains(&status) {
            return Err(Error::from_response(status, None, &body));
        }
        let m: Metadata = serde_json::from_slice(&body).map_err(|e| Error::Decode {
            status,
            message: format!("authorization server metadata: {e}"),
        })?;
        c.authorize_endpoint = parse_url(&m.authorization_endpoint)?;
        c.token_endpoint = parse_url(&m.token_endpoint)?;
        if let Some(r) = m.revocation_endpoint {
            c.revocation_endpoint = parse_url(&r)?;
        }
        if let Some(i) = m.issuer {
            c.auth_base = parse_url(&i)?;
        }
        Ok(c)
    }

    /// Uses this HTTP client (timeouts, proxies) instead of a default one.
    pub fn with_http_client(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    /// The app's client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The authorization server's base URL (its issuer, after [`OAuthClient::discover`]).
    pub fn auth_base(&self) -> &Url {
        &self.auth_base
    }

    /// The redirect URI sent with the login and the code exchange.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Starts a login: the URL to open in a browser, and the random `state` and PKCE
    /// `verifier` to keep until the callback. `scope` is space-separated, e.g.
    /// [`DEFAULT_SCOPE`].
    pub fn login_url(&self, scope: &str) -> LoginRequest {
        let state = random_b64(24);
        let verifier = random_b64(48);
        let mut url = self.authorize_endpoint.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", scope)
            .append_pair("state", &state)
            .append_pair("code_challenge", &code_challenge(&verifier))
            .append_pair("code_challenge_method", "S256");
        (url, state, verifier)
    }

    /// Finishes a login: checks the callback URL's `state`, then exchanges its `code` (with
    /// the PKCE `verifier`) for tokens.
    pub async fn handle_callback(
        &self,
        callback_url: &str,
        expected_state: &str,
        verifier: &str,
    ) -> Result<Tokens> {
        let url = Url::parse(callback_url).map_err(|e| Error::Url {
            url: callback_url.to_string(),
            reason: e.to_string(),
        })?;
        let mut code = None;
        let mut state = None;
        let mut error = None;
        let mut description = None;
        for (k, v) in url.query_pairs() {
            match k.as_ref() {
                "code" => code = Some(v.into_owned()),
                "state" => state = Some(v.into_owned()),
                "error" => error = Some(v.into_owned()),
                "error_description" => description = Some(v.into_owned()),
                _ => {}
            }
        }
        if state.as_deref() != Some(expected_state) {
            return Err(Error::Callback(
                "the state parameter does not match this login".to_string(),
            ));
        }
        if let Some(error) = error {
            return Err(Error::OAuth {
                status: None,
                error,
                description,
            });
        }
        let Some(code) = code.filter(|c| !c.is_empty()) else {
            return Err(Error::Callback("the callback has no code".to_string()));
        };
        self.token_request(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &self.redirect_uri),
            ("client_id", &self.client_id),
            ("code_verifier", verifier),
        ])
        .await
    }

    /// Trades a refresh token for new tokens (the server rotates the refresh token: the
    /// old one stops working).
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens> {
        let mut t = self
            .token_request(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", &self.client_id),
            ])
            .await?;
        if t.refresh_token.is_none() {
            t.refresh_token = Some(refresh_token.to_string());
        }
        Ok(t)
    }

    /// Revokes a token (refresh or access) and with it the session it belongs to.
    pub async fn revoke(&self, token: &str) -> Result<()> {
        let resp = self
            .http
            .post(self.revocation_endpoint.clone())
            .form(&[("token", token), ("client_id", &self.client_id)])
            .send()
            .await?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let body = resp.bytes().await?;
        Err(oauth_error(status, &body))
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Result<Tokens> {
        let resp = self
            .http
            .post(self.token_endpoint.clone())
            .form(form)
            .send()
            .await?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await?;
        if !(200..300).contains(&status) {
            return Err(oauth_error(status, &body));
        }
        let t: TokenResponse = serde_json::from_slice(&body).map_err(|e| Error::Decode {
            status,
            message: format!("token response: {e}"),
        })?;
        Ok(Tokens {
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            expires_at: t.expires_in.map(|s| now_secs().saturating_add(s)),
            scope: t.scope,
        })
    }
}

fn oauth_error(status: u16, body: &[u8]) -> Error {
    match serde_json::from_slice::<OAuthErrorBody>(body) {
        Ok(b) => Error::OAuth {
            status: Some(status),
            error: b.error,
            description: b.error_description,
        },
        Err(_) => Error::from_response(status, None, body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_url_has_pkce_and_state() {
        let c = OAuthClient::new(
            "http://127.0.0.1:8080",
            "app_1",
            "http://127.0.0.1:9/callback",
        )
        .unwrap();
        let (url, state, verifier) = c.login_url(DEFAULT_SCOPE);
        assert_eq!(url.path(), "/authorize");
        let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(q["state"], state);
        assert_eq!(q["code_challenge"], code_challenge(&verifier));
        assert_eq!(q["code_challenge"].len(), 43);
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["redirect_uri"], "http://127.0.0.1:9/callback");
        assert_eq!(q["scope"], DEFAULT_SCOPE);
        assert!(verifier.len() >= 43 && verifier.len() <= 128);
        let (_, state2, verifier2) = c.login_url(DEFAULT_SCOPE);
        assert_ne!(state, state2);
        assert_ne!(verifier, verifier2);
    }

    #[tokio::test]
    async fn callback_checks_state_and_error() {
        let c =
            OAuthClient::new("http://127.0.0.1:1", "app_1", "http://127.0.0.1:9/callback").unwrap();
        let e = c
            .handle_callback("http://127.0.0.1:9/callback?code=x&state=evil", "good", "v")
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Callback(_)), "{e:?}");
        let e = c
            .handle_callback(
                "http://127.0.0.1:9/callback?error=access_denied&state=good",
                "good",
                "v",
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("access_denied"));
    }

    #[test]
    fn base_with_path_is_kept() {
        let c = OAuthClient::new("http://h/pg/", "a", "r").unwrap();
        assert_eq!(c.token_endpoint.as_str(), "http://h/pg/token");
    }
}
