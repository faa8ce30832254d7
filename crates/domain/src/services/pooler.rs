//! What the pooled endpoint asks of the services: where a login role's sessions go and the
//! verifier to check its password against; a hook so a rotation or deletion made by
//! this process cuts pooled sessions at once instead of at the pooler's next check; and the
//! pooled counters the usage sampler reads (the `prisma+postgres://` endpoint's included).

use std::collections::HashMap;

use pgfleet_dataplane::PgServer;
use pgfleet_storage::{connections, databases, ConnectionState, DatabaseState};

use crate::Result;

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

pub use crate::pooled::PooledCounts;

/// Reads the pooler's counters (database id → counts).
pub(crate) struct PoolerStats(
    pub(crate) Box<dyn Fn() -> HashMap<String, PooledCounts> + Send + Sync>,
);

impl std::fmt::Debug for PoolerStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PoolerStats")
    }
}

/// Operations of a database whose server has no pg_stat_statements: its transactions, with
/// each pooled transaction counted as the statements the pooler saw in it.
pub fn operations_with_pooled(xacts: i64, pooled: Option<&PooledCounts>) -> i64 {
    let extra = pooled.map_or(0, |p| p.statements.saturating_sub(p.transactions));
    xacts.saturating_add(i64::try_from(extra).unwrap_or(i64::MAX))
}

/// What the embedded pooler asks of the services. Obtained from [`super::Services::pooler`].
#[derive(Debug, Clone, Copy)]
pub struct Pooler<'a> {
    pub(super) ctx: &'a std::sync::Arc<super::Ctx>,
}

impl Pooler<'_> {
    /// Registers the pooler's counters: the usage sampler publishes them as metrics and,
    /// where pg_stat_statements is missing, counts pooled statements as operations.
    pub fn set_stats(
        &self,
        stats: impl Fn() -> HashMap<String, PooledCounts> + Send + Sync + 'static,
    ) {
        let _ = self.ctx.pooler_stats().set(PoolerStats(Box::new(stats)));
    }

    /// The pooler's counters, with the `prisma+postgres://` endpoint's queries and
    /// transactions added as statements and transactions (they count the same way).
    pub(crate) fn counts(&self) -> HashMap<String, PooledCounts> {
        let mut counts = self
            .ctx
            .pooler_stats()
            .get()
            .map(|s| (s.0)())
            .unwrap_or_default();
        for (database, a) in self.ctx.accelerate().counts() {
            let c = counts.entry(database).or_default();
            c.statements = c.statements.saturating_add(a.queries);
            c.transactions = c.transactions.saturating_add(a.transactions);
        }
        counts
    }

    /// The route of an active connection's login role; `None` for an unknown role or one
    /// being created or deleted.
    pub async fn route(&self, role: &str) -> Result<Option<PoolerRoute>> {
        let pool = self.ctx.store().pool();
        let Some(c) = connections::by_role(pool, role).await? else {
            return Ok(None);
        };
        if c.status != ConnectionState::Active {
            return Ok(None);
        }
        let Some(db) = databases::get(pool, &c.database_id).await? else {
            return Ok(None);
        };
        if db.status == DatabaseState::Deleting {
            return Ok(None);
        }
        let Ok(server) = self.ctx.server(db.server_id.as_deref()) else {
            return Ok(None);
        };
        Ok(Some(PoolerRoute {
            connection_id: c.id,
            database_id: db.id,
            pg_database: db.pg_database,
            role: c.role_name,
            verifier: c.scram_verifier,
            server: server.clone(),
            unavailable: (db.status != DatabaseState::Ready).then(|| db.status.to_string()),
        }))
    }

    /// Registers a function called after every write this process makes (the pooler
    /// re-checks its pools).
    pub fn on_write(&self, hook: impl Fn() + Send + Sync + 'static) {
        self.ctx.add_write_hook(Box::new(hook));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_statements_replace_their_transactions() {
        assert_eq!(operations_with_pooled(10, None), 10);
        let p = PooledCounts {
            statements: 7,
            transactions: 3,
            ..PooledCounts::default()
        };
        // 10 transactions, 3 of them pooled with 7 statements: 7 + 7.
        assert_eq!(operations_with_pooled(10, Some(&p)), 14);
    }
}
