//! The arguments of the MCP tools ([`super::tools`]): their JSON schemas (schemars) are the
//! tools' input schemas, their doc comments the fields' descriptions. Unknown fields are
//! refused, as the API refuses them.

use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Page {
    /// Opaque cursor from a previous page's `pagination.nextCursor`.
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (default 100).
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateProjectArgs {
    /// Display name of the project.
    pub name: Option<String>,
    /// Region of its default database (default `us-east-1`).
    pub region: Option<String>,
    /// Create the project's default database too (default true).
    pub create_database: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProjectId {
    /// ID of the project (`proj_…`).
    pub project_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListDatabasesArgs {
    /// Only the databases of this project.
    pub project_id: Option<String>,
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (default 100).
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateDatabaseArgs {
    /// ID of the project to create the database in.
    pub project_id: String,
    /// Display name of the database.
    pub name: Option<String>,
    /// A region id, or `inherit` for the project's default region.
    pub region: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatabaseId {
    /// ID of the database (`db_…`).
    pub database_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListConnectionsArgs {
    /// Only the connection strings of this database.
    pub database_id: Option<String>,
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (default 100).
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateConnectionArgs {
    /// ID of the database the connection string logs in to.
    pub database_id: String,
    /// Name of the connection string (its login role is generated).
    pub name: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionId {
    /// ID of the connection string (`con_…`).
    pub connection_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListBackupsArgs {
    /// ID of the database whose backups to list.
    pub database_id: String,
    /// How many, newest first (default 25).
    pub limit: Option<u32>,
}

/// Where a restore takes the data from.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum RestoreFrom {
    /// A backup of a database of the workspace.
    #[serde(rename_all = "camelCase")]
    Backup {
        /// ID of the database the backup belongs to.
        database_id: String,
        /// ID of the backup.
        backup_id: String,
    },
    /// A database (the target itself or another of its project) as it was at `timestamp`
    /// (point-in-time recovery, inside the source's `restoreWindow`).
    #[serde(rename_all = "camelCase")]
    Database {
        database_id: String,
        /// RFC 3339 time inside the source's `restoreWindow`.
        timestamp: String,
    },
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreArgs {
    /// ID of the database whose contents are replaced.
    pub target_database_id: String,
    pub source: RestoreFrom,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UsageArgs {
    pub database_id: String,
    /// Start of the period, `YYYY-MM-DD` or RFC 3339 (default: start of the month).
    pub start_date: Option<String>,
    /// End of the period (default: now).
    pub end_date: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecuteSqlArgs {
    /// ID of the database to run the statement in.
    pub database_id: String,
    /// Exactly one SQL statement, without parameters (`$1`).
    pub sql: String,
    /// Let the statement change data or schema; it is then committed (unless its returned
    /// rows were cut by the row or byte cap: then it is rolled back, `committed: false`).
    /// Default false: the statement runs in a read-only transaction that is rolled back.
    /// Refused for a read-only credential.
    #[serde(default)]
    pub allow_writes: bool,
}
