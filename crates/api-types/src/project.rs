//! Projects.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::database::CreatedDatabase;

/// `{id, url, name}` of a workspace inside other resources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceRef {
    pub id: String,
    #[schema(format = "uri")]
    pub url: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    pub id: String,
    /// Always `project`.
    #[serde(rename = "type")]
    #[schema(schema_with = crate::schema::type_project)]
    pub kind: String,
    #[schema(format = "uri")]
    pub url: String,
    pub name: String,
    #[schema(required = true)]
    pub logical_id: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(required = true)]
    pub default_region: Option<String>,
    pub workspace: WorkspaceRef,
}

/// `POST /v1/projects` response: the project and, unless `createDatabase` was false, its
/// default database with credentials (shown once).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedProject {
    #[serde(flatten)]
    pub project: Project,
    #[schema(required = true)]
    pub database: Option<CreatedDatabase>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateProject {
    /// Create the default database too (default true).
    #[schema(nullable = false, default = true)]
    pub create_database: Option<bool>,
    #[schema(nullable = false)]
    pub name: Option<String>,
    /// Region of the default database (default `us-east-1`).
    #[schema(nullable = false)]
    pub region: Option<String>,
    #[schema(nullable = false)]
    pub logical_id: Option<String>,
    /// The workspace to create the project in (default: the credential's).
    #[schema(nullable = false)]
    pub workspace_id: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateProject {
    #[schema(nullable = false)]
    pub name: Option<String>,
    #[schema(value_type = Option<Object>, nullable = false)]
    pub settings: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransferProject {
    /// A valid access token of the workspace that receives the project.
    pub recipient_access_token: String,
}
