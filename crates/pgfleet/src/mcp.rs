//! `pgfleet mcp`: the MCP server over stdio, for an agent that starts pgfleet as a child
//! process. It builds the services from the server's configuration (the same metadata store
//! and Postgres servers as the running `pgfleet serve`, like `pgfleet proxy`), authenticates
//! the token it is given (`--token`/`PGFLEET_TOKEN`, or a file named by `--token-file`/
//! `PGFLEET_TOKEN_FILE`) through the same service as the API, and serves the tools of
//! `pgfleet_http::mcp` as that token's principal. stdout carries only the protocol; logs go
//! to stderr.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use pgfleet_domain::{Randomness, Services, ServicesConfig, SystemClock};
use pgfleet_http::located::BaseUrl;
use pgfleet_http::AppState;

use crate::config::Config;

/// The token of `pgfleet mcp`: given, or read from `token_file` (surrounding whitespace
/// removed).
pub fn token(given: Option<String>, token_file: Option<&Path>) -> anyhow::Result<String> {
    if let Some(t) = given.filter(|t| !t.trim().is_empty()) {
        return Ok(t.trim().to_string());
    }
    let Some(path) = token_file else {
        anyhow::bail!("pgfleet mcp needs a token: set PGFLEET_TOKEN or PGFLEET_TOKEN_FILE (or --token / --token-file)");
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the token file {}", path.display()))?;
    Ok(text.trim().to_string())
}

/// Serves the tools on stdin/stdout until the client closes stdin.
pub async fn run(mut cfg: Config, token: String) -> anyhow::Result<()> {
    cfg.validate()?;
    let embedded = if cfg.needs_embedded() {
        Some(crate::assembly::EmbeddedAddr::recorded(&cfg.data_dir)?)
    } else {
        None
    };
    let regions = crate::assembly::build_regions(&cfg, embedded.as_ref())?;
    let store = crate::assembly::store(&cfg).await?;
    let mut sc = ServicesConfig::new(cfg.public_url(), regions);
    sc.provision_wait = Duration::from_secs_f64(cfg.provision_wait_secs);
    sc.database_connection_limit = cfg.database_connection_limit;
    sc.role_connection_limit = cfg.role_connection_limit;
    sc.workspace_connections = i64::from(cfg.capacity.workspace_connections);
    sc.reserved_connections = cfg.capacity.reserved_connections;
    sc.tenant = cfg.tenant.settings();
    sc.sql = cfg.mcp.settings();
    if let Some(issuer) = &cfg.oauth.issuer {
        sc.oauth.issuer = issuer.trim_end_matches('/').to_string();
    }
    sc.oauth.key_secret = Some(cfg.oauth_key_secret()?);
    sc.backups.dir = cfg
        .backups
        .dir
        .clone()
        .unwrap_or_else(|| cfg.data_dir.join("backups"));
    sc.backups.tools = pgfleet_dataplane::PgTools::find(cfg.postgres.bin_dir.as_deref()).ok();
    let services = Services::new(
        store,
        Arc::new(SystemClock),
        Randomness::os(),
        sc,
        Arc::new(pgfleet_dataplane::PgDriver::new()),
    )
    .await
    .map_err(|e| anyhow::anyhow!("starting services: {e}"))?;
    let principal = services
        .tokens()
        .authenticate_bearer(&token)
        .await
        .map_err(|e| anyhow::anyhow!("the token was not accepted: {e}"))?;
    let access = services.access().api(principal);
    let state = AppState::new(services.clone(), BaseUrl::new(cfg.public_url()));
    pgfleet_http::mcp::serve_stdio(state, access).await?;
    // Operations a tool started and did not wait for are finished by the server's
    // reconciler; what this process runs now gets a moment to end.
    services.wait_idle(Duration::from_secs(5)).await;
    services.store().close().await;
    Ok(())
}
