//! `[claimable]`: claimable temporary databases (the `create-db` CLI's service), their
//! defaults and validation.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Claimable temporary databases: created by anyone who reaches the server (no account),
/// deleted after `ttl_secs` unless claimed into a workspace.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClaimableConfig {
    /// Off by default: on, anyone who can reach the HTTP listener may create databases (within
    /// the limits below), which a self-hosted server must opt into.
    pub enabled: bool,
    /// Seconds an unclaimed database lives; the longest a client may ask for.
    pub ttl_secs: u64,
    /// Creates per client address (as the server sees it, see `sign_in.trusted_proxies`) per
    /// hour.
    pub per_client_per_hour: u32,
    /// Unclaimed databases alive at once, across replicas.
    pub max_unclaimed: u32,
    /// Seconds between two rounds of the reaper (once per interval across replicas).
    pub reap_interval_secs: u64,
}

impl Default for ClaimableConfig {
    fn default() -> Self {
        let d = pgfleet_domain::services::claimable::ClaimableSettings::default();
        Self {
            enabled: d.enabled,
            ttl_secs: d.ttl.as_secs(),
            per_client_per_hour: d.per_client_per_hour,
            max_unclaimed: d.max_unclaimed,
            reap_interval_secs: d.reap_every.as_secs(),
        }
    }
}

impl ClaimableConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=30 * 86_400).contains(&self.ttl_secs)
            || !(1..=86_400).contains(&self.reap_interval_secs)
            || self.per_client_per_hour < 1
            || !(1..=10_000).contains(&self.max_unclaimed)
        {
            return Err(ConfigError::Invalid(
                "claimable: ttl_secs must be 1 to 2592000, reap_interval_secs 1 to 86400, \
                 per_client_per_hour at least 1, max_unclaimed 1 to 10000"
                    .to_string(),
            ));
        }
        Ok(())
    }

    pub fn settings(&self) -> pgfleet_domain::services::claimable::ClaimableSettings {
        pgfleet_domain::services::claimable::ClaimableSettings {
            enabled: self.enabled,
            ttl: std::time::Duration::from_secs(self.ttl_secs),
            per_client_per_hour: self.per_client_per_hour,
            max_unclaimed: self.max_unclaimed,
            reap_every: std::time::Duration::from_secs(self.reap_interval_secs),
        }
    }
}
