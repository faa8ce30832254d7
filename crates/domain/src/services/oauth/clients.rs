//! OAuth apps (clients) of a workspace: create, list, read, update, delete.

use super::*;

impl OAuth<'_> {
    /// Creates an OAuth app in a workspace. Redirect URIs are matched exactly later.
    pub async fn client_create(
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
            self.ctx
                .rng()
                .with(|r| pgfleet_auth::generate_token(CLIENT_SECRET_PREFIX, r))
        });
        let row = store::insert_client(
            self.ctx.store().pool(),
            &ClientRow {
                seq: 0,
                id: new_id(OAUTH_CLIENT, self.ctx.rng()),
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
                created_at: self.ctx.clock().now(),
            },
        )
        .await?;
        Ok(CreatedClient {
            client: row,
            client_secret: secret.map(|s| s.plaintext),
        })
    }

    pub async fn clients_list(&self, workspace_id: &str) -> Result<Vec<ClientRow>> {
        Ok(store::list_clients(self.ctx.store().pool(), workspace_id).await?)
    }

    pub async fn client_get(&self, workspace_id: &str, id: &str) -> Result<ClientRow> {
        store::get_client(self.ctx.store().pool(), id)
            .await?
            .filter(|c| c.workspace_id == workspace_id)
            .ok_or_else(|| DomainError::not_found("App", id))
    }

    pub async fn client_update(
        &self,
        workspace_id: &str,
        id: &str,
        name: &str,
        description: Option<&str>,
        redirect_uris: &[String],
    ) -> Result<ClientRow> {
        self.client_get(workspace_id, id).await?;
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
        store::update_client(self.ctx.store().pool(), id, name.trim(), description, &uris).await?;
        self.client_get(workspace_id, id).await
    }

    /// Deletes an app and with it every grant and token issued to it.
    pub async fn client_delete(&self, workspace_id: &str, id: &str) -> Result<()> {
        self.client_get(workspace_id, id).await?;
        store::delete_client(self.ctx.store().pool(), id).await?;
        self.ctx.auth_cache().clear();
        Ok(())
    }
}
