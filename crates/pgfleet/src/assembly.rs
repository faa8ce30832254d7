//! The parts every entry point assembles from the configuration: where the embedded
//! cluster listens (live, or as a running `pgfleet serve` recorded it), the metadata store's
//! connection, the regions and their Postgres servers, and services over an existing store.
//! `pgfleet serve`, `pgfleet proxy` and `pgfleet admin` all build on this module; it imports
//! only the configuration and the library crates, none of them.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use pgfleet_dataplane::{ClusterHandle, PgServer};
use pgfleet_domain::regions::{default_name, Region, KNOWN_REGIONS};
use pgfleet_domain::{Randomness, Services, ServicesConfig, SystemClock};
use pgfleet_storage::{MetadataTarget, Store};
use sqlx::postgres::PgConnectOptions;

use crate::config::Config;

/// Name of the metadata database on the embedded cluster.
pub const METADATA_DB: &str = "pgfleet";

/// The embedded cluster's metadata database, over its Unix socket.
pub fn embedded_metadata_options(socket_dir: &Path, port: u16) -> PgConnectOptions {
    PgConnectOptions::new()
        .socket(socket_dir)
        .port(port)
        .username(pgfleet_dataplane::cluster::SUPERUSER)
        .database(METADATA_DB)
        .application_name("pgfleet")
}

/// Where the embedded cluster listens: its socket directory and port.
#[derive(Debug, Clone)]
pub struct EmbeddedAddr {
    pub socket_dir: std::path::PathBuf,
    pub port: u16,
}

impl EmbeddedAddr {
    /// The running embedded cluster's address.
    pub fn of(cluster: &ClusterHandle) -> Self {
        Self {
            socket_dir: cluster.cluster().socket_dir(),
            port: cluster.cluster().port(),
        }
    }

    /// The cluster a running `pgfleet serve` keeps in `data_dir` (from its `cluster.json`).
    pub fn recorded(data_dir: &Path) -> anyhow::Result<Self> {
        let recorded = std::fs::read(data_dir.join("cluster.json")).with_context(|| {
            format!(
                "no pgfleet data in {}: start `pgfleet serve` there first",
                data_dir.display()
            )
        })?;
        let port = serde_json::from_slice::<serde_json::Value>(&recorded)?["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .context("cluster.json has no port")?;
        Ok(Self {
            socket_dir: data_dir.join("run"),
            port,
        })
    }
}

/// The configured regions with their servers (`"embedded"` names the embedded cluster),
/// then the contract's other regions, listed without servers (unavailable).
pub fn build_regions(cfg: &Config, embedded: Option<&EmbeddedAddr>) -> anyhow::Result<Vec<Region>> {
    let mut regions: Vec<Region> = Vec::new();
    for (id, rc) in &cfg.regions {
        let mut servers = Vec::new();
        for s in &rc.servers {
            servers.push(server_from_config(cfg, id, s.expose(), embedded)?);
        }
        regions.push(Region {
            id: id.clone(),
            name: rc.name.clone().unwrap_or_else(|| default_name(id)),
            servers,
        });
    }
    // The contract's other regions are listed as unavailable.
    for (id, name) in KNOWN_REGIONS {
        if !regions.iter().any(|r| r.id == *id) {
            regions.push(Region {
                id: id.to_string(),
                name: name.to_string(),
                servers: vec![],
            });
        }
    }
    Ok(regions)
}

fn server_from_config(
    cfg: &Config,
    region: &str,
    value: &str,
    embedded: Option<&EmbeddedAddr>,
) -> anyhow::Result<PgServer> {
    if value == "embedded" {
        let e = embedded.context("the embedded cluster is not running")?;
        let mut admin = tokio_postgres::Config::new();
        admin
            .host_path(&e.socket_dir)
            .port(e.port)
            .user(pgfleet_dataplane::cluster::SUPERUSER)
            .dbname("postgres")
            .application_name("pgfleet")
            .connect_timeout(Duration::from_secs(5));
        return Ok(PgServer {
            key: "embedded".to_string(),
            region: region.to_string(),
            admin,
            tls: pgfleet_dataplane::sslmode::ClientTls::disabled(),
            public_host: cfg.postgres.host.clone(),
            public_port: e.port,
        });
    }
    Ok(PgServer::from_url(region, value)?)
}

/// Connects to the metadata store the server uses.
pub async fn store(cfg: &Config) -> anyhow::Result<Store> {
    let target = match &cfg.metadata.url {
        Some(url) => url
            .expose()
            .parse::<MetadataTarget>()
            .context("metadata.url is not usable")?,
        None => {
            let e = EmbeddedAddr::recorded(&cfg.data_dir)?;
            MetadataTarget::single(embedded_metadata_options(&e.socket_dir, e.port))
        }
    };
    let store = Store::connect(target, 2, Duration::from_secs(5), Duration::from_secs(5))
        .await
        .context("cannot reach the metadata database; is `pgfleet serve` running?")?;
    store.migrate().await?;
    Ok(store)
}

/// Services without any Postgres server: enough for metadata-only commands.
pub async fn services(cfg: &Config) -> anyhow::Result<Services> {
    services_with_regions(cfg, vec![]).await
}

/// Services over the running server's metadata store, with these regions (and servers).
pub async fn services_with_regions(cfg: &Config, regions: Vec<Region>) -> anyhow::Result<Services> {
    let store = store(cfg).await?;
    let mut sc = ServicesConfig::new(cfg.public_url(), regions);
    sc.oauth.key_secret = Some(cfg.oauth_key_secret()?);
    Services::new(
        store,
        Arc::new(SystemClock),
        Randomness::os(),
        sc,
        Arc::new(pgfleet_dataplane::PgDriver::new()),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))
}
