//! The OAuth 2.0 authorization server: apps (clients), the authorization-code flow with PKCE
//! (S256 only), refresh-token rotation with reuse detection, revocation, and the
//! integrations it produces.
//!
//! Errors of the token and revocation endpoints are RFC 6749 §5.2 bodies ([`OAuthError`]);
//! authorization errors either show an error page (unknown client or redirect URI: never
//! redirect there) or redirect back with `error=…` ([`AuthorizeError`]).

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
use crate::{AuthFailure, CredentialKind, DomainError, PageRequest, Principal, Result, Services};

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
    pub client: ClientRow,
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

impl Services {
    // ----- apps -----

    /// Creates an OAuth app in a workspace. Redirect URIs are matched exactly later.
    pub async fn oauth_client_create(
        &self,
        workspace_id: &str,
        user_id: Option<&str>,
        name: &str,
        description: Option<&str>,
        redirect_uris: &[String],
        confidential: bool,
    ) -> Result<CreatedClient> {
        let name = name.trim();
        crate::services::validate_name("name", name)?;
        validate_description(description)?;
        let uris: Vec<String> = redirect_uris
            .iter()
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .collect();
        if uris.is_empty() {
            return Err(DomainError::bad_request(
                "At least one redirect URI is required",
            ));
        }
        if let Some(bad) = uris.iter().find(|u| !valid_redirect_uri(u)) {
            return Err(DomainError::bad_request_hint(
                format!("Redirect URI {bad:?} is not an absolute URI without a fragment"),
                "Use the exact URL your app receives the code at, e.g. https://app.example/callback.",
            ));
        }
        let secret = confidential.then(|| {
            self.rng()
                .with(|r| pgfleet_auth::generate_token(CLIENT_SECRET_PREFIX, r))
        });
        let row = store::insert_client(
            self.store().pool(),
            &ClientRow {
                seq: 0,
                id: new_id(OAUTH_CLIENT, self.rng()),
                workspace_id: workspace_id.to_string(),
                name: name.to_string(),
                description: description
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .map(String::from),
                redirect_uris: uris,
                client_type: if confidential {
                    "confidential"
                } else {
                    "public"
                }
                .to_string(),
                secret_hash: secret.as_ref().map(|s| s.hash.clone()),
                created_by_user_id: user_id.map(String::from),
                created_at: self.clock().now(),
            },
        )
        .await?;
        Ok(CreatedClient {
            client: row,
            client_secret: secret.map(|s| s.plaintext),
        })
    }

    pub async fn oauth_clients_list(&self, workspace_id: &str) -> Result<Vec<ClientRow>> {
        Ok(store::list_clients(self.store().pool(), workspace_id).await?)
    }

    pub async fn oauth_client_get(&self, workspace_id: &str, id: &str) -> Result<ClientRow> {
        store::get_client(self.store().pool(), id)
            .await?
            .filter(|c| c.workspace_id == workspace_id)
            .ok_or_else(|| DomainError::not_found("App", id))
    }

    pub async fn oauth_client_update(
        &self,
        workspace_id: &str,
        id: &str,
        name: &str,
        description: Option<&str>,
        redirect_uris: &[String],
    ) -> Result<ClientRow> {
        self.oauth_client_get(workspace_id, id).await?;
        crate::services::validate_name("name", name.trim())?;
        validate_description(description)?;
        let uris: Vec<String> = redirect_uris
            .iter()
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .collect();
        if uris.is_empty() || uris.iter().any(|u| !valid_redirect_uri(u)) {
            return Err(DomainError::bad_request(
                "Redirect URIs must be absolute URIs without fragments",
            ));
        }
        store::update_client(self.store().pool(), id, name.trim(), description, &uris).await?;
        self.oauth_client_get(workspace_id, id).await
    }

    /// Deletes an app and with it every grant and token issued to it.
    pub async fn oauth_client_delete(&self, workspace_id: &str, id: &str) -> Result<()> {
        self.oauth_client_get(workspace_id, id).await?;
        store::delete_client(self.store().pool(), id).await?;
        self.auth_cache().clear();
        Ok(())
    }

    // ----- authorization endpoint -----

    /// Validates `GET /authorize` parameters (extra ones such as `utm_*` are ignored).
    pub async fn oauth_authorize_check(
        &self,
        q: &HashMap<String, String>,
    ) -> std::result::Result<AuthorizeRequest, AuthorizeError> {
        let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let Some(client_id) = get("client_id") else {
            return Err(AuthorizeError::Page(
                "The request has no client_id.".to_string(),
            ));
        };
        let client = match store::get_client(self.store().pool(), client_id).await {
            Ok(Some(c)) => c,
            Ok(None) => {
                return Err(AuthorizeError::Page(format!(
                    "Unknown application {client_id:?}."
                )))
            }
            Err(e) => {
                tracing::error!(error = %e, "authorize: store error");
                return Err(AuthorizeError::Page(
                    "The server cannot check this request right now.".to_string(),
                ));
            }
        };
        let Some(redirect_uri) = get("redirect_uri") else {
            return Err(AuthorizeError::Page(
                "The request has no redirect_uri.".to_string(),
            ));
        };
        if !redirect_uri_registered(&client.redirect_uris, redirect_uri) {
            return Err(AuthorizeError::Page(format!(
                "The redirect URI {redirect_uri:?} is not registered for {}.",
                client.name
            )));
        }
        let state = get("state").map(String::from);
        let fail = |error: &str, description: &str| {
            let mut pairs = vec![("error", error), ("error_description", description)];
            if let Some(s) = state.as_deref() {
                pairs.push(("state", s));
            }
            AuthorizeError::Redirect(with_query(redirect_uri, &pairs))
        };
        if get("response_type") != Some("code") {
            return Err(fail(
                "unsupported_response_type",
                "Only response_type=code is supported",
            ));
        }
        let Some(challenge) = get("code_challenge") else {
            return Err(fail(
                "invalid_request",
                "PKCE is required: send code_challenge with code_challenge_method=S256",
            ));
        };
        if get("code_challenge_method") != Some("S256") {
            return Err(fail(
                "invalid_request",
                "Only code_challenge_method=S256 is supported",
            ));
        }
        if challenge.len() != 43
            || !challenge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(fail(
                "invalid_request",
                "code_challenge must be the base64url SHA-256 of the verifier",
            ));
        }
        let mut scopes: Vec<String> = get("scope")
            .unwrap_or(ADMIN_SCOPE)
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        scopes.sort();
        scopes.dedup();
        if let Some(bad) = scopes.iter().find(|s| !SCOPES.iter().any(|(k, _)| k == s)) {
            return Err(fail("invalid_scope", &format!("Unknown scope {bad}")));
        }
        Ok(AuthorizeRequest {
            client_id: client.id,
            client_name: client.name,
            client_description: client.description,
            redirect_uri: redirect_uri.to_string(),
            scopes,
            state,
            code_challenge: challenge.to_string(),
        })
    }

    /// The user allowed the request for `workspace_id`: a code, and where to send it.
    pub async fn oauth_approve(
        &self,
        user_id: &str,
        req: &AuthorizeRequest,
        workspace_id: &str,
    ) -> Result<String> {
        if !pgfleet_storage::workspaces::is_member(self.store().pool(), workspace_id, user_id)
            .await?
        {
            return Err(DomainError::forbidden(
                "You are not a member of that workspace",
                None,
            ));
        }
        let now = self.clock().now();
        let mut tx = self.store().begin().await?;
        let grant = store::upsert_grant(
            &mut *tx,
            &new_id(INTEGRATION, self.rng()),
            &req.client_id,
            workspace_id,
            user_id,
            &req.scopes,
            now,
        )
        .await?;
        let code = self.rng().with(pgfleet_auth::random_string);
        store::insert_code(
            &mut *tx,
            &pgfleet_auth::hash_token(&code),
            &grant.id,
            &req.client_id,
            &req.redirect_uri,
            &req.code_challenge,
            &req.scopes,
            now,
            now + Duration::minutes(CODE_TTL_MINUTES),
        )
        .await?;
        tx.commit().await.map_err(StorageError::from)?;
        let mut pairs = vec![("code", code.as_str())];
        if let Some(s) = req.state.as_deref() {
            pairs.push(("state", s));
        }
        Ok(with_query(&req.redirect_uri, &pairs))
    }

    /// Where to send the browser when the user denies.
    pub fn oauth_deny_url(&self, req: &AuthorizeRequest) -> String {
        let mut pairs = vec![
            ("error", "access_denied"),
            ("error_description", "The user denied the request"),
        ];
        if let Some(s) = req.state.as_deref() {
            pairs.push(("state", s));
        }
        with_query(&req.redirect_uri, &pairs)
    }

    // ----- token endpoint -----

    /// Authenticates the client of a token or revocation request.
    async fn oauth_client_auth(
        &self,
        form: &HashMap<String, String>,
        auth: &ClientAuth,
    ) -> std::result::Result<ClientRow, OAuthError> {
        let form_id = form.get("client_id").map(String::as_str);
        let form_secret = form.get("client_secret").map(String::as_str);
        let basic = auth.basic.is_some();
        let (client_id, secret) = match (&auth.basic, form_secret) {
            (Some(_), Some(_)) => {
                return Err(OAuthError::new(
                    "invalid_request",
                    "Use one client authentication method",
                ))
            }
            (Some((id, secret)), None) => {
                if form_id.is_some_and(|f| f != id) {
                    return Err(OAuthError::new(
                        "invalid_request",
                        "client_id does not match the Authorization header",
                    ));
                }
                (id.as_str(), Some(secret.as_str()))
            }
            (None, s) => match form_id {
                Some(id) => (id, s),
                None => return Err(OAuthError::invalid_client("client_id is required", false)),
            },
        };
        let Some(client) = store::get_client(self.store().pool(), client_id).await? else {
            return Err(OAuthError::invalid_client("Unknown client", basic));
        };
        match (client.secret_hash.as_deref(), secret) {
            (Some(hash), Some(secret))
                if pgfleet_auth::constant_time_eq(hash, &pgfleet_auth::hash_token(secret)) =>
            {
                Ok(client)
            }
            (Some(_), _) => Err(OAuthError::invalid_client(
                "Client authentication failed",
                basic,
            )),
            (None, None) => Ok(client),
            (None, Some(_)) => Err(OAuthError::invalid_client(
                "This is a public client: send no client secret",
                basic,
            )),
        }
    }

    /// `POST /token`.
    pub async fn oauth_token(
        &self,
        form: &HashMap<String, String>,
        auth: &ClientAuth,
    ) -> std::result::Result<TokenResponse, OAuthError> {
        let grant_type = form.get("grant_type").map(String::as_str).unwrap_or("");
        if grant_type.is_empty() {
            return Err(OAuthError::new("invalid_request", "grant_type is required"));
        }
        if !matches!(grant_type, "authorization_code" | "refresh_token") {
            return Err(OAuthError::new(
                "unsupported_grant_type",
                format!("grant_type {grant_type} is not supported"),
            ));
        }
        let client = self.oauth_client_auth(form, auth).await?;
        match grant_type {
            "authorization_code" => self.oauth_exchange_code(&client, form).await,
            _ => self.oauth_refresh(&client, form).await,
        }
    }

    async fn oauth_exchange_code(
        &self,
        client: &ClientRow,
        form: &HashMap<String, String>,
    ) -> std::result::Result<TokenResponse, OAuthError> {
        let code = form
            .get("code")
            .filter(|c| !c.is_empty())
            .ok_or_else(|| OAuthError::new("invalid_request", "code is required"))?;
        let redirect_uri = form
            .get("redirect_uri")
            .ok_or_else(|| OAuthError::new("invalid_request", "redirect_uri is required"))?;
        let verifier = form.get("code_verifier").ok_or_else(|| {
            OAuthError::new("invalid_request", "code_verifier is required (PKCE)")
        })?;
        let now = self.clock().now();
        let hash = pgfleet_auth::hash_token(code);
        let mut tx = self.store().begin().await?;
        let Some(row) = store::lock_code(&mut *tx, &hash).await? else {
            return Err(OAuthError::grant("The code is invalid"));
        };
        if row.used_at.is_some() {
            // A replayed code: revoke whatever was issued from it (RFC 6749 §4.1.2).
            if let Some(f) = row.family_id.as_deref() {
                store::revoke_family(&mut *tx, f, now).await?;
            }
            tx.commit().await.map_err(StorageError::from)?;
            self.auth_cache().clear();
            return Err(OAuthError::grant(
                "The code was already used; tokens issued from it are revoked",
            ));
        }
        if row.expires_at <= now {
            return Err(OAuthError::grant("The code has expired"));
        }
        if row.client_id != client.id {
            return Err(OAuthError::grant("The code was issued to another client"));
        }
        if &row.redirect_uri != redirect_uri {
            return Err(OAuthError::grant(
                "redirect_uri does not match the authorization request",
            ));
        }
        if verifier.len() < 43
            || verifier.len() > 128
            || !pgfleet_auth::constant_time_eq(
                s256(verifier).as_bytes(),
                row.code_challenge.as_bytes(),
            )
        {
            return Err(OAuthError::grant(
                "code_verifier does not match the code challenge",
            ));
        }
        let grant = store::get_grant(&mut *tx, &row.grant_id)
            .await?
            .filter(|g| g.revoked_at.is_none());
        let Some(grant) = grant else {
            return Err(OAuthError::grant("The authorization was revoked"));
        };
        let family = new_id("fam_", self.rng());
        store::insert_family(&mut *tx, &family, &grant.id, now).await?;
        store::use_code(&mut *tx, &hash, &family, now).await?;
        let response = self
            .issue(&mut tx, client, &grant, &row.scopes, &family, now)
            .await?;
        tx.commit().await.map_err(StorageError::from)?;
        Ok(response)
    }

    async fn oauth_refresh(
        &self,
        client: &ClientRow,
        form: &HashMap<String, String>,
    ) -> std::result::Result<TokenResponse, OAuthError> {
        let token = form
            .get("refresh_token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| OAuthError::new("invalid_request", "refresh_token is required"))?;
        let now = self.clock().now();
        let hash = pgfleet_auth::hash_token(token);
        let mut tx = self.store().begin().await?;
        let Some(row) = store::lock_refresh(&mut *tx, &hash).await? else {
            return Err(OAuthError::grant("The refresh token is invalid"));
        };
        if row.used_at.is_some() {
            // Reuse of a rotated token: someone else has the family. Revoke it all.
            store::revoke_family(&mut *tx, &row.family_id, now).await?;
            tx.commit().await.map_err(StorageError::from)?;
            self.auth_cache().clear();
            return Err(OAuthError::grant(
                "The refresh token was already used; the session is revoked",
            ));
        }
        let Some(grant) = store::family_alive(&mut *tx, &row.family_id).await? else {
            return Err(OAuthError::grant("The authorization was revoked"));
        };
        if grant.client_id != client.id || row.revoked_at.is_some() {
            return Err(OAuthError::grant("The refresh token is invalid"));
        }
        if !grant.scopes.iter().any(|s| s == OFFLINE_SCOPE) {
            return Err(OAuthError::grant("offline_access was not granted"));
        }
        if let Some(requested) = form.get("scope") {
            if requested
                .split(' ')
                .filter(|s| !s.is_empty())
                .any(|s| !grant.scopes.iter().any(|g| g == s))
            {
                return Err(OAuthError::new(
                    "invalid_scope",
                    "A refresh cannot widen the granted scopes",
                ));
            }
        }
        store::use_refresh(&mut *tx, &hash, now).await?;
        let response = self
            .issue(&mut tx, client, &grant, &grant.scopes, &row.family_id, now)
            .await?;
        tx.commit().await.map_err(StorageError::from)?;
        Ok(response)
    }

    async fn issue(
        &self,
        tx: &mut sqlx::PgConnection,
        client: &ClientRow,
        grant: &store::GrantRow,
        scopes: &[String],
        family: &str,
        now: DateTime<Utc>,
    ) -> std::result::Result<TokenResponse, OAuthError> {
        let ttl = self.config().oauth.access_token_ttl;
        let claims = AccessClaims {
            iss: self.config().oauth.issuer.clone(),
            sub: grant.user_id.clone(),
            exp: now.timestamp() + ttl.as_secs() as i64,
            iat: now.timestamp(),
            jti: self.rng().with(pgfleet_auth::random_string),
            client_id: client.id.clone(),
            scope: scopes.join(" "),
            workspace_id: grant.workspace_id.clone(),
            fam: family.to_string(),
            gid: grant.id.clone(),
        };
        let access_token = self.signer().sign(&claims)?;
        let refresh_token = if scopes.iter().any(|s| s == OFFLINE_SCOPE) {
            let t = self
                .rng()
                .with(|r| pgfleet_auth::generate_token(REFRESH_PREFIX, r));
            store::insert_refresh(&mut *tx, &t.hash, &grant.id, family, now).await?;
            Some(t.plaintext)
        } else {
            None
        };
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: ttl.as_secs() as i64,
            refresh_token,
            scope: scopes.join(" "),
        })
    }

    /// `POST /revoke` (RFC 7009): unknown tokens are not an error.
    pub async fn oauth_revoke(
        &self,
        form: &HashMap<String, String>,
        auth: &ClientAuth,
    ) -> std::result::Result<(), OAuthError> {
        let client = self.oauth_client_auth(form, auth).await?;
        let Some(token) = form.get("token").filter(|t| !t.is_empty()) else {
            return Err(OAuthError::new("invalid_request", "token is required"));
        };
        let now = self.clock().now();
        let family = if token.starts_with(REFRESH_PREFIX) {
            let mut tx = self.store().begin().await?;
            let row = store::lock_refresh(&mut *tx, &pgfleet_auth::hash_token(token)).await?;
            tx.commit().await.map_err(StorageError::from)?;
            match row {
                Some(r) => store::family_alive(self.store().pool(), &r.family_id)
                    .await?
                    .filter(|g| g.client_id == client.id)
                    .map(|_| r.family_id),
                None => None,
            }
        } else {
            self.signer()
                .verify::<AccessClaims>(token, &self.config().oauth.issuer)
                .filter(|c| c.client_id == client.id)
                .map(|c| c.fam)
        };
        if let Some(f) = family {
            store::revoke_family(self.store().pool(), &f, now).await?;
            self.auth_cache().clear();
        }
        Ok(())
    }

    /// RFC 8414 metadata.
    pub fn oauth_metadata(&self) -> serde_json::Value {
        let iss = &self.config().oauth.issuer;
        serde_json::json!({
            "issuer": iss,
            "authorization_endpoint": format!("{iss}/authorize"),
            "token_endpoint": format!("{iss}/token"),
            "revocation_endpoint": format!("{iss}/revoke"),
            "jwks_uri": format!("{iss}/.well-known/jwks.json"),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
            "revocation_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
            "scopes_supported": SCOPES.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        })
    }

    pub async fn oauth_jwks(&self) -> Result<serde_json::Value> {
        Ok(serde_json::json!({ "keys": store::public_jwks(self.store().pool()).await? }))
    }

    /// An access token (JWT) to a principal: signature, issuer, expiry, scope, and that its
    /// family and grant are still alive.
    pub(crate) async fn authenticate_access_token(
        &self,
        token: &str,
    ) -> Result<(Principal, DateTime<Utc>)> {
        let claims = self
            .signer()
            .verify::<AccessClaims>(token, &self.config().oauth.issuer)
            .ok_or(DomainError::Unauthenticated(AuthFailure::Invalid))?;
        if claims.exp <= self.clock().now().timestamp() {
            return Err(DomainError::Unauthenticated(AuthFailure::Expired));
        }
        if store::family_alive(self.store().pool(), &claims.fam)
            .await?
            .is_none_or(|g| g.id != claims.gid)
        {
            return Err(DomainError::Unauthenticated(AuthFailure::Invalid));
        }
        let scopes: Vec<String> = claims.scope.split(' ').map(String::from).collect();
        if !scopes.iter().any(|s| s == ADMIN_SCOPE) {
            return Err(DomainError::Unauthenticated(AuthFailure::InsufficientScope));
        }
        let exp = DateTime::from_timestamp(claims.exp, 0).unwrap_or_else(|| self.clock().now());
        Ok((
            Principal {
                workspace_id: claims.workspace_id,
                user_id: Some(claims.sub),
                credential: CredentialKind::OAuth {
                    grant_id: claims.gid,
                    client_id: claims.client_id,
                    scopes,
                },
            },
            exp,
        ))
    }

    // ----- integrations API -----

    fn integration_view(&self, r: IntegrationRow) -> pgfleet_api_types::integration::Integration {
        use pgfleet_api_types::integration::{Integration, IntegrationClient, IntegrationUser};
        Integration {
            url: self.url(&format!("/v1/integrations/{}", r.id)),
            id: r.id,
            created_at: ts(&r.created_at),
            scopes: r.scopes,
            client: IntegrationClient {
                id: r.client_id,
                name: r.client_name,
                created_at: ts(&r.client_created_at),
            },
            created_by_user: IntegrationUser {
                id: r.user_id,
                email: r.user_email,
                display_name: r.user_name,
            },
        }
    }

    pub async fn integrations_list(
        &self,
        p: &Principal,
        workspace_id: &str,
        page: PageRequest,
    ) -> Result<List<pgfleet_api_types::integration::Integration>> {
        if workspace_id != p.workspace_id {
            return Err(DomainError::not_found("Workspace", workspace_id));
        }
        let rows =
            store::list_integrations(self.store().pool(), workspace_id, page.after, page.fetch())
                .await?;
        Ok(page.finish(rows, |r| r.seq, |r| self.integration_view(r)))
    }

    pub async fn integration_get(
        &self,
        p: &Principal,
        id: &str,
    ) -> Result<pgfleet_api_types::integration::Integration> {
        let row = store::get_integration(self.store().pool(), &p.workspace_id, id)
            .await?
            .ok_or_else(|| DomainError::not_found("Integration", id))?;
        Ok(self.integration_view(row))
    }

    /// Revokes one integration, or every integration of an app in a workspace.
    pub async fn integration_revoke(
        &self,
        p: &Principal,
        workspace_id: &str,
        client_id: Option<&str>,
        id: Option<&str>,
    ) -> Result<()> {
        if workspace_id != p.workspace_id {
            return Err(DomainError::not_found("Workspace", workspace_id));
        }
        let revoked = store::revoke_grants(
            self.store().pool(),
            workspace_id,
            client_id,
            id,
            self.clock().now(),
        )
        .await?;
        if revoked.is_empty() {
            return Err(DomainError::not_found(
                "Integration",
                client_id.or(id).unwrap_or_default(),
            ));
        }
        self.auth_cache().clear();
        Ok(())
    }
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
