//! Where the proxy learns who may connect: a login role's database, server and SCRAM
//! verifier. The server process implements [`Catalog`] over the metadata store.

use crate::backend::BackendTarget;

/// Where a login role's sessions go, and how it is authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub connection_id: String,
    pub database_id: String,
    /// The PostgreSQL database name.
    pub pg_database: String,
    /// The login role (the user name clients send).
    pub role: String,
    /// `SCRAM-SHA-256$…` verifier.
    pub verifier: String,
    pub target: BackendTarget,
    /// `None` when the database accepts sessions; otherwise why not (e.g. `recovering`).
    pub unavailable: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CatalogError(pub String);

#[async_trait::async_trait]
pub trait Catalog: Send + Sync + 'static {
    /// The route of a login role; `None` for an unknown, deleted or deleting connection.
    async fn route(&self, role: &str) -> Result<Option<Route>, CatalogError>;
}
