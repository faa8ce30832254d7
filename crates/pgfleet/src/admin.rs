//! `pgfleet admin …`: operator commands that work on the metadata store directly (the
//! server, or at least its embedded PostgreSQL, must be running).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use pgfleet_domain::{Randomness, Services, ServicesConfig, SystemClock};
use pgfleet_storage::{MetadataTarget, Store};

use crate::config::Config;

/// Connects to the metadata store the server uses.
pub async fn store(cfg: &Config) -> anyhow::Result<Store> {
    let target = match &cfg.metadata.url {
        Some(url) => url
            .expose()
            .parse::<MetadataTarget>()
            .context("metadata.url is not usable")?,
        None => {
            let e = crate::server::EmbeddedAddr::recorded(&cfg.data_dir)?;
            MetadataTarget::single(crate::server::embedded_metadata_options(
                &e.socket_dir,
                e.port,
            ))
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
pub async fn services_with_regions(
    cfg: &Config,
    regions: Vec<pgfleet_domain::regions::Region>,
) -> anyhow::Result<Services> {
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

/// `pgfleet admin apps create`.
pub async fn apps_create(
    cfg: &Config,
    workspace: Option<&str>,
    name: &str,
    description: Option<&str>,
    redirect_uris: &[String],
    confidential: bool,
    json: bool,
) -> anyhow::Result<()> {
    let services = services(cfg).await?;
    let workspace_id = match workspace {
        Some(w) => w.to_string(),
        None => {
            let row: (String,) = sqlx::query_as("SELECT id FROM workspaces ORDER BY seq LIMIT 1")
                .fetch_one(services.store().pool())
                .await
                .context("no workspace exists yet")?;
            row.0
        }
    };
    let created = services
        .oauth_client_create(
            &workspace_id,
            None,
            name,
            description,
            redirect_uris,
            confidential,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "clientId": created.client.id,
                "clientSecret": created.client_secret,
                "workspaceId": workspace_id,
                "name": created.client.name,
                "redirectUris": created.client.redirect_uris,
                "clientType": created.client.client_type,
            })
        );
    } else {
        println!("client id:     {}", created.client.id);
        if let Some(s) = &created.client_secret {
            println!("client secret: {s}   (shown once; store it now)");
        }
        println!("workspace:     {workspace_id}");
        println!("redirect URIs: {}", created.client.redirect_uris.join(", "));
    }
    services.store().close().await;
    Ok(())
}
