//! Authenticating bearer credentials.

use pgfleet_storage::tokens;

use crate::{AuthFailure, CredentialKind, DomainError, Principal, Result, Services};

impl Services {
    /// Resolves an `Authorization: Bearer` value to a principal. Service tokens are looked up
    /// by the SHA-256 of the presented value (an index probe on a hash, so timing reveals
    /// nothing about stored tokens).
    pub async fn authenticate_bearer(&self, token: &str) -> Result<Principal> {
        let token = token.trim();
        if token.is_empty() || token.len() > 4096 {
            return Err(DomainError::Unauthenticated(AuthFailure::Malformed));
        }
        let hash = pgfleet_auth::hash_token(token);
        let row = tokens::find_by_hash(self.store().pool(), &hash)
            .await?
            .ok_or(DomainError::Unauthenticated(AuthFailure::Invalid))?;
        let now = self.clock().now();
        if row.expires_at.is_some_and(|e| e <= now) {
            return Err(DomainError::Unauthenticated(AuthFailure::Expired));
        }
        if let Err(e) = tokens::touch(self.store().pool(), &row.id, now).await {
            tracing::warn!(error = %e, "could not record service token use");
        }
        Ok(Principal {
            workspace_id: row.workspace_id,
            user_id: row.created_by_user_id,
            credential: CredentialKind::ServiceToken {
                id: row.id,
                name: row.name,
            },
        })
    }
}
