//! `pgfleet admin apps create`: the real binary over the running server's metadata store,
//! acting as the local operator (no user, no credential) on the first workspace when none is
//! named. The app is then the workspace's like any other.

use pgfleet::config::Secret;
use serde_json::Value;

use crate::harness::TestServer;
use crate::lifecycle::pgfleet;

/// The server and the command must share it: the command opens the token-signing key too.
const KEY: &str = "an-admin-apps-test-key-encryption-key-0123456789";

#[tokio::test]
async fn admin_apps_create_puts_an_app_of_no_user_in_the_first_workspace() {
    let s = TestServer::start_with(|cfg| {
        cfg.oauth.key_encryption_key = Some(Secret::new(KEY.to_string()));
    })
    .await;
    let c = crate::harness::cluster();
    let url = c.url(&s.metadata_db());
    let server = c.url("postgres");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pgfleet.toml");
    std::fs::write(
        &config,
        format!(
            "[metadata]\nurl = {url:?}\n\n[oauth]\nkey_encryption_key = {KEY:?}\n\n\
             [regions.us-east-1]\nservers = [{server:?}]\n"
        ),
    )
    .unwrap();
    let out = pgfleet(&[
        "admin",
        "apps",
        "create",
        "--name",
        "Operator app",
        "--redirect-uri",
        "http://127.0.0.1/callback",
        "--json",
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        dir.path().to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();

    let me = s.get("/v1/me").await.body;
    let ws = me["data"]["workspace"]["id"].as_str().unwrap();
    let user = me["data"]["user"]["id"].as_str().unwrap();
    assert_eq!(created["workspaceId"], ws);
    assert_eq!(created["clientType"], "public");
    assert!(created["clientSecret"].is_null());

    let member = s
        .services()
        .access()
        .console(user, ws)
        .await
        .unwrap()
        .unwrap();
    let apps = s
        .services()
        .oauth()
        .clients_list(&member.workspace_wide().unwrap())
        .await
        .unwrap();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0].id, created["clientId"].as_str().unwrap());
    assert_eq!(apps[0].name, "Operator app");
    assert_eq!(apps[0].redirect_uris, ["http://127.0.0.1/callback"]);
    // The operator is nobody in the store: the app names no creator.
    let (by,): (Option<String>,) =
        sqlx::query_as("SELECT created_by_user_id FROM oauth_clients WHERE id = $1")
            .bind(&apps[0].id)
            .fetch_one(s.services().store().pool())
            .await
            .unwrap();
    assert_eq!(by, None);
}
