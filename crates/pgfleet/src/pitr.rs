//! Wiring of point-in-time recovery (issue 19, `[pitr]`): the archive of the embedded
//! cluster (pgBackRest stanza `embedded`, repository in the backup store: `<backups.dir>/
//! pgbackrest`, or `/<prefix>/pgbackrest` in the `[backups.s3]` bucket), the archiving
//! settings it adds to the cluster's `postgresql.conf`, and the services' `PitrSettings`.
//! Region servers given as `postgres://` URLs are archived only when listed in
//! `[[pitr.servers]]` (work directory `<data_dir>/pitr-<stanza>`): on this machine (its data
//! directory, socket and port given there) or on another one (its `pgbackrest server`
//! reached over TLS; the text its operator needs is logged at start); the others are not
//! archived.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use pgfleet_dataplane::archive::{Archive, ArchiveSettings, RemoteHost, Repo};
use pgfleet_dataplane::osuser::RunAs;
use pgfleet_dataplane::EmbeddedCluster;
use pgfleet_domain::services::pitr::PitrSettings;

use crate::config::{Config, ServerPlace};

/// The stanza of the embedded cluster.
pub const EMBEDDED_STANZA: &str = "embedded";

/// Where the embedded cluster's files are, as far as its archive needs them.
pub struct Layout {
    pub bin_dir: PathBuf,
    pub pgdata: PathBuf,
    pub socket_dir: PathBuf,
    pub port: u16,
    pub run_as: RunAs,
}

impl Layout {
    /// Of the running (prepared) cluster.
    pub fn of(cluster: &EmbeddedCluster) -> Self {
        Self {
            bin_dir: cluster.bin_dir().to_path_buf(),
            pgdata: cluster.pgdata(),
            socket_dir: cluster.socket_dir(),
            port: cluster.port(),
            run_as: cluster.run_as().clone(),
        }
    }

    /// Before the cluster is prepared, for the settings it is prepared with: the same
    /// directories `EmbeddedCluster` uses (`<data_dir>/postgres`, `<data_dir>/run`); the port
    /// is only known once prepared and the settings do not depend on it.
    pub fn planned(cfg: &Config) -> anyhow::Result<Self> {
        Ok(Self {
            bin_dir: pgfleet_dataplane::binaries::find_bin_dir(cfg.postgres.bin_dir.as_deref())?,
            pgdata: cfg.data_dir.join("postgres"),
            socket_dir: cfg.data_dir.join("run"),
            port: cfg.postgres.port.unwrap_or(5432),
            run_as: RunAs::detect()?,
        })
    }
}

/// True when the embedded cluster is to be archived: `[pitr] enabled` and it serves a region.
pub fn embedded_archived(cfg: &Config) -> bool {
    cfg.pitr.enabled
        && cfg
            .regions
            .values()
            .any(|r| r.servers.iter().any(|s| s.expose() == "embedded"))
}

/// The `pgbackrest` executable on `PATH`.
fn find_pgbackrest() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join("pgbackrest"))
        .find(|p| p.is_file())
}

/// The repository in the configured backup store.
fn repo(cfg: &Config) -> anyhow::Result<Repo> {
    let Some(s3) = &cfg.backups.s3 else {
        let dir = cfg
            .backups
            .dir
            .clone()
            .unwrap_or_else(|| cfg.data_dir.join("backups"));
        return Ok(Repo::Local {
            path: dir.join("pgbackrest"),
        });
    };
    let (endpoint, port) = match &s3.endpoint {
        Some(e) => {
            let url = url::Url::parse(e).with_context(|| format!("backups.s3.endpoint {e:?}"))?;
            let host = url
                .host_str()
                .context("backups.s3.endpoint has no host")?
                .to_string();
            (host, url.port().unwrap_or(443))
        }
        None => (format!("s3.{}.amazonaws.com", s3.region), 443),
    };
    let env = |k: &str| std::env::var(k).ok();
    let access_key_id = s3
        .access_key_id
        .clone()
        .or_else(|| env("AWS_ACCESS_KEY_ID"))
        .context("pitr with backups.s3 needs an access key (backups.s3.access_key_id or AWS_ACCESS_KEY_ID)")?;
    let secret_access_key = s3
        .secret_access_key
        .as_ref()
        .map(|s| s.expose().to_string())
        .or_else(|| env("AWS_SECRET_ACCESS_KEY"))
        .context("pitr with backups.s3 needs a secret key")?;
    Ok(Repo::S3 {
        bucket: s3.bucket.clone(),
        endpoint,
        port,
        region: s3.region.clone(),
        path: format!("/{}/pgbackrest", s3.prefix.trim_matches('/')),
        verify_tls: cfg.pitr.s3_verify_tls,
        access_key_id,
        secret_access_key,
    })
}

/// An archive of this configuration's repository.
fn archive(
    cfg: &Config,
    stanza: &str,
    work_dir: PathBuf,
    layout: Layout,
    pgbackrest: PathBuf,
) -> anyhow::Result<Archive> {
    Ok(Archive::new(ArchiveSettings {
        stanza: stanza.to_string(),
        repo: repo(cfg)?,
        work_dir,
        pgbackrest,
        bin_dir: layout.bin_dir,
        pgdata: layout.pgdata,
        socket_dir: layout.socket_dir,
        port: layout.port,
        remote: None,
        run_as: layout.run_as,
        retention_days: cfg.pitr.retention_days,
        archive_timeout_secs: cfg.pitr.archive_timeout_secs,
    }))
}

/// The embedded cluster's archive at `layout`; `None` (logged) when it is not archived or
/// pgBackRest is missing.
pub fn embedded_archive(cfg: &Config, layout: Layout) -> anyhow::Result<Option<Archive>> {
    if !embedded_archived(cfg) {
        return Ok(None);
    }
    let Some(pgbackrest) = find_pgbackrest() else {
        tracing::warn!("pitr: pgbackrest not found (apt-get install pgbackrest); the embedded cluster is not archived");
        return Ok(None);
    };
    archive(
        cfg,
        EMBEDDED_STANZA,
        cfg.data_dir.join("pitr"),
        layout,
        pgbackrest,
    )
    .map(Some)
}

/// The archives of the region servers of `[[pitr.servers]]`, by server key (work directory
/// `<data_dir>/pitr-<stanza>`).
pub fn external_archives(cfg: &Config) -> anyhow::Result<Vec<(String, Archive)>> {
    if cfg.pitr.servers.is_empty() {
        return Ok(Vec::new());
    }
    let Some(pgbackrest) = find_pgbackrest() else {
        tracing::warn!("pitr: pgbackrest not found (apt-get install pgbackrest); pitr.servers are not archived");
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for s in &cfg.pitr.servers {
        let server = pgfleet_dataplane::PgServer::from_url("", s.url.expose())?;
        let bin_dir = pgfleet_dataplane::binaries::find_bin_dir(
            s.bin_dir.as_deref().or(cfg.postgres.bin_dir.as_deref()),
        )?;
        let (layout, remote) = match s.place()? {
            ServerPlace::Local { socket_dir, port } => (
                Layout {
                    bin_dir,
                    pgdata: s.pgdata.clone(),
                    socket_dir,
                    port,
                    run_as: RunAs::detect()?,
                },
                None,
            ),
            ServerPlace::Remote {
                host,
                pgbackrest_port,
                cert_file,
                key_file,
                ca_file,
                socket_dir,
            } => (
                // The data directory, socket and port on that host, for its pgbackrest server.
                Layout {
                    bin_dir,
                    pgdata: s.pgdata.clone(),
                    socket_dir,
                    port: server.public_port,
                    run_as: RunAs::detect()?,
                },
                Some(RemoteHost {
                    host,
                    port: pgbackrest_port,
                    cert_file,
                    key_file,
                    ca_file,
                    admin: server.clone(),
                }),
            ),
        };
        let work_dir = cfg.data_dir.join(format!("pitr-{}", s.stanza));
        let archive = archive(cfg, &s.stanza, work_dir, layout, pgbackrest.clone())?;
        out.push((server.key, archive.with_remote(remote)));
    }
    Ok(out)
}

/// Every archive, ready to use: the embedded cluster's (prepared before its start) and each
/// region server's of `[[pitr.servers]]` (the data directory let through for the
/// PostgreSQL OS user, its configuration written, the settings its operator must set
/// logged). Their stanzas are created by the archiving job's first round (under its lease:
/// one replica, and never holding up the server's start).
pub async fn start_archives(
    cfg: &Config,
    embedded: Option<Archive>,
) -> anyhow::Result<Vec<(String, Archive)>> {
    let mut all: Vec<(String, Archive)> = embedded
        .map(|a| ("embedded".to_string(), a))
        .into_iter()
        .collect();
    let external = external_archives(cfg)?;
    for (key, a) in &external {
        a.settings().run_as.let_through(&cfg.data_dir)?;
        let prepared = a.clone();
        tokio::task::spawn_blocking(move || {
            open_local_repo(&prepared)?;
            prepared.prepare().map_err(anyhow::Error::from)
        })
        .await
        .context("archive preparation panicked")??;
        let settings: Vec<String> = a
            .postgres_settings()
            .into_iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        match a.remote_guide() {
            Some(guide) => {
                tracing::info!(server = %key, "pitr: this server is on another machine; its operator sets there:\n{guide}");
            }
            None => {
                tracing::info!(server = %key, settings = %settings.join("; "), "pitr: this server's postgresql.conf needs these settings");
            }
        }
    }
    all.extend(external);
    Ok(all)
}

/// The services' settings, with the archive of the embedded cluster when it has one.
pub fn settings(cfg: &Config, archives: Vec<(String, Archive)>) -> PitrSettings {
    let timeout = Duration::from_secs(u64::from(cfg.pitr.archive_timeout_secs));
    PitrSettings {
        archives: archives.into_iter().collect(),
        full_every: Duration::from_secs(cfg.pitr.full_every_secs),
        incr_every: Duration::from_secs(cfg.pitr.incr_every_secs),
        check_every: Duration::from_secs(cfg.pitr.check_every_secs),
        archive_timeout: timeout,
        wal_alert_bytes: cfg.pitr.wal_alert_bytes,
    }
}

/// Before [`Archive::prepare`]: a local repository lives in `backups.dir`, which is
/// pgfleet's (0700): let the PostgreSQL OS user through it (0710, its group; never world
/// bits) so pgBackRest, run as that user, reaches `<backups.dir>/pgbackrest`. The dumps in
/// it stay unreadable to that user (0600, pgfleet's).
pub fn open_local_repo(archive: &Archive) -> anyhow::Result<()> {
    let s = archive.settings();
    let Repo::Local { path } = &s.repo else {
        return Ok(());
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        s.run_as.let_through(parent)?;
    }
    Ok(())
}
