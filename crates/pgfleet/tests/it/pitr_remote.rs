//! Point-in-time recovery of a region server on ANOTHER machine (issue 19): the server's
//! host is emulated on loopback — a second PostgreSQL cluster configured as its operator
//! would (its own `pgbackrest.conf` in a separate directory, `archive_command` pushing to the
//! S3 repository itself, the S3 key only in the postmaster's environment) and a `pgbackrest
//! server` on 127.0.0.1 with certificates of a test CA (client certificates both ways). The
//! S3 store is s3rver over HTTPS. pgfleet is configured with the remote form of
//! `[[pitr.servers]]` (`host`, `pgbackrest_port`, `tls_*_file`; no socket or port): its
//! databases get a window, restore to T as a new database and in place (exactly the rows up
//! to T); base backups go through the TLS server (stopped, a backup fails on the connection).

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pgfleet::config::{ArchivedServerConfig, Config, RegionConfig, S3Config, Secret};
use pgfleet_dataplane::archive::BaseBackupKind;
use pgfleet_dataplane::osuser::RunAs;
use pgfleet_dataplane::{ClusterSettings, EmbeddedCluster};

use crate::archive::https_s3rver;
use crate::backups_s3::{S3Server, BUCKET};
use crate::capacity::ClusterDir;
use crate::harness::TestServer;
use crate::lifecycle::data_dir;
use crate::pitr::{
    assert_no_scratch_in, clone_and_restore_to, history, project, set_superuser_password,
    wait_window,
};

const PASSWORD: &str = "pitr-remote-cluster";
const STANZA: &str = "db1";

/// Certificates of a test CA: the TLS server's for `localhost`, pgfleet's client one
/// (CN `pgfleet`), both signed by the CA.
struct Certs {
    ca: String,
    server: (String, String),
    client: (String, String),
}

fn certs() -> Certs {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "pgfleet remote-archive test CA");
    let ca = p.self_signed(&ca_key).unwrap();
    let leaf = |names: Vec<String>, cn: &str| {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(names).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let cert = p.signed_by(&key, &ca, &ca_key).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    Certs {
        ca: ca.pem(),
        server: leaf(vec!["localhost".to_string()], "localhost"),
        client: leaf(Vec::new(), "pgfleet"),
    }
}

/// A file of the database host's operator: the PostgreSQL OS user's, 0600.
fn host_file(run_as: &RunAs, path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    run_as.own(path).unwrap();
    path.to_path_buf()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The emulated database host: its cluster, its pgBackRest configuration and TLS server.
struct Host {
    _pg: ClusterDir,
    _dir: tempfile::TempDir,
    handle: Option<pgfleet_dataplane::ClusterHandle>,
    server: Option<std::process::Child>,
    conf: PathBuf,
    pgdata: PathBuf,
    socket_dir: PathBuf,
    url: String,
    tls_port: u16,
    run_as: RunAs,
}

impl Host {
    async fn start(s3: &S3Server, certs: &Certs) -> Self {
        let run_as = RunAs::detect().unwrap();
        let pg = ClusterDir(data_dir());
        let dir = data_dir();
        let d = dir.path();
        for sub in ["spool", "log", "lock"] {
            std::fs::create_dir(d.join(sub)).unwrap();
            run_as.own(&d.join(sub)).unwrap();
        }
        host_file(&run_as, &d.join("ca.crt"), &certs.ca);
        host_file(&run_as, &d.join("server.crt"), &certs.server.0);
        host_file(&run_as, &d.join("server.key"), &certs.server.1);
        let tls_port = free_port();
        let pgdata = pg.0.path().join("postgres");
        let conf = host_file(
            &run_as,
            &d.join("pgbackrest.conf"),
            &format!(
                "[global]\nrepo1-type=s3\nrepo1-path=/pgfleet/pgbackrest\nrepo1-s3-bucket={BUCKET}\n\
                 repo1-s3-endpoint=127.0.0.1\nrepo1-storage-port={s3port}\nrepo1-s3-region=us-east-1\n\
                 repo1-s3-uri-style=path\nrepo1-storage-verify-tls=n\narchive-async=y\n\
                 spool-path={d}/spool\nlog-path={d}/log\nlock-path={d}/lock\ncompress-type=lz4\n\
                 log-level-console=off\nlog-level-stderr=error\n\
                 tls-server-address=127.0.0.1\ntls-server-port={tls_port}\n\
                 tls-server-cert-file={d}/server.crt\ntls-server-key-file={d}/server.key\n\
                 tls-server-ca-file={d}/ca.crt\ntls-server-auth=pgfleet={STANZA}\n\
                 [{STANZA}]\npg1-path={pgdata}\n",
                s3port = s3.port,
                d = d.display(),
                pgdata = pgdata.display(),
            ),
        );
        // Prepared once for its port, then with the operator's archive settings.
        let port = EmbeddedCluster::prepare(ClusterSettings::new(pg.0.path()))
            .unwrap()
            .port();
        let s3_env = vec![
            ("PGBACKREST_REPO1_S3_KEY".to_string(), "S3RVER".to_string()),
            (
                "PGBACKREST_REPO1_S3_KEY_SECRET".to_string(),
                "S3RVER".to_string(),
            ),
        ];
        let cluster = EmbeddedCluster::prepare(ClusterSettings {
            port: Some(port),
            extra_settings: vec![
                ("wal_level".to_string(), "replica".to_string()),
                ("archive_mode".to_string(), "on".to_string()),
                (
                    "archive_command".to_string(),
                    format!(
                        "'/usr/bin/pgbackrest --config={} --stanza={STANZA} archive-push %p'",
                        conf.display()
                    ),
                ),
                ("archive_timeout".to_string(), "5".to_string()),
            ],
            postmaster_env: s3_env,
            ..ClusterSettings::new(pg.0.path())
        })
        .unwrap();
        let socket_dir = cluster.socket_dir();
        let handle = cluster.start().await.unwrap();
        set_superuser_password(&handle, PASSWORD).await;
        let url =
            format!("postgres://postgres:{PASSWORD}@127.0.0.1:{port}/postgres?sslmode=require");
        let mut host = Self {
            _pg: pg,
            _dir: dir,
            handle: Some(handle),
            server: None,
            conf,
            pgdata,
            socket_dir,
            url,
            tls_port,
            run_as,
        };
        host.start_tls_server();
        host
    }

    /// `pgbackrest server` as the PostgreSQL OS user; waits until it listens.
    fn start_tls_server(&mut self) {
        let mut cmd = std::process::Command::new("/usr/bin/pgbackrest");
        cmd.arg(format!("--config={}", self.conf.display()))
            .arg("server")
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdin(std::process::Stdio::null());
        if self.run_as.switch {
            cmd.uid(self.run_as.uid).gid(self.run_as.gid);
        }
        self.server = Some(cmd.spawn().unwrap());
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.tls_port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("pgbackrest server did not listen on {}", self.tls_port);
    }

    fn stop_tls_server(&mut self) {
        if let Some(mut c) = self.server.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.stop_tls_server();
    }
}

#[tokio::test]
async fn a_region_server_on_another_host_restores_to_a_time() {
    let s3 = https_s3rver().await;
    let certs = certs();
    let mut host = Host::start(&s3, &certs).await;
    // pgfleet's side: its client certificate and key (root's, 0600) and the CA.
    let mine = data_dir();
    let client_crt = mine.path().join("client.crt");
    let client_key = mine.path().join("client.key");
    let ca = mine.path().join("ca.crt");
    for (p, text) in [
        (&client_crt, &certs.client.0),
        (&client_key, &certs.client.1),
        (&ca, &certs.ca),
    ] {
        std::fs::write(p, text).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let data = data_dir();
    let (url, pgdata, socket_dir, tls_port) = (
        host.url.clone(),
        host.pgdata.clone(),
        host.socket_dir.clone(),
        host.tls_port,
    );
    let endpoint = format!("https://127.0.0.1:{}", s3.port);
    let configure = |c: &mut Config| {
        c.data_dir = data.path().to_path_buf();
        c.regions.insert(
            "us-east-1".to_string(),
            RegionConfig {
                name: None,
                servers: vec![Secret::new(url.clone())],
            },
        );
        c.backups.s3 = Some(S3Config {
            bucket: BUCKET.to_string(),
            endpoint: Some(endpoint.clone()),
            region: "us-east-1".to_string(),
            access_key_id: Some("S3RVER".to_string()),
            secret_access_key: Some(Secret::new("S3RVER")),
            secret_access_key_file: None,
            prefix: "pgfleet".to_string(),
            allow_http: false,
        });
        c.pitr.s3_verify_tls = false;
        c.pitr.servers = vec![ArchivedServerConfig {
            url: Secret::new(url.clone()),
            stanza: STANZA.to_string(),
            pgdata: pgdata.clone(),
            socket_dir: None,
            port: None,
            host: Some("localhost".to_string()),
            pgbackrest_port: Some(tls_port),
            tls_cert_file: Some(client_crt.clone()),
            tls_key_file: Some(client_key.clone()),
            tls_ca_file: Some(ca.clone()),
            host_socket_dir: Some(socket_dir.clone()),
            bin_dir: None,
        }];
        c.pitr.archive_timeout_secs = 5;
        c.pitr.check_every_secs = 1;
        c.backups.check_every_secs = 3600;
    };
    let s = TestServer::start_with(configure).await;
    let (pid, a, a_conn) = project(&s, "pitr-remote").await;
    wait_window(&s, &a).await;
    let t = history(&a_conn).await;
    clone_and_restore_to(&s, &s, (&pid, &a, &a_conn), &t).await;
    s.stop().await;
    let work = data.path().join(format!("pitr-{STANZA}"));
    assert_no_scratch_in(&work.join("scratch"));

    // pgfleet's pgBackRest reaches the data directory only through the TLS server: its
    // configuration names the host, its copies of the TLS files are private...
    let conf = std::fs::read_to_string(work.join("pgbackrest.conf")).unwrap();
    assert!(
        conf.contains("pg1-host=localhost\npg1-host-type=tls\n"),
        "{conf}"
    );
    assert!(!conf.contains("S3RVER"), "{conf}");
    for f in ["client.crt", "client.key", "ca.crt"] {
        let mode = std::fs::metadata(work.join("tls").join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    // ...and with the TLS server stopped, a base backup fails on the connection to it.
    host.stop_tls_server();
    let mut cfg = Config::default();
    configure(&mut cfg);
    let (_, archive) = pgfleet::pitr::external_archives(&cfg).unwrap().remove(0);
    let e = archive
        .base_backup(BaseBackupKind::Full)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("localhost"), "{e}");
    if let Some(h) = host.handle.take() {
        h.stop().await;
    }
}
