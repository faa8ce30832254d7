//! Backups in an S3-compatible bucket, against a real local S3 server (s3rver, a Node.js
//! implementation of the S3 HTTP API, installed by `scripts/setup --test` into
//! `tests/node/node_modules`): backed up, the archive in the bucket and no local file left;
//! restored into a new database and in place with equal row counts and checksums; a
//! corrupted object refused with 422; retention deletes the object.

use std::path::PathBuf;
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;
use pgfleet::config::{S3Config, Secret};
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::harness::{backup_now, checksum, connect_tls, create_from, wait_ready, TestServer};

pub(crate) const BUCKET: &str = "pgfleet-backups";

/// A running s3rver with one bucket, over HTTP or (pgBackRest speaks S3 over HTTPS only)
/// HTTPS with a self-signed certificate; killed when dropped. The one launcher of the tests.
pub(crate) struct S3Server {
    child: tokio::process::Child,
    pub(crate) endpoint: String,
    pub(crate) port: u16,
    _dir: tempfile::TempDir,
}

impl S3Server {
    /// Over plain HTTP (the backup store's `allow_http`).
    pub(crate) async fn start() -> Self {
        Self::launch(false).await
    }

    /// Over HTTPS with a self-signed certificate.
    pub(crate) async fn start_https() -> Self {
        Self::launch(true).await
    }

    async fn launch(tls: bool) -> Self {
        let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/node/node_modules/.bin/s3rver");
        assert!(
            bin.exists(),
            "{} is missing: run `scripts/setup --test` (npm ci in tests/node) to install s3rver",
            bin.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let mut cmd = tokio::process::Command::new(&bin);
        cmd.arg("--directory").arg(&data);
        if tls {
            let cert = pgfleet_dataplane::tls::self_signed(&[]).unwrap();
            std::fs::write(dir.path().join("key.pem"), cert.key_pem).unwrap();
            std::fs::write(dir.path().join("cert.pem"), cert.cert_pem).unwrap();
            cmd.arg("--key")
                .arg(dir.path().join("key.pem"))
                .arg("--cert")
                .arg(dir.path().join("cert.pem"));
        }
        let mut child = cmd
            .args(["--address", "127.0.0.1", "--port", "0", "--silent"])
            .args(["--configure-bucket", BUCKET])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(addr) = line.strip_prefix("S3rver listening on ") {
                    return addr
                        .rsplit(':')
                        .next()
                        .unwrap()
                        .trim()
                        .parse::<u16>()
                        .unwrap();
                }
            }
            panic!("s3rver exited before listening");
        })
        .await
        .expect("s3rver did not start within 30 s");
        // Keep reading its stdout so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let scheme = if tls { "https" } else { "http" };
        Self {
            child,
            endpoint: format!("{scheme}://127.0.0.1:{port}"),
            port,
            _dir: dir,
        }
    }

    fn config(&self) -> S3Config {
        S3Config {
            bucket: BUCKET.to_string(),
            endpoint: Some(self.endpoint.clone()),
            region: "us-east-1".to_string(),
            // s3rver's built-in account.
            access_key_id: Some("S3RVER".to_string()),
            secret_access_key: Some(Secret::new("S3RVER")),
            secret_access_key_file: None,
            prefix: "pgfleet".to_string(),
            allow_http: true,
        }
    }

    pub(crate) fn client(&self) -> Arc<dyn ObjectStore> {
        Arc::new(
            AmazonS3Builder::new()
                .with_bucket_name(BUCKET)
                .with_endpoint(&self.endpoint)
                .with_region("us-east-1")
                .with_access_key_id("S3RVER")
                .with_secret_access_key("S3RVER")
                .with_allow_http(true)
                .build()
                .unwrap(),
        )
    }

    pub(crate) async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

fn files_under(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test]
async fn backups_in_s3_backup_restore_and_prune() {
    let s3 = S3Server::start().await;
    let staging = tempfile::tempdir().unwrap();
    let s3_cfg = s3.config();
    let staging_dir = staging.path().to_path_buf();
    let s = TestServer::start_with(move |c| {
        c.backups.dir = Some(staging_dir);
        c.backups.s3 = Some(s3_cfg);
    })
    .await;
    let bucket = s3.client();

    let p = s.post("/v1/projects", json!({"name": "s3"})).await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    let pid = p.body["data"]["id"].as_str().unwrap().to_string();
    let a = p.body["data"]["database"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let a_conn = p.body["data"]["database"]["connectionString"]
        .as_str()
        .unwrap()
        .to_string();
    connect_tls(&a_conn)
        .await
        .unwrap()
        .batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY, v text); \
             INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g;",
        )
        .await
        .unwrap();
    let original = checksum(&a_conn).await;
    assert_eq!(original.0, 5000);

    // Backed up: the object is in the bucket, its location recorded, no local file left.
    let b1 = backup_now(&s, &a).await;
    let key = ObjectPath::from(format!("pgfleet/{a}/{b1}.dump"));
    let location: (String, i64) =
        sqlx::query_as("SELECT location, size_bytes FROM backups WHERE id = $1")
            .bind(&b1)
            .fetch_one(s.services().store().pool())
            .await
            .unwrap();
    assert_eq!(location.0, format!("s3://{BUCKET}/{key}"));
    let meta = bucket.head(&key).await.unwrap();
    assert_eq!(meta.size as i64, location.1);
    assert!(meta.size > 0);
    assert!(
        files_under(staging.path()).is_empty(),
        "staging files left: {:?}",
        files_under(staging.path())
    );

    // Restored into a new database from the bucket.
    let (_, from_backup) = create_from(
        &s,
        &pid,
        json!({"name": "from-s3", "source": {"type": "backup", "databaseId": a, "backupId": b1}}),
    )
    .await;
    assert_eq!(checksum(&from_backup).await, original);

    // Restored in place.
    connect_tls(&a_conn)
        .await
        .unwrap()
        .batch_execute("DELETE FROM t WHERE id > 100; UPDATE t SET v = 'x';")
        .await
        .unwrap();
    assert_ne!(checksum(&a_conn).await, original);
    let r = s
        .post(
            &format!("/v1/databases/{a}/restore"),
            json!({"source": {"type": "backup", "databaseId": a, "backupId": b1}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    wait_ready(&s, &a).await;
    assert_eq!(checksum(&a_conn).await, original);
    assert!(
        files_under(staging.path()).is_empty(),
        "downloads left: {:?}",
        files_under(staging.path())
    );

    // A corrupted object: refused with 422, nothing changes.
    let b2 = backup_now(&s, &a).await;
    let key2 = ObjectPath::from(format!("pgfleet/{a}/{b2}.dump"));
    bucket.put(&key2, vec![0x42u8; 4096].into()).await.unwrap();
    s.post(
        &format!("/v1/databases/{a}/restore"),
        json!({"source": {"type": "backup", "databaseId": a, "backupId": b2}}),
    )
    .await
    .assert_error(422, "validation_error");
    assert_eq!(checksum(&a_conn).await, original);

    // Retention: the expired backup's object and row are deleted; the other stays.
    sqlx::query("UPDATE backups SET created_at = now() - interval '8 days' WHERE id = $1")
        .bind(&b2)
        .execute(s.services().store().pool())
        .await
        .unwrap();
    s.services().backups().tick().await.unwrap();
    assert!(matches!(
        bucket.head(&key2).await,
        Err(object_store::Error::NotFound { .. })
    ));
    bucket.head(&key).await.unwrap();
    let ids: Vec<String> = s.get(&format!("/v1/databases/{a}/backups")).await.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect();
    assert!(ids.contains(&b1) && !ids.contains(&b2), "{ids:?}");
    // A missing object: refused as well.
    bucket.delete(&key).await.unwrap();
    // Creating a database from it: the operation lists 400, not 422.
    s.post(
        &format!("/v1/projects/{pid}/databases"),
        json!({"source": {"type": "backup", "databaseId": a, "backupId": b1}}),
    )
    .await
    .assert_error(400, "bad_request");

    s.stop().await;
    s3.stop().await;
}

/// An archive past the multipart threshold goes up in parts and comes back byte for byte.
#[tokio::test]
async fn large_archives_are_uploaded_in_parts() {
    use pgfleet_domain::backup_store::{BackupStore, MULTIPART_THRESHOLD};
    use sha2::{Digest, Sha256};
    let s3 = S3Server::start().await;
    let store = BackupStore::s3(&s3.config().options()).unwrap();
    let staging = tempfile::tempdir().unwrap();
    let file = store
        .dump_path(staging.path(), "db_big", "bkp_big")
        .await
        .unwrap();
    // Not compressible and not repeating at part boundaries.
    let mut data = Vec::with_capacity(MULTIPART_THRESHOLD as usize + 3_000_000);
    let mut block = Sha256::digest(b"seed").to_vec();
    while data.len() < MULTIPART_THRESHOLD as usize + 3_000_000 {
        block = Sha256::digest(&block).to_vec();
        data.extend_from_slice(&block);
    }
    std::fs::write(file.with_extension("dump.partial"), &data).unwrap();
    let (location, size) = store.commit(&file, "db_big", "bkp_big").await.unwrap();
    assert_eq!(
        location,
        format!("s3://{BUCKET}/pgfleet/db_big/bkp_big.dump")
    );
    assert_eq!(size, data.len() as u64);
    assert!(files_under(staging.path()).is_empty());
    let fetched = store
        .fetch(staging.path(), "db_big", "bkp_big")
        .await
        .unwrap();
    assert!(std::fs::read(&fetched.path).unwrap() == data);
    fetched.cleanup().await;
    assert!(files_under(staging.path()).is_empty());
    store.delete("db_big", "bkp_big").await.unwrap();
    store.delete("db_big", "bkp_big").await.unwrap();
    assert!(store
        .fetch(staging.path(), "db_big", "bkp_big")
        .await
        .is_err());
    s3.stop().await;
}
