//! Service tokens of a workspace.

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
}
