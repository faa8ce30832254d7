//! `[pitr]`: continuous WAL archiving and point-in-time restores (issue 19): whether the
//! embedded cluster is archived, the retention window, the recovery point (`archive_timeout`),
//! the base-backup schedule, the WAL alert threshold, and TLS checking of an S3 repository.
//! The repository itself lives in the backup store of `[backups]` / `[backups.s3]`.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Continuous archiving of the embedded cluster (pgBackRest), and its schedule.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PitrConfig {
    /// Archive the embedded cluster's WAL and take base backups (default true). Region
    /// servers given as `postgres://` URLs are not archived (pgfleet cannot reach their data
    /// directory): their databases have no `restoreWindow`.
    pub enabled: bool,
    /// Base backups and WAL older than this are expired: the restorable window.
    pub retention_days: u32,
    /// `archive_timeout`: the longest the archive lags behind a quiet server, in seconds
    /// (1 to 60: the recovery point is at most a minute behind).
    pub archive_timeout_secs: u32,
    /// A full base backup at least this often (default daily).
    pub full_every_secs: u64,
    /// An incremental base backup at least this often (default hourly).
    pub incr_every_secs: u64,
    /// How often the PITR job refreshes each server's window and archiving health and runs
    /// due base backups: one round per interval across replicas (a lease).
    pub check_every_secs: u64,
    /// `/readyz` and the console warn when a server's `pg_wal` holds more than this (WAL that
    /// cannot be archived piles up there until the disk is full). Default 1 GiB.
    pub wal_alert_bytes: i64,
    /// With `[backups.s3]`: check the S3 endpoint's TLS certificate (pgBackRest speaks S3
    /// over HTTPS only). Turn off only for a local test server with a self-signed one.
    pub s3_verify_tls: bool,
}

impl Default for PitrConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            retention_days: 7,
            archive_timeout_secs: 60,
            full_every_secs: 86_400,
            incr_every_secs: 3_600,
            check_every_secs: 30,
            wal_alert_bytes: 1 << 30,
            s3_verify_tls: true,
        }
    }
}

impl PitrConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=60).contains(&self.archive_timeout_secs) {
            return Err(ConfigError::Invalid(
                "pitr.archive_timeout_secs must be between 1 and 60 (the recovery point)"
                    .to_string(),
            ));
        }
        if self.retention_days < 1 {
            return Err(ConfigError::Invalid(
                "pitr.retention_days must be at least 1".to_string(),
            ));
        }
        if self.full_every_secs == 0 || self.incr_every_secs == 0 || self.check_every_secs == 0 {
            return Err(ConfigError::Invalid(
                "pitr: full_every_secs, incr_every_secs and check_every_secs must be above 0"
                    .to_string(),
            ));
        }
        if self.wal_alert_bytes < 1 {
            return Err(ConfigError::Invalid(
                "pitr.wal_alert_bytes must be above 0".to_string(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Config, Overrides};

    #[test]
    fn pitr_section_defaults_bounds_and_unknown_keys() {
        let c = Config::default();
        assert!(c.pitr.enabled && c.pitr.s3_verify_tls);
        assert_eq!(
            (c.pitr.retention_days, c.pitr.archive_timeout_secs),
            (7, 60)
        );
        assert_eq!(
            (c.pitr.full_every_secs, c.pitr.incr_every_secs),
            (86_400, 3_600)
        );

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgfleet.toml");
        std::fs::write(
            &file,
            "[pitr]\nretention_days = 3\narchive_timeout_secs = 10\ns3_verify_tls = false\n",
        )
        .unwrap();
        let cfg = Config::load(Some(&file), &Overrides::default()).unwrap();
        assert_eq!(
            (cfg.pitr.retention_days, cfg.pitr.archive_timeout_secs),
            (3, 10)
        );
        assert!(!cfg.pitr.s3_verify_tls);
        assert!(cfg.to_toml().contains("[pitr]"));

        for bad in [
            "[pitr]\narchive_timeout_secs = 61\n",
            "[pitr]\narchive_timeout_secs = 0\n",
            "[pitr]\nretention_days = 0\n",
            "[pitr]\nincr_every_secs = 0\n",
            "[pitr]\nretention = 7\n",
        ] {
            std::fs::write(&file, bad).unwrap();
            assert!(
                Config::load(Some(&file), &Overrides::default()).is_err(),
                "{bad}"
            );
        }
    }
}
