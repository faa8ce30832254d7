//! `pgfleet serve`: wires configuration, the embedded cluster, the metadata store, the
//! services, the HTTP server, the pooled and the `prisma+postgres://` endpoints together, and takes them down in order on shutdown
//! (stop accepting → drain requests → close the store → stop PostgreSQL); the embedded
//! cluster's WAL archive comes from `crate::pitr`. The parts it
//! shares with `proxy` and `admin` (embedded address, regions) come from `crate::assembly`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use pgfleet_dataplane::{ClusterHandle, ClusterSettings, EmbeddedCluster, PgDriver};
use pgfleet_domain::bootstrap::{BootstrapOptions, BootstrapSecrets};
use pgfleet_domain::{Clock, Randomness, Services, ServicesConfig, SystemClock};
use pgfleet_storage::{MetadataTarget, Store};
use tokio::sync::oneshot;

use crate::assembly::{build_regions, embedded_metadata_options, EmbeddedAddr, METADATA_DB};
use crate::config::Config;

/// Injected time and randomness.
#[derive(Debug, Clone)]
pub struct Deps {
    pub clock: Arc<dyn Clock>,
    pub rng: Randomness,
}

impl Default for Deps {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            rng: Randomness::os(),
        }
    }
}

/// A running server.
#[derive(Debug)]
pub struct Running {
    pub addr: std::net::SocketAddr,
    /// The pooled endpoint's address, when it runs.
    pub pooler_addr: Option<std::net::SocketAddr>,
    pub pooler: Option<pgfleet_pooler::Pooler>,
    /// The `prisma+postgres://` endpoint's address, when it runs.
    pub accelerate_addr: Option<std::net::SocketAddr>,
    pub services: Services,
    /// Set on the start that bootstrapped the store.
    pub bootstrap: Option<BootstrapSecrets>,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Graceful stop: drain HTTP, close the store, stop PostgreSQL.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.await.context("server task failed")?
    }
}

/// Starts everything and returns once the API is listening.
pub async fn start(mut cfg: Config, deps: Deps) -> anyhow::Result<Running> {
    cfg.validate()?;
    // Whatever this process and its children (pg_dump, PostgreSQL) create is private unless
    // made otherwise on purpose: a forgotten mode cannot leak a file to other OS users.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    crate::descriptors::apply(&mut cfg, crate::descriptors::current_limit()?, true)?;
    create_data_dir(&cfg)?;
    // Bind first: a taken port fails before anything else starts, and port 0 resolves to the
    // real port for the default public URL.
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    cfg.listen = listener.local_addr()?;
    let pooler_listener = if cfg.pooler.enabled {
        let l = crate::pooler::bind(&cfg).await?;
        let bound = l.local_addr()?;
        cfg.pooler.listen = bound;
        if cfg.pooler.public_port.is_none() {
            cfg.pooler.public_port = Some(bound.port());
        }
        Some(l)
    } else {
        None
    };
    let accelerate_listener = if cfg.accelerate.enabled {
        let l = crate::accelerate::bind(&cfg).await?;
        let bound = l.local_addr()?;
        cfg.accelerate.listen = bound;
        if cfg.accelerate.public_port.is_none() {
            cfg.accelerate.public_port = Some(bound.port());
        }
        Some(l)
    } else {
        None
    };
    let (cluster, archive) = if cfg.needs_embedded() {
        // Archiving settings go into the generated configuration before the first start
        // (`archive_mode` needs a restart to change).
        let archiving = if crate::pitr::embedded_archived(&cfg) {
            crate::pitr::embedded_archive(&cfg, crate::pitr::Layout::planned(&cfg)?)?
        } else {
            None
        };
        let settings = ClusterSettings {
            extra_settings: archiving
                .as_ref()
                .map(|a| a.postgres_settings())
                .unwrap_or_default(),
            postmaster_env: archiving
                .as_ref()
                .map(|a| a.postmaster_env())
                .unwrap_or_default(),
            bin_dir: cfg.postgres.bin_dir.clone(),
            port: cfg.postgres.port,
            listen_addresses: cfg.postgres.listen_addresses.clone(),
            tls_names: vec![cfg.postgres.host.clone()],
            max_connections: cfg.postgres.max_connections,
            superuser_reserved_connections: cfg.embedded_superuser_reserved(),
            ..ClusterSettings::new(&cfg.data_dir)
        };
        let prepared = tokio::task::spawn_blocking(move || EmbeddedCluster::prepare(settings))
            .await
            .context("cluster preparation panicked")??;
        // The archive as the prepared cluster is (its port), its configuration written before
        // the first WAL segment is pushed.
        let archive = match archiving {
            Some(_) => crate::pitr::embedded_archive(&cfg, crate::pitr::Layout::of(&prepared))?,
            None => None,
        };
        if let Some(a) = &archive {
            let a = a.clone();
            tokio::task::spawn_blocking(move || {
                crate::pitr::open_local_repo(&a)?;
                a.prepare().map_err(anyhow::Error::from)
            })
            .await
            .context("archive preparation panicked")??;
        }
        (Some(prepared.start().await?), archive)
    } else {
        (None, None)
    };
    match start_with_cluster(&cfg, deps, cluster.as_ref(), archive).await {
        Ok((services, bootstrap)) => {
            let addr = listener.local_addr()?;
            let pooler = match pooler_listener {
                Some(l) => match crate::pooler::start(&cfg, &services, l) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        services.store().close().await;
                        if let Some(c) = cluster {
                            c.stop().await;
                        }
                        return Err(e);
                    }
                },
                None => None,
            };
            let accelerate = match accelerate_listener {
                Some(l) => match crate::accelerate::start(&cfg, &services, l) {
                    Ok(a) => Some(a),
                    Err(e) => {
                        if let Some(p) = pooler {
                            p.stop().await;
                        }
                        services.store().close().await;
                        if let Some(c) = cluster {
                            c.stop().await;
                        }
                        return Err(e);
                    }
                },
                None => None,
            };
            let pooler_addr = pooler.as_ref().map(|p| p.addr);
            let pooler_handle = pooler.as_ref().map(|p| p.pooler.clone());
            let accelerate_addr = accelerate.as_ref().map(|a| a.addr);
            let (tx, rx) = oneshot::channel();
            let endpoints = Endpoints { pooler, accelerate };
            let task = tokio::spawn(serve(
                cfg,
                services.clone(),
                listener,
                endpoints,
                cluster,
                rx,
            ));
            Ok(Running {
                addr,
                pooler_addr,
                pooler: pooler_handle,
                accelerate_addr,
                services,
                bootstrap,
                shutdown: Some(tx),
                task,
            })
        }
        Err(e) => {
            if let Some(c) = cluster {
                c.stop().await;
            }
            Err(e)
        }
    }
}

async fn start_with_cluster(
    cfg: &Config,
    deps: Deps,
    cluster: Option<&ClusterHandle>,
    archive: Option<pgfleet_dataplane::archive::Archive>,
) -> anyhow::Result<(Services, Option<BootstrapSecrets>)> {
    let mut metadata_tls = None;
    let (target, max_conn) = match (&cfg.metadata.url, cluster) {
        (Some(url), _) => (
            {
                let (target, tls) = metadata_url_target(url.expose())?;
                metadata_tls = Some(tls);
                target
            },
            cfg.metadata
                .max_connections
                .unwrap_or(crate::config::DEFAULT_METADATA_POOL),
        ),
        (None, Some(c)) => {
            ensure_metadata_db(c.cluster()).await?;
            let cl = c.cluster();
            (
                MetadataTarget::single(embedded_metadata_options(&cl.socket_dir(), cl.port())),
                cfg.metadata
                    .max_connections
                    .unwrap_or(crate::config::DEFAULT_METADATA_POOL),
            )
        }
        (None, None) => anyhow::bail!(
            "no metadata store: set metadata.url or let pgfleet run its embedded cluster"
        ),
    };
    let (host, port) = (
        target.first().get_host().to_string(),
        target.first().get_port(),
    );
    let store = match Store::connect(
        target,
        max_conn,
        Duration::from_secs(30),
        Duration::from_secs(cfg.metadata.acquire_timeout_secs),
    )
    .await
    {
        Ok(store) => store,
        Err(e) => {
            let why = metadata_tls
                .as_ref()
                .and_then(|tls| tls.describe_failure(&e, &host, port));
            return Err(match why {
                Some(why) => anyhow::anyhow!("metadata.url: {why}"),
                None => anyhow::Error::new(e).context("connecting to the metadata database"),
            });
        }
    };
    store
        .migrate()
        .await
        .context("applying metadata migrations")?;
    if let Err(e) = store.close_to_public().await {
        tracing::warn!(error = %e, "could not revoke PUBLIC access to the metadata database; do it by hand");
    }

    pgfleet_domain::failpoint::configure(&cfg.failpoints).map_err(|e| anyhow::anyhow!(e))?;
    let embedded = cluster.map(EmbeddedAddr::of);
    let regions = build_regions(cfg, embedded.as_ref())?;
    let mut sc = ServicesConfig::new(cfg.public_url(), regions);
    sc.provision_wait = Duration::from_secs_f64(cfg.provision_wait_secs);
    sc.database_connection_limit = cfg.database_connection_limit;
    sc.role_connection_limit = cfg.role_connection_limit;
    sc.workspace_connections = i64::from(cfg.capacity.workspace_connections);
    sc.reserved_connections = cfg.capacity.reserved_connections;
    sc.tenant = cfg.tenant.settings();
    sc.sign_in = cfg.sign_in.settings();
    sc.claimable = cfg.claimable.settings();
    sc.sql = cfg.mcp.settings();
    sc.webhooks = cfg.webhooks.settings();
    if cfg.pooler.enabled {
        sc.pooled = Some(pgfleet_domain::services::pooler::PooledEndpoint {
            host: crate::pooler::public_host(cfg),
            port: cfg
                .pooler
                .public_port
                .unwrap_or_else(|| cfg.pooler.listen.port()),
        });
    }
    if cfg.accelerate.enabled {
        sc.accelerate = Some(pgfleet_domain::services::accelerate::AccelerateEndpoint {
            host: crate::accelerate::public_host(cfg),
            port: cfg
                .accelerate
                .public_port
                .unwrap_or_else(|| cfg.accelerate.listen.port()),
        });
    }
    if let Some(issuer) = &cfg.oauth.issuer {
        sc.oauth.issuer = issuer.trim_end_matches('/').to_string();
    }
    sc.oauth.access_token_ttl = Duration::from_secs(cfg.oauth.access_token_ttl_secs);
    sc.oauth.key_secret = Some(cfg.oauth_key_secret()?);
    sc.backups.dir = cfg
        .backups
        .dir
        .clone()
        .unwrap_or_else(|| cfg.data_dir.join("backups"));
    sc.backups.store = match &cfg.backups.s3 {
        Some(s3) => pgfleet_domain::backup_store::BackupStore::s3(&s3.options())
            .map_err(|e| anyhow::anyhow!("backups.s3: {e}"))?,
        None => pgfleet_domain::backup_store::BackupStore::Local {
            dir: sc.backups.dir.clone(),
        },
    };
    sc.backups.interval = Duration::from_secs(cfg.backups.interval_secs);
    sc.backups.retention_days = cfg.backups.retention_days;
    sc.backups.tools = match pgfleet_dataplane::PgTools::find(cfg.postgres.bin_dir.as_deref()) {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::warn!(error = %e, "backups are unavailable");
            None
        }
    };
    let archives = crate::pitr::start_archives(cfg, archive).await?;
    sc.pitr = crate::pitr::settings(cfg, archives);
    let services = Services::new(store, deps.clock, deps.rng, sc, Arc::new(PgDriver::new()))
        .await
        .map_err(|e| anyhow::anyhow!("starting services: {e}"))?;

    register_replica(cfg, &services).await?;

    let opts = BootstrapOptions {
        admin_email: cfg.admin_email.clone(),
        token: cfg.bootstrap_token.as_ref().map(|s| s.expose().to_string()),
    };
    let file = cfg.data_dir.join("bootstrap.txt");
    let bootstrap = services
        .bootstrap(&opts, |s| write_bootstrap_file(&file, s))
        .await
        .map_err(|e| anyhow::anyhow!("bootstrap failed: {e}"))?;
    Ok((services, bootstrap))
}

/// Registers this replica in the metadata store's registry. A second live replica with a
/// per-machine backup directory would keep archives the others cannot read (and restore
/// from): it is refused, saying what to configure instead. The look at who is alive and the
/// registration are one transaction under the registry's lock, so of two such replicas
/// starting at the same moment exactly one starts.
async fn register_replica(cfg: &Config, services: &Services) -> anyhow::Result<()> {
    let (version, address) = (env!("CARGO_PKG_VERSION"), cfg.listen.to_string());
    let registering =
        |e: pgfleet_domain::DomainError| anyhow::anyhow!("registering this replica: {e}");
    if cfg.backups.s3.is_some() || cfg.backups.shared_dir {
        return services
            .replicas()
            .register(version, &address)
            .await
            .map_err(registering);
    }
    let refused_by = services
        .replicas()
        .register_alone(version, &address)
        .await
        .map_err(registering)?;
    if let Some(other) = refused_by {
        anyhow::bail!(
            "another pgfleet replica ({} at {}) is running on this metadata store, and backups \
             go to a local directory ({}) the other replicas cannot read: configure the \
             S3-compatible store ([backups.s3]), or a directory every replica mounts declared \
             with backups.shared_dir = true",
            other.id,
            other.address,
            services.config().backups.dir.display()
        );
    }
    Ok(())
}

/// The endpoints `serve` stops after the API has drained.
struct Endpoints {
    pooler: Option<crate::pooler::RunningPooler>,
    accelerate: Option<crate::accelerate::RunningAccelerate>,
}

async fn serve(
    cfg: Config,
    services: Services,
    listener: tokio::net::TcpListener,
    endpoints: Endpoints,
    cluster: Option<ClusterHandle>,
    shutdown: oneshot::Receiver<()>,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let heartbeat = services.replicas().spawn_heartbeat(stop_rx.clone());
    let usage_sampler = services
        .usage()
        .spawn_sampler(cfg.usage.settings(), stop_rx.clone());
    let reconciler = services.spawn_reconciler(stop_rx.clone());
    let guard = services.guard().spawn(stop_rx.clone());
    let sweeper = services.sessions().spawn_expiry_sweeper(
        stop_rx.clone(),
        pgfleet_domain::services::sessions::SWEEP_EVERY,
    );
    let pitr_job = services.pitr().spawn_job(stop_rx.clone());
    let claimable_reaper = services.claimable().spawn_reaper(stop_rx.clone());
    let webhook_delivery = services.webhooks().spawn_delivery(stop_rx.clone());
    let scheduler = services
        .backups()
        .spawn_scheduler(stop_rx, Duration::from_secs(cfg.backups.check_every_secs));
    let opts = pgfleet_http::routes::HttpOptions {
        body_limit: cfg.body_limit_bytes,
    };
    let app = pgfleet_http::router(
        pgfleet_http::AppState::new(
            services.clone(),
            pgfleet_http::located::BaseUrl::new(cfg.public_url()),
        ),
        &opts,
    );
    let (drain_tx, drain_rx) = oneshot::channel::<()>();
    let limits = crate::http_server::Limits {
        max_connections: cfg
            .http
            .max_connections
            .unwrap_or(crate::descriptors::HTTP_DEFAULT_CEILING),
        header_read_timeout: Duration::from_secs(cfg.http.header_read_timeout_secs),
        keep_alive_timeout: Duration::from_secs(cfg.http.keep_alive_timeout_secs),
        body_read_timeout: Duration::from_secs(cfg.http.body_read_timeout_secs),
    };
    let server = crate::http_server::serve(listener, app, limits, async move {
        let _ = shutdown.await;
        let _ = drain_tx.send(());
    });
    let grace = Duration::from_secs(cfg.shutdown_grace_secs);
    tokio::select! {
        () = server => {}
        _ = async { let _ = drain_rx.await; tokio::time::sleep(grace).await } => {
            tracing::warn!("requests still running after the shutdown grace period; closing");
        }
    }
    if let Some(p) = endpoints.pooler {
        p.stop().await;
    }
    if let Some(a) = endpoints.accelerate {
        let _ = tokio::time::timeout(grace, a.stop()).await;
    }
    let _ = stop_tx.send(true);
    let _ = reconciler.await;
    let _ = guard.await;
    let _ = usage_sampler.await;
    let _ = scheduler.await;
    let _ = sweeper.await;
    let _ = webhook_delivery.await;
    if let Some(job) = pitr_job {
        let _ = job.await;
    }
    if let Some(job) = claimable_reaper {
        let _ = job.await;
    }
    let _ = heartbeat.await;
    services.wait_idle(Duration::from_secs(15)).await;
    services.store().close().await;
    if let Some(c) = cluster {
        c.stop().await;
    }
    tracing::info!("pgfleet stopped");
    Ok(())
}

/// Connection options from `metadata.url`, with libpq's TLS semantics: `sslmode` and
/// `sslrootcert` are read by sqlx (rustls), and `require` with a CA file verifies the chain
/// like `verify-ca`, as libpq does. Also the TLS settings, to explain a refused certificate.
fn metadata_url_target(
    url: &str,
) -> anyhow::Result<(MetadataTarget, pgfleet_dataplane::sslmode::ClientTls)> {
    use pgfleet_dataplane::sslmode::{ClientTls, SslMode};
    use sqlx::postgres::PgSslMode;
    let target = url
        .parse::<MetadataTarget>()
        .context("metadata.url is not usable")?;
    // Only the query: a multi-host authority (`h1:5432,h2:5433`) is no URL the url crate reads.
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    let q: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
    let tls = ClientTls::from_query(
        q.get("sslmode").map(String::as_str),
        q.get("sslrootcert").map(String::as_str),
    )
    .map_err(|e| anyhow::anyhow!("metadata.url: {e}"))?;
    // libpq verifies the chain under `require` when a CA file is given; sqlx does not.
    let target = if tls.mode == SslMode::Require && tls.root_cert.is_some() {
        target.map_hosts(|o| o.ssl_mode(PgSslMode::VerifyCa))
    } else {
        target
    };
    Ok((target, tls))
}

/// Creates the metadata database on the embedded cluster if missing, and closes the
/// cluster's shared databases to tenants (PUBLIC gets CONNECT on every database by default).
async fn ensure_metadata_db(cluster: &EmbeddedCluster) -> anyhow::Result<()> {
    let (client, conn) = cluster
        .admin_config("postgres")
        .connect(tokio_postgres::NoTls)
        .await?;
    let task = tokio::spawn(conn);
    let exists = client
        .query_opt(
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &[&METADATA_DB],
        )
        .await?;
    if exists.is_none() {
        client
            .batch_execute(&format!("CREATE DATABASE {METADATA_DB}"))
            .await?;
    }
    client
        .batch_execute(&format!(
            "REVOKE ALL ON DATABASE {METADATA_DB} FROM PUBLIC; REVOKE ALL ON DATABASE postgres FROM PUBLIC;"
        ))
        .await?;
    drop(client);
    let _ = task.await;
    Ok(())
}

/// Creates the data directory (0700; the embedded cluster lets its OS user through later)
/// and takes group and world bits off whatever an older pgfleet left in it and in the
/// backup directory (logs, certificates, archives). Says so once: a second start finds
/// nothing to change.
fn create_data_dir(cfg: &Config) -> anyhow::Result<()> {
    let dir = &cfg.data_dir;
    if !dir.exists() {
        crate::private_file::create_dir(dir)
            .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    }
    // Left for the cluster to set: PGDATA (PostgreSQL checks it itself) and the socket
    // directory (0700, owned by the server's OS user).
    let pgdata = dir.join("postgres");
    let sockets = dir.join("run");
    // The backup directory holding the WAL archive's local repository lets the PostgreSQL
    // OS user through (0710, `crate::pitr::open_local_repo`): its contents are tightened,
    // not its own mode.
    let repo_parent =
        (crate::pitr::embedded_archived(cfg) && cfg.backups.s3.is_none()).then(|| {
            cfg.backups
                .dir
                .clone()
                .unwrap_or_else(|| dir.join("backups"))
        });
    let mut skip = vec![pgdata.as_path(), sockets.as_path()];
    skip.extend(repo_parent.as_deref());
    let mut changed = crate::private_file::tighten_tree(dir, &skip)
        .with_context(|| format!("tightening the modes under {}", dir.display()))?;
    if let Some(parent) = repo_parent.as_deref().filter(|p| p.starts_with(dir)) {
        changed.extend(crate::private_file::tighten_tree(parent, &[])?);
    }
    for f in ["server.crt", "server.key"] {
        let p = pgdata.join(f);
        if p.exists() && crate::private_file::tighten_one(&p)? {
            changed.push(p);
        }
    }
    if let Some(backups) = &cfg.backups.dir {
        if backups.exists() && !backups.starts_with(dir) {
            if repo_parent.is_none() && crate::private_file::tighten_one(backups)? {
                changed.push(backups.clone());
            }
            changed.extend(crate::private_file::tighten_tree(backups, &[])?);
        }
    }
    // Without the embedded cluster nobody else passes through, unless an archived region
    // server's pgBackRest reaches its work directory (`crate::pitr::start_archives`).
    if !cfg.needs_embedded()
        && cfg.pitr.servers.is_empty()
        && crate::private_file::tighten_one(dir)?
    {
        changed.push(dir.clone());
    }
    if !changed.is_empty() {
        tracing::warn!(
            paths = changed.len(),
            data_dir = %dir.display(),
            "took group and world access off files and directories an older pgfleet left readable"
        );
    }
    Ok(())
}

/// `bootstrap.txt`, mode 0600, written atomically.
fn write_bootstrap_file(path: &Path, s: &BootstrapSecrets) -> std::io::Result<()> {
    let text = format!(
        "# pgfleet first-start credentials. Shown once; keep them safe, then delete this file.\n\
         admin_email = {}\nadmin_password = {}\nworkspace_id = {}\nservice_token = {}\n",
        s.admin_email, s.admin_password, s.workspace_id, s.token
    );
    crate::private_file::write(path, text.as_bytes())
}
