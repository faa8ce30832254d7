//! `[pitr]`: continuous WAL archiving and point-in-time restores (issue 19): whether the
//! embedded cluster is archived, the retention window, the recovery point (`archive_timeout`),
//! the base-backup schedule, the WAL alert threshold, and TLS checking of an S3 repository.
//! The repository itself lives in the backup store of `[backups]` / `[backups.s3]`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret};

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
    /// `[[pitr.servers]]`: region servers given as `postgres://` URLs whose WAL pgfleet
    /// archives too, because it runs on their machine and can run pgBackRest (as the OS user
    /// that owns the data directory) against it. Their operator sets the `archive_*`
    /// settings pgfleet logs at start in the server's `postgresql.conf` (and restarts it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<ArchivedServerConfig>,
}

/// One archived region server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchivedServerConfig {
    /// The server, exactly as in `regions.<id>.servers`.
    pub url: Secret,
    /// Its pgBackRest stanza: letters, digits, `-` and `_`, one per server (not `embedded`).
    pub stanza: String,
    /// Its data directory, socket directory and port on this machine.
    pub pgdata: PathBuf,
    pub socket_dir: PathBuf,
    pub port: u16,
    /// Its PostgreSQL binaries (scratch instances); default `postgres.bin_dir`'s rule.
    #[serde(default)]
    pub bin_dir: Option<PathBuf>,
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
            servers: Vec::new(),
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
        let mut stanzas = std::collections::HashSet::new();
        for srv in &self.servers {
            let ok = !srv.stanza.is_empty()
                && srv.stanza != "embedded"
                && srv
                    .stanza
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok || !stanzas.insert(srv.stanza.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "pitr.servers: stanza {:?} must be letters, digits, - and _, unique, and not \"embedded\"",
                    srv.stanza
                )));
            }
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
    fn an_archived_region_server_is_one_of_the_regions() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgfleet.toml");
        std::fs::write(
            &file,
            "[metadata]\nurl = \"postgres://u:p@127.0.0.1:5432/meta\"\n\
             [regions.r]\nservers = [\"postgres://u:p@127.0.0.1:5433/postgres\"]\n\
             [[pitr.servers]]\nurl = \"postgres://u:p@127.0.0.1:5433/postgres\"\nstanza = \"second\"\n\
             pgdata = \"/srv/pg\"\nsocket_dir = \"/run/pg\"\nport = 5433\n",
        )
        .unwrap();
        let cfg = Config::load(Some(&file), &Overrides::default()).unwrap();
        assert_eq!(cfg.pitr.servers.len(), 1);
        assert_eq!(cfg.pitr.servers[0].stanza, "second");
        assert!(!cfg.to_toml().contains("u:p@"), "{}", cfg.to_toml());
    }

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
            // An archived server that is no region's server, or with a bad stanza.
            "[[pitr.servers]]\nurl = \"postgres://u:p@127.0.0.1:5433/postgres\"\nstanza = \"s\"\npgdata = \"/d\"\nsocket_dir = \"/r\"\nport = 5433\n",
            "[regions.r]\nservers = [\"postgres://u:p@127.0.0.1:5433/postgres\"]\n[[pitr.servers]]\nurl = \"postgres://u:p@127.0.0.1:5433/postgres\"\nstanza = \"embedded\"\npgdata = \"/d\"\nsocket_dir = \"/r\"\nport = 5433\n",
        ] {
            std::fs::write(&file, bad).unwrap();
            assert!(
                Config::load(Some(&file), &Overrides::default()).is_err(),
                "{bad}"
            );
        }
    }
}
