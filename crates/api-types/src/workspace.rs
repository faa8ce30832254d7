//! Workspaces and the current principal (`/v1/me`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Workspace {
    pub id: String,
    /// Always `workspace`.
    #[serde(rename = "type")]
    #[schema(schema_with = crate::schema::type_workspace)]
    pub kind: String,
    #[schema(format = "uri")]
    pub url: String,
    pub name: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// Body of `POST /v1/workspaces`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWorkspace {
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Me {
    #[schema(required = true)]
    pub user: Option<MeUser>,
    #[schema(required = true)]
    pub workspace: Option<MeWorkspace>,
    pub credential: Credential,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MeUser {
    pub id: String,
    #[schema(format = Email)]
    pub email: String,
    #[schema(required = true)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MeWorkspace {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Credential {
    #[serde(rename = "type")]
    pub kind: CredentialType,
    #[schema(required = true)]
    pub id: Option<String>,
    #[schema(required = true)]
    pub name: Option<String>,
    /// pgfleet extension: the one project this credential is limited to (a scoped service
    /// token); `null` for the whole workspace.
    #[serde(default, rename = "projectId")]
    pub project_id: Option<String>,
    /// pgfleet extension: `true` when this credential can read but not change anything.
    #[serde(default, rename = "readOnly")]
    pub read_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CredentialType {
    Oauth,
    ServiceToken,
    ManagementToken,
    AgentToken,
}
