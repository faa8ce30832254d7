//! `[usage]`: the usage sampler's interval and retention, their defaults and validation.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// The usage sampler (operations and storage of each database, `GET …/usage`, `/metrics`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UsageConfig {
    /// Seconds between two samples of every ready database: one sample per interval across
    /// all replicas sharing the metadata store (a lease per job).
    pub sample_interval_secs: u64,
    /// Samples older than this many days are pruned.
    pub retention_days: u64,
}

impl Default for UsageConfig {
    fn default() -> Self {
        Self {
            sample_interval_secs: 60,
            retention_days: 400,
        }
    }
}

impl UsageConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=86_400).contains(&self.sample_interval_secs) || self.retention_days < 1 {
            return Err(ConfigError::Invalid(
                "usage: sample_interval_secs must be 1 to 86400, retention_days at least 1"
                    .to_string(),
            ));
        }
        Ok(())
    }

    pub fn settings(&self) -> pgfleet_domain::services::usage::UsageSettings {
        pgfleet_domain::services::usage::UsageSettings {
            interval: std::time::Duration::from_secs(self.sample_interval_secs),
            retention: std::time::Duration::from_secs(self.retention_days.saturating_mul(86_400)),
        }
    }
}
