//! The scale-out test's deployment as its operator writes it (one TOML file per replica,
//! secrets in `*_file` settings) and the checks it repeats: every database ready, nothing
//! leaked on the servers.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::deploy::{private_file, Api, Ca, Replica, TlsCluster};
use crate::backups_s3::BUCKET;
use crate::harness::Resp;
use crate::lifecycle::pgfleet;

pub(super) const TOKEN: &str = "pgfst_scale_out_bootstrap_token_0123456789abcdef";
pub(super) const KEK: &str = "scale-out test key-encryption key, shared by all replicas";
pub(super) const REGION: &str = "us-east-1";

/// Everything the replicas' configuration files name.
pub(super) struct Setup {
    pub(super) dir: tempfile::TempDir,
    pub(super) ca: Ca,
    pub(super) meta: TlsCluster,
    pub(super) servers: [TlsCluster; 2],
    pub(super) s3_endpoint: String,
}

impl Setup {
    /// The TOML file of replica `name`, with its own data and staging directories.
    fn config(&self, name: &str) -> PathBuf {
        let d = self.dir.path();
        let data = d.join(format!("data-{name}"));
        let secret = |file: &str, text: &str| private_file(&d.join(file), text);
        let url_file = secret("metadata-url", &self.meta.url("meta", &self.ca));
        let kek_file = secret("key-encryption-key", KEK);
        let token_file = secret("bootstrap-token", TOKEN);
        let s3_secret = secret("s3-secret", "S3RVER");
        let servers: Vec<String> = self
            .servers
            .iter()
            .map(|s| format!("{:?}", s.url("postgres", &self.ca)))
            .collect();
        let text = format!(
            r#"listen = "127.0.0.1:0"
data_dir = {data:?}
bootstrap_token_file = {token_file:?}
provision_wait_secs = 0.0
database_connection_limit = 5

[metadata]
url_file = {url_file:?}

[oauth]
key_encryption_key_file = {kek_file:?}

[backups]
dir = {staging:?}
check_every_secs = 1
interval_secs = 3600

[backups.s3]
bucket = "{BUCKET}"
endpoint = "{endpoint}"
access_key_id = "S3RVER"
secret_access_key_file = {s3_secret:?}
allow_http = true

[usage]
sample_interval_secs = 1

[pooler]
enabled = false
pool_size = 2

[accelerate]
enabled = false

[regions.{REGION}]
servers = [{servers}]
"#,
            staging = d.join(format!("staging-{name}")),
            endpoint = self.s3_endpoint,
            servers = servers.join(", "),
        );
        private_file(&d.join(format!("{name}.toml")), &text)
    }

    pub(super) async fn start(&self, name: &str) -> Replica {
        let config = self.config(name);
        Replica::start(name, &config, &self.dir.path().join(format!("{name}.log")))
    }

    /// A superuser session on the metadata database (the test's look at the rows).
    pub(super) async fn meta(&self) -> tokio_postgres::Client {
        self.meta.admin("meta").await
    }
}

/// `pgfleet admin <args> --json` with a replica's configuration, as its operator runs it.
pub(super) fn admin(replica: &Replica, args: &[&str]) -> Value {
    let scratch = tempfile::tempdir().unwrap();
    let mut all = vec!["admin"];
    all.extend_from_slice(args);
    all.extend_from_slice(&[
        "--json",
        "--config",
        replica.config.to_str().unwrap(),
        "--data-dir",
        scratch.path().to_str().unwrap(),
    ]);
    let o = pgfleet(&all).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The outcome of one create: the project's name, and the answer (or `None`: no answer).
pub(super) struct Created {
    pub(super) name: String,
    pub(super) answer: Option<Resp>,
}

impl Created {
    pub(super) fn database(&self) -> Option<(String, String)> {
        let r = self.answer.as_ref()?;
        (r.status == StatusCode::CREATED).then(|| {
            let d = &r.body["data"]["database"];
            (
                d["id"].as_str().unwrap().to_string(),
                d["connectionString"].as_str().unwrap().to_string(),
            )
        })
    }
}

pub(super) async fn create(api: Api, name: String) -> Created {
    let answer = api
        .send(Method::POST, "/v1/projects", Some(json!({ "name": name })))
        .await
        .ok();
    Created { name, answer }
}

/// Waits (up to 90 s) until every database row in the store is `ready`; returns them.
pub(super) async fn all_ready(setup: &Setup) -> Vec<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let rows = setup
            .meta()
            .await
            .query("SELECT id, status FROM databases ORDER BY id", &[])
            .await
            .unwrap();
        let all: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        if all.iter().all(|(_, s)| s == "ready") {
            return all;
        }
        assert!(Instant::now() < deadline, "not all ready: {all:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The first column of `sql`'s rows, `$1` being a LIKE pattern around `key`.
async fn names(meta: &tokio_postgres::Client, key: &str, sql: &str) -> BTreeSet<String> {
    meta.query(sql, &[&format!("%{key}%")])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect()
}

/// Once every operation has finished (within 60 s), none failed: no database or role on the
/// servers without a row in the store, and the reverse.
pub(super) async fn assert_nothing_leaks(setup: &Setup) {
    // Operations still open (a backup retried after a metadata outage, say) finish first.
    let deadline = Instant::now() + Duration::from_secs(60);
    let meta = loop {
        let meta = setup.meta().await;
        let open: Vec<(String, String, String)> = meta
            .query(
                "SELECT id, kind, state FROM operations WHERE state <> 'succeeded'",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        assert!(
            open.iter().all(|(_, _, state)| state != "failed"),
            "operations failed: {open:?}"
        );
        if open.is_empty() {
            break meta;
        }
        assert!(Instant::now() < deadline, "operations not done: {open:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    for server in &setup.servers {
        // The server's key is its URL without the password: `…@localhost:<port>/postgres?…`.
        let key = format!("localhost:{}/", server.port);
        let dbs = names(
            &meta,
            &key,
            "SELECT d.pg_database FROM databases d JOIN pg_servers s ON s.id = d.server_id
              WHERE s.config_key LIKE $1",
        )
        .await;
        let roles = names(
            &meta,
            &key,
            "SELECT d.owner_role FROM databases d JOIN pg_servers s ON s.id = d.server_id
              WHERE s.config_key LIKE $1
             UNION SELECT c.role_name FROM connections c JOIN databases d ON d.id = c.database_id
              JOIN pg_servers s ON s.id = d.server_id WHERE s.config_key LIKE $1",
        )
        .await;
        let admin = server.admin("postgres").await;
        let on_server = |rows: Vec<tokio_postgres::Row>| {
            rows.iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<BTreeSet<String>>()
        };
        let real_dbs = on_server(
            admin
                .query(
                    "SELECT datname::text FROM pg_database
                      WHERE datname NOT IN ('postgres', 'template0', 'template1')",
                    &[],
                )
                .await
                .unwrap(),
        );
        let real_roles = on_server(
            admin
                .query(
                    "SELECT rolname::text FROM pg_roles
                      WHERE rolname <> 'postgres' AND rolname NOT LIKE 'pg\\_%'",
                    &[],
                )
                .await
                .unwrap(),
        );
        assert_eq!(real_dbs, dbs, "databases on {key} vs rows");
        assert_eq!(real_roles, roles, "roles on {key} vs rows");
    }
}
