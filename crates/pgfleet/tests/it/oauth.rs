//! The OAuth authorization server at the protocol level: code exchange with PKCE for public
//! and confidential clients (the seed's curl flow), refresh rotation and reuse detection,
//! revocation, integrations, and the RFC duties' negative cases. The browser half (sign-in,
//! consent) is in `pages.rs` and the Node SDK test.

use std::collections::HashMap;

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Digest as _;

use crate::harness::{Resp, TestServer};

const VERIFIER: &str = "a-fairly-long-pkce-code-verifier-of-more-than-43-characters-0123";
const REDIRECT: &str = "http://127.0.0.1:9/callback";

fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

struct Ctx {
    s: TestServer,
    ws: String,
    user: String,
}

async fn ctx() -> Ctx {
    let s = TestServer::start().await;
    let me = s.get("/v1/me").await.body;
    let ws = me["data"]["workspace"]["id"].as_str().unwrap().to_string();
    let user = me["data"]["user"]["id"].as_str().unwrap().to_string();
    Ctx { s, ws, user }
}

impl Ctx {
    async fn app(&self, confidential: bool) -> (String, Option<String>) {
        let member = self
            .s
            .services()
            .access()
            .console(&self.user, &self.ws)
            .await
            .unwrap()
            .unwrap();
        let c = self
            .s
            .services()
            .oauth()
            .client_create(
                &member.workspace_wide_write().unwrap(),
                "Test app",
                Some("for tests"),
                &[REDIRECT.to_string()],
                confidential,
            )
            .await
            .unwrap();
        (c.client.id, c.client_secret)
    }

    /// A code as the consent page would produce it.
    async fn code(&self, client_id: &str, scope: &str, verifier: &str) -> String {
        self.code_as(&self.user, client_id, scope, verifier).await
    }

    /// A code as the consent page would produce it for `user`.
    async fn code_as(&self, user: &str, client_id: &str, scope: &str, verifier: &str) -> String {
        let q: HashMap<String, String> = [
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("scope", scope),
            ("state", "st4te"),
            ("code_challenge", &challenge(verifier)),
            ("code_challenge_method", "S256"),
            ("utm_source", "ignored"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let req = self.s.services().oauth().authorize_check(&q).await.unwrap();
        let url = self
            .s
            .services()
            .oauth()
            .approve(user, &req, &self.ws)
            .await
            .unwrap();
        let url = url::Url::parse(&url).unwrap();
        let pairs: HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(pairs["state"], "st4te");
        pairs["code"].clone()
    }

    /// The code exchange of the tests' redirect URI and verifier (`client_secret` in the
    /// body for a confidential app).
    async fn exchange(&self, client_id: &str, secret: Option<&str>, code: &str) -> Resp {
        let mut form = vec![
            ("client_id", client_id),
            ("code", code),
            ("grant_type", "authorization_code"),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ];
        if let Some(secret) = secret {
            form.push(("client_secret", secret));
        }
        self.token(&form, None).await
    }

    async fn token(&self, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> Resp {
        let mut r = self
            .s
            .http
            .post(format!("{}/token", self.s.base))
            .form(form);
        if let Some((id, secret)) = basic {
            r = r.basic_auth(id, Some(secret));
        }
        Resp::from(r.send().await.unwrap()).await
    }

    async fn api(&self, token: &str, path: &str) -> Resp {
        Resp::from(
            self.s
                .http
                .get(format!("{}{path}", self.s.base))
                .bearer_auth(token)
                .send()
                .await
                .unwrap(),
        )
        .await
    }
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[track_caller]
fn oauth_error(r: &Resp, status: u16, error: &str) {
    assert_eq!(r.status.as_u16(), status, "{}", r.body);
    assert_eq!(r.body["error"], error, "{}", r.body);
    assert!(r.body["error_description"].is_string());
    assert_eq!(r.headers["cache-control"], "no-store");
}

#[tokio::test]
async fn discovery_documents() {
    let c = ctx().await;
    let m = Resp::from(
        c.s.http
            .get(format!(
                "{}/.well-known/oauth-authorization-server",
                c.s.base
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(m.status, StatusCode::OK);
    assert_eq!(m.body["issuer"], c.s.base.as_str());
    assert_eq!(m.body["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(m.body["token_endpoint"], format!("{}/token", c.s.base));
    assert!(!m.body["grant_types_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("password")));
    let j = Resp::from(
        c.s.http
            .get(format!("{}/.well-known/jwks.json", c.s.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let key = &j.body["keys"][0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["crv"].as_str(),
            key["alg"].as_str()
        ),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"))
    );
    assert!(key.get("d").is_none(), "no private part");
    c.s.stop().await;
}

/// The seed's curl flow: a confidential client with `client_secret` (plus PKCE).
#[tokio::test]
async fn confidential_client_code_flow_with_client_secret() {
    let c = ctx().await;
    let (id, secret) = c.app(true).await;
    let secret = secret.unwrap();
    let code = c
        .code(&id, "workspace:admin offline_access", VERIFIER)
        .await;
    let r = c.exchange(&id, Some(&secret), &code).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_eq!(r.body["token_type"], "Bearer");
    let access = r.body["access_token"].as_str().unwrap();
    assert!(r.body["refresh_token"].as_str().unwrap().len() > 40);
    let cl = claims(access);
    for k in [
        "iss",
        "sub",
        "exp",
        "iat",
        "jti",
        "client_id",
        "scope",
        "workspace_id",
    ] {
        assert!(cl.get(k).is_some(), "claim {k} missing: {cl}");
    }
    assert_eq!(cl["workspace_id"], c.ws.as_str());
    assert_eq!(cl["client_id"], id.as_str());

    let me = c.api(access, "/v1/me").await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["data"]["credential"]["type"], "oauth");
    assert_eq!(me.body["data"]["workspace"]["id"], c.ws.as_str());
    let p = Resp::from(
        c.s.http
            .post(format!("{}/v1/projects", c.s.base))
            .bearer_auth(access)
            .json(&json!({"name": "via-oauth", "createDatabase": false}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);

    // client_secret_basic works too; a wrong secret is invalid_client with a Basic challenge.
    let code = c.code(&id, "workspace:admin", VERIFIER).await;
    let form = [
        ("code", code.as_str()),
        ("grant_type", "authorization_code"),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let bad = c.token(&form, Some((&id, "pgfcs_wrong"))).await;
    oauth_error(&bad, 401, "invalid_client");
    assert!(bad.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    let ok = c.token(&form, Some((&id, &secret))).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    // Without offline_access there is no refresh token.
    assert!(ok.body.get("refresh_token").is_none());
    // No secret at all for a confidential client.
    let code = c.code(&id, "workspace:admin", VERIFIER).await;
    let r = c.exchange(&id, None, &code).await;
    oauth_error(&r, 401, "invalid_client");
    c.s.stop().await;
}

#[tokio::test]
async fn public_client_refresh_rotation_and_reuse_detection() {
    let c = ctx().await;
    let (id, _) = c.app(false).await;
    let code = c
        .code(&id, "workspace:admin offline_access", VERIFIER)
        .await;
    let r = c.exchange(&id, None, &code).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let rt1 = r.body["refresh_token"].as_str().unwrap().to_string();

    let r2 = c
        .token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt1),
                ("client_id", &id),
            ],
            None,
        )
        .await;
    assert_eq!(r2.status, StatusCode::OK, "{}", r2.body);
    let rt2 = r2.body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt2, "rotated");
    let access2 = r2.body["access_token"].as_str().unwrap().to_string();
    assert_eq!(c.api(&access2, "/v1/me").await.status, StatusCode::OK);

    // The old refresh token again: the whole family dies.
    oauth_error(
        &c.token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt1),
                ("client_id", &id),
            ],
            None,
        )
        .await,
        400,
        "invalid_grant",
    );
    oauth_error(
        &c.token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt2),
                ("client_id", &id),
            ],
            None,
        )
        .await,
        400,
        "invalid_grant",
    );
    let r = c.api(&access2, "/v1/me").await;
    r.assert_error(401, "authentication-failed");
    assert!(r.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    c.s.stop().await;
}

#[tokio::test]
async fn code_rules_pkce_single_use_binding_and_expiry() {
    let c = ctx().await;
    let (id, _) = c.app(false).await;
    let (other, _) = c.app(false).await;
    let exchange =
        |code: String, client: String, verifier: &'static str, redirect: &'static str| {
            let c = &c;
            async move {
                c.token(
                    &[
                        ("client_id", &client),
                        ("code", &code),
                        ("grant_type", "authorization_code"),
                        ("redirect_uri", redirect),
                        ("code_verifier", verifier),
                    ],
                    None,
                )
                .await
            }
        };
    // Wrong verifier, missing verifier, wrong redirect URI, other client.
    oauth_error(
        &exchange(
            c.code(&id, "workspace:admin", VERIFIER).await,
            id.clone(),
            "x-wrong-verifier-that-is-long-enough-to-be-valid-0000000",
            REDIRECT,
        )
        .await,
        400,
        "invalid_grant",
    );
    let code = c.code(&id, "workspace:admin", VERIFIER).await;
    oauth_error(
        &c.token(
            &[
                ("client_id", &id),
                ("code", &code),
                ("grant_type", "authorization_code"),
                ("redirect_uri", REDIRECT),
            ],
            None,
        )
        .await,
        400,
        "invalid_request",
    );
    oauth_error(
        &exchange(
            c.code(&id, "workspace:admin", VERIFIER).await,
            id.clone(),
            VERIFIER,
            "http://127.0.0.1:9/other",
        )
        .await,
        400,
        "invalid_grant",
    );
    oauth_error(
        &exchange(
            c.code(&id, "workspace:admin", VERIFIER).await,
            other.clone(),
            VERIFIER,
            REDIRECT,
        )
        .await,
        400,
        "invalid_grant",
    );

    // Single use: the second exchange fails and revokes what the first issued.
    let code = c
        .code(&id, "workspace:admin offline_access", VERIFIER)
        .await;
    let first = exchange(code.clone(), id.clone(), VERIFIER, REDIRECT).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let access = first.body["access_token"].as_str().unwrap().to_string();
    assert_eq!(c.api(&access, "/v1/me").await.status, StatusCode::OK);
    oauth_error(
        &exchange(code, id.clone(), VERIFIER, REDIRECT).await,
        400,
        "invalid_grant",
    );
    c.api(&access, "/v1/me")
        .await
        .assert_error(401, "authentication-failed");
    let rt = first.body["refresh_token"].as_str().unwrap();
    oauth_error(
        &c.token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt),
                ("client_id", &id),
            ],
            None,
        )
        .await,
        400,
        "invalid_grant",
    );

    // Expired code.
    let code = c.code(&id, "workspace:admin", VERIFIER).await;
    sqlx::query("UPDATE oauth_codes SET expires_at = now() - interval '1 minute'")
        .execute(c.s.services().store().pool())
        .await
        .unwrap();
    oauth_error(
        &exchange(code, id.clone(), VERIFIER, REDIRECT).await,
        400,
        "invalid_grant",
    );

    // Grant types and malformed requests.
    oauth_error(
        &c.token(
            &[
                ("grant_type", "password"),
                ("username", "a"),
                ("password", "b"),
                ("client_id", &id),
            ],
            None,
        )
        .await,
        400,
        "unsupported_grant_type",
    );
    oauth_error(
        &c.token(&[("client_id", &id)], None).await,
        400,
        "invalid_request",
    );
    oauth_error(
        &c.token(
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "itgr_unknown"),
                ("code", "x"),
            ],
            None,
        )
        .await,
        401,
        "invalid_client",
    );
    oauth_error(
        &c.token(
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &id),
                ("client_secret", "x"),
                ("code", "x"),
            ],
            None,
        )
        .await,
        401,
        "invalid_client",
    );
    let r = Resp::from(
        c.s.http
            .post(format!("{}/token", c.s.base))
            .json(&json!({"grant_type": "authorization_code"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    oauth_error(&r, 400, "invalid_request");
    c.s.stop().await;
}

#[tokio::test]
async fn authorize_request_validation() {
    let c = ctx().await;
    let (id, _) = c.app(false).await;
    let base: Vec<(&str, String)> = vec![
        ("response_type", "code".into()),
        ("client_id", id.clone()),
        ("redirect_uri", REDIRECT.into()),
        ("scope", "workspace:admin".into()),
        ("state", "s1".into()),
        ("code_challenge", challenge(VERIFIER)),
        ("code_challenge_method", "S256".into()),
    ];
    let check = |changes: Vec<(&'static str, Option<&'static str>)>| {
        let mut q: HashMap<String, String> = base
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        for (k, v) in changes {
            match v {
                Some(v) => q.insert(k.to_string(), v.to_string()),
                None => q.remove(k),
            };
        }
        let services = c.s.services().clone();
        async move { services.oauth().authorize_check(&q).await }
    };
    use pgfleet_domain::services::oauth::AuthorizeError;
    assert!(check(vec![]).await.is_ok());
    assert!(matches!(
        check(vec![("client_id", Some("itgr_nope"))]).await,
        Err(AuthorizeError::Page(_))
    ));
    assert!(matches!(
        check(vec![("redirect_uri", Some("http://127.0.0.1:9/callback/"))]).await,
        Err(AuthorizeError::Page(_))
    ));
    // A loopback redirect URI matches on any port (RFC 8252 §7.3), nothing else does.
    assert!(check(vec![(
        "redirect_uri",
        Some("http://127.0.0.1:40123/callback")
    )])
    .await
    .is_ok());
    assert!(matches!(
        check(vec![("redirect_uri", Some("http://localhost:9/callback"))]).await,
        Err(AuthorizeError::Page(_))
    ));
    assert!(matches!(
        check(vec![("redirect_uri", None)]).await,
        Err(AuthorizeError::Page(_))
    ));
    let redirect_error = |r: Result<_, AuthorizeError>| match r {
        Err(AuthorizeError::Redirect(u)) => {
            let u = url::Url::parse(&u).unwrap();
            let q: HashMap<String, String> = u.query_pairs().into_owned().collect();
            assert_eq!(q["state"], "s1");
            q["error"].clone()
        }
        other => panic!("expected a redirect, got {other:?}"),
    };
    assert_eq!(
        redirect_error(check(vec![("code_challenge_method", Some("plain"))]).await),
        "invalid_request"
    );
    assert_eq!(
        redirect_error(check(vec![("code_challenge", None)]).await),
        "invalid_request"
    );
    assert_eq!(
        redirect_error(check(vec![("scope", Some("workspace:admin root"))]).await),
        "invalid_scope"
    );
    assert_eq!(
        redirect_error(check(vec![("response_type", Some("token"))]).await),
        "unsupported_response_type"
    );
    c.s.stop().await;
}

#[tokio::test]
async fn revocation_integrations_and_scope() {
    let c = ctx().await;
    let (id, secret) = c.app(true).await;
    let secret = secret.unwrap();
    let get_tokens = |scope: &'static str| {
        let c = &c;
        let (id, secret) = (id.clone(), secret.clone());
        async move {
            let code = c.code(&id, scope, VERIFIER).await;
            let r = c.exchange(&id, Some(&secret), &code).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            (
                r.body["access_token"].as_str().unwrap().to_string(),
                r.body["refresh_token"].as_str().map(String::from),
            )
        }
    };
    // RFC 7009: revoke a refresh token; unknown tokens are fine; bad client is not.
    let (access, refresh) = get_tokens("workspace:admin offline_access").await;
    let revoke = |form: Vec<(&'static str, String)>| {
        let c = &c;
        async move {
            Resp::from(
                c.s.http
                    .post(format!("{}/revoke", c.s.base))
                    .form(&form)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let r = revoke(vec![
        ("token", refresh.clone().unwrap()),
        ("client_id", id.clone()),
        ("client_secret", secret.clone()),
    ])
    .await;
    assert_eq!(r.status, StatusCode::OK);
    oauth_error(
        &c.token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh.unwrap()),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
            None,
        )
        .await,
        400,
        "invalid_grant",
    );
    c.api(&access, "/v1/me")
        .await
        .assert_error(401, "authentication-failed");
    let r = revoke(vec![
        ("token", "pgfrt_unknown".into()),
        ("client_id", id.clone()),
        ("client_secret", secret.clone()),
    ])
    .await;
    assert_eq!(r.status, StatusCode::OK);
    oauth_error(
        &revoke(vec![
            ("token", "x".into()),
            ("client_id", id.clone()),
            ("client_secret", "bad".into()),
        ])
        .await,
        401,
        "invalid_client",
    );

    // Integrations: listed in the contract's shape, revoking stops the token at once.
    let (access, refresh) = get_tokens("workspace:admin offline_access").await;
    assert_eq!(c.api(&access, "/v1/me").await.status, StatusCode::OK);
    let list =
        c.s.get(&format!("/v1/workspaces/{}/integrations", c.ws))
            .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let i = &list.body["data"][0];
    assert_eq!(i["client"]["id"], id.as_str());
    assert_eq!(i["client"]["name"], "Test app");
    assert_eq!(i["createdByUser"]["email"], "admin@pgfleet.localhost");
    assert_eq!(
        i["url"],
        format!("{}/v1/integrations/{}", c.s.base, i["id"].as_str().unwrap())
    );
    let mut keys: Vec<&String> = i.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            "client",
            "createdAt",
            "createdByUser",
            "id",
            "scopes",
            "url"
        ]
    );
    let all =
        c.s.get(&format!("/v1/integrations?workspaceId={}", c.ws))
            .await;
    assert_eq!(all.body["data"], list.body["data"]);
    let one =
        c.s.get(&format!("/v1/integrations/{}", i["id"].as_str().unwrap()))
            .await;
    assert_eq!(&one.body["data"], i);
    c.s.get("/v1/integrations")
        .await
        .assert_error(400, "bad_request");

    assert_eq!(
        c.s.delete(&format!("/v1/workspaces/{}/integrations/{id}", c.ws))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    c.api(&access, "/v1/me")
        .await
        .assert_error(401, "authentication-failed");
    oauth_error(
        &c.token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh.unwrap()),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
            None,
        )
        .await,
        400,
        "invalid_grant",
    );
    c.s.delete(&format!("/v1/workspaces/{}/integrations/{id}", c.ws))
        .await
        .assert_error(404, "not_found");
    assert_eq!(
        c.s.get(&format!("/v1/workspaces/{}/integrations", c.ws))
            .await
            .body["data"],
        json!([])
    );

    // A token without workspace:admin is refused with insufficient_scope: 401, as
    // `GET /v1/me` lists no 403.
    let (narrow, _) = get_tokens("offline_access").await;
    let r = c.api(&narrow, "/v1/me").await;
    r.assert_error(401, "insufficient_scope");
    assert!(r.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("insufficient_scope"));

    // An OAuth access token of the recipient workspace works for transfer.
    let (access, _) = get_tokens("workspace:admin").await;
    let p =
        c.s.post(
            "/v1/projects",
            json!({"name": "to-move", "createDatabase": false}),
        )
        .await;
    let pid = p.body["data"]["id"].as_str().unwrap();
    let t =
        c.s.post(
            &format!("/v1/projects/{pid}/transfer"),
            json!({"recipientAccessToken": access}),
        )
        .await;
    assert_eq!(t.status, StatusCode::NO_CONTENT, "{}", t.body);
    c.s.stop().await;
}

/// A member removed from a workspace loses the OAuth access they granted apps there: their
/// access token stops working at once and their refresh token is refused.
#[tokio::test]
async fn removing_a_member_revokes_their_oauth_access() {
    let c = ctx().await;
    let services = c.s.services().clone();
    let access = services
        .access()
        .console(&c.user, &c.ws)
        .await
        .unwrap()
        .unwrap();
    let rights = services
        .members()
        .rights(&access.workspace_wide().unwrap())
        .await
        .unwrap();
    let bob = services
        .members()
        .create_user(
            rights.create_users().unwrap(),
            "bob@example.com",
            Some("a long enough password"),
            Some((rights.manage_members().unwrap(), "member")),
        )
        .await
        .unwrap()
        .user
        .id;
    let (app, _) = c.app(false).await;
    let code = c
        .code_as(&bob, &app, "workspace:admin offline_access", VERIFIER)
        .await;
    let r = c.exchange(&app, None, &code).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let access = r.body["access_token"].as_str().unwrap().to_string();
    let refresh = r.body["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(c.api(&access, "/v1/projects").await.status, StatusCode::OK);

    services
        .members()
        .remove(rights.manage_members().unwrap(), &bob)
        .await
        .unwrap();
    let r = c.api(&access, "/v1/projects").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    let r = c
        .token(
            &[
                ("client_id", &app),
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
            ],
            None,
        )
        .await;
    oauth_error(&r, 400, "invalid_grant");
    // The admin's own access is untouched.
    assert_eq!(c.s.get("/v1/projects").await.status, StatusCode::OK);
    c.s.stop().await;
}

/// The token-signing key is kept encrypted in the metadata database: a key an older version
/// left in plain text is encrypted at start (and still signs), a server given another
/// key-encryption secret refuses to start and says why, the right secret opens it again
/// and tokens minted before keep working.
#[tokio::test]
async fn signing_key_is_encrypted_at_rest() {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use ring::signature::KeyPair as _;

    let db = crate::harness::fresh_metadata_db().await;
    let pkcs8 =
        ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(pkcs8.as_ref())
    );
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "legacy1", "use": "sig", "alg": "EdDSA"});
    let admin = crate::harness::cluster().admin(&db).await;
    admin
        .execute(
            "INSERT INTO signing_keys (kid, algorithm, private_pem, public_jwk, created_at)
             VALUES ('legacy1', 'EdDSA', $1, $2::text::jsonb, now())",
            &[&pem, &jwk.to_string()],
        )
        .await
        .unwrap();
    let stored = || async {
        admin
            .query_one(
                "SELECT private_pem FROM signing_keys WHERE kid = 'legacy1'",
                &[],
            )
            .await
            .unwrap()
            .get::<_, String>(0)
    };
    let on = |secret: &'static str| {
        let url = crate::harness::cluster().url(&db);
        move |cfg: &mut pgfleet::config::Config| {
            cfg.metadata.url = Some(pgfleet::config::Secret::new(url));
            cfg.oauth.key_encryption_key = Some(pgfleet::config::Secret::new(secret));
            // One issuer for the restarted servers (each listens on a new port).
            cfg.oauth.issuer = Some("http://pgfleet.test".to_string());
        }
    };

    let s = TestServer::start_with(on("the first secret, long enough")).await;
    let sealed = stored().await;
    assert!(sealed.starts_with("pgfleet-aes256gcm-v1:"), "{sealed}");
    assert!(!sealed.contains("PRIVATE KEY") && !sealed.contains(&STANDARD.encode(pkcs8.as_ref())));
    let me = s.get("/v1/me").await.body;
    let c = Ctx {
        ws: me["data"]["workspace"]["id"].as_str().unwrap().to_string(),
        user: me["data"]["user"]["id"].as_str().unwrap().to_string(),
        s,
    };
    let (app, _) = c.app(false).await;
    let code = c.code(&app, "workspace:admin", VERIFIER).await;
    let r = c.exchange(&app, None, &code).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let access = r.body["access_token"].as_str().unwrap().to_string();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(access.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["kid"], "legacy1", "the existing key still signs");
    c.s.stop().await;

    let e = TestServer::try_start_with(on("another secret, long enough"))
        .await
        .err()
        .expect("a server with another secret refuses to start");
    assert!(
        format!("{e:#}").contains("oauth.key_encryption_key"),
        "{e:#}"
    );
    assert_eq!(stored().await, sealed, "the stored key is left alone");

    let s = TestServer::start_with(on("the first secret, long enough")).await;
    let r = Resp::from(
        s.http
            .get(format!("{}/v1/projects", s.base))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    s.stop().await;

    // Without a configured secret, one is generated into the data directory (0600) and a
    // new key is stored sealed with it.
    let dir = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen = dir.clone();
    let s = TestServer::start_with(move |cfg| {
        *seen.lock().unwrap() = Some(cfg.data_dir.clone());
    })
    .await;
    let secret_file = dir
        .lock()
        .unwrap()
        .clone()
        .unwrap()
        .join("secrets/oauth-key-encryption-key");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&secret_file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let pool = s.services().store().pool().clone();
    let (key,): (String,) = sqlx::query_as("SELECT private_pem FROM signing_keys")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(key.starts_with("pgfleet-aes256gcm-v1:"), "{key}");
    s.stop().await;
}
