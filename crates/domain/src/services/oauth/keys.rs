//! What the signing key publishes and checks: the server metadata document, the JWKS and
//! the verification of access tokens.

use super::*;

impl OAuth<'_> {
    /// RFC 8414 metadata.
    pub fn metadata(&self) -> serde_json::Value {
        let iss = &self.ctx.config().oauth.issuer;
        serde_json::json!({
            "issuer": iss,
            "authorization_endpoint": format!("{iss}/authorize"),
            "token_endpoint": format!("{iss}/token"),
            "revocation_endpoint": format!("{iss}/revoke"),
            "registration_endpoint": format!("{iss}/register"),
            "jwks_uri": format!("{iss}/.well-known/jwks.json"),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
            "revocation_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
            "scopes_supported": SCOPES.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        })
    }

    pub async fn jwks(&self) -> Result<serde_json::Value> {
        Ok(serde_json::json!({ "keys": store::public_jwks(self.ctx.store().pool()).await? }))
    }

    /// An access token (JWT) to a principal: signature, issuer, expiry, scope, and that its
    /// family and grant are still alive.
    pub(crate) async fn authenticate_access_token(
        &self,
        token: &str,
    ) -> Result<(Principal, DateTime<Utc>)> {
        let claims = self
            .ctx
            .signer()
            .verify::<AccessClaims>(token, &self.ctx.config().oauth.issuer)
            .ok_or(DomainError::Unauthenticated(AuthFailure::Invalid))?;
        if claims.exp <= self.ctx.clock().now().timestamp() {
            return Err(DomainError::Unauthenticated(AuthFailure::Expired));
        }
        if store::family_alive(self.ctx.store().pool(), &claims.fam)
            .await?
            .is_none_or(|g| g.id != claims.gid)
        {
            return Err(DomainError::Unauthenticated(AuthFailure::Invalid));
        }
        let scopes: Vec<String> = claims.scope.split(' ').map(String::from).collect();
        if !scopes.iter().any(|s| s == ADMIN_SCOPE) {
            return Err(DomainError::Unauthenticated(AuthFailure::InsufficientScope));
        }
        let exp = DateTime::from_timestamp(claims.exp, 0).unwrap_or_else(|| self.ctx.clock().now());
        Ok((
            Principal {
                workspace_id: claims.workspace_id,
                user_id: Some(claims.sub),
                credential: CredentialKind::OAuth {
                    grant_id: claims.gid,
                    client_id: claims.client_id,
                    scopes,
                },
                scope: crate::TokenScope::full(),
            },
            exp,
        ))
    }
}
