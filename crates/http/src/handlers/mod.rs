//! Handlers, one file per resource, named `<resource>_<verb>`. Each carries its OpenAPI
//! annotation.

pub mod backups;
pub mod connections;
pub mod create_db;
pub mod databases;
pub mod health;
pub mod integrations;
pub mod me;
pub mod oauth;
pub mod projects;
pub mod regions;
pub mod service_tokens;
pub mod usage;
pub mod webhooks;
pub mod workspaces;

use serde::Deserialize;

/// `?cursor=&limit=` as they arrive; validated by the domain so errors are uniform.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Opaque cursor from a previous page's `pagination.nextCursor`.
    pub cursor: Option<String>,
    /// Page size, 1 to 100.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100, default = 100)]
    pub limit: Option<String>,
}

impl PageQuery {
    pub fn page(
        &self,
        default_limit: i64,
    ) -> Result<pgfleet_domain::PageRequest, crate::error::ApiError> {
        Ok(pgfleet_domain::PageRequest::parse(
            self.cursor.as_deref(),
            self.limit.as_deref(),
            default_limit,
        )?)
    }
}
