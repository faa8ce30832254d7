//! Claimable temporary databases (the `create-db` CLI's service): off by default (404), the
//! per-client rate limit and the cap on unclaimed databases (429 with `Retry-After`, the
//! shape the CLI shows), the client's shorter TTL, a claim that works once and not after
//! expiry, the claim page over HTTP (sign-in, CSRF, membership), and the reaper. The
//! unmodified CLI itself, psql and the claim in Chromium: `tests/node/create-db.test.mjs`.

use pgfleet_domain::services::claimable::ClaimStatus;
use pgfleet_domain::DomainError;
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{cluster, eventually, Resp, TestServer};

async fn enabled(tweak: impl FnOnce(&mut pgfleet::config::ClaimableConfig)) -> TestServer {
    TestServer::start_with(|c| {
        c.claimable.enabled = true;
        tweak(&mut c.claimable);
    })
    .await
}

/// `POST /create-db/create` as the CLI sends it (plus a made-up `X-Forwarded-For`, which an
/// untrusted peer cannot use to dodge the rate limit).
async fn create(s: &TestServer) -> Resp {
    Resp::from(
        s.http
            .post(format!("{}/create-db/create", s.base))
            .header("x-forwarded-for", format!("10.9.8.{}", rand_octet()))
            .json(&json!({
                "region": "us-east-1",
                "name": "2026-01-01T00:00:00.000Z",
                "utm_source": "create-db",
                "userAgent": null,
                "source": "cli",
            }))
            .send()
            .await
            .unwrap(),
    )
    .await
}

fn rand_octet() -> u8 {
    (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        % 250) as u8
}

fn token(r: &Resp) -> String {
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["data"]["id"].as_str().unwrap().to_string()
}

/// The bootstrap admin's access to the bootstrap workspace, as the console would get it.
async fn admin_access(s: &TestServer) -> (pgfleet_domain::WorkspaceAccess, String) {
    let db = cluster().admin(&s.metadata_db()).await;
    let row = db
        .query_one("SELECT user_id, workspace_id FROM memberships LIMIT 1", &[])
        .await
        .unwrap();
    let (user, ws): (String, String) = (row.get(0), row.get(1));
    let access = s
        .services()
        .access()
        .console(&user, &ws)
        .await
        .unwrap()
        .unwrap();
    (access, ws)
}

#[tokio::test]
async fn disabled_by_default_every_route_is_404() {
    let s = TestServer::start().await;
    for path in ["/create-db/health", "/create-db/regions"] {
        let r = Resp::from(
            s.http
                .get(format!("{}{path}", s.base))
                .send()
                .await
                .unwrap(),
        )
        .await;
        r.assert_error(404, "not_found");
    }
    create(&s).await.assert_error(404, "not_found");
    let page = s
        .http
        .get(format!("{}/claim-db/claim?projectID=pgfcl_x", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    s.stop().await;
}

#[tokio::test]
async fn the_cli_routes_answer_its_shapes() {
    let s = enabled(|_| {}).await;
    let health = Resp::from(
        s.http
            .get(format!("{}/create-db/health", s.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(health.status, StatusCode::OK);
    let regions = Resp::from(
        s.http
            .get(format!("{}/create-db/regions", s.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let list = regions.body.as_array().unwrap();
    assert!(list
        .iter()
        .any(|r| r["id"] == "us-east-1" && r["status"] == "available"));
    let analytics = s
        .http
        .post(format!("{}/create-db/analytics", s.base))
        .json(&json!({"eventName": "x", "properties": {"distinct_id": "y"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(analytics.status(), StatusCode::NO_CONTENT);
    // Bounded: a body over 16 KiB is refused before it is read whole.
    let big = s
        .http
        .post(format!("{}/create-db/create", s.base))
        .header("content-type", "application/json")
        .body(format!("{{\"region\":\"{}\"}}", "a".repeat(20_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let big_event = s
        .http
        .post(format!("{}/create-db/analytics", s.base))
        .body(vec![b'x'; 20_000])
        .send()
        .await
        .unwrap();
    assert_eq!(big_event.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let r = create(&s).await;
    let t = token(&r);
    assert!(t.starts_with("pgfcl_") && t.len() == 49, "{t}");
    let db = &r.body["data"]["database"];
    let conn = &db["connections"][0]["endpoints"];
    assert!(conn["direct"]["connectionString"].is_string(), "{db}");
    assert!(conn["pooled"]["connectionString"].is_string(), "{db}");
    assert_eq!(db["region"]["id"], "us-east-1");
    // Only the hash is stored.
    let meta = cluster().admin(&s.metadata_db()).await;
    let stored: Vec<u8> = meta
        .query_one("SELECT token_hash FROM claimables", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, pgfleet_auth::hash_token(&t));
    s.stop().await;
}

#[tokio::test]
async fn rate_limit_per_client_address_is_429_with_retry_after() {
    let s = enabled(|c| c.per_client_per_hour = 2).await;
    token(&create(&s).await);
    token(&create(&s).await);
    let r = create(&s).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert_eq!(r.body["error"], "RATE_LIMIT_EXCEEDED");
    assert!(r.body["message"].as_str().unwrap().contains("per hour"));
    let after: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&after));
    s.stop().await;
}

#[tokio::test]
async fn unclaimed_databases_are_capped() {
    let s = enabled(|c| c.max_unclaimed = 1).await;
    token(&create(&s).await);
    let r = create(&s).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.body["message"]
        .as_str()
        .unwrap()
        .contains("waiting to be claimed"));
    assert!(r.headers.contains_key("retry-after"));
    s.stop().await;
}

#[tokio::test]
async fn a_claim_works_once_and_moves_the_project() {
    let s = enabled(|_| {}).await;
    let r = create(&s).await;
    let t = token(&r);
    let project_id = r.body["data"]["projectId"].as_str().unwrap().to_string();
    // Not visible to the workspace before the claim.
    s.get(&format!("/v1/projects/{project_id}"))
        .await
        .assert_error(404, "not_found");
    let (access, ws) = admin_access(&s).await;
    let claimable = s.services().claimable();
    assert!(matches!(
        claimable.status(&t).await.unwrap(),
        ClaimStatus::Open { .. }
    ));
    let project = claimable
        .claim(&access.workspace_wide_write().unwrap(), &t)
        .await
        .unwrap();
    assert_eq!(project.id, project_id);
    assert_eq!(project.workspace.id, ws);
    let seen = s.get(&format!("/v1/projects/{project_id}")).await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.body);
    assert_eq!(claimable.status(&t).await.unwrap(), ClaimStatus::Claimed);
    let again = claimable
        .claim(&access.workspace_wide_write().unwrap(), &t)
        .await
        .unwrap_err();
    assert!(matches!(again, DomainError::Conflict { .. }), "{again:?}");
    let unknown = claimable
        .claim(
            &access.workspace_wide_write().unwrap(),
            &format!("pgfcl_{}", "A".repeat(43)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(unknown, DomainError::NotFound { .. }),
        "{unknown:?}"
    );
    // A claimed database is never reaped.
    assert_eq!(claimable.reap().await.unwrap(), 0);
    s.stop().await;
}

#[tokio::test]
async fn an_expired_link_is_refused_and_the_reaper_deletes_its_project() {
    // A long reaper interval: this test runs the rounds itself.
    let s = enabled(|c| {
        c.ttl_secs = 1;
        c.reap_interval_secs = 86_400;
    })
    .await;
    let r = create(&s).await;
    let t = token(&r);
    let project_id = r.body["data"]["projectId"].as_str().unwrap().to_string();
    let claimable = s.services().claimable();
    eventually("the link expires", || async {
        claimable.status(&t).await.unwrap() == ClaimStatus::Expired
    })
    .await;
    let (access, _) = admin_access(&s).await;
    let refused = claimable
        .claim(&access.workspace_wide_write().unwrap(), &t)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, DomainError::Conflict { .. }),
        "{refused:?}"
    );

    let meta = cluster().admin(&s.metadata_db()).await;
    // A database still provisioning waits for a later round.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while claimable.reap().await.unwrap() == 0 {
        assert!(std::time::Instant::now() < deadline, "never reaped");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // The project's delete is planned with `reaped_at` in one commit: both or neither.
    let row = meta
        .query_one(
            "SELECT reaped_at IS NOT NULL,
                    (SELECT count(*) FROM operations o JOIN databases d ON d.id = o.resource_id
                      WHERE d.project_id = $1 AND o.kind = 'database.delete')
               FROM claimables WHERE project_id = $1",
            &[&project_id],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0));
    assert_eq!(row.get::<_, i64>(1), 1);
    eventually("the project is deleted", || async {
        meta.query_opt("SELECT 1 FROM projects WHERE id = $1", &[&project_id])
            .await
            .unwrap()
            .is_none()
    })
    .await;
    assert_eq!(claimable.status(&t).await.unwrap(), ClaimStatus::Expired);
    assert_eq!(claimable.reap().await.unwrap(), 0);
    s.stop().await;
}

#[tokio::test]
async fn the_claim_page_signs_in_checks_csrf_and_membership_then_claims_once() {
    let s = enabled(|_| {}).await;
    let created = create(&s).await;
    let t = token(&created);
    let project_id = created.body["data"]["projectId"].as_str().unwrap();
    let url = format!("/claim-db/claim?projectID={t}&utm_source=create-db&utm_medium=cli");

    // Not signed in: to the sign-in page, and back here afterwards.
    let mut anonymous = crate::browser::Browser::new(&s);
    let r = anonymous.get(&url).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.redirect_to(),
        format!(
            "/login?next={}",
            crate::browser::enc(&format!("/claim-db/claim?projectID={t}"))
        )
    );

    let (mut b, ws) = crate::browser::admin_browser(&s).await;
    // The server administrator sees it waiting (admin area).
    let admin_page = b.get(&format!("/console/w/{ws}/replicas")).await;
    assert!(admin_page.body.contains(project_id), "{}", admin_page.body);
    let page = b.get(&url).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.assert_security_headers();
    assert!(page.body.contains(&format!("<option value=\"{ws}\">")));
    let csrf = page.input("csrf_token");
    assert_eq!(page.input("token"), t);

    let wrong = b
        .post(
            "/claim-db/claim",
            &[("csrf_token", "x"), ("token", &t), ("workspace_id", &ws)],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let elsewhere = b
        .post(
            "/claim-db/claim",
            &[
                ("csrf_token", &csrf),
                ("token", &t),
                ("workspace_id", "wksp_notmine"),
            ],
        )
        .await;
    assert_eq!(elsewhere.status, StatusCode::FORBIDDEN);
    assert!(matches!(
        s.services().claimable().status(&t).await.unwrap(),
        ClaimStatus::Open { .. }
    ));

    let done = b
        .post(
            "/claim-db/claim",
            &[("csrf_token", &csrf), ("token", &t), ("workspace_id", &ws)],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let project = done
        .redirect_to()
        .strip_prefix(&format!("/console/w/{ws}/projects/"))
        .unwrap()
        .to_string();
    assert_eq!(
        s.get(&format!("/v1/projects/{project}")).await.body["data"]["workspace"]["id"],
        ws.as_str()
    );

    let admin_page = b.get(&format!("/console/w/{ws}/replicas")).await;
    assert!(!admin_page.body.contains(project_id));
    assert!(admin_page.body.contains("None waiting."));
    // Spent: the page and a replayed form both say so.
    let again = b.get(&url).await;
    assert_eq!(again.status, StatusCode::GONE);
    assert!(again.body.contains("Already claimed"), "{}", again.body);
    let replay = b
        .post(
            "/claim-db/claim",
            &[("csrf_token", &csrf), ("token", &t), ("workspace_id", &ws)],
        )
        .await;
    assert_eq!(replay.status, StatusCode::GONE);
    let unknown = b
        .get(&format!(
            "/claim-db/claim?projectID=pgfcl_{}",
            "B".repeat(43)
        ))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    s.stop().await;
}

#[tokio::test]
async fn a_shorter_ttl_of_the_client_is_honoured_a_longer_one_capped() {
    let s = enabled(|c| c.ttl_secs = 7200).await;
    let at = |ttl_ms: u64| {
        let s = &s;
        async move {
            let r = Resp::from(
                s.http
                    .post(format!("{}/create-db/create", s.base))
                    .json(&json!({ "region": "us-east-1", "ttlMs": ttl_ms }))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            let expires =
                chrono::DateTime::parse_from_rfc3339(r.body["data"]["expiresAt"].as_str().unwrap())
                    .unwrap();
            (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds()
        }
    };
    let short = at(1_800_000).await;
    assert!((1_700..=1_800).contains(&short), "{short}");
    let long = at(86_400_000).await;
    assert!((7_100..=7_200).contains(&long), "{long}");
    s.stop().await;
}
