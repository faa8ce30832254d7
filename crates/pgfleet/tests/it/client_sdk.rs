//! The Rust SDK (`pgfleet-client`) and the `pgfleet` CLI against a real server: every SDK
//! operation, pagination streams over more than one page, typed errors, the OAuth helper
//! (PKCE login, callback, refresh on 401 with one refresh for ten concurrent requests), and
//! the CLI's main flows through its real binary (create with `--wait`, connect with psql,
//! rotate, delete, `--json`, errors, `login` through the loopback redirect).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt as _;
use pgfleet_client::types::database::{CreateDatabase, Database, DatabaseStatus, UpdateDatabase};
use pgfleet_client::types::project::{CreateProject, UpdateProject};
use pgfleet_client::types::service_token::CreateServiceToken;
use pgfleet_client::types::CredentialType;
use pgfleet_client::{
    Client, Error, MemoryTokenStorage, OAuthClient, PageParams, TokenStorage, Tokens, DEFAULT_SCOPE,
};
use serde_json::Value;

use crate::harness::{connect_tls, TestServer};

const REDIRECT: &str = "http://127.0.0.1:9/callback";

async fn ready(c: &Client, id: &str) -> Database {
    for _ in 0..600 {
        let d = c.databases().get(id).await.unwrap();
        match d.status {
            DatabaseStatus::Ready => return d,
            DatabaseStatus::Failure => panic!("database {id} failed"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("database {id} not ready in 60 s");
}

async fn select_one(conn: &str) {
    let c = connect_tls(conn).await.expect("connect");
    let row = c.query_one("SELECT 1::int", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
}

/// `(workspace id, user id)` of the bootstrap token.
async fn whoami(c: &Client) -> (String, String) {
    let me = c.me().await.unwrap();
    (me.workspace.unwrap().id, me.user.unwrap().id)
}

/// A second workspace and a service token of it, written straight to the metadata store.
async fn second_workspace(s: &TestServer) -> String {
    let value = "pgfst_sdk_second_workspace_token_for_tests_0000";
    s.workspace_with_token("sdksecond", "Second", value).await;
    value.to_string()
}

/// A public app, and a code for it as the consent page would produce: the login URL's
/// parameters go through the real authorization checks.
async fn approve(s: &TestServer, ws: &str, user: &str, login_url: &url::Url) -> String {
    let q: HashMap<String, String> = login_url.query_pairs().into_owned().collect();
    let req = s.services().oauth().authorize_check(&q).await.unwrap();
    s.services().oauth().approve(user, &req, ws).await.unwrap()
}

async fn public_app(s: &TestServer, ws: &str, user: &str, redirect: &str) -> String {
    let member = s
        .services()
        .access()
        .console(user, ws)
        .await
        .unwrap()
        .unwrap();
    s.services()
        .oauth()
        .client_create(
            &member.workspace_wide_write().unwrap(),
            "SDK test app",
            None,
            &[redirect.to_string()],
            false,
        )
        .await
        .unwrap()
        .client
        .id
}

#[tokio::test]
async fn sdk_covers_every_operation() {
    let s = TestServer::start().await;
    let c = Client::new(&s.base, &s.token).unwrap();

    // me, workspaces, regions.
    let me = c.me().await.unwrap();
    assert_eq!(me.credential.kind, CredentialType::ServiceToken);
    let (ws, user) = whoami(&c).await;
    let page = c.workspaces().list(PageParams::default()).await.unwrap();
    assert_eq!(page.data.len(), 1);
    assert!(!page.pagination.has_more);
    let all: Vec<_> = c.workspaces().list_all().try_collect().await.unwrap();
    assert_eq!(all, page.data);
    assert_eq!(c.workspaces().get(&ws).await.unwrap().id, ws);
    let e = c.workspaces().create(Some("nope")).await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(403), Some("forbidden")));
    assert!(c
        .regions()
        .await
        .unwrap()
        .iter()
        .any(|r| r.id == "us-east-1" && r.product == "postgres"));
    assert!(c
        .regions_postgres()
        .await
        .unwrap()
        .iter()
        .any(|r| r.id == "us-east-1"));

    // Projects.
    let created = c
        .projects()
        .create(&CreateProject {
            name: Some("sdk".into()),
            region: Some("us-east-1".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let pid = created.project.id.clone();
    let default_db = created.database.expect("default database");
    let default_cs = default_db.connection_string.clone().expect("credentials");
    ready(&c, &default_db.database.id).await;
    select_one(&default_cs).await;
    assert_eq!(c.projects().get(&pid).await.unwrap().name, "sdk");
    let renamed = c
        .projects()
        .update(
            &pid,
            &UpdateProject {
                name: Some("sdk-renamed".into()),
                settings: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.name, "sdk-renamed");
    let listed = c.projects().list(PageParams::default()).await.unwrap();
    assert!(listed.data.iter().any(|p| p.id == pid));

    // Databases: both create endpoints, lists, get, rename.
    let plain = c
        .databases()
        .create(&CreateDatabase {
            project_id: Some(pid.clone()),
            name: Some("plain".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let with_creds = c
        .databases()
        .create_in_project(
            &pid,
            &CreateDatabase {
                name: Some("with-creds".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let db = with_creds.database.id.clone();
    ready(&c, &plain.id).await;
    ready(&c, &db).await;
    select_one(with_creds.connection_string.as_deref().unwrap()).await;
    let in_project: Vec<_> = c
        .databases()
        .list_all_for_project(&pid)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(in_project.len(), 3);
    let page = c
        .databases()
        .list_for_project(&pid, PageParams::default())
        .await
        .unwrap();
    assert_eq!(page.data.len(), 3);
    assert_eq!(
        c.databases()
            .list(PageParams::default())
            .await
            .unwrap()
            .data
            .len(),
        3
    );
    let all: Vec<_> = c.databases().list_all().try_collect().await.unwrap();
    assert_eq!(all.len(), 3);
    let renamed = c
        .databases()
        .update(
            &db,
            &UpdateDatabase {
                name: Some("renamed".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.name, "renamed");
    assert_eq!(c.databases().get(&db).await.unwrap().name, "renamed");

    // Connections: create both ways, list, get, rotate, delete.
    let c1 = c.connections().create(&db, "one").await.unwrap();
    let c2 = c
        .connections()
        .create_for_database(&db, "two")
        .await
        .unwrap();
    select_one(&c1.connection_string).await;
    select_one(&c2.connection_string).await;
    let of_db: Vec<_> = c
        .connections()
        .list_all_for_database(&db)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(of_db.len(), 3, "default + two");
    let page = c
        .connections()
        .list_for_database(&db, PageParams::default())
        .await
        .unwrap();
    assert_eq!(page.data.len(), 3);
    let all: Vec<_> = c.connections().list_all().try_collect().await.unwrap();
    assert!(all.len() >= 5);
    assert_eq!(
        c.connections()
            .list(PageParams::default())
            .await
            .unwrap()
            .data
            .len(),
        all.len()
    );
    let got = c.connections().get(&c1.connection.id).await.unwrap();
    assert_eq!(got.name, "one");
    assert!(got.endpoints.direct.unwrap().connection_string.is_none());
    let rotated = c.connections().rotate(&c1.connection.id).await.unwrap();
    assert_ne!(rotated.connection_string, c1.connection_string);
    select_one(&rotated.connection_string).await;
    assert!(connect_tls(&c1.connection_string).await.is_err());
    c.connections().delete(&c2.connection.id).await.unwrap();
    let e = c.connections().get(&c2.connection.id).await.unwrap_err();
    assert!(e.is_not_found(), "{e:?}");

    // Service tokens.
    let t = c
        .service_tokens(&ws)
        .create(&CreateServiceToken {
            name: "sdk".into(),
            expires_at: None,
            project_id: None,
            read_only: None,
        })
        .await
        .unwrap();
    let by_new = Client::new(&s.base, &t.value).unwrap();
    assert_eq!(
        by_new.me().await.unwrap().credential.id,
        Some(t.token.id.clone())
    );
    let listed = c
        .service_tokens(&ws)
        .list(PageParams::default())
        .await
        .unwrap();
    assert_eq!(listed.data[0].id, t.token.id, "newest first");
    let all: Vec<_> = c
        .service_tokens(&ws)
        .list_all()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    c.service_tokens(&ws).delete(&t.token.id).await.unwrap();
    let e = by_new.me().await.unwrap_err();
    assert_eq!(e.status(), Some(401));

    // Integrations: two grants of two apps; get, delete one by id, revoke the other by app.
    let oauth_redirect = REDIRECT;
    let mut apps = vec![];
    for _ in 0..2 {
        let app = public_app(&s, &ws, &user, oauth_redirect).await;
        let o = OAuthClient::new(&s.base, &app, oauth_redirect).unwrap();
        let (url, _, _) = o.login_url(DEFAULT_SCOPE);
        approve(&s, &ws, &user, &url).await;
        apps.push(app);
    }
    let ints = c
        .integrations(&ws)
        .list(PageParams::default())
        .await
        .unwrap();
    assert_eq!(ints.data.len(), 2);
    let all: Vec<_> = c.integrations(&ws).list_all().try_collect().await.unwrap();
    assert_eq!(all, ints.data);
    let first = &ints.data[0];
    assert_eq!(c.integrations(&ws).get(&first.id).await.unwrap(), *first);
    c.integrations(&ws).delete(&first.id).await.unwrap();
    let other_app = &ints.data[1].client.id;
    c.integrations(&ws).revoke_client(other_app).await.unwrap();
    assert!(c
        .integrations(&ws)
        .list(PageParams::default())
        .await
        .unwrap()
        .data
        .is_empty());
    let e = c
        .integrations(&ws)
        .revoke_client(other_app)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("not_found"));

    // Transfer to another workspace, then delete there.
    let token2 = second_workspace(&s).await;
    c.projects().transfer(&pid, &token2).await.unwrap();
    assert!(c.projects().get(&pid).await.unwrap_err().is_not_found());
    let c2 = Client::new(&s.base, &token2).unwrap();
    assert_eq!(c2.projects().get(&pid).await.unwrap().id, pid);

    // Deletes: a project with extra databases is refused, with the server's hint.
    let e = c2.projects().delete(&pid).await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(400), Some("bad_request")));
    assert!(e.hint().is_some_and(|h| h.contains(&db)), "{e:?}");
    c2.databases().delete(&db).await.unwrap();
    c2.databases().delete(&plain.id).await.unwrap();
    assert!(c2
        .databases()
        .get(&plain.id)
        .await
        .unwrap_err()
        .is_not_found());
    c2.projects().delete(&pid).await.unwrap();
    assert!(c2.projects().get(&pid).await.unwrap_err().is_not_found());
    s.stop().await;
}

#[tokio::test]
async fn sdk_errors_are_typed() {
    let s = TestServer::start().await;
    let c = Client::new(&s.base, &s.token).unwrap();
    match c.projects().get("proj_doesnotexist").await {
        Err(Error::Api {
            status,
            code,
            message,
            hint: _,
            request_id,
        }) => {
            assert_eq!((status, code.as_str()), (404, "not_found"));
            assert!(message.contains("proj_doesnotexist"), "{message}");
            assert!(request_id.is_some_and(|r| !r.is_empty()));
        }
        other => panic!("expected a 404: {other:?}"),
    }
    let e = c.databases().get("db_doesnotexist").await.unwrap_err();
    assert_eq!(e.code(), Some("not_found"));
    // A bad page size is the server's 400, code and all.
    let e = c
        .projects()
        .list(PageParams {
            cursor: None,
            limit: Some(1000),
        })
        .await
        .unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(400), Some("bad_request")));
    // A wrong token is 401 authentication-failed.
    let bad = Client::new(&s.base, "pgfst_wrong").unwrap();
    let e = bad.me().await.unwrap_err();
    assert_eq!(
        (e.status(), e.code()),
        (Some(401), Some("authentication-failed"))
    );
    // Nobody listening: a transport error, not an API error.
    let dead = Client::new("http://127.0.0.1:9", "x").unwrap();
    assert!(matches!(dead.me().await, Err(Error::Transport(_))));
    assert!(Client::new("not a url", "x").is_err());
    s.stop().await;
}

#[tokio::test]
async fn sdk_streams_follow_next_cursor() {
    let s = TestServer::start().await;
    let c = Client::new(&s.base, &s.token).unwrap();
    let mut ids = vec![];
    for i in 0..105 {
        let p = c
            .projects()
            .create(&CreateProject {
                name: Some(format!("p{i}")),
                create_database: Some(false),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(p.database.is_none());
        ids.push(p.project.id);
    }
    let first = c.projects().list(PageParams::default()).await.unwrap();
    assert_eq!(first.data.len(), 100);
    assert!(first.pagination.has_more);
    assert!(first.pagination.next_cursor.is_some());
    let streamed: Vec<String> = c
        .projects()
        .list_all()
        .map_ok(|p| p.id)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(streamed, ids, "every item once, in creation order");

    // Small pages by hand, with the cursor the server gives.
    let mut cursor = None;
    let mut by_hand = vec![];
    loop {
        let page = c
            .projects()
            .list(PageParams {
                cursor: cursor.clone(),
                limit: Some(40),
            })
            .await
            .unwrap();
        by_hand.extend(page.data.into_iter().map(|p| p.id));
        if !page.pagination.has_more {
            break;
        }
        cursor = page.pagination.next_cursor;
    }
    assert_eq!(by_hand, ids);

    // A stream stops at the first error and yields it typed.
    let bad = Client::new(&s.base, "pgfst_wrong").unwrap();
    let e = bad
        .projects()
        .list_all()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(401));
    s.stop().await;
}

/// Counts writes of refreshed tokens.
#[derive(Default)]
struct CountingStorage {
    inner: MemoryTokenStorage,
    sets: AtomicUsize,
}

#[async_trait::async_trait]
impl TokenStorage for CountingStorage {
    async fn get(&self) -> pgfleet_client::Result<Option<Tokens>> {
        self.inner.get().await
    }
    async fn set(&self, tokens: Tokens) -> pgfleet_client::Result<()> {
        self.sets.fetch_add(1, Ordering::SeqCst);
        self.inner.set(tokens).await
    }
    async fn clear(&self) -> pgfleet_client::Result<()> {
        self.inner.clear().await
    }
}

async fn refresh_rows(s: &TestServer) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM oauth_refresh_tokens")
        .fetch_one(s.services().store().pool())
        .await
        .unwrap();
    n
}

#[tokio::test]
async fn oauth_login_and_a_single_refresh_for_concurrent_401s() {
    // `exp` has whole seconds, so a token lives between ttl-1 and ttl seconds: 3 s keeps a
    // refreshed token alive for the requests that follow even on a loaded machine.
    let s = TestServer::start_with(|cfg| cfg.oauth.access_token_ttl_secs = 3).await;
    let admin = Client::new(&s.base, &s.token).unwrap();
    let (ws, user) = whoami(&admin).await;
    let app = public_app(&s, &ws, &user, REDIRECT).await;

    let oauth = OAuthClient::discover(&s.base, &app, REDIRECT)
        .await
        .unwrap();
    assert_eq!(oauth.auth_base().as_str().trim_end_matches('/'), s.base);
    let (url, state, verifier) = oauth.login_url(DEFAULT_SCOPE);
    assert_eq!(url.path(), "/authorize");
    let callback = approve(&s, &ws, &user, &url).await;
    assert!(callback.starts_with(REDIRECT), "{callback}");

    // A callback of another login (other state) is refused before any exchange.
    let e = oauth
        .handle_callback(&callback, "another-state", &verifier)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Callback(_)), "{e:?}");
    // A wrong verifier is the server's invalid_grant.
    let e = oauth
        .handle_callback(&callback, &state, &"x".repeat(64))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("invalid_grant"), "{e:?}");
    // A fresh login for the real exchange.
    let (url, state, verifier) = oauth.login_url(DEFAULT_SCOPE);
    let callback = approve(&s, &ws, &user, &url).await;
    let tokens = oauth
        .handle_callback(&callback, &state, &verifier)
        .await
        .unwrap();
    assert!(tokens.refresh_token.is_some());
    assert!(tokens.expires_at.is_some());

    let storage = Arc::new(CountingStorage::default());
    storage.inner.set(tokens.clone()).await.unwrap();
    let client = Client::builder(&s.base)
        .oauth(oauth.clone(), storage.clone())
        .build()
        .unwrap();
    let me = client.me().await.unwrap();
    assert_eq!(me.credential.kind, CredentialType::Oauth);
    assert_eq!(storage.sets.load(Ordering::SeqCst), 0);
    let rows_before = refresh_rows(&s).await;

    // Let the access token expire, then ten requests at once: all succeed, one refresh.
    tokio::time::sleep(Duration::from_millis(4200)).await;
    let raw = Client::new(&s.base, &tokens.access_token).unwrap();
    let e = raw.me().await.unwrap_err();
    assert_eq!(e.status(), Some(401), "the old access token has expired");
    let results = futures::future::join_all((0..10).map(|_| {
        let client = client.clone();
        async move { client.projects().list(PageParams::default()).await }
    }))
    .await;
    for r in &results {
        assert!(r.is_ok(), "{r:?}");
    }
    assert_eq!(
        storage.sets.load(Ordering::SeqCst),
        1,
        "exactly one refresh"
    );
    assert_eq!(refresh_rows(&s).await, rows_before + 1);
    let now = storage.inner.get().await.unwrap().unwrap();
    assert_ne!(now.access_token, tokens.access_token);
    assert_ne!(now.refresh_token, tokens.refresh_token, "rotated");
    // A 401 `not_found` (a list whose operation lists no 404) is no reason to refresh.
    let e = client
        .service_tokens("wksp_0someone0else")
        .list(PageParams::default())
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    assert_eq!(storage.sets.load(Ordering::SeqCst), 1, "no second refresh");

    // Without offline_access there is nothing to refresh with: the 401 comes back typed.
    let (url, state, verifier) = oauth.login_url("workspace:admin");
    let callback = approve(&s, &ws, &user, &url).await;
    let short = oauth
        .handle_callback(&callback, &state, &verifier)
        .await
        .unwrap();
    assert!(short.refresh_token.is_none());
    let client = Client::builder(&s.base)
        .oauth(
            oauth.clone(),
            Arc::new(MemoryTokenStorage::with_tokens(short)),
        )
        .build()
        .unwrap();
    client.me().await.unwrap();
    tokio::time::sleep(Duration::from_millis(4200)).await;
    let e = client.me().await.unwrap_err();
    assert_eq!(
        (e.status(), e.code()),
        (Some(401), Some("authentication-failed"))
    );
    // An empty storage: not signed in.
    let client = Client::builder(&s.base)
        .oauth(oauth.clone(), Arc::new(MemoryTokenStorage::new()))
        .build()
        .unwrap();
    assert!(matches!(client.me().await, Err(Error::NotAuthenticated)));
    // Revocation ends the session.
    oauth
        .revoke(now.refresh_token.as_deref().unwrap())
        .await
        .unwrap();
    let e = Client::new(&s.base, &now.access_token)
        .unwrap()
        .me()
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(401));
    s.stop().await;
}

// ----- the CLI -----

pub(crate) struct Cli<'a> {
    s: &'a TestServer,
    config_home: tempfile::TempDir,
}

#[derive(Debug)]
pub(crate) struct Out {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Out {
    #[track_caller]
    pub(crate) fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
    /// The value of a `key  value` line.
    #[track_caller]
    pub(crate) fn field(&self, key: &str) -> String {
        self.stdout
            .lines()
            .find_map(|l| {
                l.strip_prefix(key)
                    .filter(|rest| rest.starts_with("  "))
                    .map(|rest| rest.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no {key:?} in:\n{}", self.stdout))
    }
}

impl<'a> Cli<'a> {
    pub(crate) fn new(s: &'a TestServer) -> Self {
        Self {
            s,
            config_home: tempfile::tempdir().unwrap(),
        }
    }

    pub(crate) fn command(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_pgfleet"));
        cmd.env_remove("PGFLEET_TOKEN")
            .env_remove("PGFLEET_API_URL")
            .env("XDG_CONFIG_HOME", self.config_home.path())
            .env("HOME", self.config_home.path())
            .env("PGCONNECT_TIMEOUT", "5")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    /// Runs `pgfleet --api-url … --token … ARGS`.
    pub(crate) async fn run(&self, args: &[&str]) -> Out {
        self.run_as(Some(&self.s.token), args).await
    }

    pub(crate) async fn run_as(&self, token: Option<&str>, args: &[&str]) -> Out {
        let mut cmd = self.command();
        cmd.args(["--api-url", &self.s.base]);
        if let Some(t) = token {
            cmd.args(["--token", t]);
        }
        let out = tokio::time::timeout(Duration::from_secs(120), cmd.args(args).output())
            .await
            .expect("pgfleet finished in time")
            .expect("run pgfleet");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// `harness::psql` with its stdout and stderr together.
async fn psql(conn: &str, sql: &str) -> (bool, String) {
    let (ok, out, err) = crate::harness::psql(conn, sql).await;
    (ok, out + &err)
}

#[tokio::test]
async fn cli_main_flows_through_the_binary() {
    let s = TestServer::start().await;
    let cli = Cli::new(&s);

    // Create a project and wait for its database; the printed string connects.
    let out = cli
        .run(&["projects", "create", "--name", "cli-demo", "--wait"])
        .await
        .ok();
    let pid = out.field("id");
    let db = out.field("database");
    assert_eq!(out.field("status"), "ready");
    assert!(out.stderr.contains("shown once"), "{}", out.stderr);
    let (ok, got) = psql(&out.field("connection string"), "select 1").await;
    assert!(ok && got == "1", "{got}");

    // --json output parses, and is the API's shape.
    let out = cli
        .run(&[
            "--json", "projects", "create", "--name", "cli-json", "--wait",
        ])
        .await
        .ok();
    let j = out.json();
    assert_eq!(j["name"], "cli-json");
    assert_eq!(j["database"]["status"], "ready");
    let pid2 = j["id"].as_str().unwrap().to_string();
    let out = cli.run(&["projects", "list", "--json"]).await.ok();
    let listed: Vec<String> = out
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, vec![pid.clone(), pid2.clone()]);
    // People get an aligned table with a header.
    let out = cli.run(&["projects", "list"]).await.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("NAME"),
        "{}",
        out.stdout
    );
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1].find("cli-demo"), lines[0].find("NAME"));

    // A connection; connect with the printed string; rotate; the old string stops working.
    let out = cli
        .run(&[
            "connections",
            "create",
            "--database",
            &db,
            "--name",
            "cli-conn",
        ])
        .await
        .ok();
    let cid = out.field("id");
    let first = out.field("connection string");
    let (ok, got) = psql(&first, "select current_database() is not null").await;
    assert!(ok && got == "t", "{got}");
    let out = cli
        .run(&["connections", "rotate", &cid, "--yes"])
        .await
        .ok();
    let second = out.field("connection string");
    assert_ne!(first, second);
    let (ok, got) = psql(&second, "select 1").await;
    assert!(ok, "{got}");
    let (ok, _) = psql(&first, "select 1").await;
    assert!(!ok, "the rotated-away password still works");
    let out = cli
        .run(&["connections", "list", "--database", &db])
        .await
        .ok();
    assert!(out.stdout.contains(&cid) && out.stdout.contains("cli-conn"));
    let out = cli.run(&["connections", "get", &cid, "--json"]).await.ok();
    assert_eq!(out.json()["id"], cid.as_str());

    // `pgfleet psql`: a fresh connection for the session, deleted afterwards.
    let before = cli
        .run(&["--json", "connections", "list", "--database", &db])
        .await
        .ok()
        .json();
    let out = cli
        .run(&[
            "psql",
            &db,
            "--psql-bin",
            "/usr/bin/psql",
            "--",
            "-X",
            "-A",
            "-t",
            "-c",
            "select 40 + 2",
        ])
        .await
        .ok();
    assert_eq!(out.stdout.trim(), "42", "{}", out.stderr);
    let after = cli
        .run(&["--json", "connections", "list", "--database", &db])
        .await
        .ok()
        .json();
    assert_eq!(after, before, "psql's connection is deleted");
    // psql's exit status is pgfleet's.
    let out = cli
        .run(&[
            "psql",
            &db,
            "--psql-bin",
            "/usr/bin/psql",
            "--",
            "-X",
            "-c",
            "select nope",
        ])
        .await;
    assert_ne!(out.code, 0);

    // Databases: create with --wait in a project, rename, get, delete.
    let out = cli
        .run(&[
            "databases",
            "create",
            "--project",
            &pid,
            "--name",
            "second",
            "--wait",
        ])
        .await
        .ok();
    let db2 = out.field("id");
    assert_eq!(out.field("status"), "ready");
    let (ok, got) = psql(&out.field("connection string"), "select 1").await;
    assert!(ok, "{got}");
    cli.run(&["databases", "rename", &db2, "renamed"])
        .await
        .ok();
    let out = cli.run(&["databases", "get", &db2]).await.ok();
    assert_eq!(out.field("name"), "renamed");
    let out = cli
        .run(&["databases", "list", "--project", &pid])
        .await
        .ok();
    assert!(out.stdout.contains(&db2) && out.stdout.contains(&db));
    cli.run(&["databases", "delete", &db2, "--yes"]).await.ok();

    // Errors: the server's message on stderr, exit 1.
    let out = cli.run(&["databases", "get", &db2]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains(&db2), "{}", out.stderr);
    assert!(out.stderr.contains("not_found"), "{}", out.stderr);
    assert!(out.stdout.is_empty());
    let out = cli.run(&["projects", "get", "proj_doesnotexist"]).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("proj_doesnotexist"), "{}", out.stderr);
    let out = cli.run_as(Some("pgfst_wrong"), &["projects", "list"]).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("authentication-failed"),
        "{}",
        out.stderr
    );
    // Usage errors are clap's: exit 2.
    let out = cli.run(&["projects", "frobnicate"]).await;
    assert_eq!(out.code, 2);
    // No credential at all.
    let out = cli.run_as(None, &["projects", "list"]).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("not signed in"), "{}", out.stderr);

    // The smaller commands.
    let out = cli.run(&["regions", "list"]).await.ok();
    assert!(out.stdout.contains("us-east-1"));
    let out = cli
        .run(&["regions", "list", "--postgres", "--json"])
        .await
        .ok();
    assert_eq!(out.json()[0]["id"], "us-east-1");
    let out = cli.run(&["workspaces", "list"]).await.ok();
    let ws = out
        .stdout
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let out = cli.run(&["workspaces", "get", &ws]).await.ok();
    assert_eq!(out.field("id"), ws);
    let out = cli.run(&["whoami"]).await.ok();
    assert_eq!(out.field("credential"), "service_token");
    let out = cli
        .run(&["service-tokens", "create", "from-cli"])
        .await
        .ok();
    let (tid, value) = (out.field("id"), out.field("token"));
    let out = cli.run_as(Some(&value), &["whoami", "--json"]).await.ok();
    assert_eq!(out.json()["credential"]["id"], tid.as_str());
    let out = cli.run(&["service-tokens", "list"]).await.ok();
    assert!(out.stdout.contains(&tid));
    cli.run(&["service-tokens", "delete", &tid, "--yes"])
        .await
        .ok();
    assert_eq!(cli.run_as(Some(&value), &["whoami"]).await.code, 1);
    let out = cli.run(&["integrations", "list", "--json"]).await.ok();
    assert_eq!(out.json(), serde_json::json!([]));
    let out = cli
        .run(&["integrations", "revoke", "int_nope", "--yes"])
        .await;
    assert_eq!(out.code, 1);
    let out = cli.run(&["completions", "bash"]).await.ok();
    assert!(out.stdout.contains("pgfleet") && out.stdout.contains("connections"));
    let out = cli.run(&["projects", "rename", &pid2, "better"]).await.ok();
    assert_eq!(out.field("name"), "better");

    // Delete the projects; they are gone.
    cli.run(&["projects", "delete", &pid, "--yes"]).await.ok();
    cli.run(&["--json", "projects", "delete", &pid2, "-y"])
        .await
        .ok();
    let out = cli.run(&["projects", "list", "--json"]).await.ok();
    assert_eq!(out.json(), serde_json::json!([]));
    s.stop().await;
}

#[tokio::test]
async fn cli_login_through_the_loopback_redirect() {
    use tokio::io::AsyncBufReadExt as _;

    // `exp` has whole seconds, so a token lives between ttl-1 and ttl seconds: 3 s keeps a
    // refreshed token alive for the requests that follow even on a loaded machine.
    let s = TestServer::start_with(|cfg| cfg.oauth.access_token_ttl_secs = 3).await;
    let admin = Client::new(&s.base, &s.token).unwrap();
    let (ws, user) = whoami(&admin).await;
    // Registered without a port: the CLI listens on a free one (RFC 8252 loopback).
    let redirect = "http://127.0.0.1/callback";
    let app = public_app(&s, &ws, &user, redirect).await;
    let cli = Cli::new(&s);

    let mut child = cli
        .command()
        .args([
            "--api-url",
            &s.base,
            "login",
            "--no-browser",
            "--client-id",
            &app,
        ])
        .args(["--timeout", "60"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let login_url = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("login prints its URL")
            .unwrap()
            .expect("stderr open");
        if let Some(u) = line.trim().strip_prefix(&format!("{}/authorize?", s.base)) {
            break url::Url::parse(&format!("{}/authorize?{u}", s.base)).unwrap();
        }
    };
    // What the browser would do: consent, then follow the redirect to the loopback listener.
    let callback = approve(&s, &ws, &user, &login_url).await;
    let back = url::Url::parse(&callback).unwrap();
    assert_eq!(back.host_str(), Some("127.0.0.1"), "{callback}");
    assert_eq!(back.path(), "/callback", "{callback}");
    assert!(back.port().is_some_and(|p| p != 80), "{callback}");
    let page = reqwest::get(&callback).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("signed in"));
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Signed in"));

    let file = cli.config_home.path().join("pgfleet/credentials.json");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let saved: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let first_refresh = saved["servers"][&s.base]["tokens"]["refreshToken"].clone();
    assert!(first_refresh.is_string(), "{saved}");

    // Later commands use the saved tokens; the access token expires and is refreshed, the
    // new tokens written back.
    let out = cli.run_as(None, &["whoami"]).await.ok();
    assert_eq!(out.field("credential"), "oauth");
    tokio::time::sleep(Duration::from_millis(4200)).await;
    cli.run_as(None, &["projects", "list"]).await.ok();
    let saved: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_ne!(
        saved["servers"][&s.base]["tokens"]["refreshToken"],
        first_refresh
    );
    let out = cli.run_as(None, &["integrations", "list"]).await.ok();
    assert!(out.stdout.contains(&app), "{}", out.stdout);

    // logout revokes the session on the server and forgets the tokens.
    let saved: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let refresh = saved["servers"][&s.base]["tokens"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_string();
    cli.run_as(None, &["logout"]).await.ok();
    let out = cli.run_as(None, &["whoami"]).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("not signed in"), "{}", out.stderr);
    let e = OAuthClient::new(&s.base, &app, redirect)
        .unwrap()
        .refresh(&refresh)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("invalid_grant"), "{e:?}");
    s.stop().await;
}

#[tokio::test]
async fn sdk_and_cli_backups_restore_and_usage() {
    let s = TestServer::start().await;
    let c = Client::new(&s.base, &s.token).unwrap();
    let created = c
        .projects()
        .create(&CreateProject {
            name: Some("backups".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let db = created.database.unwrap();
    let conn = db.connection_string.clone().unwrap();
    let id = db.database.id.clone();
    ready(&c, &id).await;
    let pg = connect_tls(&conn).await.unwrap();
    pg.batch_execute("CREATE TABLE t (v int); INSERT INTO t VALUES (1), (2), (3)")
        .await
        .unwrap();

    // SDK: back up, wait for it, change the data, restore in place, the data is back.
    let b = c.backups(&id).create().await.unwrap();
    assert_eq!(b.status, "running");
    let mut done = None;
    for _ in 0..600 {
        let list = c.backups(&id).list(None).await.unwrap();
        if let Some(x) = list
            .data
            .iter()
            .find(|x| x.id == b.id && x.status != "running")
        {
            done = Some(x.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let done = done.expect("backup finished");
    assert_eq!(done.status, "completed");
    assert!(c.backups(&id).list(Some(1)).await.unwrap().data.len() <= 1);
    pg.batch_execute("DELETE FROM t").await.unwrap();
    drop(pg);
    let restoring = c.databases().restore(&id, &id, &b.id).await.unwrap();
    assert_eq!(restoring.id, id);
    ready(&c, &id).await;
    let pg = connect_tls(&conn).await.unwrap();
    let n: i64 = pg
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3);
    let e = c
        .databases()
        .restore(&id, &id, "bkp_nope")
        .await
        .unwrap_err();
    assert!(
        matches!(e.status(), Some(404) | Some(400) | Some(422)),
        "{e:?}"
    );
    let u = c.databases().usage(&id, None, None).await.unwrap();
    assert!(u.metrics.storage.used >= 0.0);
    assert!(c
        .databases()
        .usage("db_nope", None, None)
        .await
        .unwrap_err()
        .is_not_found());

    // The CLI: backup with --wait, list, restore with --wait, usage.
    let cli = Cli::new(&s);
    let out = cli.run(&["backups", "create", &id, "--wait"]).await.ok();
    assert_eq!(out.field("status"), "completed");
    let bid = out.field("id");
    let out = cli.run(&["backups", "list", &id]).await.ok();
    assert!(out.stdout.contains(&bid) && out.stdout.starts_with("ID"));
    let out = cli.run(&["--json", "backups", "list", &id]).await.ok();
    assert!(out.json()["data"].as_array().unwrap().len() >= 2);
    pg.batch_execute("INSERT INTO t VALUES (4)").await.unwrap();
    drop(pg);
    let out = cli
        .run(&[
            "backups", "restore", &id, "--backup", &bid, "--wait", "--yes",
        ])
        .await
        .ok();
    assert_eq!(out.field("status"), "ready");
    let pg = connect_tls(&conn).await.unwrap();
    let n: i64 = pg
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3, "restored to the second backup");
    let out = cli.run(&["usage", &id]).await.ok();
    assert!(out.field("operations").ends_with("ops"));
    let out = cli.run(&["usage", &id, "--json"]).await.ok();
    assert!(out.json()["metrics"]["storage"]["used"].is_number());
    let out = cli.run(&["backups", "list", "db_nope"]).await;
    assert_eq!(out.code, 1);
    s.stop().await;
}

/// A TLS front for a plain-HTTP server, as a reverse proxy in production would be: its
/// port and its self-signed certificate (PEM).
async fn tls_front(backend: std::net::SocketAddr) -> (u16, String) {
    let cert = pgfleet_dataplane::tls::self_signed(&[]).unwrap();
    let cfg = pgfleet_dataplane::tls::server_config(&cert.cert_pem, &cert.key_pem).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    if let Ok(mut up) = tokio::net::TcpStream::connect(backend).await {
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
                    }
                }
            });
        }
    });
    (port, cert.cert_pem)
}

/// The SDK and the CLI over HTTPS: a private certificate is trusted when given
/// (`root_certificate_pem`, `--ca-cert`) and refused otherwise.
#[tokio::test]
async fn sdk_and_cli_speak_https() {
    let s = TestServer::start().await;
    let (port, pem) = tls_front(s.running.as_ref().unwrap().addr).await;
    let base = format!("https://localhost:{port}");

    let c = Client::builder(&base)
        .root_certificate_pem(pem.as_bytes())
        .unwrap()
        .token(&s.token)
        .build()
        .unwrap();
    c.me().await.unwrap();
    let untrusting = Client::new(&base, &s.token).unwrap();
    let err = untrusting.me().await.unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err:?}");

    let cli = Cli::new(&s);
    let ca = cli.config_home.path().join("ca.pem");
    std::fs::write(&ca, &pem).unwrap();
    let run = |with_ca: bool| {
        let mut cmd = cli.command();
        cmd.args(["--api-url", &base, "--token", &s.token]);
        if with_ca {
            cmd.args(["--ca-cert", ca.to_str().unwrap()]);
        }
        cmd.args(["whoami", "--json"]);
        cmd
    };
    let ok = run(true).output().await.unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let refused = run(false).output().await.unwrap();
    assert!(!refused.status.success());
    s.stop().await;
}
