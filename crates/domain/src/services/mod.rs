//! [`Services`]: the one object handlers call. Each file below adds the operations of one
//! resource.

use std::sync::Arc;

use pgfleet_storage::Store;

use crate::{Clock, Randomness};

mod auth;
mod service_tokens;
mod workspaces;

/// Settings the services need from the configuration.
#[derive(Debug, Clone)]
pub struct ServicesConfig {
    /// Base of absolute resource URLs, without a trailing slash (e.g. `http://127.0.0.1:8080`).
    pub public_url: String,
    /// Every region the API lists, available or not.
    pub regions: Vec<crate::regions::Region>,
}

#[derive(Debug, Clone)]
pub struct Services {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    clock: Arc<dyn Clock>,
    rng: Randomness,
    config: ServicesConfig,
}

impl Services {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        rng: Randomness,
        config: ServicesConfig,
    ) -> Self {
        let mut config = config;
        while config.public_url.ends_with('/') {
            config.public_url.pop();
        }
        Self {
            inner: Arc::new(Inner {
                store,
                clock,
                rng,
                config,
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn clock(&self) -> &dyn Clock {
        self.inner.clock.as_ref()
    }

    pub fn rng(&self) -> &Randomness {
        &self.inner.rng
    }

    pub fn regions(&self) -> &[crate::regions::Region] {
        &self.inner.config.regions
    }

    /// Readiness: the metadata store and every Postgres server of every region answer.
    /// Returns what was checked, or what failed.
    pub async fn readiness(&self) -> Result<Vec<String>, Vec<String>> {
        use std::time::Duration;
        let mut ok = Vec::new();
        let mut failed = Vec::new();
        match tokio::time::timeout(Duration::from_secs(3), self.store().ping()).await {
            Ok(Ok(())) => ok.push("metadata".to_string()),
            Ok(Err(e)) => failed.push(format!("metadata store: {e}")),
            Err(_) => failed.push("metadata store: timed out".to_string()),
        }
        for region in self.regions() {
            for server in &region.servers {
                let what = format!("region {} server {}", region.id, server.key);
                match tokio::time::timeout(Duration::from_secs(3), server.ping()).await {
                    Ok(Ok(())) => ok.push(what),
                    Ok(Err(e)) => failed.push(format!("{what}: {e}")),
                    Err(_) => failed.push(format!("{what}: timed out")),
                }
            }
        }
        if failed.is_empty() {
            Ok(ok)
        } else {
            Err(failed)
        }
    }

    /// Absolute URL of an API path (`/v1/...`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.inner.config.public_url, path)
    }
}

/// Names of things people create: 1 to 255 characters, no control characters.
pub(crate) fn validate_name(field: &str, name: &str) -> crate::Result<()> {
    let len = name.chars().count();
    if len == 0 || len > 255 || name.chars().any(char::is_control) {
        return Err(crate::DomainError::bad_request_hint(
            format!("{field} must be 1 to 255 characters without control characters"),
            format!("Send a shorter {field}."),
        ));
    }
    Ok(())
}
