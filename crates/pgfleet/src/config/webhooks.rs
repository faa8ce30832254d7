//! `[webhooks]`: signed webhooks — where endpoints may point, how long a failing endpoint
//! stays enabled, how retries are spaced, how long delivered events are kept.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Webhook endpoints and their delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Lets endpoints point at loopback, private, link-local and other internal addresses
    /// (server-side request forgery: off unless every workspace is trusted; tests need it).
    pub allow_private_destinations: bool,
    /// Endpoints per workspace.
    pub max_endpoints_per_workspace: u32,
    /// An endpoint failing continuously this long is disabled (a `webhook.disabled` event
    /// goes to the workspace's other endpoints). Default 5 days.
    pub disable_after_secs: u64,
    /// Events older than this many days with nothing left to deliver are pruned.
    pub retention_days: u64,
    /// Milliseconds between two looks for due deliveries, per replica.
    pub poll_interval_ms: u64,
    /// Seconds one attempt may take (connect to answer).
    pub attempt_timeout_secs: u64,
    /// First retry delay in seconds; doubles per attempt (with jitter) up to `max_backoff_secs`.
    pub base_backoff_secs: f64,
    pub max_backoff_secs: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            allow_private_destinations: false,
            max_endpoints_per_workspace: 10,
            disable_after_secs: 5 * 86_400,
            retention_days: 7,
            poll_interval_ms: 1000,
            attempt_timeout_secs: 15,
            base_backoff_secs: 5.0,
            max_backoff_secs: 3600,
        }
    }
}

impl WebhooksConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let ok = (1..=100).contains(&self.max_endpoints_per_workspace)
            && self.disable_after_secs >= 1
            && self.retention_days >= 1
            && (50..=60_000).contains(&self.poll_interval_ms)
            && (1..=120).contains(&self.attempt_timeout_secs)
            && self.base_backoff_secs.is_finite()
            && (0.01..=3600.0).contains(&self.base_backoff_secs)
            && self.max_backoff_secs >= 1;
        if !ok {
            return Err(ConfigError::Invalid(
                "webhooks: max_endpoints_per_workspace 1 to 100, disable_after_secs and \
                 retention_days at least 1, poll_interval_ms 50 to 60000, attempt_timeout_secs 1 \
                 to 120, base_backoff_secs 0.01 to 3600, max_backoff_secs at least 1"
                    .to_string(),
            ));
        }
        Ok(())
    }

    pub fn settings(&self) -> pgfleet_domain::services::webhooks::WebhookSettings {
        use std::time::Duration;
        pgfleet_domain::services::webhooks::WebhookSettings {
            allow_private_destinations: self.allow_private_destinations,
            max_endpoints: i64::from(self.max_endpoints_per_workspace),
            disable_after: Duration::from_secs(self.disable_after_secs),
            retention: Duration::from_secs(self.retention_days.saturating_mul(86_400)),
            poll_every: Duration::from_millis(self.poll_interval_ms),
            attempt_timeout: Duration::from_secs(self.attempt_timeout_secs),
            base_backoff: Duration::from_secs_f64(self.base_backoff_secs),
            max_backoff: Duration::from_secs(self.max_backoff_secs),
        }
    }
}
