//! Issue 15, item 1: TLS to the PostgreSQL servers pgfleet talks to, verified.
//!
//! A small embedded cluster of the test's own serves a certificate for `localhost` signed by
//! a test CA, and takes TCP only with TLS. pgfleet reaches it with `sslmode=verify-full` and
//! `sslrootcert`: as its metadata store (starts and serves), and as a region server (creates
//! a database, backs it up with `pg_dump`). With another CA the metadata store is refused at
//! start and a region server's create fails, both saying which host and why.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pgfleet::config::{RegionConfig, Secret};
use pgfleet_dataplane::{ClusterSettings, EmbeddedCluster};
use reqwest::StatusCode;
use serde_json::json;

use crate::capacity::ClusterDir;
use crate::harness::{backup_now, connect_tls, pooled_url, wait_ready, TestServer};
use crate::lifecycle::data_dir;

const PASSWORD: &str = "tls-upstream-test-password";
const KEK: &str = "tls-upstream test key-encryption secret";

/// A CA: its PEM certificate, and the certificate and key to sign with.
fn ca(name: &str) -> (String, rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), cert, key)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[tokio::test]
async fn verified_tls_to_the_metadata_store_and_region_servers() {
    let files = tempfile::tempdir().unwrap();
    let (good_ca_pem, good_ca, good_ca_key) = ca("pgfleet test CA");
    let (other_ca_pem, _, _) = ca("some other CA");
    let good_ca_file = write(files.path(), "ca.pem", &good_ca_pem);
    let other_ca_file = write(files.path(), "other-ca.pem", &other_ca_pem);

    // The cluster, with a certificate for localhost signed by the test CA.
    let dir = ClusterDir(data_dir());
    let cluster = EmbeddedCluster::prepare(ClusterSettings {
        max_connections: 150,
        ..ClusterSettings::new(dir.0.path())
    })
    .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    // For the name `localhost` only: 127.0.0.1 reaches the same server under another name.
    let server_cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &good_ca, &good_ca_key)
        .unwrap();
    // Rewritten in place: the files keep the owner and mode the cluster gave them.
    std::fs::write(cluster.pgdata().join("server.crt"), server_cert.pem()).unwrap();
    std::fs::write(cluster.pgdata().join("server.key"), key.serialize_pem()).unwrap();
    let port = cluster.port();
    let handle = cluster.start().await.unwrap();
    {
        let (admin, conn) = handle
            .cluster()
            .admin_config("postgres")
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        admin
            .batch_execute(&format!("ALTER ROLE postgres PASSWORD '{PASSWORD}'"))
            .await
            .unwrap();
        admin.batch_execute("CREATE DATABASE meta").await.unwrap();
    }
    let url = |db: &str, mode: &str, ca: &Path| {
        format!(
            "postgres://postgres:{PASSWORD}@localhost:{port}/{db}?sslmode={mode}&sslrootcert={}",
            ca.display()
        )
    };

    // Metadata store with another CA: refused at start, quickly, naming the host and why.
    let started = Instant::now();
    let bad_meta = url("meta", "verify-full", &other_ca_file);
    let err = TestServer::try_start_with(|c| {
        c.metadata.url = Some(Secret::new(bad_meta.clone()));
    })
    .await
    .err()
    .expect("a metadata store whose certificate does not verify is refused");
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&format!(
            "certificate of localhost:{port} is not signed by the CA in {}",
            other_ca_file.display()
        )),
        "{msg}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "no waiting on a bad certificate"
    );

    // verify-full with the right CA: metadata store and region server over TLS.
    let meta = url("meta", "verify-full", &good_ca_file);
    let region_ok = url("postgres", "verify-full", &good_ca_file);
    let region_bad = url("postgres", "verify-full", &other_ca_file);
    let s = TestServer::start_with(|c| {
        c.metadata.url = Some(Secret::new(meta.clone()));
        c.regions.insert(
            "us-east-1".to_string(),
            RegionConfig {
                name: None,
                servers: vec![Secret::new(region_ok.clone())],
            },
        );
        c.regions.insert(
            "eu-central-1".to_string(),
            RegionConfig {
                name: None,
                servers: vec![Secret::new(region_bad.clone())],
            },
        );
        c.backups.check_every_secs = 3600;
        // Replicas of one metadata store share the key that encrypts its signing key.
        c.oauth.key_encryption_key = Some(Secret::new(KEK));
    })
    .await;
    // The store really is that cluster's `meta` database, over TLS.
    let (db, ssl): (String, bool) = sqlx::query_as(
        "SELECT current_database()::text, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    .fetch_one(s.services().store().pool())
    .await
    .unwrap();
    assert_eq!((db.as_str(), ssl), ("meta", true));

    let p = s.post("/v1/projects", json!({"name": "tls"})).await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    let pid = p.body["data"]["id"].as_str().unwrap().to_string();
    let r = s
        .post(
            &format!("/v1/projects/{pid}/databases"),
            json!({"name": "verified"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["data"]["id"].as_str().unwrap().to_string();
    wait_ready(&s, &id).await;
    // pg_dump reached the server with PGSSLMODE=verify-full and PGSSLROOTCERT.
    backup_now(&s, &id).await;
    // The pooler reaches the server with the same verified TLS.
    let (pooled_db, conn) = s.database_with_connection("tls-pooled").await;
    wait_ready(&s, &pooled_db).await;
    let client = connect_tls(&pooled_url(&conn)).await.unwrap();
    client.simple_query("SELECT 1").await.unwrap();

    // The region server whose certificate does not verify: the create fails (the tenant is
    // told the region is unavailable, without the operator's host names), and pgfleet's
    // session to it is refused naming the host and why (what the operator's log says).
    let r = s
        .post(
            &format!("/v1/projects/{pid}/databases"),
            json!({"name": "refused", "region": "eu-central-1"}),
        )
        .await;
    r.assert_error(503, "unavailable");
    assert!(!r.body.to_string().contains("localhost"), "{}", r.body);
    let server = pgfleet_dataplane::PgServer::from_url("eu-central-1", &region_bad).unwrap();
    let err = server.ping().await.unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "certificate of localhost:{port} is not signed by the CA in {}",
            other_ca_file.display()
        )
    );
    // Under a name the certificate does not have: verify-full refuses, verify-ca (the chain
    // only) and require with a CA file (libpq: like verify-ca) accept.
    let by_address =
        |mode: &str| url("postgres", mode, &good_ca_file).replace("@localhost:", "@127.0.0.1:");
    let err = pgfleet_dataplane::PgServer::from_url("r", &by_address("verify-full"))
        .unwrap()
        .ping()
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!("certificate of 127.0.0.1:{port} does not match host name 127.0.0.1")
    );
    for mode in ["verify-ca", "require"] {
        pgfleet_dataplane::PgServer::from_url("r", &by_address(mode))
            .unwrap()
            .ping()
            .await
            .unwrap();
    }
    // require with a CA file verifies the chain: another CA is refused.
    let other_require = url("postgres", "require", &other_ca_file);
    assert!(pgfleet_dataplane::PgServer::from_url("r", &other_require)
        .unwrap()
        .ping()
        .await
        .unwrap_err()
        .to_string()
        .contains("is not signed by the CA"));

    // The metadata store under a name its certificate does not have: verify-full is refused
    // at start naming the host, verify-ca (the chain only) starts (a second replica on it).
    let meta_by_address =
        |mode: &str| url("meta", mode, &good_ca_file).replace("@localhost:", "@127.0.0.1:");
    let err = TestServer::try_start_with(|c| {
        c.metadata.url = Some(Secret::new(meta_by_address("verify-full")));
        c.backups.shared_dir = true;
    })
    .await
    .err()
    .expect("verify-full refuses a certificate without the host's name");
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&format!(
            "certificate of 127.0.0.1:{port} does not match host name 127.0.0.1"
        )),
        "{msg}"
    );
    let by_ca = TestServer::start_with(|c| {
        c.metadata.url = Some(Secret::new(meta_by_address("verify-ca")));
        c.backups.shared_dir = true;
        c.backups.check_every_secs = 3600;
        c.oauth.key_encryption_key = Some(Secret::new(KEK));
    })
    .await;
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(by_ca.services().store().pool())
        .await
        .unwrap();
    assert!(ssl);
    by_ca.stop().await;

    s.stop().await;
    handle.stop().await;
}
