//! Integrations: an OAuth app's authorization on a workspace, granted by a user.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Integration {
    pub id: String,
    #[schema(format = "uri")]
    pub url: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub scopes: Vec<String>,
    pub client: IntegrationClient,
    pub created_by_user: IntegrationUser,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationClient {
    pub id: String,
    pub name: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationUser {
    pub id: String,
    pub email: String,
    #[schema(required = true)]
    pub display_name: Option<String>,
}
