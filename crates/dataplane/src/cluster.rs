//! The embedded PostgreSQL cluster: created on first start under `<data-dir>/postgres`, then
//! started as a supervised child process on every start.
//!
//! Layout of the data directory:
//! - the data directory itself: mode 0700, or 0710 with the group of the OS user that runs
//!   PostgreSQL when that is another user (it must pass through, never list or read);
//! - `postgres/`: PGDATA (owned by the OS user that runs PostgreSQL, mode 0700);
//! - `run/`: the Unix socket directory (mode 0700, so only that user and root can connect);
//! - `cluster.json`: the port chosen at first start, kept so connection strings stay valid;
//! - `postgres.log`: the server's own log (mode 0600: it can hold statements).
//!
//! Configuration pgfleet owns lives in `postgres/pgfleet.conf` (included from
//! `postgresql.conf`) and `pg_hba.conf`; both are rewritten at every start so a changed setting
//! takes effect. The postmaster gets a clean environment plus `postmaster_env` (secrets that
//! `archive_command` needs, see [`crate::archive`]). A crash at any point is safe: `initdb` runs in a scratch directory renamed into
//! place when complete, and a postmaster left running by a killed pgfleet is stopped before
//! a new one starts.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};

use crate::binaries::find_bin_dir;
use crate::files::{create_dir, escape_conf, tail, write_owned, write_private};
use crate::osuser::RunAs;
use crate::{DataplaneError, Result};

/// Name of the cluster's superuser role.
pub const SUPERUSER: &str = "postgres";

/// What the embedded cluster is asked to be.
#[derive(Clone)]
pub struct ClusterSettings {
    /// pgfleet's data directory; the cluster lives below it.
    pub root: PathBuf,
    pub bin_dir: Option<PathBuf>,
    /// Fixed TCP port; `None` keeps the one recorded at first start (chosen free then).
    pub port: Option<u16>,
    pub listen_addresses: String,
    /// Extra names for the TLS certificate (the advertised host).
    pub tls_names: Vec<String>,
    pub max_connections: u32,
    /// `superuser_reserved_connections`: slots tenants' roles can never take, so pgfleet's
    /// own sessions (superuser over the Unix socket) always get one.
    pub superuser_reserved_connections: u32,
    /// Extra `postgresql.conf` settings, written verbatim as `name = value`.
    pub extra_settings: Vec<(String, String)>,
    /// Extra environment of the postmaster and so of every process it starts, such as
    /// `archive_command` (the WAL archive's S3 secret: never written to a file). Values are
    /// redacted from `Debug`.
    pub postmaster_env: Vec<(String, String)>,
    /// How long to wait for the server to accept connections after a start.
    pub start_timeout: Duration,
}

impl ClusterSettings {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            bin_dir: None,
            port: None,
            listen_addresses: "127.0.0.1".to_string(),
            tls_names: Vec::new(),
            max_connections: 1000,
            superuser_reserved_connections: 3,
            extra_settings: Vec::new(),
            postmaster_env: Vec::new(),
            start_timeout: Duration::from_secs(60),
        }
    }
}

impl std::fmt::Debug for ClusterSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let env: Vec<&str> = self
            .postmaster_env
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        f.debug_struct("ClusterSettings")
            .field("root", &self.root)
            .field("port", &self.port)
            .field("extra_settings", &self.extra_settings)
            .field("postmaster_env (names only)", &env)
            .finish_non_exhaustive()
    }
}

/// Life of the supervised server, as observed by `/readyz` and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterState {
    Starting,
    Running { pid: u32 },
    Restarting,
    Stopped,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Recorded {
    port: u16,
}

/// A prepared (initialised, configured, not yet running) embedded cluster.
#[derive(Debug, Clone)]
pub struct EmbeddedCluster {
    settings: ClusterSettings,
    bin_dir: PathBuf,
    run_as: RunAs,
    port: u16,
}

impl EmbeddedCluster {
    pub fn pgdata(&self) -> PathBuf {
        self.settings.root.join("postgres")
    }

    pub fn socket_dir(&self) -> PathBuf {
        self.settings.root.join("run")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    pub fn run_as(&self) -> &RunAs {
        &self.run_as
    }

    pub fn log_file(&self) -> PathBuf {
        self.settings.root.join("postgres.log")
    }

    /// Connection settings for the superuser over the Unix socket.
    pub fn admin_config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host_path(self.socket_dir())
            .port(self.port)
            .user(SUPERUSER)
            .dbname(dbname)
            .application_name("pgfleet")
            .connect_timeout(Duration::from_secs(5));
        c
    }

    /// Finds the binaries, creates the cluster if needed and writes pgfleet's configuration.
    /// Blocking (runs `initdb`); call it before serving.
    pub fn prepare(settings: ClusterSettings) -> Result<Self> {
        let bin_dir = find_bin_dir(settings.bin_dir.as_deref())?;
        let run_as = RunAs::detect()?;
        let root = settings.root.clone();
        create_dir(&root, 0o700)?;
        let root = root
            .canonicalize()
            .map_err(|e| DataplaneError::io(&root, e))?;
        run_as.let_through(&root)?;
        let settings = ClusterSettings {
            root: root.clone(),
            ..settings
        };
        run_as.check_traversable(&root.join("postgres"))?;

        let socket_dir = root.join("run");
        create_dir(&socket_dir, 0o700)?;
        run_as.own(&socket_dir)?;
        // sun_path is 108 bytes; postgres appends "/.s.PGSQL.NNNNN".
        if socket_dir.as_os_str().len() + 16 > 107 {
            return Err(DataplaneError::Setup(format!(
                "the data directory path is too long for a Unix socket ({}); choose a shorter --data-dir",
                socket_dir.display()
            )));
        }

        let port = resolve_port(&root, settings.port)?;
        let cluster = Self {
            settings,
            bin_dir,
            run_as,
            port,
        };
        cluster.stop_stale_postmaster()?;
        cluster.init_if_needed()?;
        cluster.write_config()?;
        Ok(cluster)
    }

    fn init_if_needed(&self) -> Result<()> {
        let pgdata = self.pgdata();
        if pgdata.join("PG_VERSION").is_file() {
            return Ok(());
        }
        let scratch = self.settings.root.join("postgres.initdb");
        if scratch.exists() {
            std::fs::remove_dir_all(&scratch).map_err(|e| DataplaneError::io(&scratch, e))?;
        }
        if pgdata.exists() {
            // A directory without PG_VERSION is not a cluster; refuse to guess what it is.
            let empty = std::fs::read_dir(&pgdata)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
            if !empty {
                return Err(DataplaneError::Setup(format!(
                    "{} exists but is not a PostgreSQL data directory; move it away or choose another --data-dir",
                    pgdata.display()
                )));
            }
            std::fs::remove_dir(&pgdata).map_err(|e| DataplaneError::io(&pgdata, e))?;
        }
        create_dir(&scratch, 0o700)?;
        self.run_as.own(&scratch)?;
        tracing::info!(pgdata = %pgdata.display(), user = %self.run_as.name, "initialising the embedded PostgreSQL cluster");
        let mut cmd = std::process::Command::new(self.bin_dir.join("initdb"));
        cmd.arg("-D")
            .arg(&scratch)
            .args([
                "-U",
                SUPERUSER,
                "-E",
                "UTF8",
                "--locale=C",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .current_dir(&self.settings.root)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        self.run_as.apply(&mut cmd);
        let out = cmd
            .output()
            .map_err(|e| DataplaneError::io(self.bin_dir.join("initdb"), e))?;
        if !out.status.success() {
            return Err(DataplaneError::Setup(format!(
                "initdb failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let conf = scratch.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).map_err(|e| DataplaneError::io(&conf, e))?;
        text.push_str("\n# Settings managed by pgfleet (rewritten at every start).\ninclude_if_exists = 'pgfleet.conf'\n");
        std::fs::write(&conf, text).map_err(|e| DataplaneError::io(&conf, e))?;

        let tls = crate::tls::self_signed(&self.settings.tls_names)?;
        write_owned(
            &self.run_as,
            &scratch.join("server.crt"),
            tls.cert_pem.as_bytes(),
            0o600,
        )?;
        write_owned(
            &self.run_as,
            &scratch.join("server.key"),
            tls.key_pem.as_bytes(),
            0o600,
        )?;

        std::fs::rename(&scratch, &pgdata).map_err(|e| DataplaneError::io(&pgdata, e))?;
        Ok(())
    }

    fn write_config(&self) -> Result<()> {
        let pgdata = self.pgdata();
        let s = &self.settings;
        let mut conf = format!(
            "# Managed by pgfleet; rewritten at every start. Put your own settings in postgresql.conf.\n\
             listen_addresses = '{listen}'\n\
             port = {port}\n\
             unix_socket_directories = '{sock}'\n\
             unix_socket_permissions = 0700\n\
             max_connections = {maxc}\n\
             superuser_reserved_connections = {reserved}\n\
             ssl = on\n\
             ssl_cert_file = 'server.crt'\n\
             ssl_key_file = 'server.key'\n\
             ssl_min_protocol_version = 'TLSv1.2'\n\
             password_encryption = 'scram-sha-256'\n\
             shared_preload_libraries = 'pg_stat_statements'\n\
             pg_stat_statements.track = 'top'\n\
             logging_collector = off\n\
             log_file_mode = 0600\n\
             log_line_prefix = '%m [%p] %q%u@%d '\n\
             log_min_messages = warning\n\
             # Databases are created and dropped often: spread checkpoints out.\n\
             max_wal_size = '4GB'\n\
             checkpoint_timeout = '15min'\n",
            listen = escape_conf(&s.listen_addresses),
            port = self.port,
            sock = escape_conf(&self.socket_dir().display().to_string()),
            maxc = s.max_connections,
            reserved = s.superuser_reserved_connections,
        );
        for (k, v) in &s.extra_settings {
            conf.push_str(&format!("{k} = {v}\n"));
        }
        write_owned(
            &self.run_as,
            &pgdata.join("pgfleet.conf"),
            conf.as_bytes(),
            0o600,
        )?;

        let hba = "# Managed by pgfleet; rewritten at every start.\n\
                   # The socket directory is mode 0700: only this server's OS user and root reach it.\n\
                   local   all  all                trust\n\
                   # TCP only with TLS and SCRAM.\n\
                   hostssl all  all  0.0.0.0/0     scram-sha-256\n\
                   hostssl all  all  ::/0          scram-sha-256\n\
                   host    all  all  0.0.0.0/0     reject\n\
                   host    all  all  ::/0          reject\n";
        write_owned(
            &self.run_as,
            &pgdata.join("pg_hba.conf"),
            hba.as_bytes(),
            0o600,
        )?;
        Ok(())
    }

    /// A postmaster left behind by a pgfleet that was killed: stop it (fast shutdown) so this
    /// start owns the cluster.
    fn stop_stale_postmaster(&self) -> Result<()> {
        let pidfile = self.pgdata().join("postmaster.pid");
        let Ok(text) = std::fs::read_to_string(&pidfile) else {
            return Ok(());
        };
        let Some(pid) = text
            .lines()
            .next()
            .and_then(|l| l.trim().parse::<i32>().ok())
        else {
            return Ok(());
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if !cmdline.contains("postgres") || !cmdline.contains(&self.pgdata().display().to_string())
        {
            return Ok(());
        }
        tracing::warn!(
            pid,
            "stopping a PostgreSQL server left running by a previous pgfleet"
        );
        let target = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Path::new(&format!("/proc/{pid}")).exists() {
            if Instant::now() > deadline {
                let _ = nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGKILL);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    fn spawn(&self) -> Result<tokio::process::Child> {
        let log = self.log_file();
        if std::fs::metadata(&log)
            .map(|m| m.len() > 64 << 20)
            .unwrap_or(false)
        {
            let _ = std::fs::rename(&log, self.settings.root.join("postgres.log.1"));
        }
        let file = {
            use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&log)
                .map_err(|e| DataplaneError::io(&log, e))?;
            // A log created by an older pgfleet may be world-readable: it holds statements.
            f.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(|e| DataplaneError::io(&log, e))?;
            f
        };
        let err = file.try_clone().map_err(|e| DataplaneError::io(&log, e))?;
        let mut cmd = std::process::Command::new(self.bin_dir.join("postgres"));
        cmd.arg("-D")
            .arg(self.pgdata())
            .current_dir(self.pgdata())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("LC_ALL", "C")
            .envs(self.settings.postmaster_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err));
        self.run_as.apply(&mut cmd);
        let mut cmd = tokio::process::Command::from(cmd);
        cmd.kill_on_drop(false);
        cmd.spawn()
            .map_err(|e| DataplaneError::io(self.bin_dir.join("postgres"), e))
    }

    /// Starts the server and waits until it accepts connections.
    async fn start_once(&self) -> Result<tokio::process::Child> {
        let mut child = self.spawn()?;
        let deadline = Instant::now() + self.settings.start_timeout;
        let cfg = self.admin_config("postgres");
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(DataplaneError::Setup(format!(
                    "postgres exited during start-up ({status}); last log lines:\n{}",
                    tail(&self.log_file(), 10)
                )));
            }
            if let Ok((client, conn)) = cfg.connect(tokio_postgres::NoTls).await {
                let task = tokio::spawn(conn);
                let ok = client.simple_query("SELECT 1").await.is_ok();
                drop(client);
                let _ = task.await;
                if ok {
                    return Ok(child);
                }
            }
            if Instant::now() > deadline {
                let _ = child.start_kill();
                return Err(DataplaneError::Setup(format!(
                    "postgres did not accept connections within {:?}; last log lines:\n{}",
                    self.settings.start_timeout,
                    tail(&self.log_file(), 10)
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts the server and a supervisor that restarts it (with backoff) if it dies.
    pub async fn start(self) -> Result<ClusterHandle> {
        let child = self.start_once().await?;
        let pid = child.id().unwrap_or(0);
        tracing::info!(pid, port = self.port, "embedded PostgreSQL is up");
        let (state_tx, state_rx) = watch::channel(ClusterState::Running { pid });
        let (stop_tx, stop_rx) = oneshot::channel();
        let cluster = Arc::new(self);
        let task = tokio::spawn(supervise(cluster.clone(), child, state_tx, stop_rx));
        Ok(ClusterHandle {
            cluster,
            state: state_rx,
            stop: Some(stop_tx),
            task: Some(task),
        })
    }
}

async fn supervise(
    cluster: Arc<EmbeddedCluster>,
    mut child: tokio::process::Child,
    state: watch::Sender<ClusterState>,
    mut stop: oneshot::Receiver<()>,
) {
    const MIN_BACKOFF: Duration = Duration::from_millis(200);
    const MAX_BACKOFF: Duration = Duration::from_secs(10);
    let mut backoff = MIN_BACKOFF;
    let mut started = Instant::now();
    loop {
        let exited = tokio::select! {
            s = child.wait() => Some(s),
            _ = &mut stop => None,
        };
        let Some(status) = exited else {
            shutdown_child(&mut child).await;
            let _ = state.send(ClusterState::Stopped);
            return;
        };
        if started.elapsed() > Duration::from_secs(60) {
            backoff = MIN_BACKOFF;
        }
        tracing::error!(status = ?status, "embedded PostgreSQL exited unexpectedly; restarting");
        let _ = state.send(ClusterState::Restarting);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = &mut stop => { let _ = state.send(ClusterState::Stopped); return; }
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            match cluster.start_once().await {
                Ok(c) => {
                    child = c;
                    started = Instant::now();
                    let pid = child.id().unwrap_or(0);
                    tracing::info!(pid, "embedded PostgreSQL restarted");
                    let _ = state.send(ClusterState::Running { pid });
                    break;
                }
                Err(e) => tracing::error!(error = %e, "restarting embedded PostgreSQL failed"),
            }
        }
    }
}

/// Fast shutdown (SIGINT): active transactions are rolled back, the server exits cleanly.
async fn shutdown_child(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGINT,
        );
    }
    match tokio::time::timeout(Duration::from_secs(30), child.wait()).await {
        Ok(_) => tracing::info!("embedded PostgreSQL stopped"),
        Err(_) => {
            tracing::error!("embedded PostgreSQL did not stop within 30 s; killing it");
            let _ = child.kill().await;
        }
    }
}

/// A running embedded cluster. [`ClusterHandle::stop`] shuts it down; dropping the handle
/// without stopping also asks the supervisor to stop it.
#[derive(Debug)]
pub struct ClusterHandle {
    cluster: Arc<EmbeddedCluster>,
    state: watch::Receiver<ClusterState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ClusterHandle {
    pub fn cluster(&self) -> &EmbeddedCluster {
        &self.cluster
    }

    pub fn state(&self) -> ClusterState {
        *self.state.borrow()
    }

    pub fn watch(&self) -> watch::Receiver<ClusterState> {
        self.state.clone()
    }

    /// Stops the server (fast shutdown) and waits for it to exit.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

fn resolve_port(root: &Path, configured: Option<u16>) -> Result<u16> {
    let file = root.join("cluster.json");
    let recorded: Option<u16> = std::fs::read(&file)
        .ok()
        .and_then(|b| serde_json::from_slice::<Recorded>(&b).ok())
        .map(|r| r.port);
    let port = match (configured, recorded) {
        (Some(p), _) => p,
        (None, Some(p)) => p,
        (None, None) => free_port_to_keep()?,
    };
    if recorded != Some(port) {
        let body = serde_json::to_vec_pretty(&Recorded { port })
            .map_err(|e| DataplaneError::Setup(e.to_string()))?;
        let tmp = root.join("cluster.json.tmp");
        write_private(&tmp, &body)?;
        std::fs::rename(&tmp, &file).map_err(|e| DataplaneError::io(&file, e))?;
    }
    Ok(port)
}

/// A free port for the cluster to keep across restarts: below the kernel's ephemeral range
/// where there is room, because a port in that range can be taken, while the cluster is
/// down, by any outgoing connection's local end, and then the restart fails with "address
/// already in use" (connection strings handed out name the port, so it cannot move).
fn free_port_to_keep() -> Result<u16> {
    use rand::Rng as _;
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    const LOWEST: u16 = 10_000;
    if ephemeral_start > LOWEST + 100 {
        let mut rng = rand::thread_rng();
        for _ in 0..200 {
            let port = rng.gen_range(LOWEST..ephemeral_start);
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return Ok(port);
            }
        }
    }
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| DataplaneError::io("127.0.0.1:0", e))?;
    Ok(l.local_addr()
        .map_err(|e| DataplaneError::io("127.0.0.1:0", e))?
        .port())
}
