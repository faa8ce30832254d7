//! Who is calling: the authenticated credential and the workspace it acts on. A console
//! principal is built only by [`crate::access`], after its membership check. Its fields
//! are private outside this crate (read through accessors), so no other crate can forge
//! one; services take the [`crate::access::WorkspaceAccess`] that wraps it. The local
//! operator of `pgfleet admin …` is a principal too, with no user and no credential
//! ([`CredentialKind::LocalOperator`]).

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
    /// Whoever runs `pgfleet admin …` on the server machine (no credential: the command
    /// reads the configuration and data directory; see
    /// [`crate::access::Access::local_operator_with_data_dir`]).
    LocalOperator,
}

/// What a credential may reach inside its workspace: every project, or one
/// (`project_id`), and whether it may change anything (`read_only`). Service tokens carry
/// the scope they were created with; every other credential has [`TokenScope::full`]. The
/// same scope limits the HTTP API and the MCP server, which both call the services.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenScope {
    /// The one project the credential sees and acts on; others answer 404.
    pub project_id: Option<String>,
    /// Every write answers 403 `forbidden`.
    pub read_only: bool,
}

impl TokenScope {
    /// No limit inside the workspace.
    pub fn full() -> Self {
        Self::default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// API credentials act on exactly one workspace.
    pub(crate) workspace_id: String,
    pub(crate) user_id: Option<String>,
    pub(crate) credential: CredentialKind,
    /// What the credential may reach inside the workspace.
    pub(crate) scope: TokenScope,
}

impl Principal {
    /// The workspace this principal acts on.
    pub fn workspace_id(&self) -> &str {
        &self.workspace_id
    }

    /// The user behind the credential, when there is one.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// The kind of credential that authenticated.
    pub fn credential(&self) -> &CredentialKind {
        &self.credential
    }

    /// What the credential may reach inside its workspace.
    pub fn scope(&self) -> &TokenScope {
        &self.scope
    }

    /// The web console's principal: a signed-in user on one of their workspaces. Only
    /// [`crate::access::Access::console`] builds one, after checking the membership.
    pub(crate) fn session(user_id: &str, workspace_id: &str) -> Self {
        Self {
            workspace_id: workspace_id.to_string(),
            user_id: Some(user_id.to_string()),
            credential: CredentialKind::Session,
            scope: TokenScope::full(),
        }
    }

    /// The local operator of `pgfleet admin …` on a workspace. Only
    /// [`crate::access::Access::local_operator_with_data_dir`] builds one.
    pub(crate) fn local_operator(workspace_id: &str) -> Self {
        Self {
            workspace_id: workspace_id.to_string(),
            user_id: None,
            credential: CredentialKind::LocalOperator,
            scope: TokenScope::full(),
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
            CredentialKind::LocalOperator => format!("operator:{}", self.workspace_id),
        }
    }
}
