//! A server on another machine, archived through pgBackRest's TLS server (`pgbackrest
//! server` on the database host; pgfleet is its TLS client, certificates both ways): the
//! `pg1-host*` lines of pgfleet's `pgbackrest.conf`, the private copies of the client
//! certificate, key and CA that pgBackRest (run as the PostgreSQL OS user) reads, and the
//! text that tells the database host's operator what to set there.
//!
//! Only `stanza-create`, `check` and `backup` reach the database host; `info`, `expire`,
//! the scratch instance's `restore` and `archive-get` only need the repository and run
//! here with `--reset-pg1-host`. The database host's `archive-push` writes to the repository
//! itself, which is why a remote server needs the S3 repository.

use std::path::{Path, PathBuf};

use super::{ArchiveSettings, Repo};
use crate::files::{create_dir, write_owned};
use crate::{DataplaneError, PgServer, Result};

/// The database host of a remote server, as pgfleet (the TLS client) reaches it.
#[derive(Debug, Clone)]
pub struct RemoteHost {
    /// Host name of `pgbackrest server` (`pg1-host`). pgBackRest 2.45 matches it against
    /// the certificate's DNS names only, never an IP address.
    pub host: String,
    /// `tls-server-port` on that host (`pg1-host-port`; pgBackRest's default is 8432).
    pub port: u16,
    /// pgfleet's client certificate and key, and the CA that signed the server's
    /// certificate: the operator's files, copied privately into `work_dir/tls/`.
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub ca_file: PathBuf,
    /// The admin connection pgfleet uses for the server (TCP): WAL switches and
    /// `pg_stat_archiver` before a restore.
    pub admin: PgServer,
}

/// `work_dir/tls/` and the names of the copies in it.
fn tls_dir(s: &ArchiveSettings) -> PathBuf {
    s.work_dir.join("tls")
}

fn copies(s: &ArchiveSettings) -> [PathBuf; 3] {
    let d = tls_dir(s);
    [d.join("client.crt"), d.join("client.key"), d.join("ca.crt")]
}

/// Refuses a key file that other users could read (group or world bits).
fn check_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path).map_err(|e| DataplaneError::io(path, e))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(DataplaneError::Setup(format!(
            "{}: the TLS key file must be private (chmod 0600)",
            path.display()
        )));
    }
    Ok(())
}

/// Copies the client certificate, key and CA into `work_dir/tls/` (0700; files 0600, owned
/// by the PostgreSQL OS user, who runs pgBackRest). The key must be 0600 already.
pub(super) fn write_tls(s: &ArchiveSettings, r: &RemoteHost) -> Result<()> {
    check_private(&r.key_file)?;
    let dir = tls_dir(s);
    create_dir(&dir, 0o700)?;
    s.run_as.own(&dir)?;
    for (from, to) in [&r.cert_file, &r.key_file, &r.ca_file]
        .into_iter()
        .zip(copies(s))
    {
        let body = std::fs::read(from).map_err(|e| DataplaneError::io(from, e))?;
        write_owned(&s.run_as, &to, &body, 0o600)?;
    }
    Ok(())
}

/// Refuses a repository the database host cannot push WAL to.
pub(super) fn check_repo(s: &ArchiveSettings) -> Result<()> {
    match (&s.remote, &s.repo) {
        (Some(r), Repo::Local { path }) => Err(DataplaneError::Setup(format!(
            "server on {} (stanza {}): a remote server needs the S3 repository ([backups.s3]): \
             its archive-push runs on its own host and cannot write to {} on this machine",
            r.host,
            s.stanza,
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// The `pg1-host*` lines of the stanza.
pub(super) fn conf_lines(s: &ArchiveSettings, r: &RemoteHost) -> String {
    let [cert, key, ca] = copies(s);
    format!(
        "pg1-host={host}\npg1-host-type=tls\npg1-host-port={port}\npg1-host-cert-file={cert}\n\
         pg1-host-key-file={key}\npg1-host-ca-file={ca}\n",
        host = r.host,
        port = r.port,
        cert = cert.display(),
        key = key.display(),
        ca = ca.display(),
    )
}

/// What the operator of the database host sets there, as text for the log and the README:
/// the `postgresql.conf` lines, the `pgbackrest.conf` of `pgbackrest server` and
/// `archive-push`, and the certificates. No secret in it.
pub(super) fn operator_guide(s: &ArchiveSettings, r: &RemoteHost) -> String {
    let mut repo = String::new();
    if let Repo::S3 {
        bucket,
        endpoint,
        port,
        region,
        path,
        verify_tls,
        ..
    } = &s.repo
    {
        repo = format!(
            "repo1-type=s3\nrepo1-path={path}\nrepo1-s3-bucket={bucket}\nrepo1-s3-endpoint={endpoint}\n\
             repo1-storage-port={port}\nrepo1-s3-region={region}\nrepo1-s3-uri-style=path\n{}",
            if *verify_tls { "" } else { "repo1-storage-verify-tls=n\n" }
        );
    }
    format!(
        "postgresql.conf: wal_level = replica; archive_mode = on; \
         archive_command = 'pgbackrest --stanza={stanza} archive-push %p'; archive_timeout = {timeout}\n\
         /etc/pgbackrest/pgbackrest.conf (0600, the PostgreSQL OS user's; the S3 key and secret \
         in the environment of the postmaster and of `pgbackrest server` as \
         PGBACKREST_REPO1_S3_KEY / PGBACKREST_REPO1_S3_KEY_SECRET, never in the file):\n\
         [global]\n{repo}archive-async=y\nspool-path=/var/spool/pgbackrest\ncompress-type=lz4\n\
         tls-server-address=<this host's address>\ntls-server-port={tls_port}\n\
         tls-server-cert-file=<certificate for {host}>\ntls-server-key-file=<its key, 0600>\n\
         tls-server-ca-file=<CA that signed pgfleet's client certificate>\n\
         tls-server-auth=<CN of pgfleet's client certificate>={stanza}\n\
         [{stanza}]\npg1-path={pgdata}\n\
         then run `pgbackrest server` as the PostgreSQL OS user (e.g. a systemd unit)",
        stanza = s.stanza,
        timeout = s.archive_timeout_secs.clamp(1, 60),
        tls_port = r.port,
        host = r.host,
        pgdata = s.pgdata.display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::osuser::RunAs;

    fn settings(repo: Repo) -> ArchiveSettings {
        ArchiveSettings {
            stanza: "db1".to_string(),
            repo,
            work_dir: PathBuf::from("/var/lib/pgfleet/pitr-db1"),
            pgbackrest: PathBuf::from("/usr/bin/pgbackrest"),
            bin_dir: PathBuf::from("/usr/lib/postgresql/15/bin"),
            pgdata: PathBuf::from("/var/lib/postgresql/15/main"),
            socket_dir: PathBuf::from("/var/run/postgresql"),
            port: 5432,
            remote: Some(RemoteHost {
                host: "db1.example".to_string(),
                port: 8432,
                cert_file: PathBuf::from("/etc/pgfleet/c.crt"),
                key_file: PathBuf::from("/etc/pgfleet/c.key"),
                ca_file: PathBuf::from("/etc/pgfleet/ca.crt"),
                admin: PgServer::from_url("r", "postgres://u:pw-secret@db1.example:5432/postgres")
                    .unwrap(),
            }),
            run_as: RunAs {
                name: "postgres".to_string(),
                uid: 0,
                gid: 0,
                switch: false,
            },
            retention_days: 7,
            archive_timeout_secs: 60,
        }
    }

    #[test]
    fn the_stanza_names_the_tls_server_and_the_guide_holds_no_secret() {
        let s = settings(Repo::S3 {
            bucket: "b".to_string(),
            endpoint: "s3.example".to_string(),
            port: 443,
            region: "us-east-1".to_string(),
            path: "/pgfleet/pgbackrest".to_string(),
            verify_tls: true,
            access_key_id: "AKIA-key".to_string(),
            secret_access_key: "s3-secret".to_string(),
        });
        let r = s.remote.clone().unwrap();
        let conf = super::super::config::conf_text(&s);
        assert!(conf.contains("pg1-host=db1.example\npg1-host-type=tls\npg1-host-port=8432\n"));
        assert!(conf.contains("pg1-host-key-file=/var/lib/pgfleet/pitr-db1/tls/client.key"));
        let guide = operator_guide(&s, &r);
        assert!(guide.contains("tls-server-auth=<CN of pgfleet's client certificate>=db1"));
        assert!(guide.contains("[db1]\npg1-path=/var/lib/postgresql/15/main"));
        for secret in ["AKIA-key", "s3-secret", "pw-secret"] {
            assert!(
                !guide.contains(secret) && !conf.contains(secret),
                "{secret}"
            );
        }
        assert!(check_repo(&s).is_ok());
        let local = settings(Repo::Local {
            path: PathBuf::from("/var/lib/pgfleet/backups/pgbackrest"),
        });
        let e = check_repo(&local).unwrap_err().to_string();
        assert!(e.contains("[backups.s3]"), "{e}");
    }
}
