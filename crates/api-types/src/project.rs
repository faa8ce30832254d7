//! Projects.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::database::CreatedDatabase;

/// `{id, url, name}` of a workspace inside other resources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceRef {
    pub id: String,
    pub url: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    pub id: String,
    /// Always `project`.
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
    pub name: String,
    pub logical_id: Option<String>,
    pub created_at: String,
    pub default_region: Option<String>,
    pub workspace: WorkspaceRef,
}

/// `POST /v1/projects` response: the project and, unless `createDatabase` was false, its
/// default database with credentials (shown once).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedProject {
    #[serde(flatten)]
    pub project: Project,
    pub database: Option<CreatedDatabase>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateProject {
    /// Create the default database too (default true).
    pub create_database: Option<bool>,
    pub name: Option<String>,
    pub region: Option<String>,
    pub logical_id: Option<String>,
    pub workspace_id: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateProject {
    pub name: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransferProject {
    /// A valid access token of the workspace that receives the project.
    pub recipient_access_token: String,
}
