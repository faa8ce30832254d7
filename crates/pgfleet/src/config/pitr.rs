//! `[pitr]`: continuous WAL archiving and point-in-time restores (issue 19): whether the
//! embedded cluster is archived, the retention window, the recovery point (`archive_timeout`),
//! the base-backup schedule, the WAL alert threshold, and TLS checking of an S3 repository.
//! The repository itself lives in the backup store of `[backups]` / `[backups.s3]`.
//! `[[pitr.servers]]` lists region servers archived too, each in its local or remote form
//! ([`ServerPlace`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret};

/// Continuous archiving of the embedded cluster (pgBackRest), and its schedule.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PitrConfig {
    /// Archive the embedded cluster's WAL and take base backups (default true). Region
    /// servers given as `postgres://` URLs are archived only when listed in `servers`; the
    /// others' databases have no `restoreWindow`.
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
    /// archives too: on this machine (pgBackRest runs against the data directory as the OS
    /// user that owns it) or on another one (through `pgbackrest server` on that host, TLS
    /// with client certificates). Their operator sets what pgfleet logs at start (the
    /// `archive_*` settings; for a remote host also its `pgbackrest.conf` and certificates).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<ArchivedServerConfig>,
}

/// One archived region server: on this machine (`socket_dir`, `port`: pgBackRest reads its
/// data directory) or on another one (`host`: reached through `pgbackrest server` on that
/// host over TLS with client certificates; needs the S3 repository).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchivedServerConfig {
    /// The server, exactly as in `regions.<id>.servers`.
    pub url: Secret,
    /// Its pgBackRest stanza: letters, digits, `-` and `_`, one per server (not `embedded`).
    pub stanza: String,
    /// Its data directory (on its own host for the remote form).
    pub pgdata: PathBuf,
    /// Local form: its socket directory and port on this machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_dir: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Remote form: the host name of its `pgbackrest server` (a DNS name of that server's
    /// certificate: pgBackRest 2.45 does not match IP addresses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Remote form: the `tls-server-port` of `pgbackrest server` (default 8432).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgbackrest_port: Option<u16>,
    /// Remote form: pgfleet's client certificate and key (0600) and the CA of the server's
    /// certificate (PEM files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca_file: Option<PathBuf>,
    /// Remote form: PostgreSQL's socket directory on that host, through which `pgbackrest
    /// server` connects (default `/var/run/postgresql`; the port is the URL's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_socket_dir: Option<PathBuf>,
    /// Its PostgreSQL binaries (scratch instances, on this machine); default
    /// `postgres.bin_dir`'s rule.
    #[serde(default)]
    pub bin_dir: Option<PathBuf>,
}

/// Where an archived server's data directory is, from its `[[pitr.servers]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerPlace {
    /// On this machine.
    Local { socket_dir: PathBuf, port: u16 },
    /// On `host`, through its `pgbackrest server`.
    Remote {
        host: String,
        pgbackrest_port: u16,
        cert_file: PathBuf,
        key_file: PathBuf,
        ca_file: PathBuf,
        socket_dir: PathBuf,
    },
}

impl ArchivedServerConfig {
    /// The form of the entry, or why it is neither.
    pub fn place(&self) -> Result<ServerPlace, ConfigError> {
        let bad = |why: &str| {
            ConfigError::Invalid(format!("pitr.servers (stanza {:?}): {why}", self.stanza))
        };
        // The paths go into pgBackRest's configuration file, one per line.
        let plain = |p: &Option<PathBuf>| {
            p.as_ref()
                .is_none_or(|p| !p.to_string_lossy().chars().any(char::is_control))
        };
        let paths = [
            Some(self.pgdata.clone()),
            self.socket_dir.clone(),
            self.host_socket_dir.clone(),
        ];
        if !paths.iter().all(plain) {
            return Err(bad(
                "pgdata, socket_dir and host_socket_dir must not hold control characters",
            ));
        }
        match &self.host {
            None => {
                if self.pgbackrest_port.is_some()
                    || self.tls_cert_file.is_some()
                    || self.tls_key_file.is_some()
                    || self.tls_ca_file.is_some()
                    || self.host_socket_dir.is_some()
                {
                    return Err(bad("pgbackrest_port, tls_*_file and host_socket_dir belong to the remote form: set host too"));
                }
                match (&self.socket_dir, self.port) {
                    (Some(socket_dir), Some(port)) => Ok(ServerPlace::Local {
                        socket_dir: socket_dir.clone(),
                        port,
                    }),
                    _ => Err(bad("give socket_dir and port (a server on this machine) or host with tls_cert_file, tls_key_file and tls_ca_file (a server on another machine)")),
                }
            }
            Some(host) => {
                if self.socket_dir.is_some() || self.port.is_some() {
                    return Err(bad("socket_dir and port are for a server on this machine; with host use host_socket_dir (the port is the URL's)"));
                }
                let ok_host = !host.is_empty()
                    && host.len() <= 253
                    && host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
                if !ok_host {
                    return Err(bad("host must be a DNS name (letters, digits, '-' and '.') of the certificate of its pgbackrest server"));
                }
                let (Some(cert), Some(key), Some(ca)) =
                    (&self.tls_cert_file, &self.tls_key_file, &self.tls_ca_file)
                else {
                    return Err(bad("a remote server needs tls_cert_file, tls_key_file and tls_ca_file (TLS with client certificates both ways)"));
                };
                Ok(ServerPlace::Remote {
                    host: host.clone(),
                    pgbackrest_port: self.pgbackrest_port.unwrap_or(8432),
                    cert_file: cert.clone(),
                    key_file: key.clone(),
                    ca_file: ca.clone(),
                    socket_dir: self
                        .host_socket_dir
                        .clone()
                        .unwrap_or_else(|| PathBuf::from("/var/run/postgresql")),
                })
            }
        }
    }
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
            srv.place()?;
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

    const REGION: &str = "[metadata]\nurl = \"postgres://u:p@127.0.0.1:5432/meta\"\n\
        [regions.r]\nservers = [\"postgres://u:p@db1.example:5432/postgres\"]\n";
    const S3: &str = "[backups.s3]\nbucket = \"b\"\nregion = \"us-east-1\"\n\
        endpoint = \"https://s3.example:9000\"\naccess_key_id = \"k\"\nsecret_access_key = \"s\"\n";
    const REMOTE: &str = "[[pitr.servers]]\nurl = \"postgres://u:p@db1.example:5432/postgres\"\n\
        stanza = \"db1\"\npgdata = \"/var/lib/postgresql/15/main\"\nhost = \"db1.example\"\n\
        tls_cert_file = \"/etc/pgfleet/c.crt\"\ntls_key_file = \"/etc/pgfleet/c.key\"\n\
        tls_ca_file = \"/etc/pgfleet/ca.crt\"\n";

    fn load(text: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgfleet.toml");
        std::fs::write(&file, text).unwrap();
        Config::load(Some(&file), &Overrides::default()).map_err(|e| e.to_string())
    }

    #[test]
    fn a_remote_server_has_its_own_form_and_needs_the_s3_repository() {
        use super::ServerPlace;
        let cfg = load(&format!("{REGION}{S3}{REMOTE}pgbackrest_port = 8433\n")).unwrap();
        match cfg.pitr.servers[0].place().unwrap() {
            ServerPlace::Remote {
                host,
                pgbackrest_port,
                socket_dir,
                ..
            } => {
                assert_eq!(host, "db1.example");
                assert_eq!(pgbackrest_port, 8433);
                assert_eq!(socket_dir, std::path::PathBuf::from("/var/run/postgresql"));
            }
            other => panic!("{other:?}"),
        }
        // A local repository: the host's archive-push could not reach it.
        let e = load(&format!("{REGION}{REMOTE}")).unwrap_err();
        assert!(e.contains("[backups.s3]"), "{e}");
        // Both forms at once, or neither, or a half-given remote form.
        for (tail, says) in [
            ("socket_dir = \"/run/pg\"\n", "socket_dir and port"),
            ("port = 5432\n", "socket_dir and port"),
        ] {
            let e = load(&format!("{REGION}{S3}{REMOTE}{tail}")).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
        let no_key = REMOTE.replace("tls_key_file = \"/etc/pgfleet/c.key\"\n", "");
        let e = load(&format!("{REGION}{S3}{no_key}")).unwrap_err();
        assert!(e.contains("tls_key_file"), "{e}");
        let neither = REMOTE.replace("host = \"db1.example\"\n", "");
        let e = load(&format!("{REGION}{S3}{neither}")).unwrap_err();
        assert!(e.contains("set host too"), "{e}");
        let injected = REMOTE.replace("/15/main", "/15/main\\nrepo1-path=/tmp");
        let e = load(&format!("{REGION}{S3}{injected}")).unwrap_err();
        assert!(e.contains("control characters"), "{e}");
        let ip = REMOTE.replace("host = \"db1.example\"", "host = \"10.0.0.1:1\"");
        let e = load(&format!("{REGION}{S3}{ip}")).unwrap_err();
        assert!(e.contains("DNS name"), "{e}");
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
