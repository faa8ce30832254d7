//! The authorization endpoint: checking an authorization request, the user's approval
//! (a code for the app) or denial.

use super::*;

impl OAuth<'_> {
    /// Validates `GET /authorize` parameters (extra ones such as `utm_*` are ignored).
    pub async fn authorize_check(
        &self,
        q: &HashMap<String, String>,
    ) -> std::result::Result<AuthorizeRequest, AuthorizeError> {
        let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let Some(client_id) = get("client_id") else {
            return Err(AuthorizeError::Page(
                "The request has no client_id.".to_string(),
            ));
        };
        let client = match store::get_client(self.ctx.store().pool(), client_id).await {
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
        // RFC 8707: a token can only be for this server (its API or its MCP endpoint).
        if let Some(resource) = get("resource") {
            if !self.is_own_resource(resource) {
                return Err(fail(
                    "invalid_target",
                    "resource must be this server's address or its /mcp endpoint",
                ));
            }
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
    pub async fn approve(
        &self,
        user_id: &str,
        req: &AuthorizeRequest,
        workspace_id: &str,
    ) -> Result<String> {
        if !pgfleet_storage::workspaces::is_member(self.ctx.store().pool(), workspace_id, user_id)
            .await?
        {
            return Err(DomainError::forbidden(
                "You are not a member of that workspace",
                None,
            ));
        }
        let now = self.ctx.clock().now();
        let mut tx = self.ctx.store().begin().await?;
        let grant = store::upsert_grant(
            &mut *tx,
            &new_id(INTEGRATION, self.ctx.rng()),
            &req.client_id,
            workspace_id,
            user_id,
            &req.scopes,
            now,
        )
        .await?;
        let code = self.ctx.rng().with(pgfleet_auth::random_string);
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

    /// Whether `resource` (RFC 8707) names this server: its issuer address or `/mcp` there.
    pub fn is_own_resource(&self, resource: &str) -> bool {
        let iss = &self.ctx.config().oauth.issuer;
        let r = resource.trim_end_matches('/');
        r == iss || r == format!("{iss}/mcp")
    }

    /// Where to send the browser when the user denies.
    pub fn deny_url(&self, req: &AuthorizeRequest) -> String {
        let mut pairs = vec![
            ("error", "access_denied"),
            ("error_description", "The user denied the request"),
        ];
        if let Some(s) = req.state.as_deref() {
            pairs.push(("state", s));
        }
        with_query(&req.redirect_uri, &pairs)
    }
}
