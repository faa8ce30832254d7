//! The web console over real HTTP, as a browser without JavaScript uses it: sign-in lands on
//! the console, projects (create, list, rename, delete with a typed name), a database's
//! connections (the secret shown once beside its `prisma+postgres://` string and endpoint,
//! rotate, delete), backups, service tokens, CSRF, workspace membership, members (users
//! created by an administrator, added and removed; refusals for non-admins), OAuth apps in
//! the console, the status fragment and pagination.

use reqwest::StatusCode;

use crate::browser::{bootstrap, unescape, Browser, Page};
use crate::harness::TestServer;

#[tokio::test]
async fn console_flows_without_javascript() {
    let s = TestServer::start().await;
    let (password, ws) = bootstrap(&s);
    let mut b = Browser::new(&s);

    // Not signed in: to the sign-in page, which comes back to the console by default.
    let r = b.get(&format!("/console/w/{ws}/projects")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        r.redirect_to().starts_with("/login?next="),
        "{}",
        r.redirect_to()
    );
    let login = b.get("/login").await;
    assert_eq!(login.input("next"), "/console");
    let csrf = login.input("csrf_token");
    let r = b
        .post(
            "/login",
            &[
                ("csrf_token", &csrf),
                ("next", "/console"),
                ("email", "admin@pgfleet.localhost"),
                ("password", &password),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.redirect_to(), "/console");
    let r = b.get("/console").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let projects_url = format!("/console/w/{ws}/projects");
    assert_eq!(r.redirect_to(), projects_url);
    // The switcher's form.
    let r = b.get(&format!("/console/switch?workspace_id={ws}")).await;
    assert_eq!(r.redirect_to(), projects_url);

    let page = b.get(&projects_url).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.assert_security_headers();
    for needle in [
        "action=\"/console/switch\"",
        ">Service tokens</a>",
        &format!("href=\"/console/w/{ws}/apps\""),
        &format!("href=\"/console/w/{ws}/members\""),
        "action=\"/logout\"",
        "<label for=\"project_name\">",
        "<label for=\"project_region\">",
        "value=\"us-east-1\"",
    ] {
        assert!(
            page.body.contains(needle),
            "{needle} missing:\n{}",
            page.body
        );
    }
    let csrf = page.input("csrf_token");

    // CSRF: missing or wrong token → 403, nothing created.
    let r = b
        .post(&projects_url, &[("name", "nope"), ("region", "us-east-1")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = b
        .post(
            &projects_url,
            &[
                ("csrf_token", "wrong"),
                ("name", "nope"),
                ("region", "us-east-1"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // A domain error is shown on the page with the form kept.
    let r = b
        .post(
            &projects_url,
            &[
                ("csrf_token", &csrf),
                ("name", "shop"),
                ("region", "nowhere-1"),
            ],
        )
        .await;
    assert!(r.status.is_client_error(), "{}", r.status);
    assert!(r.body.contains("class=\"alert error\""), "{}", r.body);
    assert!(r.body.contains("value=\"shop\""));

    // Create a project: 303 to its page; it is listed.
    let r = b
        .post(
            &projects_url,
            &[
                ("csrf_token", &csrf),
                ("name", "shop"),
                ("region", "us-east-1"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let project_url = r.redirect_to().to_string();
    assert!(project_url.starts_with(&format!("{projects_url}/")));
    let list = b.get(&projects_url).await;
    assert!(list.body.contains(">shop</a>"), "{}", list.body);
    assert!(!list.body.contains("nope"));

    let project = b.get(&project_url).await;
    assert_eq!(project.status, StatusCode::OK, "{}", project.body);
    assert_eq!(project.testid("database-status").as_deref(), Some("ready"));
    let db_id = project.id_after(&format!("/console/w/{ws}/databases/"));
    let db_url = format!("/console/w/{ws}/databases/{db_id}");

    // A connection: the secret is shown once.
    let r = b
        .post(
            &format!("{db_url}/connections"),
            &[("csrf_token", &csrf), ("name", "app")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.redirect_to(), db_url);
    let db = b.get(&db_url).await;
    assert_eq!(db.status, StatusCode::OK, "{}", db.body);
    db.assert_security_headers();
    let first = db.testid("secret").expect("secret shown");
    assert!(first.starts_with("postgres"), "{first}");
    assert!(db.body.contains("data-copy=\"flash_secret\""));
    assert!(db.body.contains("<script src=\"/console/console.js\""));
    // Its prisma+postgres string beside it, once, with the hint for Prisma Client.
    let accel = db
        .testid("secret-accelerate")
        .expect("accelerate string shown");
    assert!(accel.starts_with("prisma+postgres://"), "{accel}");
    assert!(accel.contains("/?api_key="), "{accel}");
    assert!(db.body.contains("data-copy=\"flash_accelerate\""));
    assert!(db.body.contains("id=\"flash_show_accelerate\""));
    assert!(db.body.contains("new PrismaClient({ accelerateUrl })"));
    let key = accel.rsplit("api_key=").next().unwrap_or_default();
    assert!(key.len() >= 16, "{accel}");
    assert_eq!(db.body.matches(key).count(), 1, "{}", db.body);
    let again = b.get(&db_url).await;
    assert!(again.testid("secret").is_none(), "shown twice");
    assert!(!again.body.contains(&first));
    assert!(again.testid("secret-accelerate").is_none(), "shown twice");
    assert!(!again.body.contains(key));
    // The connection's row shows the accelerate endpoint (host:port) where pooled is shown.
    let accel_port = s.running.as_ref().unwrap().accelerate_addr.unwrap().port();
    let endpoint = again
        .testid("connection-accelerate")
        .expect("accelerate endpoint listed");
    assert!(endpoint.ends_with(&format!(":{accel_port}")), "{endpoint}");
    assert!(accel.contains(&endpoint), "{accel} vs {endpoint}");
    // The connection string works.
    let (client, conn) = tokio_postgres::connect(&first, crate::harness::tls_connector())
        .await
        .unwrap();
    tokio::spawn(conn);
    client.simple_query("select 1").await.unwrap();
    drop(client);

    // Usage: SVG charts per day for a chosen range; a bad range is explained on the page.
    assert!(
        again.body.contains("data-testid=\"chart-operations\""),
        "{}",
        again.body
    );
    assert!(again.body.contains("data-testid=\"chart-storage\""));
    assert_eq!(
        again.body.matches("<rect ").count(),
        14,
        "7 days by default, 2 charts"
    );
    let ranged = b
        .get(&format!("{db_url}?from=2025-01-01&to=2025-01-03"))
        .await;
    assert_eq!(ranged.status, StatusCode::OK);
    assert_eq!(ranged.body.matches("<rect ").count(), 6);
    assert!(ranged.body.contains("value=\"2025-01-01\""));
    let bad = b
        .get(&format!("{db_url}?from=2025-01-05&to=2025-01-03"))
        .await;
    assert_eq!(bad.status, StatusCode::OK);
    assert!(bad.body.contains("class=\"alert error\""));
    assert!(!bad.body.contains("<rect "));

    // Rotate: asks for its confirmation box; then a new secret, shown once.
    let cid = again.id_after(&format!("{db_url}/connections/"));
    assert!(
        again
            .body
            .contains("name=\"confirm\" value=\"yes\" required"),
        "{}",
        again.body
    );
    let r = b
        .post(
            &format!("{db_url}/connections/{cid}/rotate"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("Nothing was rotated"), "{}", r.body);
    assert!(r.testid("secret").is_none());
    let r = b
        .post(
            &format!("{db_url}/connections/{cid}/rotate"),
            &[("csrf_token", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = b.get(&db_url).await;
    let rotated = page.testid("secret").expect("new secret");
    assert_ne!(rotated, first);
    let rotated_accel = page
        .testid("secret-accelerate")
        .expect("new accelerate string");
    assert_ne!(rotated_accel, accel, "a new API key");
    let rotated_key = rotated_accel.rsplit("api_key=").next().unwrap_or_default();
    assert_eq!(page.body.matches(rotated_key).count(), 1);
    let again = b.get(&db_url).await;
    assert!(again.testid("secret-accelerate").is_none(), "shown twice");
    assert!(!again.body.contains(rotated_key));

    // Delete the connection.
    let r = b
        .post(
            &format!("{db_url}/connections/{cid}/delete"),
            &[("csrf_token", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let after = b.get(&db_url).await;
    assert!(!after.body.contains(&cid), "{}", after.body);

    // Back up now.
    let r = b
        .post(&format!("{db_url}/backups"), &[("csrf_token", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);

    // A second, empty database; deleted with its name typed.
    let r = b
        .post(
            &format!("{project_url}/databases"),
            &[
                ("csrf_token", &csrf),
                ("name", "scratch"),
                ("source", "empty"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let scratch_url = r.redirect_to().to_string();
    assert_ne!(scratch_url, db_url);
    let scratch = b.get(&scratch_url).await;
    assert!(scratch.body.contains("<label for=\"db_delete_confirm\">"));
    assert!(
        !b.get(&db_url).await.body.contains("db_delete_confirm"),
        "the default database cannot be deleted"
    );
    let r = b
        .post(
            &format!("{scratch_url}/delete"),
            &[("csrf_token", &csrf), ("confirm", "wrong")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = b
        .post(
            &format!("{scratch_url}/delete"),
            &[("csrf_token", &csrf), ("confirm", "scratch")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.redirect_to(), project_url);

    // Rename, then delete with a typed confirmation.
    let r = b
        .post(
            &format!("{project_url}/rename"),
            &[("csrf_token", &csrf), ("name", "shop2")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(b.get(&projects_url).await.body.contains(">shop2</a>"));
    let r = b
        .post(
            &format!("{project_url}/delete"),
            &[("csrf_token", &csrf), ("confirm", "shop")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("class=\"alert error\""));

    // Service tokens: created (value shown once, and it works), listed, deleted.
    let tokens_url = format!("/console/w/{ws}/tokens");
    let r = b
        .post(
            &tokens_url,
            &[("csrf_token", &csrf), ("name", "ci-console")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = b.get(&tokens_url).await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_security_headers();
    let token = page.testid("secret").expect("token shown");
    assert!(page.body.contains("ci-console"));
    let me = s
        .http
        .get(format!("{}/v1/me", s.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let page = b.get(&tokens_url).await;
    assert!(page.testid("secret").is_none());
    let tid = {
        let marker = "ci-console<br><code class=\"small\">";
        let start = page.body.find(marker).unwrap() + marker.len();
        let end = page.body[start..].find('<').unwrap() + start;
        page.body[start..end].to_string()
    };
    let r = b
        .post(
            &format!("{tokens_url}/{tid}/delete"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        r.body.contains("ci-console"),
        "not deleted without the box ticked"
    );
    let r = b
        .post(
            &format!("{tokens_url}/{tid}/delete"),
            &[("csrf_token", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(!b.get(&tokens_url).await.body.contains("ci-console"));
    let me = s
        .http
        .get(format!("{}/v1/me", s.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);

    // Authorized integrations: none yet; revoking an unknown one is explained on the page.
    let integrations_url = format!("/console/w/{ws}/integrations");
    let page = b.get(&integrations_url).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.assert_security_headers();
    assert!(page.body.contains("No authorized integrations."));
    let r = b
        .post(
            &format!("{integrations_url}/grant_nope/revoke"),
            &[("csrf_token", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("class=\"alert error\""), "{}", r.body);
    let r = b
        .post(&format!("{integrations_url}/grant_nope/revoke"), &[])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Project deletion with the right name.
    let r = b
        .post(
            &format!("{project_url}/delete"),
            &[("csrf_token", &csrf), ("confirm", "shop2")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.redirect_to(), projects_url);
    assert!(!b.get(&projects_url).await.body.contains("shop2"));

    // A workspace the user is not a member of: 403, for pages and forms.
    let other = "wksp_notamember";
    let r = b.get(&format!("/console/w/{other}/projects")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = b
        .post(
            &format!("/console/w/{other}/tokens"),
            &[("csrf_token", &csrf), ("name", "x")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // The copy script is served.
    let js = b.get("/console/console.js").await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));

    s.stop().await;
}

/// Signs the bootstrap admin in; returns the browser and the session's CSRF token.
pub(crate) async fn signed_in_admin(s: &TestServer) -> (Browser, String) {
    let (password, ws) = bootstrap(s);
    let mut b = Browser::new(s);
    let r = b
        .sign_in("admin@pgfleet.localhost", &password, "/console")
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = b.get(&format!("/console/w/{ws}/projects")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let csrf = page.input("csrf_token");
    (b, csrf)
}

#[tokio::test]
async fn workspaces_switch_and_membership_is_checked() {
    let s = TestServer::start().await;
    let (_, ws) = bootstrap(&s);
    let pool = s.services().store().pool();
    let now = chrono::Utc::now();
    let admin = pgfleet_storage::users::get_by_email(pool, "admin@pgfleet.localhost")
        .await
        .unwrap()
        .unwrap();
    // A second workspace the admin belongs to, and one they do not.
    let second = "wksp_consolesecond000001";
    pgfleet_storage::workspaces::insert(pool, second, "Second Workspace", now)
        .await
        .unwrap();
    pgfleet_storage::workspaces::add_member(pool, second, &admin.id, "admin", now)
        .await
        .unwrap();
    let foreign = "wksp_consoleforeign00001";
    pgfleet_storage::workspaces::insert(pool, foreign, "Foreign Workspace", now)
        .await
        .unwrap();

    let (mut b, csrf) = signed_in_admin(&s).await;
    let r = b
        .post(
            &format!("/console/w/{ws}/projects"),
            &[("csrf_token", &csrf), ("name", "first-ws-project")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);

    // The switcher lists the member workspaces only; the second one has its own projects.
    let page = b.get(&format!("/console/w/{second}/projects")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Second Workspace"));
    assert!(page.body.contains(&format!("value=\"{ws}\"")));
    assert!(!page.body.contains("Foreign Workspace"));
    assert!(!page.body.contains("first-ws-project"));
    let r = b
        .get(&format!("/console/switch?workspace_id={second}"))
        .await;
    assert_eq!(
        r.redirect_to(),
        format!("/console/w/{second}/projects").as_str()
    );

    // Transfer a project to the second workspace with a token of that workspace (made here).
    let r = b
        .post(
            &format!("/console/w/{second}/tokens"),
            &[("csrf_token", &csrf), ("name", "receive")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let token = b
        .get(&format!("/console/w/{second}/tokens"))
        .await
        .testid("secret")
        .unwrap();
    let list = b.get(&format!("/console/w/{ws}/projects")).await;
    let moved = list.id_after(&format!("/console/w/{ws}/projects/"));
    let r = b
        .post(
            &format!("/console/w/{ws}/projects/{moved}/transfer"),
            &[("csrf_token", &csrf), ("recipient_token", "pgfst_wrong")],
        )
        .await;
    assert!(r.status.is_client_error());
    assert!(r.body.contains("class=\"alert error\""), "{}", r.body);
    let r = b
        .post(
            &format!("/console/w/{ws}/projects/{moved}/transfer"),
            &[("csrf_token", &csrf), ("recipient_token", &token)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(!b
        .get(&format!("/console/w/{ws}/projects"))
        .await
        .body
        .contains("first-ws-project"));
    assert!(b
        .get(&format!("/console/w/{second}/projects"))
        .await
        .body
        .contains("first-ws-project"));
    let r = b
        .post(
            &format!("/console/w/{ws}/projects"),
            &[("csrf_token", &csrf), ("name", "stays-here")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);

    // A real workspace the user is not a member of: 403 for pages and forms, nothing created.
    let r = b.get(&format!("/console/w/{foreign}/projects")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!r.body.contains("Foreign Workspace"));
    let r = b
        .post(
            &format!("/console/w/{foreign}/projects"),
            &[("csrf_token", &csrf), ("name", "intruder")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = b
        .post(
            &format!("/console/w/{foreign}/tokens"),
            &[("csrf_token", &csrf), ("name", "intruder")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM projects WHERE workspace_id = $1")
        .bind(foreign)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
    // Another workspace's project through a member workspace's URL: not found.
    let project = b
        .get(&format!("/console/w/{ws}/projects"))
        .await
        .id_after(&format!("/console/w/{ws}/projects/"));
    let r = b
        .get(&format!("/console/w/{second}/projects/{project}"))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    s.stop().await;
}

/// Signs `email` in with `password` in a fresh browser.
/// The id of the user with this e-mail.
async fn user_id(s: &TestServer, email: &str) -> String {
    pgfleet_storage::users::get_by_email(s.services().store().pool(), email)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no user {email}"))
        .id
}

async fn sign_in(s: &TestServer, email: &str, password: &str) -> (Browser, Page) {
    let mut b = Browser::new(s);
    let r = b.sign_in(email, password, "/console").await;
    (b, r)
}

#[tokio::test]
async fn members_are_managed_by_admins_and_new_users_sign_in() {
    let s = TestServer::start().await;
    let (_, ws) = bootstrap(&s);
    let members_url = format!("/console/w/{ws}/members");
    let (mut admin, csrf) = signed_in_admin(&s).await;

    let page = admin.get(&members_url).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.assert_security_headers();
    for needle in [
        "admin@pgfleet.localhost",
        "<label for=\"member_email\">",
        "<label for=\"new_email\">",
        "<label for=\"new_password\">",
        "Create user</button>",
    ] {
        assert!(
            page.body.contains(needle),
            "{needle} missing:\n{}",
            page.body
        );
    }

    // A user with a generated password: shown once on the members page.
    let create = format!("{members_url}/users");
    let r = admin
        .post(
            &create,
            &[
                ("csrf_token", &csrf),
                ("email", "bob@example.com"),
                ("role", "member"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = admin.get(&members_url).await;
    let bob_password = page
        .testid("secret")
        .expect("the generated password is shown");
    assert!(bob_password.len() >= 20, "{bob_password}");
    assert!(page.body.contains("bob@example.com"));
    assert_eq!(
        admin.get(&members_url).await.testid("secret"),
        None,
        "shown once"
    );

    // Refusals are shown on the page: a short password, a taken e-mail, no CSRF token.
    let r = admin
        .post(
            &create,
            &[
                ("csrf_token", &csrf),
                ("email", "carol@example.com"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("class=\"alert error\""), "{}", r.body);
    assert!(r.body.contains("value=\"carol@example.com\""));
    let r = admin
        .post(
            &create,
            &[("csrf_token", &csrf), ("email", "BOB@example.com")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body.contains("already exists"), "{}", r.body);
    let r = admin.post(&create, &[("email", "eve@example.com")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // A chosen password, and a user in no workspace yet (created, then removed from this one).
    let r = admin
        .post(
            &create,
            &[
                ("csrf_token", &csrf),
                ("email", "carol@example.com"),
                ("password", "carol-initial-pw"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = admin.get(&members_url).await;
    assert_eq!(
        page.testid("secret"),
        None,
        "a chosen password is not shown"
    );
    assert!(page.body.contains("carol@example.com"), "{}", page.body);
    let carol_id = user_id(&s, "carol@example.com").await;
    let r = admin
        .post(
            &format!("{members_url}/{carol_id}/remove"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("Nothing was removed"), "{}", r.body);
    let r = admin
        .post(
            &format!("{members_url}/{carol_id}/remove"),
            &[("csrf_token", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);

    // Carol signs in (the password is hashed as sign-in expects) and has no workspace.
    let (mut carol, r) = sign_in(&s, "carol@example.com", "carol-initial-pw").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let home = carol.get("/console").await;
    assert!(home.body.contains("No workspace yet"), "{}", home.body);
    assert_eq!(carol.get(&members_url).await.status, StatusCode::FORBIDDEN);

    // Adding an existing user by e-mail; an unknown one is refused.
    let r = admin
        .post(
            &members_url,
            &[("csrf_token", &csrf), ("email", "nobody@example.com")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("There is no user"), "{}", r.body);
    let r = admin
        .post(
            &members_url,
            &[
                ("csrf_token", &csrf),
                ("email", "Carol@example.com"),
                ("role", "member"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let r = carol.get("/console").await;
    assert_eq!(
        r.redirect_to(),
        format!("/console/w/{ws}/projects").as_str()
    );

    // Bob, a plain member: sees the members, may not change them nor create users.
    let (mut bob, r) = sign_in(&s, "bob@example.com", &bob_password).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = bob.get(&members_url).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("members-readonly"), "{}", page.body);
    assert!(!page.body.contains("Create user</button>"));
    let bob_csrf = page.input("csrf_token");
    let r = bob
        .post(
            &members_url,
            &[
                ("csrf_token", &bob_csrf),
                ("email", "admin@pgfleet.localhost"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(
        r.body.contains("Only an admin of this workspace"),
        "{}",
        r.body
    );
    let r = bob
        .post(
            &create,
            &[("csrf_token", &bob_csrf), ("email", "mallory@example.com")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(
        r.body
            .contains("Only a server administrator can create users"),
        "{}",
        r.body
    );
    let r = bob
        .post(
            &format!("{members_url}/{carol_id}/remove"),
            &[("csrf_token", &bob_csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);

    // The last admin cannot leave; a removed member loses access at once.
    let admin_id = user_id(&s, "admin@pgfleet.localhost").await;
    let r = admin
        .post(
            &format!("{members_url}/{admin_id}/remove"),
            &[("csrf_token", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body.contains("at least one admin"), "{}", r.body);
    let bob_id = user_id(&s, "bob@example.com").await;
    let r = admin
        .post(
            &format!("{members_url}/{bob_id}/remove"),
            &[("csrf_token", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        bob.get(&format!("/console/w/{ws}/projects")).await.status,
        StatusCode::FORBIDDEN
    );

    // More than a page of members: a "Next page" link with the services' cursor.
    let pool = s.services().store().pool();
    let now = chrono::Utc::now();
    for i in 0..101 {
        let id = format!("usr_pagemember{i:05}");
        pgfleet_storage::users::insert(pool, &id, &format!("m{i}@example.com"), None, "x", now)
            .await
            .unwrap();
        pgfleet_storage::workspaces::add_member(pool, &ws, &id, "member", now)
            .await
            .unwrap();
    }
    let first = admin.get(&members_url).await;
    assert_eq!(
        first.body.matches("data-testid=\"member-row\"").count(),
        100
    );
    let next = first
        .body
        .split("rel=\"next\"")
        .next()
        .and_then(|h| h.rsplit("href=\"").next())
        .map(|h| unescape(h.trim_end_matches("\" ")))
        .unwrap();
    assert!(
        next.starts_with(&format!("{members_url}?cursor=")),
        "{next}"
    );
    let second = admin.get(&next).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(second.body.matches("data-testid=\"member-row\"").count(), 3);
    assert!(second.body.contains("m100@example.com"));
    assert!(second
        .body
        .contains(&format!("href=\"{members_url}\">First page")));
    assert!(!second.body.contains("rel=\"next\""));
    let r = admin.get(&format!("{members_url}?cursor=garbage!")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    s.stop().await;
}

#[tokio::test]
async fn console_oauth_apps_and_status_fragment() {
    let s = TestServer::start().await;
    let (_, ws) = bootstrap(&s);
    let (mut b, csrf) = signed_in_admin(&s).await;
    let apps_url = format!("/console/w/{ws}/apps");
    assert_eq!(
        b.get("/console/apps").await.redirect_to(),
        apps_url.as_str()
    );
    let page = b.get(&apps_url).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("aria-current=\"page\">OAuth apps</a>"),
        "{}",
        page.body
    );

    let r = b
        .post(
            &apps_url,
            &[
                ("csrf_token", &csrf),
                ("name", "Server app"),
                ("redirect_uris", "https://app.example/cb"),
                ("client_type", "confidential"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let app_url = r.redirect_to().to_string();
    assert!(
        app_url.starts_with(&format!("{apps_url}/itgr_")),
        "{app_url}"
    );
    let page = b.get(&app_url).await;
    let secret = page
        .testid("secret")
        .expect("the client secret is shown once");
    assert!(!secret.is_empty());
    assert_eq!(b.get(&app_url).await.testid("secret"), None);
    // Edit, a refused edit, delete.
    let r = b
        .post(
            &app_url,
            &[
                ("csrf_token", &csrf),
                ("name", "Renamed"),
                ("redirect_uris", "https://app.example/cb2"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = b.get(&app_url).await;
    assert!(page.body.contains("<h1>Renamed</h1>"), "{}", page.body);
    assert!(page.body.contains("https://app.example/cb2"));
    let r = b
        .post(
            &app_url,
            &[
                ("csrf_token", &csrf),
                ("name", "Renamed"),
                ("redirect_uris", "not a url"),
            ],
        )
        .await;
    assert!(r.status.is_client_error(), "{}", r.status);
    assert!(r.body.contains("class=\"alert error\""), "{}", r.body);
    let r = b
        .post(&format!("{app_url}/delete"), &[("csrf_token", &csrf)])
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "not without its box ticked"
    );
    assert!(r.body.contains("Nothing was deleted"), "{}", r.body);
    let r = b
        .post(
            &format!("{app_url}/delete"),
            &[("csrf_token", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.redirect_to(), apps_url.as_str());
    assert_eq!(b.get(&app_url).await.status, StatusCode::NOT_FOUND);

    // The status fragment of a database.
    let project = b.get(&format!("/console/w/{ws}/projects")).await;
    let r = b
        .post(
            &format!("/console/w/{ws}/projects"),
            &[("csrf_token", &csrf), ("name", "status-shop")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", project.body);
    let page = b.get(r.redirect_to()).await;
    let db = page.id_after(&format!("/console/w/{ws}/databases/"));
    let status = b
        .get(&format!("/console/w/{ws}/databases/{db}/status"))
        .await;
    assert_eq!(status.status, StatusCode::OK);
    assert_eq!(status.body, "ready");
    assert!(status.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    s.stop().await;
}

/// A server administrator makes a member a server administrator (who can then create users)
/// and takes it back; nobody else can; the last one cannot be removed.
#[tokio::test]
async fn server_administrators_are_made_and_unmade_on_the_members_page() {
    let s = TestServer::start().await;
    let (_, ws) = bootstrap(&s);
    let members_url = format!("/console/w/{ws}/members");
    let (mut admin, csrf) = signed_in_admin(&s).await;
    let r = admin
        .post(
            &format!("{members_url}/users"),
            &[
                ("csrf_token", &csrf),
                ("email", "bob@example.com"),
                ("password", "bob-initial-pw"),
                ("role", "member"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let admin_id = user_id(&s, "admin@pgfleet.localhost").await;
    let bob_id = user_id(&s, "bob@example.com").await;
    let set = |who: &str| format!("{members_url}/{who}/server-admin");
    let badges = |p: &Page| {
        p.body
            .matches("<span class=\"badge\">server admin</span>")
            .count()
    };

    // Bob, a plain member, sees who administers the server but cannot change it.
    let (mut bob, _) = sign_in(&s, "bob@example.com", "bob-initial-pw").await;
    let page = bob.get(&members_url).await;
    assert_eq!(badges(&page), 1, "{}", page.body);
    assert!(!page.body.contains("Make server admin"));
    assert!(!page.body.contains("Create user</button>"));
    let bob_csrf = page.input("csrf_token");
    let r = bob
        .post(
            &set(&bob_id),
            &[("csrf_token", &bob_csrf), ("admin", "true")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);

    // The admin makes Bob one; Bob can now create users and manage server admins.
    let page = admin.get(&members_url).await;
    assert!(page
        .body
        .contains("aria-label=\"Make bob@example.com a server administrator\""));
    let r = admin
        .post(&set(&bob_id), &[("csrf_token", &csrf), ("admin", "maybe")])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = admin
        .post(&set(&bob_id), &[("csrf_token", &csrf), ("admin", "true")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = bob.get(&members_url).await;
    assert_eq!(badges(&page), 2, "{}", page.body);
    assert!(page.body.contains("Create user</button>"));

    // Bob takes it from the first admin, then cannot drop the last one (himself).
    let r = bob
        .post(
            &set(&admin_id),
            &[("csrf_token", &bob_csrf), ("admin", "false")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let r = admin
        .post(&set(&bob_id), &[("csrf_token", &csrf), ("admin", "false")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = bob
        .post(
            &set(&bob_id),
            &[("csrf_token", &bob_csrf), ("admin", "false")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body.contains("at least one administrator"), "{}", r.body);
    s.stop().await;
}
