//! Scoped service tokens, the rest (see [`super::scoped_tokens`] for the matrix of every
//! operation): no escalation (a limited token mints no wider token, creates and transfers
//! no project, receives none), the token goes with its project (transfer, delete), and the
//! fields round-trip through the Rust SDK.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::client_sdk::Cli;
use crate::harness::{send_as, TestServer};
use crate::scoped_tokens::{not_found, project, refused, token};

#[tokio::test]
async fn no_escalation_and_the_token_goes_with_its_project() {
    let s = TestServer::start().await;
    let ws = s.get("/v1/me").await.body["data"]["workspace"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (pa, _, _) = project(&s, "Alpha").await;
    let (pb, _, _) = project(&s, "Beta").await;
    let tokens = format!("/v1/workspaces/{ws}/service-tokens");

    // projectId must be a project of this workspace (422, as the contract lists for this
    // operation's bad input).
    let r = s
        .post(&tokens, json!({ "name": "x", "projectId": "proj_nope" }))
        .await;
    r.assert_error(422, "validation_error");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("proj_nope"));
    let other_ws = s
        .workspace_with_token("scoped2", "Other", "pgf_svc_scopedothertoken")
        .await;
    let r = send_as(
        &s,
        "pgf_svc_scopedothertoken",
        Method::POST,
        &format!("/v1/workspaces/{other_ws}/service-tokens"),
        json!({ "name": "x", "projectId": pa }),
    )
    .await;
    r.assert_error(422, "validation_error");

    // A read-only token cannot mint a token, a project token cannot mint one either (not
    // even for its own project), nor create projects, nor transfer its project.
    let (_, ro) = token(&s, &ws, json!({ "name": "reader", "readOnly": true })).await;
    let (pt_id, pt) = token(&s, &ws, json!({ "name": "alpha", "projectId": pa })).await;
    let (_, both) = token(
        &s,
        &ws,
        json!({ "name": "both", "projectId": pb, "readOnly": true }),
    )
    .await;
    refused(
        &send_as(&s, &ro, Method::POST, &tokens, json!({ "name": "wider" })).await,
        "ro mint",
    );
    refused(
        &send_as(
            &s,
            &pt,
            Method::POST,
            &tokens,
            json!({ "name": "same", "projectId": pa }),
        )
        .await,
        "project mint",
    );
    refused(
        &send_as(
            &s,
            &pt,
            Method::POST,
            "/v1/projects",
            json!({ "name": "New" }),
        )
        .await,
        "project create",
    );
    refused(
        &send_as(
            &s,
            &pt,
            Method::POST,
            &format!("/v1/projects/{pa}/transfer"),
            json!({ "recipientAccessToken": "pgf_svc_scopedothertoken" }),
        )
        .await,
        "project transfer",
    );
    refused(
        &send_as(
            &s,
            &both,
            Method::PATCH,
            &format!("/v1/projects/{pb}"),
            json!({ "name": "n" }),
        )
        .await,
        "read-only project token",
    );
    let r = send_as(
        &s,
        &both,
        Method::GET,
        &format!("/v1/projects/{pa}"),
        json!(null),
    )
    .await;
    not_found(&r, "read-only project token, other project");
    // Not a way around: a limited token cannot receive a project either.
    let r = s
        .post(
            &format!("/v1/projects/{pb}/transfer"),
            json!({ "recipientAccessToken": ro }),
        )
        .await;
    r.assert_error(400, "bad_request");

    // The project leaves the workspace: its token is deleted with the move and reaches
    // nothing afterwards.
    let r = s
        .post(
            &format!("/v1/projects/{pa}/transfer"),
            json!({ "recipientAccessToken": "pgf_svc_scopedothertoken" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = send_as(
        &s,
        &pt,
        Method::GET,
        &format!("/v1/projects/{pa}"),
        json!(null),
    )
    .await;
    r.assert_error(401, "authentication-failed");
    let listed = s.get(&tokens).await.body;
    assert!(
        !listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == pt_id.as_str()),
        "{listed}"
    );

    // Deleting a project deletes its tokens too (the foreign key cascades).
    let (pc, _, _) = project(&s, "Gamma").await;
    let (_, pct) = token(&s, &ws, json!({ "name": "gamma", "projectId": pc })).await;
    let r = s.delete(&format!("/v1/projects/{pc}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    crate::harness::eventually("the project's token stops working", || async {
        send_as(&s, &pct, Method::GET, "/v1/me", json!(null))
            .await
            .status
            == StatusCode::UNAUTHORIZED
    })
    .await;
    s.stop().await;
}

#[tokio::test]
async fn the_sdk_round_trips_the_scope() {
    use pgfleet_client::types::service_token::CreateServiceToken;
    use pgfleet_client::Client;
    let s = TestServer::start().await;
    let c = Client::new(&s.base, &s.token).unwrap();
    let ws = s.get("/v1/me").await.body["data"]["workspace"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (pa, _, _) = project(&s, "Alpha").await;
    let t = c
        .service_tokens(&ws)
        .create(&CreateServiceToken {
            name: "sdk".into(),
            expires_at: None,
            project_id: Some(pa.clone()),
            read_only: Some(true),
        })
        .await
        .unwrap();
    assert_eq!(t.token.project_id.as_deref(), Some(pa.as_str()));
    assert!(t.token.read_only);
    let listed = c
        .service_tokens(&ws)
        .list(Default::default())
        .await
        .unwrap();
    let back = listed.data.iter().find(|x| x.id == t.token.id).unwrap();
    assert_eq!(back, &t.token);
    let limited = Client::new(&s.base, &t.value).unwrap();
    let e = limited.projects().delete(&pa).await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(403), Some("forbidden")));
    s.stop().await;
}

#[tokio::test]
async fn the_cli_creates_and_lists_scoped_tokens() {
    let s = TestServer::start().await;
    let cli = Cli::new(&s);
    let (pa, _, _) = project(&s, "Alpha").await;

    let out = cli
        .run(&["service-tokens", "create", "reader", "--read-only"])
        .await
        .ok();
    assert_eq!(out.field("scope"), "workspace, read-only");
    let reader = out.field("token");
    let out = cli
        .run(&["service-tokens", "create", "alpha", "--project", &pa])
        .await
        .ok();
    assert_eq!(out.field("scope"), format!("project {pa}"));
    let alpha = out.field("token");

    let out = cli.run(&["service-tokens", "list"]).await.ok();
    assert!(out.stdout.contains("SCOPE"), "{}", out.stdout);
    assert!(
        out.stdout.contains("workspace, read-only"),
        "{}",
        out.stdout
    );
    let out = cli.run(&["--json", "service-tokens", "list"]).await.ok();
    let all: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let alpha_row = all
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "alpha")
        .cloned()
        .unwrap();
    assert_eq!(alpha_row["projectId"], pa.as_str());
    assert_eq!(alpha_row["readOnly"], false);

    // The limits hold for the CLI's own calls.
    let out = cli
        .run_as(Some(&reader), &["projects", "create", "--name", "nope"])
        .await;
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("read-only"), "{}", out.stderr);
    let out = cli
        .run_as(Some(&alpha), &["service-tokens", "create", "wider"])
        .await;
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("limited to project"), "{}", out.stderr);
    s.stop().await;
}

#[tokio::test]
async fn the_console_creates_a_scoped_token_and_shows_its_scope() {
    let s = TestServer::start().await;
    let (mut b, csrf) = crate::console::signed_in_admin(&s).await;
    let (_, ws) = crate::browser::bootstrap(&s);
    let (pa, _, _) = project(&s, "Alpha").await;
    let url = format!("/console/w/{ws}/tokens");

    let page = b.get(&url).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains(&format!("<option value=\"{pa}\">Alpha ({pa})</option>")),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("id=\"token_read_only\""),
        "{}",
        page.body
    );

    // A project that is not the workspace's: refused with the reason, nothing created.
    let r = b
        .post(
            &url,
            &[
                ("csrf_token", &csrf),
                ("name", "bad"),
                ("project", "proj_nope"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("proj_nope"), "{}", r.body);

    let r = b
        .post(
            &url,
            &[
                ("csrf_token", &csrf),
                ("name", "console-scoped"),
                ("project", &pa),
                ("read_only", "yes"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = b.get(&url).await;
    let value = page.testid("secret").expect("token shown once");
    assert!(
        page.body
            .contains(&format!("project Alpha ({pa}), read-only")),
        "{}",
        page.body
    );
    assert!(page.body.contains("whole workspace"), "{}", page.body);

    let r = send_as(
        &s,
        &value,
        Method::GET,
        &format!("/v1/projects/{pa}"),
        json!(null),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = send_as(
        &s,
        &value,
        Method::PATCH,
        &format!("/v1/projects/{pa}"),
        json!({ "name": "x" }),
    )
    .await;
    refused(&r, "console read-only token");
    s.stop().await;
}
