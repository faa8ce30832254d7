//! Wire types of the pgfleet `/v1` API, shared by the server, the Rust SDK and the CLI.
//!
//! Field names, nesting and nullability follow the Management API contract
//! (`shared/contract/management-api-v1.d.ts`) exactly; every type also derives its OpenAPI
//! schema so the served document cannot drift from what the handlers return.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub mod backup;
pub mod connection;
pub mod database;
pub mod error;
pub mod integration;
pub mod project;
pub mod region;
pub mod schema;
pub mod service_token;
pub mod usage;
pub mod webhook;
pub mod workspace;

pub use error::{ErrorBody, ErrorDetail};
pub use workspace::{Credential, CredentialType, Me, MeUser, MeWorkspace, Workspace};

/// `{"data": …}` envelope of single-resource responses.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Data<T> {
    pub data: T,
}

impl<T> Data<T> {
    pub fn new(data: T) -> Self {
        Self { data }
    }
}

/// Cursor pagination block shared by every list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    /// Next cursor to continue pagination
    #[schema(required = true)]
    pub next_cursor: Option<String>,
    /// Whether there are more items to paginate
    pub has_more: bool,
}

/// `{"data": [...], "pagination": {...}}` envelope of every list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct List<T> {
    pub data: Vec<T>,
    pub pagination: Pagination,
}

/// Query parameters shared by every paginated list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Opaque cursor from a previous page's `pagination.nextCursor`.
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (default 100).
    pub limit: Option<i64>,
}

/// Timestamps on the wire: RFC 3339 with milliseconds and `Z`, as the contract's examples.
pub fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
