//! Backups of a database.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Backup {
    pub id: String,
    /// `full` (logical dumps of the whole database).
    pub backup_type: String,
    pub created_at: String,
    /// Bytes, once completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// `running`, `completed`, `failed` or `unknown`.
    pub status: String,
    /// Always `backup`.
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupsMeta {
    pub backup_retention_days: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BackupsPagination {
    #[serde(rename = "hasMore")]
    pub has_more: bool,
    pub limit: Option<i64>,
}

/// `GET /v1/databases/{databaseId}/backups`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BackupList {
    pub data: Vec<Backup>,
    pub meta: BackupsMeta,
    pub pagination: BackupsPagination,
}

/// The backup to restore from.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum RestoreSource {
    #[serde(rename_all = "camelCase")]
    Backup {
        database_id: String,
        backup_id: String,
    },
    /// pgfleet extension, point-in-time recovery: `databaseId` (the target itself, or
    /// another database of its project: "reset from parent") as it was at `timestamp`.
    /// Without `timestamp` the source is refused (422), as before the extension.
    #[serde(rename_all = "camelCase")]
    Database {
        database_id: String,
        /// RFC 3339 time inside the source's `restoreWindow`.
        #[serde(default)]
        #[schema(nullable = false, format = DateTime)]
        timestamp: Option<String>,
    },
}

/// Body of `POST /v1/databases/{targetDatabaseId}/restore`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    pub source: RestoreSource,
}
