//! Wiring of the pooled endpoint: its settings and TLS certificate from the configuration,
//! and the catalog it authenticates against (the services' view of connections); and
//! `pgfleet proxy`, the endpoint on its own, assembled with `crate::assembly`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use pgfleet_domain::Services;
use pgfleet_pooler::{BackendHost, BackendTarget, Catalog, CatalogError, PoolMode, Route};

use crate::config::{Config, PoolModeConfig};

/// The catalog over the metadata store.
pub struct ServicesCatalog(pub Services);

#[async_trait::async_trait]
impl Catalog for ServicesCatalog {
    async fn route(&self, role: &str) -> Result<Option<Route>, CatalogError> {
        let r = self
            .0
            .pooler()
            .route(role)
            .await
            .map_err(|e| CatalogError(e.to_string()))?;
        let Some(r) = r else { return Ok(None) };
        let Some(target) = backend_target(&r.server) else {
            return Ok(None);
        };
        Ok(Some(Route {
            connection_id: r.connection_id,
            database_id: r.database_id,
            pg_database: r.pg_database,
            role: r.role,
            verifier: r.verifier,
            target,
            unavailable: r.unavailable,
        }))
    }
}

/// Where the pooler reaches a server: the host and port pgfleet itself uses (a Unix socket
/// for the embedded cluster), TLS when its admin URL asks for it.
fn backend_target(server: &pgfleet_dataplane::PgServer) -> Option<BackendTarget> {
    let host = match server.admin.get_hosts().first()? {
        tokio_postgres::config::Host::Tcp(h) => BackendHost::Tcp(h.clone()),
        tokio_postgres::config::Host::Unix(p) => BackendHost::Unix(p.clone()),
    };
    Some(BackendTarget {
        key: server.key.clone(),
        host,
        port: server.admin.get_ports().first().copied().unwrap_or(5432),
        tls: server.tls.mode.requires_tls(),
    })
}

/// The proxy's settings from `[pooler]`.
pub fn settings(cfg: &Config) -> anyhow::Result<pgfleet_pooler::Settings> {
    let p = &cfg.pooler;
    let backend_tls = pgfleet_dataplane::tls::require_client_config()
        .context("TLS client configuration for database servers")?;
    // Servers whose URL asks for a verified certificate: the pooler verifies it the same way.
    let mut backend_tls_by_server = std::collections::HashMap::new();
    for (region, r) in &cfg.regions {
        for url in r.servers.iter().filter(|u| u.expose() != "embedded") {
            let server = pgfleet_dataplane::PgServer::from_url(region, url.expose())?;
            if server.tls.verification() != pgfleet_dataplane::sslmode::Verification::Nothing {
                let config = server.tls.client_config()?;
                backend_tls_by_server.insert(server.key.clone(), Arc::new(config));
            }
        }
    }
    Ok(pgfleet_pooler::Settings {
        mode: match p.mode {
            PoolModeConfig::Transaction => PoolMode::Transaction,
            PoolModeConfig::Session => PoolMode::Session,
        },
        pool_size: p.pool_size,
        max_clients: p.max_clients,
        max_client_connections: p
            .max_client_connections
            .unwrap_or(crate::descriptors::POOLER_DEFAULT_CEILING),
        max_prepared_statements: p.max_prepared_statements,
        require_tls: p.require_tls,
        query_wait_timeout: Duration::from_secs(p.query_wait_timeout_secs),
        server_idle_timeout: Duration::from_secs(p.server_idle_timeout_secs),
        server_lifetime: Duration::from_secs(p.server_lifetime_secs),
        idle_transaction_timeout: Duration::from_secs(p.idle_transaction_timeout_secs),
        startup_timeout: Duration::from_secs(p.startup_timeout_secs),
        client_login_timeout: Duration::from_secs(p.client_login_timeout_secs),
        shutdown_grace: Duration::from_secs(p.shutdown_grace_secs),
        session_threads: p.session_threads,
        backend_tls: Some(Arc::new(backend_tls)),
        backend_tls_by_server,
        ..pgfleet_pooler::Settings::default()
    })
}

/// The pooler's TLS: the configured certificate, else a self-signed one generated once
/// into `<data_dir>/pooler-tls` (key mode 0600); and the certificate's DER (for channel
/// binding).
pub fn tls_config(cfg: &Config) -> anyhow::Result<(Arc<rustls::ServerConfig>, Option<Vec<u8>>)> {
    let (cert, key) = match (&cfg.pooler.tls_cert_file, &cfg.pooler.tls_key_file) {
        (Some(c), Some(k)) => (
            std::fs::read_to_string(c).with_context(|| format!("reading {}", c.display()))?,
            std::fs::read_to_string(k).with_context(|| format!("reading {}", k.display()))?,
        ),
        _ => self_signed(&cfg.data_dir.join("pooler-tls"), &public_host(cfg))?,
    };
    let config = pgfleet_dataplane::tls::server_config(&cert, &key)
        .map_err(|e| anyhow::anyhow!("pooler TLS: {e}"))?;
    Ok((
        Arc::new(config),
        pgfleet_dataplane::tls::first_certificate_der(&cert),
    ))
}

/// Reads the pooler's certificate and key again (a renewed certificate) and serves them to
/// new clients; on an error the current ones stay.
pub fn reload_tls(cfg: &Config, pooler: &pgfleet_pooler::Pooler) -> anyhow::Result<()> {
    let (tls, certificate) = tls_config(cfg)?;
    pooler.set_tls(tls, certificate.as_deref());
    Ok(())
}

/// On every SIGHUP, reloads what can change without a restart: the pooler's certificate.
/// (Without this handler SIGHUP would end the process.)
pub async fn reload_on_hangup(cfg: Config, pooler: Option<pgfleet_pooler::Pooler>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; reloads need a restart");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        let Some(pooler) = &pooler else {
            tracing::info!("SIGHUP: nothing to reload (the pooler is off)");
            continue;
        };
        match reload_tls(&cfg, pooler) {
            Ok(()) => tracing::info!("SIGHUP: the pooler's TLS certificate was reloaded"),
            Err(e) => tracing::warn!(
                error = format!("{e:#}"),
                "SIGHUP: the pooler's TLS certificate could not be reloaded; keeping the current one"
            ),
        }
    }
}

pub(crate) fn self_signed(dir: &Path, host: &str) -> anyhow::Result<(String, String)> {
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    if let (Ok(c), Ok(k)) = (
        std::fs::read_to_string(&cert_path),
        std::fs::read_to_string(&key_path),
    ) {
        return Ok((c, k));
    }
    crate::private_file::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    let generated = pgfleet_dataplane::tls::self_signed(&[host.to_string()])
        .context("generating the pooler's certificate")?;
    crate::private_file::write(&key_path, generated.key_pem.as_bytes())
        .with_context(|| format!("writing {}", key_path.display()))?;
    crate::private_file::write(&cert_path, generated.cert_pem.as_bytes())
        .with_context(|| format!("writing {}", cert_path.display()))?;
    Ok((generated.cert_pem, generated.key_pem))
}

/// Host written into pooled connection strings.
pub fn public_host(cfg: &Config) -> String {
    cfg.pooler
        .host
        .clone()
        .unwrap_or_else(|| cfg.postgres.host.clone())
}

/// A running pooler inside `pgfleet serve`.
#[derive(Debug)]
pub struct RunningPooler {
    pub addr: std::net::SocketAddr,
    pub pooler: pgfleet_pooler::Pooler,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningPooler {
    /// Stops accepting, drains clients (up to the grace period) and returns.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = self.task.await;
    }
}

/// Binds the pooler's port (port 0 picks a free one).
pub async fn bind(cfg: &Config) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(cfg.pooler.listen)
        .await
        .with_context(|| format!("pooler: cannot listen on {}", cfg.pooler.listen))
}

/// Starts the proxy on a bound listener, and makes writes of `services` re-check its pools.
pub fn start(
    cfg: &Config,
    services: &Services,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<RunningPooler> {
    let addr = listener.local_addr()?;
    let (tls, certificate) = tls_config(cfg)?;
    let pooler = pgfleet_pooler::Pooler::new(
        settings(cfg)?,
        Arc::new(ServicesCatalog(services.clone())),
        Some(tls),
        certificate.as_deref(),
    );
    let hook = pooler.clone();
    services.pooler().on_write(move || hook.revalidate());
    let stats = pooler.clone();
    services.pooler().set_stats(move || {
        stats
            .stats()
            .into_iter()
            .map(|d| {
                let counts = pgfleet_domain::services::pooler::PooledCounts {
                    statements: d.statements,
                    transactions: d.transactions,
                    clients: u64::try_from(d.clients).unwrap_or(u64::MAX),
                    server_connections: u64::try_from(d.server_connections).unwrap_or(u64::MAX),
                    waiting: u64::try_from(d.waiting).unwrap_or(u64::MAX),
                    wait_micros: d.wait_micros,
                    resets: d.resets,
                };
                (d.database_id, counts)
            })
            .collect()
    });
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let p = pooler.clone();
    let task = tokio::spawn(async move {
        p.serve(listener, async move {
            let _ = rx.await;
        })
        .await;
    });
    tracing::info!(%addr, "pooler listening");
    Ok(RunningPooler {
        addr,
        pooler,
        stop: Some(tx),
        task,
    })
}

/// `pgfleet proxy`: the pooled endpoint on its own, beside a running `pgfleet serve` (same
/// configuration and data directory, or the same external metadata store and servers).
/// Rotations and deletions made by the server reach it at its next check (one second).
pub async fn run_standalone(
    mut cfg: Config,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    cfg.validate()?;
    crate::descriptors::apply(&mut cfg, crate::descriptors::current_limit()?, false)?;
    let embedded = if cfg.needs_embedded() {
        Some(crate::assembly::EmbeddedAddr::recorded(&cfg.data_dir)?)
    } else {
        None
    };
    let regions = crate::assembly::build_regions(&cfg, embedded.as_ref())?;
    let services = crate::assembly::services_with_regions(&cfg, regions).await?;
    let listener = bind(&cfg).await?;
    let running = start(&cfg, &services, listener)?;
    let reloads = tokio::spawn(reload_on_hangup(cfg.clone(), Some(running.pooler.clone())));
    println!("pgfleet proxy listening on postgresql://{}", running.addr);
    stop.await;
    reloads.abort();
    tracing::info!("proxy shutting down");
    running.stop().await;
    services.store().close().await;
    Ok(())
}
