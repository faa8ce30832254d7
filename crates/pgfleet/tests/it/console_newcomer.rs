//! The console's newcomer edges, as a browser without JavaScript sees them: a new project's
//! and a new database's default connection strings (direct, pooled and `prisma+postgres://`)
//! shown once with the direct/pooled/prisma+postgres toggle, the first two of which connect
//! (and nothing of prisma+postgres when that endpoint is off); one timestamp format (`<time datetime title>`);
//! backups showing their kind (on demand or scheduled) and a live-status badge (with its status endpoint); "New
//! database from it" proposing `<db>-restore-<date>` and refusing a duplicate name.

use reqwest::StatusCode;

use crate::browser::admin_browser;
use crate::harness::TestServer;

async fn connects(url: &str) {
    let (client, conn) = tokio_postgres::connect(url, crate::harness::tls_connector())
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    tokio::spawn(conn);
    client.simple_query("select 1").await.unwrap();
}

#[tokio::test]
async fn new_credentials_times_backup_kinds_and_restore_names() {
    let s = TestServer::start().await;
    let (mut b, ws) = admin_browser(&s).await;
    let projects_url = format!("/console/w/{ws}/projects");
    let csrf = b.get(&projects_url).await.input("csrf_token");

    // A new project: its default connection's strings, once, direct, pooled and accelerate.
    let r = b
        .post(
            &projects_url,
            &[
                ("csrf_token", &csrf),
                ("name", "fresh"),
                ("region", "us-east-1"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let project_url = r.redirect_to().to_string();
    let page = b.get(&project_url).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let direct = page.testid("secret").expect("direct string shown");
    let pooled = page.testid("secret-pooled").expect("pooled string shown");
    assert_ne!(direct, pooled);
    let accel = page
        .testid("secret-accelerate")
        .expect("accelerate string shown");
    assert!(accel.starts_with("prisma+postgres://"), "{accel}");
    let key = accel.rsplit("api_key=").next().unwrap_or_default();
    assert!(key.len() >= 16, "{accel}");
    assert_eq!(page.body.matches(key).count(), 1, "{}", page.body);
    for needle in [
        "shown only once",
        "data-copy=\"flash_secret\"",
        "data-copy=\"flash_pooled\"",
        "data-copy=\"flash_accelerate\"",
        "id=\"flash_show_direct\"",
        "id=\"flash_show_pooled\"",
        "id=\"flash_show_accelerate\"",
        "new PrismaClient({ accelerateUrl })",
    ] {
        assert!(
            page.body.contains(needle),
            "{needle} missing:\n{}",
            page.body
        );
    }
    connects(&direct).await;
    connects(&pooled).await;
    let again = b.get(&project_url).await;
    assert!(again.testid("secret").is_none(), "shown twice");
    assert!(!again.body.contains(&direct));
    assert!(again.testid("secret-accelerate").is_none(), "shown twice");
    assert!(!again.body.contains(key));
    // One timestamp format: relative, the exact time on hover.
    assert!(
        again.body.contains("<time datetime=\"") && again.body.contains(" UTC\">just now</time>"),
        "{}",
        again.body
    );

    // A new database: its default connection's strings, once, on its page.
    let r = b
        .post(
            &format!("{project_url}/databases"),
            &[
                ("csrf_token", &csrf),
                ("name", "orders"),
                ("source", "empty"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let db_url = r.redirect_to().to_string();
    let page = b.get(&db_url).await;
    let direct = page.testid("secret").expect("direct string shown");
    assert!(page.testid("secret-pooled").is_some(), "{}", page.body);
    let accel = page
        .testid("secret-accelerate")
        .expect("accelerate string shown");
    assert!(accel.starts_with("prisma+postgres://"), "{accel}");
    assert!(page.body.contains("Database orders was created"));
    connects(&direct).await;
    let again = b.get(&db_url).await;
    assert!(again.testid("secret").is_none());
    assert!(again.testid("secret-accelerate").is_none());
    assert!(!again
        .body
        .contains(accel.rsplit("api_key=").next().unwrap_or_default()));

    // The same name again is refused, not duplicated.
    let r = b
        .post(
            &format!("{project_url}/databases"),
            &[
                ("csrf_token", &csrf),
                ("name", "orders"),
                ("source", "empty"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body.contains("already has a database named orders"));
    assert_eq!(
        b.get(&project_url)
            .await
            .body
            .matches(">orders</a>")
            .count(),
        1
    );

    // Back up now: an on-demand backup with a live status badge, then completed.
    let r = b
        .post(&format!("{db_url}/backups"), &[("csrf_token", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = b.get(&db_url).await;
    assert_eq!(page.testid("backup-kind").as_deref(), Some("on demand"));
    let bid = page.id_after(&format!("{db_url}/backups/"));
    let status_url = format!("{db_url}/backups/{bid}/status");
    assert!(page
        .body
        .contains(&format!("data-status-url=\"{status_url}\"")));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let st = b.get(&status_url).await;
        assert_eq!(st.status, StatusCode::OK, "{}", st.body);
        if st.body.trim() == "completed" {
            break;
        }
        assert_eq!(st.body.trim(), "running");
        assert!(std::time::Instant::now() < deadline, "backup completes");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    assert_eq!(
        b.get(&format!("{db_url}/backups/bkp_nope/status"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // "New database from it" proposes <db>-restore-<date>; used once, the next proposal differs.
    let page = b.get(&db_url).await;
    let day = s.services().clock().now().format("%Y-%m-%d").to_string();
    let proposed = format!("orders-restore-{day}");
    assert!(
        page.body.contains(&format!("value=\"{proposed}\"")),
        "{}",
        page.body
    );
    let backup = format!("{}/{bid}", db_url.rsplit('/').next().unwrap_or_default());
    let form = [
        ("csrf_token", csrf.as_str()),
        ("source", "backup"),
        ("backup", backup.as_str()),
        ("name", proposed.as_str()),
    ];
    let r = b.post(&format!("{project_url}/databases"), &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let r = b.post(&format!("{project_url}/databases"), &form).await;
    assert_eq!(
        r.status,
        StatusCode::CONFLICT,
        "a silent duplicate: {}",
        r.body
    );
    let page = b.get(&db_url).await;
    assert!(
        page.body.contains(&format!("value=\"{proposed}-2\"")),
        "{}",
        page.body
    );

    // A backup the schedule started says so (recorded as the scheduler records one).
    let db_id = db_url.rsplit('/').next().unwrap_or_default();
    pgfleet_storage::backups::insert(
        s.services().store().pool(),
        "bkp_fromtheschedule",
        db_id,
        pgfleet_storage::BackupTrigger::Scheduled,
        s.services().clock().now(),
    )
    .await
    .unwrap();
    let page = b.get(&db_url).await;
    assert_eq!(page.testid("backup-kind").as_deref(), Some("scheduled"));
    assert!(page.body.contains("data-testid=\"backup-kind\">on demand<"));

    s.stop().await;
}

/// With `[accelerate] enabled = false` the console shows no `prisma+postgres://` string, no
/// accelerate endpoint and no hint: direct and pooled as before.
#[tokio::test]
async fn accelerate_off_shows_no_prisma_string() {
    let s = TestServer::start_with(|c| c.accelerate.enabled = false).await;
    let (mut b, ws) = admin_browser(&s).await;
    let projects_url = format!("/console/w/{ws}/projects");
    let csrf = b.get(&projects_url).await.input("csrf_token");
    let r = b
        .post(
            &projects_url,
            &[
                ("csrf_token", &csrf),
                ("name", "plain"),
                ("region", "us-east-1"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = b.get(r.redirect_to()).await;
    assert!(page.testid("secret").is_some(), "{}", page.body);
    assert!(page.testid("secret-pooled").is_some(), "{}", page.body);
    for absent in [
        "secret-accelerate",
        "flash_show_accelerate",
        "prisma+postgres",
    ] {
        assert!(!page.body.contains(absent), "{absent}:\n{}", page.body);
    }
    let db_url = format!(
        "/console/w/{ws}/databases/{}",
        page.id_after(&format!("/console/w/{ws}/databases/"))
    );
    let r = b
        .post(
            &format!("{db_url}/connections"),
            &[("csrf_token", &csrf), ("name", "app")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let db = b.get(&db_url).await;
    assert!(db.testid("secret").is_some(), "{}", db.body);
    assert!(db.body.contains("data-testid=\"connection-row\""));
    for absent in [
        "secret-accelerate",
        "connection-accelerate",
        "prisma+postgres",
        "accelerateUrl",
    ] {
        assert!(!db.body.contains(absent), "{absent}:\n{}", db.body);
    }
    s.stop().await;
}
