//! `[sign_in]`: how many passwords are hashed at once, how many sign-ins may wait, and the
//! per-address throttle (the rule is `pgfleet_domain::services::sign_in`'s).

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[sign_in]`: password hashing bounds and sign-in throttling (the rule:
/// `pgfleet_domain::services::sign_in`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignInConfig {
    /// Passwords hashed (argon2id, about 19 MiB each) at once; default the CPU count, at
    /// most 4.
    pub hash_concurrency: usize,
    /// Sign-ins (and password changes) that may wait for a hash; past this they are answered
    /// 429 with `Retry-After`. Default 4 per hash.
    pub hash_queue: usize,
    /// Failed sign-ins of one client address (an IPv6 address by its /64) before it is
    /// blocked (1 minute, ×4 with each further failure, at most 1 hour; forgotten 24 hours
    /// after the last failure). Raise it when many users share one address.
    pub address_free_failures: u32,
    /// Addresses of reverse proxies in front of pgfleet: a request from one of them is
    /// counted against the right-most `X-Forwarded-For` address that is not one of them.
    /// Default none: the client is always the TCP peer and `X-Forwarded-For` is ignored.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Default for SignInConfig {
    fn default() -> Self {
        let d = pgfleet_domain::services::sign_in::SignInSettings::default();
        Self {
            hash_concurrency: d.hashing.concurrency,
            hash_queue: d.hashing.queue,
            address_free_failures: d.address_free_failures.unsigned_abs(),
            trusted_proxies: d.trusted_proxies,
        }
    }
}

impl SignInConfig {
    pub fn settings(&self) -> pgfleet_domain::services::sign_in::SignInSettings {
        pgfleet_domain::services::sign_in::SignInSettings {
            hashing: pgfleet_domain::hash_gate::HashGateSettings {
                concurrency: self.hash_concurrency,
                queue: self.hash_queue,
            },
            address_free_failures: i32::try_from(self.address_free_failures).unwrap_or(i32::MAX),
            trusted_proxies: self.trusted_proxies.clone(),
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=256).contains(&self.hash_concurrency)
            || self.hash_queue > 100_000
            || self.address_free_failures == 0
        {
            return Err(ConfigError::Invalid(
                "sign_in: hash_concurrency must be 1 to 256, hash_queue at most 100000, \
                 address_free_failures at least 1"
                    .to_string(),
            ));
        }
        Ok(())
    }
}
