//! The pieces of the scale-out deployment the test starts on loopback: PostgreSQL clusters
//! that take TCP only with TLS (certificates from a test CA), and `pgfleet serve` processes,
//! each with its own TOML configuration file, killed when dropped.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use pgfleet_dataplane::{ClusterHandle, ClusterSettings, EmbeddedCluster};
use reqwest::Method;
use serde_json::Value;

use crate::capacity::ClusterDir;
use crate::harness::Resp;
use crate::lifecycle::{data_dir, pgfleet};

pub(crate) const PASSWORD: &str = "scale-out-test-password";

/// A test CA: its PEM file, and the certificate and key it signs with.
pub(crate) struct Ca {
    pub(crate) file: PathBuf,
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl Ca {
    pub(crate) fn new(dir: &Path) -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "pgfleet scale-out test CA");
        let cert = params.self_signed(&key).unwrap();
        let file = dir.join("ca.pem");
        std::fs::write(&file, cert.pem()).unwrap();
        Self { file, cert, key }
    }
}

/// A PostgreSQL cluster of the test's own: TCP only with TLS and a password (the cluster's
/// `pg_hba.conf`: `hostssl … scram-sha-256`, plain `host` rejected), its certificate for
/// `localhost` signed by the test CA.
pub(crate) struct TlsCluster {
    /// Prepared, kept to start the same cluster again on the same port after a stop.
    pub(crate) prepared: EmbeddedCluster,
    pub(crate) handle: Option<ClusterHandle>,
    pub(crate) port: u16,
    _dir: ClusterDir,
}

impl TlsCluster {
    /// Prepares (initdb) and starts; `databases` are created.
    pub(crate) async fn start(ca: &Ca, max_connections: u32, databases: &[&str]) -> Self {
        let dir = ClusterDir(data_dir());
        let root = dir.0.path().to_path_buf();
        let prepared = tokio::task::spawn_blocking(move || {
            EmbeddedCluster::prepare(ClusterSettings {
                max_connections,
                // A test's data: durability is not what is tested, time is short.
                extra_settings: vec![
                    ("fsync".to_string(), "off".to_string()),
                    ("synchronous_commit".to_string(), "off".to_string()),
                    ("full_page_writes".to_string(), "off".to_string()),
                ],
                ..ClusterSettings::new(root)
            })
        })
        .await
        .unwrap()
        .unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &ca.cert, &ca.key)
            .unwrap();
        // Rewritten in place: the files keep the owner and mode the cluster gave them.
        std::fs::write(prepared.pgdata().join("server.crt"), cert.pem()).unwrap();
        std::fs::write(prepared.pgdata().join("server.key"), key.serialize_pem()).unwrap();
        let port = prepared.port();
        let handle = prepared.clone().start().await.unwrap();
        let c = Self {
            prepared,
            handle: Some(handle),
            port,
            _dir: dir,
        };
        let admin = c.admin("postgres").await;
        admin
            .batch_execute(&format!("ALTER ROLE postgres PASSWORD '{PASSWORD}'"))
            .await
            .unwrap();
        for db in databases {
            admin
                .batch_execute(&format!("CREATE DATABASE {db}"))
                .await
                .unwrap();
        }
        c
    }

    /// The URL pgfleet is given: verified TLS to `localhost`, the CA file named.
    pub(crate) fn url(&self, db: &str, ca: &Ca) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@localhost:{}/{db}?sslmode=verify-full&sslrootcert={}",
            self.port,
            ca.file.display()
        )
    }

    /// A superuser session over the Unix socket (the test's own look, not pgfleet's).
    pub(crate) async fn admin(&self, db: &str) -> tokio_postgres::Client {
        let (client, conn) = self
            .prepared
            .admin_config(db)
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    }

    /// Fast shutdown; the port stays this cluster's.
    pub(crate) async fn stop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.stop().await;
        }
    }

    pub(crate) async fn restart(&mut self) {
        self.handle = Some(self.prepared.clone().start().await.unwrap());
    }
}

/// Writes `text` to a file only its owner reads.
pub(crate) fn private_file(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.to_path_buf()
}

/// One `pgfleet serve` process. Dropped: killed (SIGKILL) and reaped, so a failed assert
/// leaves no process behind; its log is printed when the test is failing.
pub(crate) struct Replica {
    pub(crate) name: String,
    child: Child,
    pub(crate) base: String,
    pub(crate) config: PathBuf,
    log: PathBuf,
}

impl Replica {
    /// Starts `pgfleet serve --config <config>`; waits for `pgfleet listening on …`.
    pub(crate) fn start(name: &str, config: &Path, log: &Path) -> Self {
        let log_file = std::fs::File::create(log).unwrap();
        let mut child = pgfleet(&["serve", "--config", config.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            // Read to the end, so the process never blocks on a full pipe.
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut r = Self {
            name: name.to_string(),
            child,
            base: String::new(),
            config: config.to_path_buf(),
            log: log.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("replica {name} did not start ({e})"));
            if let Some(addr) = line.strip_prefix("pgfleet listening on ") {
                r.base = addr.trim().to_string();
                return r;
            }
        }
    }

    /// `kill -9`: no clean stop, no deregistration, its sessions cut by the kernel.
    pub(crate) fn kill9(&mut self) {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL).unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!(
                "--- replica {} log (last lines, newest first) ---",
                self.name
            );
            for l in tail {
                eprintln!("{l}");
            }
        }
    }
}

/// An HTTP client of one replica with one bearer token; every request bounded in time, so a
/// hang is a failure, not a stuck test.
#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) token: String,
}

impl Api {
    pub(crate) fn new(base: &str, token: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            base: base.to_string(),
            token: token.to_string(),
        }
    }

    pub(crate) fn with_token(&self, token: &str) -> Self {
        Self {
            token: token.to_string(),
            ..self.clone()
        }
    }

    /// A request; `Err` when no HTTP answer came (connection refused or cut, timeout).
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Resp, reqwest::Error> {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        Ok(Resp::from(r.send().await?).await)
    }

    pub(crate) async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, None).await.unwrap()
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(body)).await.unwrap()
    }
}
