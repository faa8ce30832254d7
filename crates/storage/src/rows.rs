//! Row types as they come out of the metadata database (states and kinds typed, see
//! [`crate::lifecycle`]).

use chrono::{DateTime, Utc};

use crate::lifecycle::{ConnectionState, DatabaseState, OperationKind, OperationState};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WorkspaceRow {
    pub seq: i64,
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, sqlx::FromRow)]
pub struct UserRow {
    pub seq: i64,
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub password_hash: Option<String>,
    pub failed_logins: i32,
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// An administrator of the whole server (creates users, manages every workspace's members).
    pub is_admin: bool,
}

impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("is_admin", &self.is_admin)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ServiceTokenRow {
    pub seq: i64,
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub value_hint: String,
    pub created_by_user_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The one project the token reaches (`None`: the whole workspace).
    pub project_id: Option<String>,
    /// Reads only.
    pub read_only: bool,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProjectRow {
    pub seq: i64,
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub logical_id: Option<String>,
    pub default_region: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DatabaseRow {
    pub seq: i64,
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub region_id: String,
    pub server_id: Option<String>,
    pub status: DatabaseState,
    pub is_default: bool,
    pub pg_database: String,
    pub owner_role: String,
    pub connection_limit: i32,
    pub source: Option<serde_json::Value>,
    pub branch_id: Option<String>,
    pub logical_id: Option<String>,
    pub default_connection_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, sqlx::FromRow)]
pub struct ConnectionRow {
    pub seq: i64,
    pub id: String,
    pub database_id: String,
    pub name: String,
    pub kind: String,
    pub role_name: String,
    pub scram_verifier: String,
    pub status: ConnectionState,
    pub created_at: DateTime<Utc>,
    pub rotated_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for ConnectionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionRow")
            .field("id", &self.id)
            .field("database_id", &self.database_id)
            .field("role_name", &self.role_name)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OperationRow {
    pub seq: i64,
    pub id: String,
    pub kind: OperationKind,
    pub resource_id: String,
    pub state: OperationState,
    pub step: Option<String>,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub payload: serde_json::Value,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The request (or periodic job round) whose intent planned it.
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ServerRow {
    pub id: String,
    pub region_id: String,
    pub config_key: String,
    pub created_at: DateTime<Utc>,
}
