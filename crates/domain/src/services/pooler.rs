//! What the pooled endpoint asks of the services: where a login role's sessions go and the
//! verifier to check its password against; and a hook so a rotation or deletion made by
//! this process cuts pooled sessions at once instead of at the pooler's next check.

use pgfleet_dataplane::PgServer;
use pgfleet_storage::{connections, databases};

use crate::{Result, Services};

/// Where the pooler sends a login role.
#[derive(Debug, Clone)]
pub struct PoolerRoute {
    pub connection_id: String,
    pub database_id: String,
    pub pg_database: String,
    pub role: String,
    pub verifier: String,
    pub server: PgServer,
    /// `None` when the database accepts sessions, else its status.
    pub unavailable: Option<String>,
}

/// `host:port` written into `endpoints.pooled` when the pooler runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PooledEndpoint {
    pub host: String,
    pub port: u16,
}

impl Services {
    /// The route of an active connection's login role; `None` for an unknown role or one
    /// being created or deleted.
    pub async fn pooler_route(&self, role: &str) -> Result<Option<PoolerRoute>> {
        let pool = self.store().pool();
        let Some(c) = connections::by_role(pool, role).await? else {
            return Ok(None);
        };
        if c.status != "active" {
            return Ok(None);
        }
        let Some(db) = databases::get(pool, &c.database_id).await? else {
            return Ok(None);
        };
        if db.status == "deleting" {
            return Ok(None);
        }
        let Ok(server) = self.server(db.server_id.as_deref()) else {
            return Ok(None);
        };
        Ok(Some(PoolerRoute {
            connection_id: c.id,
            database_id: db.id,
            pg_database: db.pg_database,
            role: c.role_name,
            verifier: c.scram_verifier,
            server: server.clone(),
            unavailable: (db.status != "ready").then_some(db.status),
        }))
    }

    /// Registers a function called after every write this process makes (the pooler
    /// re-checks its pools). Only the first registration counts.
    pub fn on_write(&self, hook: impl Fn() + Send + Sync + 'static) {
        let _ = self.inner.write_hook.set(super::WriteHook(Box::new(hook)));
    }
}
