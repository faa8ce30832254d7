//! Issue 15, item 2 (console half): the console's replicas page. Two replicas on one metadata
//! store are both listed alive to a server administrator, linked from the nav; a plain
//! member gets neither the link nor the page (403).

use pgfleet::config::{Config, Secret};
use reqwest::StatusCode;

use crate::browser::{bootstrap, Browser};
use crate::harness::TestServer;

/// Replicas of one store share the key that encrypts its signing key and declare their
/// backup directory shared (a second live replica is refused otherwise).
fn replica(c: &mut Config) {
    c.oauth.key_encryption_key = Some(Secret::new("replicas page test key-encryption secret"));
    c.backups.shared_dir = true;
}

#[tokio::test]
async fn server_admins_see_every_replica_alive_and_members_do_not() {
    let a = TestServer::start_with(replica).await;
    let url = crate::harness::cluster().url(&a.metadata_db());
    let b = TestServer::start_with(move |c| {
        replica(c);
        c.metadata.url = Some(Secret::new(url));
    })
    .await;
    let (password, ws) = bootstrap(&a);
    let replicas_url = format!("/console/w/{ws}/replicas");
    let link = format!("href=\"{replicas_url}\"");

    // The administrator, signed in through replica A.
    let mut admin = Browser::new(&a);
    let r = admin
        .sign_in(pgfleet::config::DEFAULT_ADMIN_EMAIL, &password, "/console")
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let projects = admin.get(&format!("/console/w/{ws}/projects")).await;
    assert_eq!(projects.status, StatusCode::OK, "{}", projects.body);
    assert!(projects.body.contains(&link), "{}", projects.body);
    let page = admin.get(&replicas_url).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.assert_security_headers();
    assert_eq!(
        page.body.matches("data-testid=\"replica-row\"").count(),
        2,
        "{}",
        page.body
    );
    for s in [&a, &b] {
        let id = s.services().replica_id();
        assert!(page.body.contains(id), "{id} missing:\n{}", page.body);
        let address = s.running.as_ref().unwrap().addr.to_string();
        assert!(page.body.contains(&address), "{address}:\n{}", page.body);
    }
    assert_eq!(
        page.body
            .matches("<span class=\"badge\">alive</span>")
            .count(),
        2,
        "{}",
        page.body
    );
    assert!(page.body.contains(env!("CARGO_PKG_VERSION")));
    assert!(page.body.contains("aria-current=\"page\">Replicas</a>"));

    // A plain member (created by the administrator): no link, and the page is refused.
    let csrf = projects.input("csrf_token");
    let r = admin
        .post(
            &format!("/console/w/{ws}/members/users"),
            &[
                ("csrf_token", csrf.as_str()),
                ("email", "dave@example.com"),
                ("password", "dave-initial-pw"),
                ("role", "member"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let mut dave = Browser::new(&b);
    let r = dave
        .sign_in("dave@example.com", "dave-initial-pw", "/console")
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let projects = dave.get(&format!("/console/w/{ws}/projects")).await;
    assert_eq!(projects.status, StatusCode::OK, "{}", projects.body);
    assert!(!projects.body.contains(&link), "{}", projects.body);
    let page = dave.get(&replicas_url).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(
        !page.body.contains(a.services().replica_id()),
        "{}",
        page.body
    );
    b.stop().await;
    a.stop().await;
}
