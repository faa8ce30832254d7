//! Who is calling: the authenticated credential and the workspace it acts on. A console
//! principal is built only by [`crate::access`], after its membership check.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialKind {
    ServiceToken {
        id: String,
        name: String,
    },
    OAuth {
        grant_id: String,
        client_id: String,
        scopes: Vec<String>,
    },
    /// A signed-in browser of the web console, acting on a workspace the user is a member of.
    Session,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// API credentials act on exactly one workspace.
    pub workspace_id: String,
    pub user_id: Option<String>,
    pub credential: CredentialKind,
}

impl Principal {
    /// The web console's principal: a signed-in user on one of their workspaces. Only
    /// [`crate::access::Access::console`] builds one, after checking the membership.
    pub(crate) fn session(user_id: &str, workspace_id: &str) -> Self {
        Self {
            workspace_id: workspace_id.to_string(),
            user_id: Some(user_id.to_string()),
            credential: CredentialKind::Session,
        }
    }

    /// A stable key for per-caller state such as idempotency keys.
    pub fn key(&self) -> String {
        match &self.credential {
            CredentialKind::ServiceToken { id, .. } => id.clone(),
            CredentialKind::OAuth { grant_id, .. } => grant_id.clone(),
            CredentialKind::Session => format!(
                "session:{}:{}",
                self.user_id.as_deref().unwrap_or_default(),
                self.workspace_id
            ),
        }
    }
}
