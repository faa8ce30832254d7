//! The API's idempotency keys as the http middleware sees them: claim a key for a request,
//! record the response to replay, or release the key. The rows, their expiry and the
//! atomic claim are `pgfleet_storage::idempotency`'s; this module gives http a handle that
//! does not reach into storage, with the time taken from the services' clock.

use pgfleet_storage::idempotency as store;

use crate::{Result, Services};

/// What [`IdempotencyKeys::begin`] found for a key: storage's own enum (a value, not a row),
/// re-exported so http names it through the domain, as `services::backup_kinds`
/// does with `BackupTrigger`.
pub use store::Begin;

/// Handle on the idempotency keys; cheap to clone (a detached request task keeps one).
#[derive(Clone, Debug)]
pub struct IdempotencyKeys {
    services: Services,
}

impl IdempotencyKeys {
    pub fn new(services: &Services) -> Self {
        Self {
            services: services.clone(),
        }
    }

    /// Claims `key` of `principal` for the request hashed `request_hash`, or tells what
    /// holds it (keys expire after `pgfleet_storage::idempotency::TTL`).
    pub async fn begin(&self, principal: &str, key: &str, request_hash: &[u8]) -> Result<Begin> {
        let now = self.services.clock().now();
        let store = self.services.store();
        Ok(store::begin(store.pool(), principal, key, request_hash, now).await?)
    }

    /// Records the response of the in-flight request holding the key. False when there was
    /// no such request (released, pruned or already finished).
    pub async fn finish(
        &self,
        principal: &str,
        key: &str,
        status: u16,
        body: &serde_json::Value,
    ) -> Result<bool> {
        let store = self.services.store();
        Ok(store::finish(store.pool(), principal, key, status, body).await?)
    }

    /// Releases the key of an in-flight request so the client may retry. False when there
    /// was nothing to release.
    pub async fn abandon(&self, principal: &str, key: &str) -> Result<bool> {
        let store = self.services.store();
        Ok(store::abandon(store.pool(), principal, key).await?)
    }
}
