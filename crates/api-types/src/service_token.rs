//! Service tokens of a workspace, with their scope (pgfleet extension: `projectId`,
//! `readOnly`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceToken {
    pub id: String,
    /// Always `serviceToken`.
    #[serde(rename = "type")]
    #[schema(schema_with = crate::schema::type_service_token)]
    pub kind: String,
    pub name: String,
    pub value_hint: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// pgfleet extension: the one project the token sees and acts on (`null`: the whole
    /// workspace). Any other project, and its databases, answers 404 to it.
    #[serde(default)]
    pub project_id: Option<String>,
    /// pgfleet extension: the token can read but not change anything (every write answers
    /// 403 `forbidden`).
    #[serde(default)]
    pub read_only: bool,
}

/// A just-created token: the only time `value` is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedServiceToken {
    #[serde(flatten)]
    pub token: ServiceToken,
    pub value: String,
}

/// Body of `POST /v1/workspaces/{workspaceId}/service-tokens`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateServiceToken {
    /// Display name for the service token.
    pub name: String,
    /// When the token stops working (RFC 3339); never when absent.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// pgfleet extension: limit the token to this project of the workspace (it sees and
    /// acts on this project only; other projects answer 404). Whole workspace when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// pgfleet extension: `true` makes a token that can read but not change anything
    /// (writes answer 403 `forbidden`). Default `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}
