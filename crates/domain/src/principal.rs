//! Who is calling: the authenticated credential and the workspace it acts on.

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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// API credentials act on exactly one workspace.
    pub workspace_id: String,
    pub user_id: Option<String>,
    pub credential: CredentialKind,
}

impl Principal {
    /// A stable key for per-caller state such as idempotency keys.
    pub fn key(&self) -> String {
        match &self.credential {
            CredentialKind::ServiceToken { id, .. } => id.clone(),
            CredentialKind::OAuth { grant_id, .. } => grant_id.clone(),
        }
    }
}
