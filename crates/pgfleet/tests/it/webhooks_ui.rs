//! Signed webhooks through the Rust SDK, the CLI (`pgfleet webhooks …`) and the console's
//! Webhooks page: created (secret shown once), listed without the secret, deliveries shown,
//! deleted.

use pgfleet_client::types::webhook::{CreateWebhook, WebhookEventType, WebhookState};
use pgfleet_client::Client;
use reqwest::StatusCode;
use serde_json::json;

use crate::browser::{bootstrap, Browser};
use crate::client_sdk::Cli;
use crate::harness::{eventually, TestServer};
use crate::webhooks::{signature_ok, verify, Receiver};

#[tokio::test]
async fn sdk_cli_and_console_manage_webhooks() {
    let s = TestServer::start_with(|c| {
        c.webhooks.allow_private_destinations = true;
        c.webhooks.poll_interval_ms = 100;
    })
    .await;
    let rx = Receiver::start(200).await;
    let client = Client::new(&s.base, &s.token).unwrap();
    let ws = client.me().await.unwrap().workspace.unwrap().id;

    // SDK: create, list (no secret), a delivery, delete.
    let created = client
        .webhooks(&ws)
        .create(&CreateWebhook {
            url: rx.url("/sdk"),
            events: Some(vec!["service_token.created".into()]),
        })
        .await
        .unwrap();
    assert!(created.secret.starts_with("whsec_"));
    assert_eq!(
        created.webhook.events,
        Some(vec![WebhookEventType::ServiceTokenCreated])
    );
    let e = client
        .webhooks(&ws)
        .create(&CreateWebhook {
            url: "gopher://x".into(),
            events: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400));
    let t = s
        .post(
            &format!("/v1/workspaces/{ws}/service-tokens"),
            json!({"name": "sdk"}),
        )
        .await;
    assert_eq!(t.status, StatusCode::CREATED, "{}", t.body);
    eventually("the SDK's endpoint gets the event", || async {
        rx.of_type("service_token.created").len() == 1
    })
    .await;
    verify(&created.secret, &rx.all()[0]);
    let hooks = client.webhooks(&ws).list().await.unwrap().data;
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].state, WebhookState::Enabled);
    eventually("the delivery is recorded", || async {
        let d = client
            .webhooks(&ws)
            .deliveries(&created.webhook.id)
            .await
            .unwrap()
            .data;
        d.len() == 1 && d[0].attempts == 1 && d[0].delivered_at.is_some()
    })
    .await;
    client
        .webhooks(&ws)
        .delete(&created.webhook.id)
        .await
        .unwrap();
    assert!(client.webhooks(&ws).list().await.unwrap().data.is_empty());

    // CLI: create (secret once), list, deliveries, delete.
    let cli = Cli::new(&s);
    let url = rx.url("/cli");
    let out = cli
        .run(&["webhooks", "create", &url, "--event", "database.ready"])
        .await
        .ok();
    let id = out.field("id");
    assert!(out.field("secret").starts_with("whsec_"), "{}", out.stdout);
    assert!(out.stderr.contains("shown once"), "{}", out.stderr);
    let list = cli.run(&["--json", "webhooks", "list"]).await.ok().json();
    assert_eq!(list[0]["id"], id.as_str(), "{list}");
    assert!(list[0].get("secret").is_none(), "{list}");
    let table = cli.run(&["webhooks", "list"]).await.ok();
    assert!(table.stdout.contains(&url) && table.stdout.contains("database.ready"));
    cli.run(&["webhooks", "deliveries", &id]).await.ok();
    cli.run(&["webhooks", "delete", &id, "--yes"]).await.ok();
    assert!(cli
        .run(&["--json", "webhooks", "list"])
        .await
        .ok()
        .json()
        .as_array()
        .unwrap()
        .is_empty());

    // Console: add (secret shown once), listed with its deliveries, deleted behind the box.
    let (password, _) = bootstrap(&s);
    let mut b = Browser::new(&s);
    let r = b
        .sign_in("admin@pgfleet.localhost", &password, "/console")
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let hooks_url = format!("/console/w/{ws}/webhooks");
    let page = b.get(&hooks_url).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.assert_security_headers();
    assert!(page.body.contains(">Webhooks</a>"));
    let csrf = page.input("csrf_token");
    let r = b
        .post(
            &hooks_url,
            &[("csrf_token", &csrf), ("url", "ftp://nope"), ("events", "")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("class=\"alert error\""));
    let console_url = rx.url("/console");
    let r = b
        .post(
            &hooks_url,
            &[("csrf_token", &csrf), ("url", &console_url), ("events", "")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = b.get(&hooks_url).await;
    let secret = page.testid("secret").expect("secret shown once");
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert!(b.get(&hooks_url).await.testid("secret").is_none());
    let t = s
        .post(
            &format!("/v1/workspaces/{ws}/service-tokens"),
            json!({"name": "console"}),
        )
        .await;
    assert_eq!(t.status, StatusCode::CREATED);
    eventually("the console's endpoint gets the event", || async {
        rx.all()
            .iter()
            .any(|r| r.json()["data"]["name"] == "console" && signature_ok(&secret, r))
    })
    .await;
    // The browser is borrowed mutably per request: polled by hand, as `eventually` would.
    let mut shown = false;
    for _ in 0..400 {
        let p = b.get(&hooks_url).await;
        if p.body.contains("data-testid=\"delivery-row\"") && p.body.contains(">delivered<") {
            shown = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(shown, "the console shows the delivery");
    let page = b.get(&hooks_url).await;
    let id = page.id_after(&format!("/console/w/{ws}/webhooks/"));
    let r = b
        .post(
            &format!("{hooks_url}/{id}/delete"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let r = b
        .post(
            &format!("{hooks_url}/{id}/delete"),
            &[("csrf_token", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(b.get(&hooks_url).await.body.contains("No webhooks."));
    s.stop().await;
}
