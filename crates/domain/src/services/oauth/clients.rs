//! OAuth apps (clients) of a workspace: create, list, read, update, delete. Callers outside
//! the authorization server see an app as an [`App`] (what the pages and the CLI show; never
//! its secret hash), not as its stored row. Create and edit check redirect URIs with one
//! validator ([`redirect_uris_of`]), so both forms refuse the same things in the same words.
//!
//! Every function here acts on the workspace of a [`WorkspaceAccess`], like the other
//! workspace-scoped services: the console's (a member, checked by
//! [`crate::access::Access::console`]), or the local operator's of `pgfleet admin apps`
//! ([`crate::access::Access::local_operator_with_data_dir`]). An app records the user of
//! the access that created it (none for the operator). Apps are workspace-level: reading
//! them takes a [`WorkspaceWide`], changing them a [`WorkspaceWideWrite`] (a credential
//! limited to a project or to reads is refused).

use super::*;
use crate::access::{WorkspaceWide, WorkspaceWideWrite};

/// Whether an app authenticates with a client secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientType {
    /// No secret; PKCE only (native and browser apps).
    Public,
    /// Authenticates with its client secret (and PKCE).
    Confidential,
}

impl ClientType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Confidential => "confidential",
        }
    }
}

impl std::fmt::Display for ClientType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ClientType {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "public" => Ok(Self::Public),
            "confidential" => Ok(Self::Confidential),
            other => Err(DomainError::internal(format!(
                "unknown stored OAuth client type {other:?}"
            ))),
        }
    }
}

/// An OAuth app as the console and the CLI show it (no secret, not even its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub description: Option<String>,
    pub client_type: ClientType,
    /// Matched exactly (loopback IP literals: any port), in the order registered.
    pub redirect_uris: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<ClientRow> for App {
    type Error = DomainError;

    fn try_from(c: ClientRow) -> Result<Self> {
        Ok(Self {
            client_type: c.client_type.parse()?,
            id: c.id,
            // A dynamically registered client (no workspace) is never shown as a workspace's app.
            workspace_id: c.workspace_id.unwrap_or_default(),
            name: c.name,
            description: c.description,
            redirect_uris: c.redirect_uris,
            created_at: c.created_at,
        })
    }
}

/// The redirect URIs of a create or edit form: trimmed, blank ones dropped, at least one,
/// each an absolute URI without a fragment (the one check of both forms).
fn redirect_uris_of(redirect_uris: &[String]) -> Result<Vec<String>> {
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
    Ok(uris)
}

impl OAuth<'_> {
    /// Creates an OAuth app in a workspace. Redirect URIs are matched exactly later.
    pub async fn client_create(
        &self,
        access: &WorkspaceWideWrite,
        name: &str,
        description: Option<&str>,
        redirect_uris: &[String],
        confidential: bool,
    ) -> Result<CreatedClient> {
        let name = name.trim();
        crate::services::validate_name("name", name)?;
        validate_description(description)?;
        let uris = redirect_uris_of(redirect_uris)?;
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
                workspace_id: Some(access.workspace_id().to_string()),
                name: name.to_string(),
                description: description
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .map(String::from),
                redirect_uris: uris,
                client_type: if confidential {
                    ClientType::Confidential
                } else {
                    ClientType::Public
                }
                .to_string(),
                secret_hash: secret.as_ref().map(|s| s.hash.clone()),
                created_by_user_id: access.principal().user_id().map(String::from),
                created_at: self.ctx.clock().now(),
            },
        )
        .await?;
        Ok(CreatedClient {
            client: row.try_into()?,
            client_secret: secret.map(|s| s.plaintext),
        })
    }

    /// The apps of a workspace, oldest first.
    pub async fn clients_list(&self, access: &WorkspaceWide) -> Result<Vec<App>> {
        store::list_clients(self.ctx.store().pool(), access.workspace_id())
            .await?
            .into_iter()
            .map(App::try_from)
            .collect()
    }

    /// An app of the workspace (`NotFound` for any other).
    pub async fn client_get(&self, access: &WorkspaceWide, id: &str) -> Result<App> {
        self.client_row(access, id).await?.try_into()
    }

    async fn client_row(
        &self,
        access: &crate::access::WorkspaceAccess,
        id: &str,
    ) -> Result<ClientRow> {
        store::get_client(self.ctx.store().pool(), id)
            .await?
            .filter(|c| c.workspace_id.as_deref() == Some(access.workspace_id()))
            .ok_or_else(|| DomainError::not_found("App", id))
    }

    /// An app of one of the user's workspaces (`NotFound` otherwise, also for apps of
    /// workspaces the user is not in).
    pub async fn user_client(&self, user_id: &str, client_id: &str) -> Result<App> {
        let pool = self.ctx.store().pool();
        match store::get_client(pool, client_id).await? {
            Some(c) => {
                let member = match c.workspace_id.as_deref() {
                    Some(ws) => pgfleet_storage::workspaces::is_member(pool, ws, user_id).await?,
                    None => false,
                };
                if !member {
                    return Err(DomainError::not_found("App", client_id));
                }
                c.try_into()
            }
            _ => Err(DomainError::not_found("App", client_id)),
        }
    }

    /// Renames an app of the workspace, and changes its description and redirect URIs.
    pub async fn client_update(
        &self,
        access: &WorkspaceWideWrite,
        id: &str,
        name: &str,
        description: Option<&str>,
        redirect_uris: &[String],
    ) -> Result<App> {
        self.client_row(access, id).await?;
        crate::services::validate_name("name", name.trim())?;
        validate_description(description)?;
        let uris = redirect_uris_of(redirect_uris)?;
        store::update_client(self.ctx.store().pool(), id, name.trim(), description, &uris).await?;
        self.client_get(&access.wide(), id).await
    }

    /// Deletes an app and with it every grant and token issued to it.
    pub async fn client_delete(&self, access: &WorkspaceWideWrite, id: &str) -> Result<()> {
        self.client_row(access, id).await?;
        store::delete_client(self.ctx.store().pool(), id).await?;
        self.ctx.auth_cache().clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uris(list: &[&str]) -> Vec<String> {
        list.iter().map(|u| u.to_string()).collect()
    }

    #[test]
    fn redirect_uris_are_trimmed_required_and_absolute_without_fragments() {
        assert_eq!(
            redirect_uris_of(&uris(&[
                " https://app.example/cb ",
                "",
                "com.example.app:/cb"
            ]))
            .ok(),
            Some(uris(&["https://app.example/cb", "com.example.app:/cb"]))
        );
        let message = |list: &[&str]| match redirect_uris_of(&uris(list)) {
            Err(DomainError::BadRequest { message, .. }) => message,
            other => format!("not a 400: {other:?}"),
        };
        assert_eq!(
            message(&["", "  "]),
            "At least one redirect URI is required"
        );
        assert_eq!(
            message(&["https://app.example/cb", "not a uri"]),
            "Redirect URI \"not a uri\" is not an absolute URI without a fragment"
        );
        assert!(message(&["https://app.example/cb#f"]).contains("without a fragment"));
    }
}
