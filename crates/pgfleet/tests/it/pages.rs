//! The browser pages over real HTTP, as a browser without JavaScript uses them: sign-in with
//! CSRF and throttling, security headers, OAuth app management, and the authorization
//! endpoint's error page, redirects and consent; the periodic sweep of expired sessions and
//! dead OAuth codes and refresh tokens.

use std::collections::HashMap;

use reqwest::StatusCode;

use crate::browser::{bootstrap, enc, Browser};
use crate::harness::TestServer;

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const SIGN_IN_FAILED: &str = "Email or password is wrong, or the account is temporarily locked";
/// RFC 7636's example challenge: any 43 base64url characters pass `/authorize`.
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const REDIRECT: &str = "http://127.0.0.1:9/callback";

fn query_of(url: &str) -> HashMap<String, String> {
    let u = url::Url::parse(url).unwrap();
    u.query_pairs().into_owned().collect()
}

fn admin_password(s: &TestServer) -> String {
    bootstrap(s).0
}

fn workspace_id(s: &TestServer) -> String {
    bootstrap(s).1
}

/// A signed-in browser (the bootstrap admin).
async fn admin(s: &TestServer) -> Browser {
    let mut b = Browser::new(s);
    let r = b
        .sign_in("admin@pgfleet.localhost", &admin_password(s), "/apps")
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(b.signed_in());
    b
}

#[tokio::test]
async fn sign_in_csrf_headers_and_sign_out() {
    let s = TestServer::start().await;
    let password = admin_password(&s);
    let mut b = Browser::new(&s);

    let page = b.get("/login").await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_security_headers();
    assert_eq!(page.headers["content-security-policy"], CSP);
    assert!(page.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    for needle in [
        "name=\"email\"",
        "name=\"password\"",
        "<label for=\"email\">Email</label>",
        "<label for=\"password\">Password</label>",
        ">Sign in</button>",
        "name=\"next\" value=\"/console\"",
    ] {
        assert!(
            page.body.contains(needle),
            "{needle} missing:\n{}",
            page.body
        );
    }
    assert!(!page.body.contains("<script"));
    // Its style is one static file, so the CSP allows no inline style.
    assert!(!page.body.contains("<style"));
    assert!(page
        .body
        .contains("<link rel=\"stylesheet\" href=\"/static/pgfleet.css\">"));
    let css = b.get("/static/pgfleet.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.headers["content-type"], "text/css; charset=utf-8");
    assert_eq!(css.headers["cache-control"], "public, max-age=300");
    assert!(css.body.contains("--accent"), "{}", css.body);
    let cookie = page.set_cookie("pgfleet_csrf").unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "http public URL: {cookie}");
    let csrf = page.input("csrf_token");
    assert_eq!(b.jar["pgfleet_csrf"], csrf);
    // A second visit keeps the token (two open tabs both work).
    assert_eq!(b.get("/login").await.input("csrf_token"), csrf);

    // CSRF: missing field, wrong field, missing cookie.
    let creds = [
        ("email", "admin@pgfleet.localhost"),
        ("password", password.as_str()),
    ];
    let r = b.post("/login", &creds).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    r.assert_security_headers();
    let wrong_token = "x".repeat(43);
    let wrong = [&creds[..], &[("csrf_token", wrong_token.as_str())]].concat();
    assert_eq!(b.post("/login", &wrong).await.status, StatusCode::FORBIDDEN);
    let mut cookieless = Browser::new(&s);
    let with_token = [&creds[..], &[("csrf_token", csrf.as_str())]].concat();
    assert_eq!(
        cookieless.post("/login", &with_token).await.status,
        StatusCode::FORBIDDEN
    );
    assert!(!b.signed_in() && !cookieless.signed_in());

    // Wrong password and unknown e-mail: 401, the same words, no session.
    for (email, pw) in [
        ("admin@pgfleet.localhost", "wrong"),
        ("nobody@localhost", "wrong"),
    ] {
        let r = b.sign_in(email, pw, "/apps").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
        assert!(r.body.contains(SIGN_IN_FAILED), "{}", r.body);
        assert!(r.set_cookie("pgfleet_session").is_none());
        assert!(
            r.body.contains(&format!("value=\"{email}\"")),
            "e-mail kept"
        );
        assert!(!r.body.contains("value=\"wrong\""), "password never echoed");
    }
    assert!(!b.signed_in());

    // Not signed in: the apps page sends to /login and back.
    let r = b.get("/apps").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/login?next=%2Fapps"));

    // Success: 303 to next, session cookie.
    let r = b
        .sign_in("admin@pgfleet.localhost", &password, "/apps/itgr_nope")
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), Some("/apps/itgr_nope"));
    let cookie = r.set_cookie("pgfleet_session").unwrap();
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let pool = s.services().store().pool();
    let (sessions,): (i64,) = sqlx::query_as("SELECT count(*) FROM sessions")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(sessions, 1);
    let token = b.jar["pgfleet_session"].clone();
    let (stored,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM sessions WHERE id_hash = convert_to($1, 'UTF8')")
            .bind(&token)
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(stored, 0, "only the hash of the session is stored");
    let apps_url = format!("/console/w/{}/apps", workspace_id(&s));
    let apps = b.get(&apps_url).await;
    assert_eq!(apps.status, StatusCode::OK, "{}", apps.body);
    apps.assert_security_headers();
    assert!(apps.body.contains("admin@pgfleet.localhost"));

    // `next` never leaves the site.
    for evil in [
        "https://evil.example",
        "//evil.example",
        "/\\evil.example",
        "evil.example",
    ] {
        let mut other = Browser::new(&s);
        let r = other
            .sign_in("admin@pgfleet.localhost", &password, evil)
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(r.location(), Some("/console"), "next={evil}");
    }

    // Sign out: CSRF checked, then the session is gone.
    let session_csrf = apps.input("csrf_token");
    assert_eq!(b.post("/logout", &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        b.post("/logout", &[("csrf_token", "nope")]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        b.get(&apps_url).await.status,
        StatusCode::OK,
        "still signed in"
    );
    let r = b.post("/logout", &[("csrf_token", &session_csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/login"));
    assert!(r
        .set_cookie("pgfleet_session")
        .unwrap()
        .contains("Max-Age=0"));
    let mut replay = Browser::new(&s);
    replay.jar.insert("pgfleet_session".into(), token);
    assert_eq!(
        replay.get(&apps_url).await.status,
        StatusCode::SEE_OTHER,
        "the old cookie is dead"
    );
    s.stop().await;
}

#[tokio::test]
async fn sign_in_is_throttled() {
    let s = TestServer::start().await;
    let password = admin_password(&s);
    let pool = s.services().store().pool().clone();
    let lock_secs = || async {
        let (failed, secs): (i32, Option<f64>) = sqlx::query_as(
            "SELECT failed_logins, extract(epoch FROM locked_until - now())::float8 FROM users
              WHERE email = 'admin@pgfleet.localhost'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        (failed, secs)
    };
    let expire_lock = || async {
        sqlx::query("UPDATE users SET locked_until = now() - interval '1 second'")
            .execute(&pool)
            .await
            .unwrap();
    };
    let mut b = Browser::new(&s);
    for _ in 0..5 {
        let r = b.sign_in("admin@pgfleet.localhost", "wrong", "/apps").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let (failed, secs) = lock_secs().await;
    assert_eq!(failed, 5);
    assert!(secs.is_some_and(|s| (50.0..=61.0).contains(&s)), "{secs:?}");
    // Locked: the right password is refused with the same words.
    let r = b
        .sign_in("admin@pgfleet.localhost", &password, "/apps")
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains(SIGN_IN_FAILED));
    assert!(!b.signed_in());
    assert_eq!(lock_secs().await.0, 5, "attempts while locked do not count");

    // Once the lock has passed, the right password works and resets the count.
    expire_lock().await;
    let r = b
        .sign_in("admin@pgfleet.localhost", &password, "/apps")
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(lock_secs().await, (0, None));

    // Failures after a lock double it: 5 → 1 min, 6 → 2 min. (From another address: this
    // one has failed six times, and an address is blocked at its tenth failure.)
    let mut b = Browser::from_addr(&s, "127.0.0.2".parse().unwrap());
    for _ in 0..5 {
        b.sign_in("admin@pgfleet.localhost", "wrong", "/apps").await;
    }
    expire_lock().await;
    let r = b.sign_in("admin@pgfleet.localhost", "wrong", "/apps").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let (failed, secs) = lock_secs().await;
    assert_eq!(failed, 6);
    assert!(
        secs.is_some_and(|s| (110.0..=121.0).contains(&s)),
        "{secs:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn apps_are_created_edited_and_deleted_through_the_pages() {
    let s = TestServer::start().await;
    let ws = workspace_id(&s);
    let mut b = admin(&s).await;
    let console = format!("/console/w/{ws}/apps");

    // The older address is the console's page of the user's workspace.
    let r = b.get("/apps").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some(console.as_str()));
    let page = b.get(&console).await;
    assert_eq!(page.status, StatusCode::OK);
    for needle in [
        "name=\"name\"",
        "name=\"description\"",
        "<textarea id=\"app_redirect_uris\" name=\"redirect_uris\"",
        "name=\"client_type\" value=\"public\"",
        "name=\"client_type\" value=\"confidential\"",
        ">Create app</button>",
        "No apps yet.",
    ] {
        assert!(
            page.body.contains(needle),
            "{needle} missing:\n{}",
            page.body
        );
    }
    let csrf = page.input("csrf_token");

    let form = |name: &str, kind: &str, csrf: &str| -> Vec<(String, String)> {
        [
            ("csrf_token", csrf),
            ("name", name),
            ("description", "made by a test"),
            (
                "redirect_uris",
                "http://127.0.0.1:9/cb\r\n\r\nhttps://app.example/cb\n",
            ),
            ("client_type", kind),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };
    // A public app: 303 to its page, which shows the id and no secret.
    let r = b
        .post_owned(&console, &form("CLI app", "public", &csrf))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let public_path = r.location().unwrap().to_string();
    assert!(
        public_path.starts_with(&format!("{console}/itgr_")),
        "{public_path}"
    );
    let public = b.get(&public_path).await;
    assert_eq!(public.status, StatusCode::OK, "{}", public.body);
    let public_id = public.testid("client-id").unwrap();
    assert_eq!(format!("{console}/{public_id}"), public_path);
    assert!(public.testid("secret").is_none());
    // The older address of an app is its console page.
    let r = b.get(&format!("/apps/{public_id}")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some(public_path.as_str()));
    let r = b.get("/apps/itgr_nope").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // A form still posted to an older address is sent on with its method and body.
    let r = b
        .post(
            "/apps",
            &[("csrf_token", csrf.as_str()), ("workspace_id", ws.as_str())],
        )
        .await;
    assert_eq!(r.status, StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(r.location(), Some(console.as_str()));
    let r = b.post(&format!("/apps/{public_id}"), &[]).await;
    assert_eq!(r.status, StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(r.location(), Some(public_path.as_str()));
    let r = b.post(&format!("/apps/{public_id}/delete"), &[]).await;
    assert_eq!(r.status, StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(r.location(), Some(format!("{public_path}/delete").as_str()));

    // A confidential app: its secret is shown once.
    let r = b
        .post_owned(&console, &form("Server app", "confidential", &csrf))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let flash = r.set_cookie("pgfleet_console_flash").unwrap();
    assert!(
        flash.contains("HttpOnly") && flash.contains("Path=/console"),
        "{flash}"
    );
    let path = r.location().unwrap().to_string();
    let shown = b.get(&path).await;
    assert_eq!(shown.status, StatusCode::OK);
    let secret_id = shown.testid("client-id").unwrap();
    let secret = shown.testid("secret").unwrap();
    assert!(secret.starts_with("pgfcs_"), "{secret}");
    assert!(shown.body.contains("shown only once"));
    assert!(!flash.contains(&secret), "the secret travels sealed");
    let again = b.get(&path).await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.testid("secret").is_none(), "shown once");
    assert!(!again.body.contains(&secret));

    let list = b.get(&console).await;
    assert!(list.body.contains(&public_id) && list.body.contains(&secret_id));
    assert!(
        list.body.contains("http://127.0.0.1:9/cb") && list.body.contains("https://app.example/cb")
    );
    assert!(!list.body.contains(&secret), "the list never shows secrets");
    // The stored rows (the services show apps without who created them).
    let apps = pgfleet_storage::oauth::list_clients(s.services().store().pool(), &ws)
        .await
        .unwrap();
    let stored = apps.iter().find(|a| a.id == secret_id).unwrap();
    assert_eq!(stored.client_type, "confidential");
    assert_eq!(
        stored.redirect_uris,
        ["http://127.0.0.1:9/cb", "https://app.example/cb"]
    );
    assert!(stored.created_by_user_id.is_some());

    // Refusals: CSRF, no redirect URI (message and hint shown), a workspace not the user's.
    let mut bad = form("x", "public", "wrong");
    assert_eq!(
        b.post_owned(&console, &bad).await.status,
        StatusCode::FORBIDDEN
    );
    bad = form("Kept name", "public", &csrf);
    bad[3].1 = String::new();
    let r = b.post_owned(&console, &bad).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(
        r.body.contains("At least one redirect URI is required"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("value=\"Kept name\""),
        "the form keeps what was typed"
    );
    bad = form("x", "public", &csrf);
    bad[3].1 = "not a uri".to_string();
    let r = b.post_owned(&console, &bad).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body.contains("app.example/callback"),
        "the hint: {}",
        r.body
    );
    let r = b
        .post_owned("/console/w/wksp_not_mine/apps", &form("x", "public", &csrf))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = b.post_owned(&console, &form("x", "weird", &csrf)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Edit.
    let edit = [
        ("csrf_token", csrf.as_str()),
        ("name", "Renamed <app>"),
        ("description", ""),
        ("redirect_uris", "https://new.example/cb"),
    ];
    let r = b.post(&public_path, &edit[1..]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no CSRF token");
    let r = b.post(&public_path, &edit).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), Some(public_path.as_str()));
    let page = b.get(&public_path).await;
    assert!(
        page.body.contains("Renamed &#60;app&#62;") || page.body.contains("Renamed &lt;app&gt;"),
        "escaped: {}",
        page.body
    );
    assert!(!page.body.contains("Renamed <app>"));
    assert!(page.body.contains("https://new.example/cb"));
    let r = b
        .post(
            &public_path,
            &[
                ("csrf_token", csrf.as_str()),
                ("name", "x"),
                ("redirect_uris", ""),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Delete.
    let del = format!("{public_path}/delete");
    assert_eq!(b.post(&del, &[]).await.status, StatusCode::FORBIDDEN);
    let r = b
        .post(&del, &[("csrf_token", &csrf), ("confirm", "yes")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some(console.as_str()));
    let gone = b.get(&public_path).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    gone.assert_security_headers();
    assert!(!b.get(&console).await.body.contains(&public_id));

    // Another browser without a session is sent to sign in, by the old address too.
    let mut anon = Browser::new(&s);
    let r = anon.get(&path).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        r.location().is_some_and(|l| l.starts_with("/login?next=")),
        "{:?}",
        r.location()
    );
    let old = format!("/apps/{secret_id}");
    let r = anon.get(&old).await;
    assert_eq!(
        r.location(),
        Some(format!("/login?next={}", enc(&old)).as_str())
    );
    s.stop().await;
}

/// The authorize URL of a test client.
fn authorize_path(client_id: &str, redirect_uri: &str, extra: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", "st-123")
        .append_pair("code_challenge", CHALLENGE);
    let mut method = "S256";
    let mut scope = "workspace:admin offline_access";
    for (k, v) in extra {
        match *k {
            "code_challenge_method" => method = v,
            "scope" => scope = v,
            _ => {
                q.append_pair(k, v);
            }
        }
    }
    q.append_pair("code_challenge_method", method)
        .append_pair("scope", scope);
    format!("/authorize?{}", q.finish())
}

#[tokio::test]
async fn authorize_error_pages_redirects_and_consent() {
    let s = TestServer::start().await;
    let ws = workspace_id(&s);
    // Made as `pgfleet admin apps create` makes one: by the local operator.
    let operator = s.services().access().local_operator_with_data_dir(&ws);
    let client = s
        .services()
        .oauth()
        .client_create(
            &operator.workspace_wide_write().unwrap(),
            "Test CLI",
            Some("A command-line tool"),
            &[REDIRECT.to_string()],
            false,
        )
        .await
        .unwrap()
        .client;
    let mut anon = Browser::new(&s);

    // Never redirected: unknown client, unregistered redirect URI, no client at all.
    for path in [
        authorize_path("itgr_unknown", REDIRECT, &[]),
        authorize_path(&client.id, "http://127.0.0.1:9/other", &[]),
        "/authorize".to_string(),
        format!(
            "{}&redirect_uri=x",
            authorize_path(&client.id, REDIRECT, &[])
        ),
    ] {
        let r = anon.get(&path).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.body);
        assert_eq!(r.location(), None, "{path}");
        assert!(r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert!(r.body.contains("cannot be used"), "{}", r.body);
        r.assert_security_headers();
    }

    // Redirected back with an error and the state.
    for (extra, error) in [
        (("code_challenge_method", "plain"), "invalid_request"),
        (("scope", "workspace:admin nonsense"), "invalid_scope"),
        (("response_type", "token"), "unsupported_response_type"),
    ] {
        let path = if extra.0 == "response_type" {
            authorize_path(&client.id, REDIRECT, &[])
                .replace("response_type=code", "response_type=token")
        } else {
            authorize_path(&client.id, REDIRECT, &[extra])
        };
        let r = anon.get(&path).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}: {}", r.body);
        let loc = r.location().unwrap();
        assert!(loc.starts_with(REDIRECT), "{loc}");
        let q = query_of(loc);
        assert_eq!(q["error"], error, "{loc}");
        assert_eq!(q["state"], "st-123");
    }

    // Signed out: to /login, and back to the same authorize URL after signing in.
    let path = authorize_path(&client.id, REDIRECT, &[("utm_source", "test")]);
    let r = anon.get(&path).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let loc = r.location().unwrap().to_string();
    assert!(loc.starts_with("/login?next="), "{loc}");
    let next = query_of(&format!("http://x{loc}"))["next"].clone();
    assert_eq!(next, path);
    let r = anon
        .sign_in("admin@pgfleet.localhost", &admin_password(&s), &next)
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), Some(path.as_str()));

    // Consent.
    let mut b = anon;
    let consent = b.get(&path).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.body);
    consent.assert_security_headers();
    let csp = consent.headers["content-security-policy"].to_str().unwrap();
    assert_eq!(
        csp,
        "default-src 'none'; style-src 'self'; img-src 'self' data:; \
         frame-ancestors 'none'; base-uri 'none'",
        "no form-action: Chromium would apply it to the client's own redirects after the 303"
    );
    for needle in [
        "Test CLI",
        "A command-line tool",
        "Manage everything in the workspace",
        "Stay signed in",
        "<label for=\"workspace_id\">Workspace</label>",
        "<select id=\"workspace_id\" name=\"workspace_id\">",
        &format!("<option value=\"{ws}\">Default Workspace"),
        "<button type=\"submit\" name=\"decision\" value=\"approve\" class=\"primary\">Allow</button>",
        "<button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button>",
    ] {
        assert!(consent.body.contains(needle), "{needle} missing:\n{}", consent.body);
    }
    assert_eq!(consent.input("client_id"), client.id);
    assert_eq!(consent.input("redirect_uri"), REDIRECT);
    assert_eq!(consent.input("scope"), "offline_access workspace:admin");
    assert_eq!(consent.input("state"), "st-123");
    assert_eq!(consent.input("code_challenge"), CHALLENGE);
    assert_eq!(consent.input("code_challenge_method"), "S256");
    assert_eq!(consent.input("response_type"), "code");
    let fields: Vec<(String, String)> = [
        "csrf_token",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
        "response_type",
    ]
    .iter()
    .map(|k| (k.to_string(), consent.input(k)))
    .collect();
    let with = |more: &[(&str, &str)]| {
        let mut f = fields.clone();
        for (k, v) in more {
            f.retain(|(fk, _)| fk != k);
            f.push((k.to_string(), v.to_string()));
        }
        f
    };

    // CSRF, and a workspace the user is not in.
    let r = b
        .post_owned(
            "/authorize",
            &with(&[
                ("csrf_token", "bad"),
                ("decision", "approve"),
                ("workspace_id", &ws),
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.location(), None);
    pgfleet_storage::workspaces::insert(
        s.services().store().pool(),
        "wksp_other",
        "Other",
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let r = b
        .post_owned(
            "/authorize",
            &with(&[("decision", "approve"), ("workspace_id", "wksp_other")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(r.location(), None);
    // Tampered hidden fields are checked again.
    let r = b
        .post_owned(
            "/authorize",
            &with(&[
                ("decision", "approve"),
                ("workspace_id", &ws),
                ("redirect_uri", "https://evil.example/cb"),
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.location(), None);

    // Allow: 303 to the redirect URI with a code and the state.
    let r = b
        .post_owned(
            "/authorize",
            &with(&[("decision", "approve"), ("workspace_id", &ws)]),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let loc = r.location().unwrap();
    assert!(loc.starts_with(&format!("{REDIRECT}?")), "{loc}");
    let q = query_of(loc);
    assert!(q.get("code").is_some_and(|c| c.len() >= 32), "{loc}");
    assert_eq!(q["state"], "st-123");
    assert!(!q.contains_key("error"));

    // Deny: 303 with error=access_denied and the state.
    let r = b
        .post_owned(
            "/authorize",
            &with(&[("decision", "deny"), ("workspace_id", &ws)]),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let q = query_of(r.location().unwrap());
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "st-123");
    assert!(!q.contains_key("code"));

    // A POST after the session ended goes to sign in, then back to the consent page.
    let csrf = b
        .get(&format!("/console/w/{ws}/apps"))
        .await
        .input("csrf_token");
    b.post("/logout", &[("csrf_token", &csrf)]).await;
    let r = b
        .post_owned(
            "/authorize",
            &with(&[("decision", "approve"), ("workspace_id", &ws)]),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let next = query_of(&format!("http://x{}", r.location().unwrap()))["next"].clone();
    assert!(next.starts_with("/authorize?"), "{next}");
    let mut expected = query_of(&format!("http://x{path}"));
    expected.remove("utm_source");
    expected.insert("scope".into(), "offline_access workspace:admin".into());
    assert_eq!(query_of(&format!("http://x{next}")), expected);
    s.stop().await;
}

/// The periodic sweep forgets expired sessions and the OAuth codes and refresh tokens that
/// can never be used again, and keeps everything still usable (or still needed for reuse
/// detection). It is called with a `now` ten days ahead, so the server's own sweeper (real
/// clock) cannot have deleted the time-based rows first.
#[tokio::test]
async fn sweep_forgets_expired_sessions_and_dead_oauth_rows() {
    let s = TestServer::start().await;
    let pool = s.services().store().pool().clone();
    let now = chrono::Utc::now() + chrono::Duration::days(10);
    let h = chrono::Duration::hours(1);
    let exec = |sql: &'static str| sqlx::query(sql);
    exec("INSERT INTO users (id, email, created_at) VALUES ('usr_sweep', 'sweep@example.com', now())")
        .execute(&pool)
        .await
        .unwrap();
    exec("INSERT INTO workspaces (id, name, created_at) VALUES ('wksp_sweep', 'sweep', now())")
        .execute(&pool)
        .await
        .unwrap();
    for (id, expires) in [("expired", now - h), ("live", now + h)] {
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at)
             VALUES ($1, 'usr_sweep', 'csrf', now(), $2)",
        )
        .bind(id.as_bytes())
        .bind(expires)
        .execute(&pool)
        .await
        .unwrap();
    }
    exec(
        "INSERT INTO oauth_clients (id, workspace_id, name, redirect_uris, client_type, created_at)
         VALUES ('itgr_sweep', 'wksp_sweep', 'sweep', ARRAY['http://127.0.0.1:9/cb'], 'public', now())",
    )
    .execute(&pool)
    .await
    .unwrap();
    // A live grant with a live and a revoked family; a revoked grant with a live family.
    exec(
        "INSERT INTO oauth_grants (id, client_id, workspace_id, user_id, scopes, created_at, revoked_at)
         VALUES ('intg_live', 'itgr_sweep', 'wksp_sweep', 'usr_sweep', ARRAY['workspace:admin'], now(), NULL),
                ('intg_gone', 'itgr_sweep', 'wksp_sweep', 'usr_sweep', ARRAY['workspace:admin'], now(), now())",
    )
    .execute(&pool)
    .await
    .unwrap();
    exec(
        "INSERT INTO oauth_families (id, grant_id, created_at, revoked_at)
         VALUES ('fam_live', 'intg_live', now(), NULL),
                ('fam_revoked', 'intg_live', now(), now()),
                ('fam_of_gone_grant', 'intg_gone', now(), NULL)",
    )
    .execute(&pool)
    .await
    .unwrap();
    // (code, expires, used by family)
    let codes = [
        ("expired_unused", now - h, None),
        ("expired_used_live", now - h, Some("fam_live")),
        ("expired_used_revoked", now - h, Some("fam_revoked")),
        ("fresh_unused", now + h, None),
    ];
    for (code, expires, family) in codes {
        sqlx::query(
            "INSERT INTO oauth_codes (code_hash, grant_id, client_id, redirect_uri, code_challenge,
                                      scopes, created_at, expires_at, used_at, family_id)
             VALUES ($1, 'intg_live', 'itgr_sweep', 'http://127.0.0.1:9/cb', 'x', ARRAY['workspace:admin'],
                     now(), $2, CASE WHEN $3::text IS NULL THEN NULL ELSE now() END, $3)",
        )
        .bind(code.as_bytes())
        .bind(expires)
        .bind(family)
        .execute(&pool)
        .await
        .unwrap();
    }
    for (token, grant, family) in [
        ("live", "intg_live", "fam_live"),
        ("revoked_family", "intg_live", "fam_revoked"),
        ("revoked_grant", "intg_gone", "fam_of_gone_grant"),
    ] {
        sqlx::query(
            "INSERT INTO oauth_refresh_tokens (token_hash, grant_id, family_id, created_at, used_at)
             VALUES ($1, $2, $3, now(), now())",
        )
        .bind(token.as_bytes())
        .bind(grant)
        .bind(family)
        .execute(&pool)
        .await
        .unwrap();
    }

    let counts = s.services().sessions().sweep_expired(now).await.unwrap();
    assert_eq!(counts.sessions, 1, "{counts:?}");
    assert_eq!(counts.oauth_codes, 2, "{counts:?}");

    let left = |table: &'static str, column: &'static str| {
        let pool = pool.clone();
        async move {
            let mut rows: Vec<(Vec<u8>,)> =
                sqlx::query_as(&format!("SELECT {column} FROM {table}"))
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            rows.sort();
            rows.into_iter()
                .map(|(b,)| String::from_utf8(b).unwrap())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(left("sessions", "id_hash").await, ["live"]);
    assert_eq!(
        left("oauth_codes", "code_hash").await,
        ["expired_used_live", "fresh_unused"]
    );
    assert_eq!(left("oauth_refresh_tokens", "token_hash").await, ["live"]);
    // Families and grants stay: access tokens name their family.
    let families: (i64,) = sqlx::query_as("SELECT count(*) FROM oauth_families")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(families.0, 3);
    // A second sweep finds nothing more.
    let again = s.services().sessions().sweep_expired(now).await.unwrap();
    assert_eq!(again, Default::default());
    s.stop().await;
}
