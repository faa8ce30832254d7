//! `[backups]` and `[backups.s3]`: where and how often tenant databases are backed up,
//! their defaults and their validation.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret};

/// Backups of tenant databases (a local directory, or S3 with `[backups.s3]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupsConfig {
    /// Where backups are kept (with S3: the staging files); default `<data_dir>/backups`.
    pub dir: Option<PathBuf>,
    /// A database is backed up when its newest backup is older than this and it changed.
    pub interval_secs: u64,
    /// Backups older than this are deleted (the API's `backupRetentionDays`).
    pub retention_days: i64,
    /// How often the scheduler looks (and prunes), in seconds: one round per interval across
    /// all replicas sharing the metadata store (a lease per job, see `pgfleet_domain::lease`).
    pub check_every_secs: u64,
    /// Declares `dir` a directory every replica mounts (NFS and the like), so that each sees
    /// the archives the others wrote. Without it (default false) and without `[backups.s3]`,
    /// a replica refuses to start while another replica of the metadata store is alive: a
    /// per-machine directory would leave each replica unable to restore the others' backups.
    pub shared_dir: bool,
    /// When set, archives are kept in this S3-compatible bucket instead of `dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Config>,
}

/// `[backups.s3]`: an S3-compatible object store for backup archives
/// (`<prefix>/<database>/<backup>.dump`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    /// Endpoint of an S3-compatible server (e.g. `http://127.0.0.1:9000`); default AWS.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default = "default_s3_region")]
    pub region: String,
    /// Default: the `AWS_ACCESS_KEY_ID`… environment variables.
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub secret_access_key: Option<Secret>,
    #[serde(default)]
    pub secret_access_key_file: Option<PathBuf>,
    /// Key prefix of the archives.
    #[serde(default = "default_s3_prefix")]
    pub prefix: String,
    /// Allow a plain-HTTP endpoint (a local server).
    #[serde(default)]
    pub allow_http: bool,
}

fn default_s3_region() -> String {
    "us-east-1".to_string()
}

fn default_s3_prefix() -> String {
    "pgfleet".to_string()
}

impl S3Config {
    pub fn options(&self) -> pgfleet_domain::backup_store::S3Options {
        pgfleet_domain::backup_store::S3Options {
            bucket: self.bucket.clone(),
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self
                .secret_access_key
                .as_ref()
                .map(|s| s.expose().to_string()),
            prefix: self.prefix.clone(),
            allow_http: self.allow_http,
        }
    }
}

impl Default for BackupsConfig {
    fn default() -> Self {
        Self {
            dir: None,
            interval_secs: 86_400,
            retention_days: 7,
            check_every_secs: 60,
            shared_dir: false,
            s3: None,
        }
    }
}

impl BackupsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.retention_days < 1 || self.interval_secs == 0 || self.check_every_secs == 0 {
            return Err(ConfigError::Invalid(
                "backups: retention_days must be at least 1, interval_secs and check_every_secs above 0".to_string(),
            ));
        }
        if let Some(s3) = &self.s3 {
            if s3.bucket.is_empty() {
                return Err(ConfigError::Invalid(
                    "backups.s3.bucket must not be empty".to_string(),
                ));
            }
            if let Some(e) = &s3.endpoint {
                url::Url::parse(e).map_err(|err| {
                    ConfigError::Invalid(format!("backups.s3.endpoint {e:?}: {err}"))
                })?;
            }
            if s3.access_key_id.is_some() != s3.secret_access_key.is_some() {
                return Err(ConfigError::Invalid(
                    "backups.s3: set both access_key_id and secret_access_key, or neither"
                        .to_string(),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Config, Overrides, Secret};

    #[test]
    fn backups_s3_section_defaults_secret_file_and_redaction() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("s3-secret");
        std::fs::write(&secret, "very-secret-s3-key\n").unwrap();
        let file = dir.path().join("pgfleet.toml");
        std::fs::write(
            &file,
            format!(
                "[backups.s3]\nbucket = \"bk\"\nendpoint = \"http://127.0.0.1:9000\"\n\
                 access_key_id = \"AKID\"\nsecret_access_key_file = {:?}\nallow_http = true\n",
                secret.display().to_string()
            ),
        )
        .unwrap();
        let cfg = Config::load(Some(&file), &Overrides::default()).unwrap();
        let s3 = cfg.backups.s3.clone().unwrap();
        assert_eq!(s3.region, "us-east-1");
        assert_eq!(s3.prefix, "pgfleet");
        assert_eq!(
            s3.secret_access_key.as_ref().map(Secret::expose),
            Some("very-secret-s3-key")
        );
        let text = cfg.to_toml();
        assert!(
            text.contains("[backups.s3]") && text.contains("<redacted>"),
            "{text}"
        );
        assert!(!text.contains("very-secret-s3-key"), "{text}");

        std::fs::write(&file, "[backups.s3]\nbucket = \"\"\n").unwrap();
        assert!(Config::load(Some(&file), &Overrides::default()).is_err());
        std::fs::write(
            &file,
            "[backups.s3]\nbucket = \"b\"\naccess_key_id = \"A\"\n",
        )
        .unwrap();
        assert!(Config::load(Some(&file), &Overrides::default()).is_err());
        std::fs::write(&file, "[backups.s3]\nbukkit = \"b\"\n").unwrap();
        assert!(Config::load(Some(&file), &Overrides::default()).is_err());
    }
}
