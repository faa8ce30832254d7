//! `[tenant]`: the limits pgfleet puts on every tenant database and the tenant guard's
//! interval (see `pgfleet_domain::services::guard`).

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[tenant]`: limits put on every tenant database, and the pass (the tenant guard) that
/// puts back what a tenant changed. A value of 0 means "no limit" (the server's own setting).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantConfig {
    /// `temp_file_limit` of each database, in MiB: temporary files one session may hold
    /// (big sorts and hashes). Superuser-only in PostgreSQL: a tenant cannot raise it.
    pub temp_file_limit_mb: u64,
    /// `idle_in_transaction_session_timeout` of each database, in seconds: a session idle
    /// inside a transaction this long is ended (its locks are released). A session may
    /// change it for itself; the database default is kept by the tenant guard.
    pub idle_in_transaction_timeout_secs: u64,
    /// `statement_timeout` of each database, in seconds (default 0: none). Session-settable
    /// like the one above.
    pub statement_timeout_secs: u64,
    /// Storage quota of each database (`pg_database_size`), in bytes: past it the database
    /// is read-only (writes fail with an error naming the quota) until it is under again.
    pub storage_quota_bytes: u64,
    /// Seconds between two passes of the tenant guard (drift and quota): one pass per
    /// interval across all replicas sharing the metadata store (a lease per job).
    pub check_every_secs: u64,
}

impl Default for TenantConfig {
    fn default() -> Self {
        Self {
            temp_file_limit_mb: 2048,
            idle_in_transaction_timeout_secs: 300,
            statement_timeout_secs: 0,
            storage_quota_bytes: 10 * 1024 * 1024 * 1024,
            check_every_secs: 60,
        }
    }
}

impl TenantConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        // PostgreSQL keeps these in int32 kB and ms.
        if self.temp_file_limit_mb > i32::MAX as u64 / 1024
            || self.idle_in_transaction_timeout_secs > i32::MAX as u64 / 1000
            || self.statement_timeout_secs > i32::MAX as u64 / 1000
            || !(1..=86_400).contains(&self.check_every_secs)
        {
            return Err(ConfigError::Invalid(
                "tenant: temp_file_limit_mb at most 2097151, timeouts at most 2147483 seconds, \
                 check_every_secs 1 to 86400"
                    .to_string(),
            ));
        }
        Ok(())
    }

    pub fn settings(&self) -> pgfleet_domain::services::TenantSettings {
        let some = |v: u64, scale: u64| {
            Some(v)
                .filter(|v| *v > 0)
                .map(|v| i64::try_from(v.saturating_mul(scale)).unwrap_or(i64::MAX))
        };
        pgfleet_domain::services::TenantSettings {
            limits: pgfleet_dataplane::TenantLimits {
                temp_file_limit_kb: some(self.temp_file_limit_mb, 1024),
                idle_in_transaction_timeout_ms: some(self.idle_in_transaction_timeout_secs, 1000),
                statement_timeout_ms: some(self.statement_timeout_secs, 1000),
            },
            storage_quota_bytes: some(self.storage_quota_bytes, 1),
            check_every: std::time::Duration::from_secs(self.check_every_secs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Config, Overrides};

    #[test]
    fn tenant_section_defaults_printing_overrides_and_bounds() {
        let cfg = Config::default();
        let text = cfg.to_toml();
        for key in [
            "[tenant]",
            "temp_file_limit_mb = 2048",
            "idle_in_transaction_timeout_secs = 300",
            "statement_timeout_secs = 0",
            "storage_quota_bytes = 10737418240",
            "check_every_secs = 60",
        ] {
            assert!(text.contains(key), "{key} not printed:\n{text}");
        }
        let t = cfg.tenant.settings();
        assert_eq!(t.limits.temp_file_limit_kb, Some(2048 * 1024));
        assert_eq!(t.limits.idle_in_transaction_timeout_ms, Some(300_000));
        assert_eq!(t.limits.statement_timeout_ms, None, "0 is none");
        assert_eq!(t.storage_quota_bytes, Some(10 << 30));

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgfleet.toml");
        std::fs::write(
            &file,
            "[tenant]\nstatement_timeout_secs = 30\nstorage_quota_bytes = 0\n",
        )
        .unwrap();
        let cfg = Config::load(Some(&file), &Overrides::default()).unwrap();
        let t = cfg.tenant.settings();
        assert_eq!(t.limits.statement_timeout_ms, Some(30_000));
        assert_eq!(t.storage_quota_bytes, None, "0: no quota");
        for bad in [
            "[tenant]\ntemp_file_limit_mb = 3000000\n",
            "[tenant]\ncheck_every_secs = 0\n",
            "[tenant]\nquota = 1\n",
        ] {
            std::fs::write(&file, bad).unwrap();
            assert!(
                Config::load(Some(&file), &Overrides::default()).is_err(),
                "{bad}"
            );
        }
    }
}
