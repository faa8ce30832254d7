//! Whether the metadata store answers, for the http circuit breaker: a ping through the pool,
//! a ping on a connection of its own (tells an outage from a busy pool), and whether the
//! pool was closed (shutdown). The breaker's policy is http's; the pings are storage's.

use pgfleet_storage::Store;

use crate::{Result, Services};

/// Handle on the metadata store's health; cheap to clone.
#[derive(Clone, Debug)]
pub struct MetadataProbe {
    store: Store,
}

impl MetadataProbe {
    pub fn new(services: &Services) -> Self {
        Self {
            store: services.store().clone(),
        }
    }

    /// `SELECT 1` through the pool.
    pub async fn ping(&self) -> Result<()> {
        Ok(self.store.ping().await?)
    }

    /// `SELECT 1` on a connection outside the pool.
    pub async fn ping_outside_pool(&self) -> Result<()> {
        Ok(self.store.ping_outside_pool().await?)
    }

    /// True once the pool was closed (the process is shutting down).
    pub fn is_closed(&self) -> bool {
        self.store.pool().is_closed()
    }
}
