//! Point-in-time recovery with two replicas on one metadata store (issue 19, "works with
//! several replicas"): both archive the same region server into one repository (the
//! `backups.dir` they share); the archiving job — stanza, base backups, window — runs under
//! its lease, so the repository holds one full base backup however many replicas there are;
//! the window is the same through either; a clone "as of" T through one replica and an
//! in-place restore through the other give exactly the rows up to T; with the lease holder
//! stopped, the other carries on (the window's end keeps moving).

use std::time::{Duration, Instant};

use pgfleet::config::{Config, Secret};

use crate::harness::TestServer;
use crate::lifecycle::data_dir;
use crate::pitr::{
    assert_no_scratch_in, clone_and_restore_to, history, parse, project, wait_window, SecondCluster,
};

async fn holder(s: &TestServer) -> Option<String> {
    pgfleet_storage::leases::get(s.services().store().pool(), "pitr_archiver")
        .await
        .unwrap()
        .map(|l| l.holder)
}

#[tokio::test]
async fn two_replicas_archive_once_and_restore_through_either() {
    let second = SecondCluster::prepare();
    let shared = data_dir();
    let (d1, d2) = (data_dir(), data_dir());
    let configure = |c: &mut Config, data: &std::path::Path| {
        c.data_dir = data.to_path_buf();
        second.configure(c);
        // One repository for both (as if mounted by all), one key for the OAuth keys.
        c.backups.dir = Some(shared.path().to_path_buf());
        c.backups.shared_dir = true;
        c.oauth.key_encryption_key = Some(Secret::new("pitr replicas key-encryption secret"));
    };
    let mut cfg = Config::default();
    configure(&mut cfg, d1.path());
    let handle = second.start(&cfg).await;
    let a = TestServer::start_with(|c| configure(c, d1.path())).await;
    let metadata = a.metadata_db();
    let mut b = TestServer::start_with(|c| {
        configure(c, d2.path());
        c.metadata.url = Some(Secret::new(crate::harness::cluster().url(&metadata)));
    })
    .await;
    // One workspace: B's own bootstrap token is not one of the shared store's.
    b.token = a.token.clone();

    let (pid, db, conn) = project(&a, "pitr-replicas").await;
    // The window, recorded by whichever replica holds the lease, is the same through both.
    let wa = wait_window(&a, &db).await;
    let wb = wait_window(&b, &db).await;
    assert_eq!(wa["earliest"], wb["earliest"], "{wa} {wb}");
    let t = history(&conn).await;

    // Several rounds of the job later, still one full base backup in the shared repository.
    let mut cfg = Config::default();
    configure(&mut cfg, d1.path());
    let (_, archive) = pgfleet::pitr::external_archives(&cfg).unwrap().remove(0);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let info = archive.info().await.unwrap();
    assert_eq!(
        info.backups.len(),
        1,
        "one base backup, not one per replica: {info:?}"
    );
    let first_holder = holder(&a).await.expect("the archiving job ran");

    // A clone as of T through B, an in-place restore to T through A.
    clone_and_restore_to(&b, &a, (&pid, &db, &conn), &t).await;

    // The lease holder stops: the other takes the job over and the window's end moves on.
    let (stopped, live, live_dir) = if first_holder == a.services().replica_id() {
        (a, b, d2.path().to_path_buf())
    } else {
        (b, a, d1.path().to_path_buf())
    };
    stopped.stop().await;
    let before = parse(&wait_window(&live, &db).await["latest"]);
    crate::pitr::exec(&conn, "INSERT INTO t (id) VALUES (42)").await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let w = wait_window(&live, &db).await;
        if parse(&w["latest"]) > before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the window's end did not move after the lease holder stopped: {w}, holder {:?}",
            holder(&live).await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(archive.info().await.unwrap().backups.len(), 1);
    live.stop().await;
    for d in [d1.path(), live_dir.as_path()] {
        assert_no_scratch_in(&d.join("pitr-second").join("scratch"));
    }
    handle.stop().await;
}
