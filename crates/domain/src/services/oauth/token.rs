//! The token endpoint (authorization code with PKCE, refresh-token rotation with reuse
//! detection) and revocation.

use super::*;

impl OAuth<'_> {
    /// Authenticates the client of a token or revocation request.
    async fn client_auth(
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
        let Some(client) = store::get_client(self.ctx.store().pool(), client_id).await? else {
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
    pub async fn token(
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
        if let Some(resource) = form.get("resource").filter(|r| !r.is_empty()) {
            if !self.is_own_resource(resource) {
                return Err(OAuthError::new(
                    "invalid_target",
                    "resource must be this server's address or its /mcp endpoint",
                ));
            }
        }
        let client = self.client_auth(form, auth).await?;
        match grant_type {
            "authorization_code" => self.exchange_code(&client, form).await,
            _ => self.refresh(&client, form).await,
        }
    }

    async fn exchange_code(
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
        let now = self.ctx.clock().now();
        let hash = pgfleet_auth::hash_token(code);
        let mut tx = self.ctx.store().begin().await?;
        let Some(row) = store::lock_code(&mut *tx, &hash).await? else {
            return Err(OAuthError::grant("The code is invalid"));
        };
        if row.used_at.is_some() {
            // A replayed code: revoke whatever was issued from it (RFC 6749 §4.1.2).
            if let Some(f) = row.family_id.as_deref() {
                store::revoke_family(&mut *tx, f, now).await?;
            }
            tx.commit().await.map_err(StorageError::from)?;
            self.ctx.auth_cache().clear();
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
        let family = new_id("fam_", self.ctx.rng());
        store::insert_family(&mut *tx, &family, &grant.id, now).await?;
        store::use_code(&mut *tx, &hash, &family, now).await?;
        let response = self
            .issue(&mut tx, client, &grant, &row.scopes, &family, now)
            .await?;
        tx.commit().await.map_err(StorageError::from)?;
        Ok(response)
    }

    async fn refresh(
        &self,
        client: &ClientRow,
        form: &HashMap<String, String>,
    ) -> std::result::Result<TokenResponse, OAuthError> {
        let token = form
            .get("refresh_token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| OAuthError::new("invalid_request", "refresh_token is required"))?;
        let now = self.ctx.clock().now();
        let hash = pgfleet_auth::hash_token(token);
        let mut tx = self.ctx.store().begin().await?;
        let Some(row) = store::lock_refresh(&mut *tx, &hash).await? else {
            return Err(OAuthError::grant("The refresh token is invalid"));
        };
        if row.used_at.is_some() {
            // Reuse of a rotated token: someone else has the family. Revoke it all.
            store::revoke_family(&mut *tx, &row.family_id, now).await?;
            tx.commit().await.map_err(StorageError::from)?;
            self.ctx.auth_cache().clear();
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
        let ttl = self.ctx.config().oauth.access_token_ttl;
        let claims = AccessClaims {
            iss: self.ctx.config().oauth.issuer.clone(),
            sub: grant.user_id.clone(),
            exp: now.timestamp() + ttl.as_secs() as i64,
            iat: now.timestamp(),
            jti: self.ctx.rng().with(pgfleet_auth::random_string),
            client_id: client.id.clone(),
            scope: scopes.join(" "),
            workspace_id: grant.workspace_id.clone(),
            fam: family.to_string(),
            gid: grant.id.clone(),
        };
        let access_token = self.ctx.signer().sign(&claims)?;
        let refresh_token = if scopes.iter().any(|s| s == OFFLINE_SCOPE) {
            let t = self
                .ctx
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
    pub async fn revoke(
        &self,
        form: &HashMap<String, String>,
        auth: &ClientAuth,
    ) -> std::result::Result<(), OAuthError> {
        let client = self.client_auth(form, auth).await?;
        let Some(token) = form.get("token").filter(|t| !t.is_empty()) else {
            return Err(OAuthError::new("invalid_request", "token is required"));
        };
        let now = self.ctx.clock().now();
        let family = if token.starts_with(REFRESH_PREFIX) {
            let mut tx = self.ctx.store().begin().await?;
            let row = store::lock_refresh(&mut *tx, &pgfleet_auth::hash_token(token)).await?;
            tx.commit().await.map_err(StorageError::from)?;
            match row {
                Some(r) => store::family_alive(self.ctx.store().pool(), &r.family_id)
                    .await?
                    .filter(|g| g.client_id == client.id)
                    .map(|_| r.family_id),
                None => None,
            }
        } else {
            self.ctx
                .signer()
                .verify::<AccessClaims>(token, &self.ctx.config().oauth.issuer)
                .filter(|c| c.client_id == client.id)
                .map(|c| c.fam)
        };
        if let Some(f) = family {
            store::revoke_family(self.ctx.store().pool(), &f, now).await?;
            self.ctx.auth_cache().clear();
        }
        Ok(())
    }
}
