//! The storage quota, from the tenant's own SQL session: over it, writes fail with an error
//! naming the quota whatever the session does to itself, reads work, the API, the console
//! and `/metrics` show it, a backup taken meanwhile restores; freeing space makes the
//! database writable again.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio_postgres::error::SqlState;

use crate::harness::connect_tls;
use crate::tenant_limits::{refused, start, tenant};

#[tokio::test]
async fn a_database_over_its_storage_quota_refuses_writes_until_it_is_under_again() {
    const QUOTA: u64 = 12 * 1024 * 1024;
    let s = start(|cfg| {
        cfg.tenant.storage_quota_bytes = QUOTA;
        cfg.usage.sample_interval_secs = 1;
    })
    .await;
    let t = tenant(&s, "quota").await;
    let c = connect_tls(&t.conn_string).await.unwrap();
    c.batch_execute(
        "CREATE TABLE big (v text); CREATE TABLE small (v int); \
         INSERT INTO big SELECT repeat(md5(g::text), 30) FROM generate_series(1, 8000) g;",
    )
    .await
    .unwrap();
    let report = s.services().guard().pass().await.unwrap();
    assert_eq!(
        report.read_only,
        std::slice::from_ref(&t.db_id),
        "{report:?}"
    );

    // Writes name the quota, whatever the session does to itself.
    for sql in [
        "INSERT INTO small VALUES (1)",
        "UPDATE big SET v = 'x' WHERE false",
        "SET default_transaction_read_only = off; BEGIN READ WRITE; INSERT INTO small VALUES (1)",
        "CREATE TABLE more (v int)",
        "CREATE INDEX ON big (v)",
        "ALTER TABLE small DISABLE TRIGGER ALL",
        "DROP TRIGGER pgfleet_storage_quota ON small",
        "CREATE OR REPLACE TRIGGER pgfleet_storage_quota BEFORE INSERT ON small \
           FOR EACH STATEMENT EXECUTE FUNCTION pg_catalog.suppress_redundant_updates_trigger()",
    ] {
        let _ = c.batch_execute("ROLLBACK").await;
        let e = refused(&c, sql).await;
        assert_eq!(
            e.code(),
            &SqlState::CONFIGURATION_LIMIT_EXCEEDED,
            "{sql}: {e}"
        );
        assert!(
            e.message().contains("storage quota of 12582912 bytes"),
            "{sql}: {e}"
        );
    }
    let _ = c.batch_execute("ROLLBACK").await;
    let copier = connect_tls(&t.conn_string).await.unwrap();
    let copied = async {
        use futures::SinkExt as _;
        let sink = copier
            .copy_in::<_, bytes::Bytes>("COPY small FROM STDIN")
            .await?;
        futures::pin_mut!(sink);
        sink.send(bytes::Bytes::from_static(b"1\n")).await?;
        sink.finish().await
    }
    .await;
    let e = copied.expect_err("COPY FROM is refused");
    assert_eq!(
        e.code(),
        Some(&SqlState::CONFIGURATION_LIMIT_EXCEEDED),
        "{e}"
    );
    for sql in [
        "SELECT lo_from_bytea(0, 'data')",
        "SELECT lo_creat(-1)",
        "SET session_replication_role = replica",
        "DROP SCHEMA pgfleet_quota CASCADE",
        "DROP EVENT TRIGGER pgfleet_storage_quota",
        "ALTER EVENT TRIGGER pgfleet_storage_quota DISABLE",
    ] {
        let e = refused(&c, sql).await;
        assert_eq!(e.code(), &SqlState::INSUFFICIENT_PRIVILEGE, "{sql}: {e}");
    }
    // Reads work.
    let n: i64 = c
        .query_one("SELECT count(*) FROM big", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 8000);
    // The API and /metrics show it.
    let r = s.get(&format!("/v1/databases/{}/usage", t.db_id)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let storage = &r.body["metrics"]["storage"];
    assert_eq!(storage["readOnly"], true, "{storage}");
    assert_eq!(
        storage["quota"].as_f64().unwrap(),
        QUOTA as f64 / (1024.0 * 1024.0 * 1024.0)
    );
    let line = format!(
        "pgfleet_database_over_quota{{database_id=\"{}\"}} 1",
        t.db_id
    );
    let mut seen = false;
    for _ in 0..100 {
        if s.metrics().await.contains(&line) {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen, "{line} missing from /metrics");
    assert!(s.metrics().await.contains(&format!(
        "pgfleet_database_storage_quota_bytes{{database_id=\"{}\"}} {QUOTA}",
        t.db_id
    )));

    // So does the console's database page.
    let (password, ws) = crate::browser::bootstrap(&s);
    let mut b = crate::browser::Browser::new(&s);
    b.sign_in("admin@pgfleet.localhost", &password, "/console")
        .await;
    let page = b
        .get(&format!("/console/w/{ws}/databases/{}", t.db_id))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let notice = page.testid("over-quota").expect("no over-quota notice");
    assert!(
        notice.contains("over its storage quota of 12.0 MiB"),
        "{notice}"
    );

    // A backup taken now holds the mode's triggers; a database made from it does not (they
    // are pgfleet's), and gets the mode from the guard as it is over the quota too.
    let backup = crate::harness::backup_now(&s, &t.db_id).await;
    let (clone_id, _) = crate::harness::create_from(
        &s,
        &t.project_id,
        json!({"source": {"type": "backup", "databaseId": t.db_id, "backupId": backup}}),
    )
    .await;
    let report = s.services().guard().pass().await.unwrap();
    assert!(report.read_only.contains(&clone_id), "{report:?}");

    // Space can be freed by the tenant itself; then it is writable again.
    c.batch_execute("DELETE FROM big WHERE false; TRUNCATE big")
        .await
        .unwrap();
    let report = s.services().guard().pass().await.unwrap();
    assert!(report.writable_again.contains(&t.db_id), "{report:?}");
    c.batch_execute(
        "INSERT INTO small VALUES (1); CREATE TABLE more (v int); INSERT INTO more VALUES (2)",
    )
    .await
    .unwrap();
    let r = s.get(&format!("/v1/databases/{}/usage", t.db_id)).await;
    assert_eq!(
        r.body["metrics"]["storage"]["readOnly"], false,
        "{}",
        r.body
    );
    let report = s.services().guard().pass().await.unwrap();
    assert!(
        !report.read_only.contains(&t.db_id) && report.writable_again.is_empty(),
        "{report:?}"
    );
    s.stop().await;
}
