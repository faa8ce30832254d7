//! RFC 7591 dynamic client registration (`POST /register`), which MCP clients use to become
//! an OAuth client of this server without an operator: anyone may register, so what a
//! registration may be is narrow and what it may cost is bounded.
//!
//! A registered client is public (PKCE, no secret: `token_endpoint_auth_method` `none`),
//! belongs to no workspace (the user picks one on the consent page, as for any app) and may
//! only use the authorization-code and refresh-token grants. Its redirect URIs are at most
//! [`MAX_REDIRECT_URIS`], each at most [`MAX_URI_BYTES`] long, either `https` or `http` on a
//! loopback address (RFC 8252 §7.3) — never a private-use scheme, another host over plain
//! http, or a fragment. Registrations are capped across all replicas (counted in the
//! metadata store): [`MAX_PER_HOUR`] an hour and [`MAX_TOTAL`] in all.

use super::*;

/// Redirect URIs of one registration, at most.
pub const MAX_REDIRECT_URIS: usize = 5;
/// Bytes of one redirect URI, at most.
pub const MAX_URI_BYTES: usize = 2000;
/// Bytes of `client_name`, at most.
pub const MAX_NAME_BYTES: usize = 100;
/// Registrations accepted per hour, across the server.
pub const MAX_PER_HOUR: i64 = 100;
/// Dynamically registered clients kept, at most.
pub const MAX_TOTAL: i64 = 10_000;

/// The client metadata a registration sends (RFC 7591 §2); other fields are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RegistrationRequest {
    pub redirect_uris: Vec<String>,
    pub client_name: Option<String>,
    pub token_endpoint_auth_method: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub scope: Option<String>,
}

/// The registration's answer (RFC 7591 §3.2.1).
#[derive(Debug, Clone, Serialize)]
pub struct RegisteredClient {
    pub client_id: String,
    pub client_id_issued_at: i64,
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<&'static str>,
    pub response_types: Vec<&'static str>,
    pub token_endpoint_auth_method: &'static str,
    pub scope: String,
}

fn invalid(error: &'static str, description: impl Into<String>) -> OAuthError {
    OAuthError::new(error, description)
}

/// Whether `u` may be a dynamically registered redirect URI: https anywhere, or http on a
/// loopback host, without a fragment.
fn registrable_redirect_uri(u: &str) -> bool {
    let Ok(url) = url::Url::parse(u) else {
        return false;
    };
    if url.fragment().is_some() || u.len() > MAX_URI_BYTES {
        return false;
    }
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        },
        _ => false,
    }
}

impl OAuth<'_> {
    /// Registers a public client (see the module doc), or says why not in RFC 7591 §3.2.2
    /// terms (`invalid_redirect_uri`, `invalid_client_metadata`; 429-like refusals are
    /// `invalid_client_metadata` with status 429).
    pub async fn register_client(
        &self,
        req: RegistrationRequest,
    ) -> std::result::Result<RegisteredClient, OAuthError> {
        if req.redirect_uris.is_empty() || req.redirect_uris.len() > MAX_REDIRECT_URIS {
            return Err(invalid(
                "invalid_redirect_uri",
                format!("Send 1 to {MAX_REDIRECT_URIS} redirect_uris"),
            ));
        }
        if let Some(bad) = req
            .redirect_uris
            .iter()
            .find(|u| !registrable_redirect_uri(u))
        {
            let shown: String = bad.chars().take(200).collect();
            return Err(invalid(
                "invalid_redirect_uri",
                format!(
                    "Redirect URI {shown:?} is refused: use https, or http on a loopback address, without a fragment"
                ),
            ));
        }
        if let Some(m) = req.token_endpoint_auth_method.as_deref() {
            if m != "none" {
                return Err(invalid(
                    "invalid_client_metadata",
                    "Only public clients may register: token_endpoint_auth_method must be none",
                ));
            }
        }
        if let Some(g) = &req.grant_types {
            if g.iter()
                .any(|g| g != "authorization_code" && g != "refresh_token")
            {
                return Err(invalid(
                    "invalid_client_metadata",
                    "grant_types may only be authorization_code and refresh_token",
                ));
            }
        }
        if let Some(r) = &req.response_types {
            if r.iter().any(|r| r != "code") {
                return Err(invalid(
                    "invalid_client_metadata",
                    "response_types may only be code",
                ));
            }
        }
        if let Some(scope) = req.scope.as_deref() {
            if let Some(bad) = scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .find(|s| !SCOPES.iter().any(|(k, _)| k == s))
            {
                let shown: String = bad.chars().take(100).collect();
                return Err(invalid(
                    "invalid_client_metadata",
                    format!("Unknown scope {shown}"),
                ));
            }
        }
        let name = req
            .client_name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .unwrap_or("MCP client");
        if name.len() > MAX_NAME_BYTES
            || crate::services::validate_name("client_name", name).is_err()
        {
            return Err(invalid(
                "invalid_client_metadata",
                format!("client_name must be 1 to {MAX_NAME_BYTES} bytes of visible text"),
            ));
        }
        let now = self.ctx.clock().now();
        let (total, recent) =
            store::count_dynamic_clients(self.ctx.store().pool(), now - Duration::hours(1)).await?;
        if total >= MAX_TOTAL || recent >= MAX_PER_HOUR {
            return Err(OAuthError {
                status: 429,
                ..invalid(
                    "invalid_client_metadata",
                    "Too many clients registered; try again later",
                )
            });
        }
        let row = store::insert_client(
            self.ctx.store().pool(),
            &ClientRow {
                seq: 0,
                id: new_id(OAUTH_CLIENT, self.ctx.rng()),
                workspace_id: None,
                name: name.to_string(),
                description: Some(
                    "Registered by the client itself (dynamic registration)".to_string(),
                ),
                redirect_uris: req.redirect_uris.clone(),
                client_type: ClientType::Public.to_string(),
                secret_hash: None,
                created_by_user_id: None,
                created_at: now,
            },
        )
        .await?;
        Ok(RegisteredClient {
            client_id: row.id,
            client_id_issued_at: now.timestamp(),
            client_name: row.name,
            redirect_uris: row.redirect_uris,
            grant_types: vec!["authorization_code", "refresh_token"],
            response_types: vec!["code"],
            token_endpoint_auth_method: "none",
            scope: ADMIN_SCOPE.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::registrable_redirect_uri as ok;

    #[test]
    fn only_https_or_loopback_http_redirects_register() {
        assert!(ok("https://app.example/cb"));
        assert!(ok("http://127.0.0.1:33418/callback"));
        assert!(ok("http://[::1]:1/cb"));
        assert!(ok("http://localhost:9/cb"));
        assert!(!ok("http://app.example/cb"));
        assert!(!ok("http://10.0.0.1/cb"));
        assert!(!ok("myapp://cb"));
        assert!(!ok("https://app.example/cb#frag"));
        assert!(!ok("javascript:alert(1)"));
        assert!(!ok(&format!("https://a.example/{}", "x".repeat(2100))));
    }
}
