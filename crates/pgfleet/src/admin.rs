//! `pgfleet admin …`: operator commands that work on the metadata store directly (the
//! server, or at least its embedded PostgreSQL, must be running): OAuth apps, draining
//! Postgres servers, and the replica registry. The apps commands act as the local
//! operator ([`pgfleet_domain::access::Access::local_operator_with_data_dir`]): whoever can
//! run them already reads the metadata store with the data directory's credentials.

use anyhow::Context as _;
use pgfleet_domain::SystemClock;

use crate::assembly::{services, store};
use crate::config::Config;

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
        None => pgfleet_storage::workspaces::first_id(services.store().pool())
            .await?
            .context("no workspace exists yet")?,
    };
    // This command opened the metadata store with the server's configuration and data
    // directory itself: its caller is the local operator, with no principal to check.
    let operator = services
        .access()
        .local_operator_with_data_dir(&workspace_id);
    let created = services
        .oauth()
        .client_create(
            &operator
                .workspace_wide_write()
                .map_err(|e| anyhow::anyhow!("{e}"))?,
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

/// `pgfleet admin servers list [ID]`: every registered server (or that one; an unknown id is
/// an error), as a table or, with `--json`, one JSON array.
pub async fn servers_list(cfg: &Config, id: Option<&str>, json: bool) -> anyhow::Result<()> {
    let store = store(cfg).await?;
    let rows = pgfleet_storage::servers::report(store.pool(), id).await;
    store.close().await;
    let rows = rows?;
    if let Some(id) = id {
        anyhow::ensure!(!rows.is_empty(), "no Postgres server has the id {id:?}");
    }
    if json {
        let list: Vec<serde_json::Value> = rows.iter().map(server_json).collect();
        println!("{}", serde_json::Value::Array(list));
        return Ok(());
    }
    println!(
        "{:<30} {:<14} {:<8} {:>9} {:>15} {:>14}  KEY",
        "ID", "REGION", "DRAINED", "DATABASES", "SLOTS", "DISK (BYTES)"
    );
    for r in &rows {
        let capacity = r
            .connection_capacity
            .map_or_else(|| "?".to_string(), |c| c.to_string());
        println!(
            "{:<30} {:<14} {:<8} {:>9} {:>15} {:>14}  {}",
            r.id,
            r.region_id,
            if r.drained_at.is_some() { "yes" } else { "no" },
            r.databases,
            format!("{}/{capacity}", r.slots_assigned),
            r.storage_bytes,
            r.config_key
        );
    }
    Ok(())
}

/// `pgfleet admin replicas`: every registered replica, newest first, as a table or, with
/// `--json`, one JSON array.
pub async fn replicas_list(cfg: &Config, json: bool) -> anyhow::Result<()> {
    use pgfleet_domain::Clock as _;
    let store = store(cfg).await?;
    let rows = pgfleet_domain::services::replicas::list(&store, SystemClock.now()).await;
    store.close().await;
    let rows = rows.map_err(|e| anyhow::anyhow!("{e}"))?;
    if json {
        let list: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "id": r.id,
                    "version": r.version,
                    "address": r.address,
                    "startedAt": r.started_at,
                    "lastSeenAt": r.last_seen_at,
                    "stoppedAt": r.stopped_at,
                    "state": r.state.as_str(),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(list));
        return Ok(());
    }
    println!(
        "{:<30} {:<6} {:<10} {:<22} {:<20} LAST SEEN",
        "ID", "STATE", "VERSION", "ADDRESS", "STARTED"
    );
    for r in &rows {
        println!(
            "{:<30} {:<6} {:<10} {:<22} {:<20} {}",
            r.id,
            r.state.as_str(),
            r.version,
            r.address,
            r.started_at.format("%Y-%m-%d %H:%M:%S"),
            r.last_seen_at.format("%Y-%m-%d %H:%M:%S"),
        );
    }
    Ok(())
}

fn server_json(r: &pgfleet_storage::servers::ServerReport) -> serde_json::Value {
    serde_json::json!({
        "id": r.id,
        "region": r.region_id,
        "key": r.config_key,
        "drained": r.drained_at.is_some(),
        "drainedAt": r.drained_at,
        "databases": r.databases,
        "connectionSlots": {
            "assigned": r.slots_assigned,
            "capacity": r.connection_capacity,
        },
        "storageBytes": r.storage_bytes,
    })
}

/// `pgfleet admin servers drain|undrain ID`. Every replica sees it at its next create (the
/// flag is read under the lock that placement takes on the server's row).
pub async fn servers_set_drained(
    cfg: &Config,
    id: &str,
    drain: bool,
    json: bool,
) -> anyhow::Result<()> {
    use pgfleet_domain::Clock as _;
    let store = store(cfg).await?;
    let at = drain.then(|| SystemClock.now());
    let found = pgfleet_storage::servers::set_drained(store.pool(), id, at).await;
    let rows = match found {
        Ok(true) => pgfleet_storage::servers::report(store.pool(), Some(id)).await,
        Ok(false) => Ok(vec![]),
        Err(e) => Err(e),
    };
    store.close().await;
    let Some(row) = rows?.into_iter().next() else {
        anyhow::bail!("no Postgres server has the id {id:?}; see `pgfleet admin servers list`");
    };
    if json {
        println!("{}", server_json(&row));
    } else if drain {
        println!(
            "{id} is drained: it takes no new databases; its {} databases keep working",
            row.databases
        );
    } else {
        println!("{id} takes new databases again");
    }
    Ok(())
}
