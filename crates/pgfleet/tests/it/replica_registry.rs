//! Issue 15, items 2 and 3: the replica registry (`pgfleet admin replicas`, `/metrics`), the
//! refusal of a binary older than the metadata store's schema, and the refusal of a second
//! live replica whose backups go to a per-machine directory (also when two start at once).

use std::process::Output;

use pgfleet::config::{Config, Secret};
use serde_json::Value;

use crate::harness::TestServer;
use crate::lifecycle::pgfleet;

/// Replicas of one store share the key that encrypts its signing key.
fn key(c: &mut Config) {
    c.oauth.key_encryption_key = Some(Secret::new("registry test key-encryption secret"));
}

/// A replica on `metadata`'s store, its backup directory declared shared or not.
fn on(metadata: &str, shared: bool) -> impl FnOnce(&mut Config) {
    let url = crate::harness::cluster().url(metadata);
    move |c: &mut Config| {
        key(c);
        c.metadata.url = Some(Secret::new(url));
        c.backups.shared_dir = shared;
    }
}

/// `pgfleet admin replicas --json` over `metadata`'s store, as an operator runs it.
fn admin_replicas(metadata: &str) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pgfleet.toml");
    let url = crate::harness::cluster().url(metadata);
    let server = crate::harness::cluster().url("postgres");
    std::fs::write(
        &config,
        format!("[metadata]\nurl = {url:?}\n\n[regions.us-east-1]\nservers = [{server:?}]\n"),
    )
    .unwrap();
    let o: Output = pgfleet(&[
        "admin",
        "replicas",
        "--json",
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        dir.path().to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice::<Value>(&o.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn find<'a>(list: &'a [Value], id: &str) -> &'a Value {
    list.iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("{id} not listed: {list:?}"))
}

#[tokio::test]
async fn replicas_are_listed_alive_and_a_stopped_one_gone() {
    let scratch = TestServer::start_with(key).await;
    let metadata = scratch.metadata_db();
    scratch.stop().await;
    let a = TestServer::start_with(on(&metadata, true)).await;
    let b = TestServer::start_with(on(&metadata, true)).await;
    let (ida, idb) = (
        a.services().replica_id().to_string(),
        b.services().replica_id().to_string(),
    );
    let list = admin_replicas(&metadata);
    for (s, id) in [(&a, &ida), (&b, &idb)] {
        let r = find(&list, id);
        assert_eq!(r["state"], "alive", "{r}");
        assert_eq!(r["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(
            format!("http://{}", r["address"].as_str().unwrap()),
            s.base,
            "{r}"
        );
        assert!(
            r["startedAt"].is_string() && r["lastSeenAt"].is_string(),
            "{r}"
        );
    }
    // The replica stopped cleanly before is listed gone.
    let gone: Vec<&Value> = list.iter().filter(|r| r["state"] == "gone").collect();
    assert_eq!(gone.len(), 1, "{list:?}");
    let metrics = a.metrics().await;
    assert!(
        metrics.contains("pgfleet_replicas{state=\"alive\"}"),
        "{metrics}"
    );

    b.stop().await;
    let list = admin_replicas(&metadata);
    assert_eq!(find(&list, &ida)["state"], "alive");
    let r = find(&list, &idb);
    assert_eq!(r["state"], "gone", "{r}");
    assert!(r["stoppedAt"].is_string(), "{r}");
    a.stop().await;
}

#[tokio::test]
async fn a_second_live_replica_with_a_local_backup_dir_is_refused() {
    // Both with the default: backups in a local directory not declared shared.
    let first = TestServer::start_with(key).await;
    let metadata = first.metadata_db();
    let err = TestServer::try_start_with(on(&metadata, false))
        .await
        .err()
        .expect("a second replica with a local backup directory is refused");
    let msg = format!("{err:#}");
    assert!(msg.contains("another pgfleet replica"), "{msg}");
    assert!(msg.contains(first.services().replica_id()), "{msg}");
    assert!(
        msg.contains("configure the S3-compatible store ([backups.s3])"),
        "{msg}"
    );
    assert!(msg.contains("backups.shared_dir = true"), "{msg}");

    // A replica that crashed (alive in the registry, no longer heartbeating) — this very
    // machine's last run, say — is waited out: then the same configuration starts.
    sqlx::query(
        "INSERT INTO replicas (id, version, address, started_at, last_seen_at)
         VALUES ('replica_crashed', '0.0.0', '127.0.0.1:1', now(), now())",
    )
    .execute(first.services().store().pool())
    .await
    .unwrap();
    first.stop().await;
    let next = TestServer::try_start_with(on(&metadata, false))
        .await
        .expect("a lone replica with a local directory starts");
    next.stop().await;
}

#[tokio::test]
async fn of_two_replicas_with_local_backup_dirs_starting_at_once_exactly_one_is_refused() {
    let scratch = TestServer::start_with(key).await;
    let metadata = scratch.metadata_db();
    scratch.stop().await;
    // Both with a local directory not declared shared, started at the same moment: the look
    // at the registry and the registration are one step under the registry's lock.
    let (a, b) = tokio::join!(
        TestServer::try_start_with(on(&metadata, false)),
        TestServer::try_start_with(on(&metadata, false))
    );
    let (started, refused) = match (a, b) {
        (Ok(s), Err(e)) | (Err(e), Ok(s)) => (s, e),
        (Ok(a), Ok(b)) => {
            let ids = (
                a.services().replica_id().to_string(),
                b.services().replica_id().to_string(),
            );
            a.stop().await;
            b.stop().await;
            panic!("both started: {ids:?}");
        }
        (Err(a), Err(b)) => panic!("both refused: {a:#} / {b:#}"),
    };
    let msg = format!("{refused:#}");
    assert!(msg.contains("another pgfleet replica"), "{msg}");
    assert!(msg.contains(started.services().replica_id()), "{msg}");
    let alive: Vec<Value> = admin_replicas(&metadata)
        .into_iter()
        .filter(|r| r["state"] == "alive")
        .collect();
    assert_eq!(alive.len(), 1, "{alive:?}");
    assert_eq!(alive[0]["id"], started.services().replica_id());
    started.stop().await;
}

#[tokio::test]
async fn a_store_migrated_by_a_newer_pgfleet_is_refused_naming_the_version() {
    let first = TestServer::start_with(key).await;
    let metadata = first.metadata_db();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (9999, 'from a newer pgfleet', true, '\\x00'::bytea, 0)",
    )
    .execute(first.services().store().pool())
    .await
    .unwrap();
    first.stop().await;
    let err = TestServer::try_start_with(on(&metadata, false))
        .await
        .err()
        .expect("a binary older than the store's schema is refused");
    let msg = format!("{err:#}");
    let known = pgfleet_storage::MIGRATOR
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap();
    assert!(
        msg.contains(&format!(
            "the metadata store's schema is at migration 9999, newer than this pgfleet \
             (knows up to {known}): upgrade pgfleet to a version that has migration 9999"
        )),
        "{msg}"
    );
}
