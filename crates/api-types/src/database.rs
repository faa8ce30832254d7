//! Databases.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::connection::{ApiKey, Connection, DirectConnection};
use crate::region::RegionRef;

/// `{id, url, name}` of a project inside other resources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProjectRef {
    pub id: String,
    #[schema(format = "uri")]
    pub url: String,
    pub name: String,
}

/// Where a database's initial data came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum DatabaseSource {
    Empty,
    #[serde(rename_all = "camelCase")]
    Backup {
        /// ID of the database the backup belongs to.
        database_id: String,
        /// ID of the backup to restore from.
        backup_id: String,
    },
    /// A copy of another database of the workspace: as it is now, or (pgfleet extension,
    /// point-in-time recovery) as it was at `timestamp`.
    #[serde(rename_all = "camelCase")]
    Database {
        database_id: String,
        /// pgfleet extension: RFC 3339 time inside the source's `restoreWindow`; absent: now.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(nullable = false, format = DateTime)]
        timestamp: Option<String>,
    },
}

/// pgfleet extension: the times a database can be restored or cloned to (point-in-time
/// recovery), from `earliest` (its creation, or the oldest base backup of its server's
/// archive if later) to `latest` (the last WAL its server archived, at most
/// `archive_timeout` behind; a target between `latest` and now is accepted too, the restore
/// then waits for the archive to catch up).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RestoreWindow {
    #[schema(format = DateTime)]
    pub earliest: String,
    #[schema(format = DateTime)]
    pub latest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseStatus {
    Provisioning,
    Ready,
    Recovering,
    Failure,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Database {
    pub id: String,
    /// Always `database`.
    #[serde(rename = "type")]
    #[schema(schema_with = crate::schema::type_database)]
    pub kind: String,
    #[schema(format = "uri")]
    pub url: String,
    pub name: String,
    pub status: DatabaseStatus,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub is_default: bool,
    #[schema(required = true)]
    pub default_connection_id: Option<String>,
    pub connections: Vec<Connection>,
    /// Absent only where the database is embedded in its project.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub project: Option<ProjectRef>,
    #[schema(required = true)]
    pub region: Option<RegionRef>,
    #[schema(required = true)]
    pub source: Option<DatabaseSource>,
    #[schema(required = true)]
    pub branch_id: Option<String>,
    #[schema(required = true)]
    pub logical_id: Option<String>,
    /// pgfleet extension: the point-in-time recovery window; `null` when the database's
    /// server is not archived (or has no base backup yet).
    #[serde(default)]
    #[schema(required = true)]
    pub restore_window: Option<RestoreWindow>,
}

/// A just-created database: its connections carry connection strings, plus the deprecated
/// `apiKeys`, `connectionString` and `directConnection` of the default connection.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedDatabase {
    #[serde(flatten)]
    pub database: Database,
    /// Deprecated: use `connections[]` instead.
    #[schema(deprecated)]
    pub api_keys: Vec<ApiKey>,
    /// Deprecated: use `connections[].endpoints.direct.connectionString`.
    #[schema(required = true, deprecated)]
    pub connection_string: Option<String>,
    /// Deprecated: use `connections[].endpoints.direct` instead.
    #[schema(required = true, deprecated)]
    pub direct_connection: Option<DirectConnection>,
}

/// Deprecated form of `source`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FromDatabase {
    pub id: String,
    #[schema(nullable = false)]
    pub backup_id: Option<String>,
}

/// Body of `POST /v1/projects/{projectId}/databases` and `POST /v1/databases`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateDatabase {
    /// Only for `POST /v1/databases`.
    pub project_id: Option<String>,
    /// A region id, or `inherit` for the project's default region. Default `us-east-1`.
    pub region: Option<String>,
    pub name: Option<String>,
    pub is_default: Option<bool>,
    pub from_database: Option<FromDatabase>,
    pub source: Option<DatabaseSource>,
    pub branch_id: Option<String>,
    pub branch_git_name: Option<String>,
    pub logical_id: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateDatabase {
    /// New display name for the database.
    #[schema(nullable = false)]
    pub name: Option<String>,
    /// ID of the branch to move the database to.
    pub branch_id: Option<String>,
    /// Git name of the branch to move the database to.
    pub branch_git_name: Option<String>,
    /// Declared identity of the resource, unique within its branch.
    #[schema(nullable = false)]
    pub logical_id: Option<String>,
}
