//! Connections (credentials of a database) and their endpoints.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    /// Only in create and rotate responses (it carries the password).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub connection_string: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Endpoints {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub direct: Option<Endpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub pooled: Option<Endpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub accelerate: Option<Endpoint>,
}

/// Deprecated credentials block (`host` is `host:port`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DirectConnection {
    pub host: String,
    pub pass: String,
    pub user: String,
}

impl std::fmt::Debug for DirectConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectConnection")
            .field("host", &self.host)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// `{id, url, name}` of a database inside other resources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DatabaseRef {
    pub id: String,
    #[schema(format = "uri")]
    pub url: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    pub id: String,
    /// Always `connection`.
    #[serde(rename = "type")]
    #[schema(schema_with = crate::schema::type_connection)]
    pub kind: String,
    #[schema(format = "uri")]
    pub url: String,
    pub name: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// `postgres` (direct Postgres credentials).
    #[serde(rename = "kind")]
    #[schema(schema_with = crate::schema::connection_kind)]
    pub connection_kind: String,
    pub endpoints: Endpoints,
    /// Deprecated: use `endpoints.direct`. Only set in create and rotate responses.
    #[schema(deprecated)]
    pub direct_connection: Option<DirectConnection>,
    pub database: DatabaseRef,
}

/// Deprecated `apiKeys` entry of a created database: a connection without its `database`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: String,
    #[serde(rename = "type")]
    #[schema(schema_with = crate::schema::type_connection)]
    pub kind: String,
    #[schema(format = "uri")]
    pub url: String,
    pub name: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[serde(rename = "kind")]
    #[schema(schema_with = crate::schema::connection_kind)]
    pub connection_kind: String,
    /// Endpoints without their connection strings.
    pub endpoints: Endpoints,
    /// Deprecated: the direct connection string (with the password).
    #[schema(deprecated)]
    pub connection_string: String,
    /// Deprecated: use `endpoints.direct` instead.
    #[schema(deprecated)]
    pub direct_connection: Option<DirectConnection>,
}

impl From<Connection> for ApiKey {
    fn from(c: Connection) -> Self {
        let mut endpoints = c.endpoints;
        let connection_string = endpoints
            .direct
            .as_mut()
            .and_then(|e| e.connection_string.take())
            .unwrap_or_default();
        for e in [&mut endpoints.pooled, &mut endpoints.accelerate]
            .into_iter()
            .flatten()
        {
            e.connection_string = None;
        }
        Self {
            id: c.id,
            kind: c.kind,
            url: c.url,
            name: c.name,
            created_at: c.created_at,
            connection_kind: c.connection_kind,
            endpoints,
            connection_string,
            direct_connection: c.direct_connection,
        }
    }
}

/// A connection as returned by create and rotate, with its credentials (shown once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedConnection {
    #[serde(flatten)]
    pub connection: Connection,
    /// Deprecated: the direct connection string (also in `endpoints.direct`).
    #[serde(rename = "connectionString")]
    #[schema(deprecated)]
    pub connection_string: String,
    /// Deprecated: `host:port` of the direct endpoint.
    #[schema(required = true, deprecated)]
    pub host: Option<String>,
    /// Deprecated: the password.
    #[schema(required = true, deprecated)]
    pub pass: Option<String>,
    /// Deprecated: the user name.
    #[schema(required = true, deprecated)]
    pub user: Option<String>,
}

/// Body of `POST /v1/connections` (`databaseId` required) and
/// `POST /v1/databases/{databaseId}/connections` (no `databaseId`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateConnection {
    pub database_id: Option<String>,
    pub name: String,
}
