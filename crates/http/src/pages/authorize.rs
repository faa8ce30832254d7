//! `GET /authorize` (the OAuth authorization endpoint: validation, sign-in, consent page)
//! and `POST /authorize` (the user's decision).
//!
//! A request whose client or redirect URI is unknown gets an error page and is never
//! redirected; other invalid requests are sent back to the redirect URI with `error=…`. The
//! consent form carries the whole authorization request in hidden fields, and `POST` checks
//! it again from scratch, so nothing the browser sends is trusted twice.

use std::collections::HashMap;

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, RawQuery, State};
use axum::http::header::CONTENT_SECURITY_POLICY;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use pgfleet_domain::services::oauth::{AuthorizeError, AuthorizeRequest};

use super::{
    fail, field, form_map, render, see_other, signed_in, to_login, urlencode, Chrome, PageError,
    CONSENT_CSP,
};
use crate::AppState;

/// The parameters of an authorization request (the rest of a query is ignored).
const OAUTH_PARAMS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
];

struct ScopeView {
    scope: String,
    words: String,
}

struct WorkspaceOption {
    id: String,
    name: String,
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentTemplate {
    chrome: Chrome,
    client_name: String,
    client_description: Option<String>,
    scopes: Vec<ScopeView>,
    workspaces: Vec<WorkspaceOption>,
    client_id: String,
    redirect_uri: String,
    /// Where the browser goes next, as shown to the user (scheme and host).
    redirect_target: String,
    scope: String,
    state: String,
    code_challenge: String,
}

/// The query as a map of the OAuth parameters; a parameter sent twice is refused (RFC 6749
/// §3.1), with a page: which of the two redirect URIs would we trust?
fn oauth_params(
    pairs: impl Iterator<Item = (String, String)>,
) -> Result<HashMap<String, String>, PageError> {
    let mut map = HashMap::new();
    for (k, v) in pairs {
        if !OAUTH_PARAMS.contains(&k.as_str()) {
            continue;
        }
        if map.insert(k.clone(), v).is_some() {
            return Err(bad_request_page(format!(
                "The parameter {k} appears more than once."
            )));
        }
    }
    Ok(map)
}

fn bad_request_page(message: String) -> PageError {
    PageError::new(
        StatusCode::BAD_REQUEST,
        "This authorization request cannot be used",
        message,
        Some(
            "Tell the developer of the app that sent you here. You have not been redirected anywhere."
                .to_string(),
        ),
    )
}

async fn check(
    state: &AppState,
    params: &HashMap<String, String>,
) -> Result<AuthorizeRequest, Response> {
    match state.services.oauth().authorize_check(params).await {
        Ok(req) => Ok(req),
        Err(AuthorizeError::Page(msg)) => Err(bad_request_page(msg).into_response()),
        Err(AuthorizeError::Redirect(url)) => Err(see_other(&url)),
    }
}

/// What the user is told they go back to: the origin, or the URI itself for private schemes.
fn redirect_target(redirect_uri: &str) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(u) => match u.origin() {
            o @ url::Origin::Tuple(..) => o.unicode_serialization(),
            url::Origin::Opaque(_) => redirect_uri.to_string(),
        },
        Err(_) => redirect_uri.to_string(),
    }
}

/// `GET /authorize?response_type=code&client_id=…&redirect_uri=…&scope=…&state=…&code_challenge=…&code_challenge_method=S256`
pub(crate) async fn authorize_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let raw = query.unwrap_or_default();
    let params = match oauth_params(url::form_urlencoded::parse(raw.as_bytes()).into_owned()) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let req = match check(&state, &params).await {
        Ok(r) => r,
        Err(res) => return res,
    };
    let signed = match signed_in(&state, &headers).await {
        Ok(Some(s)) => s,
        Ok(None) => return to_login(&format!("/authorize?{raw}")),
        Err(res) => return res,
    };
    let workspaces = match state
        .services
        .sessions()
        .user_workspaces(signed.user_id())
        .await
    {
        Ok(w) => w,
        Err(e) => return fail(e),
    };
    let page = ConsentTemplate {
        chrome: signed.chrome(),
        scopes: req
            .scope_words()
            .into_iter()
            .map(|(scope, words)| ScopeView { scope, words })
            .collect(),
        workspaces: workspaces
            .into_iter()
            .map(|w| WorkspaceOption {
                id: w.id,
                name: w.name,
            })
            .collect(),
        redirect_target: redirect_target(&req.redirect_uri),
        scope: req.scopes.join(" "),
        state: req.state.clone().unwrap_or_default(),
        client_name: req.client_name,
        client_description: req.client_description,
        client_id: req.client_id,
        code_challenge: req.code_challenge,
        redirect_uri: req.redirect_uri,
    };
    let mut res = render(StatusCode::OK, &page);
    res.headers_mut().insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONSENT_CSP),
    );
    res
}

/// `POST /authorize`: `decision=approve|deny`, `workspace_id`, `csrf_token` and the
/// authorization request again.
pub(crate) async fn authorize_decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let f = match form_map(form) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let params: HashMap<String, String> = f
        .iter()
        .filter(|(k, _)| OAUTH_PARAMS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let signed = match signed_in(&state, &headers).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            // The session ended while the consent page was open: sign in and ask again.
            let query: Vec<String> = OAUTH_PARAMS
                .iter()
                .filter_map(|k| params.get(*k).map(|v| format!("{k}={}", urlencode(v))))
                .collect();
            return to_login(&format!("/authorize?{}", query.join("&")));
        }
        Err(res) => return res,
    };
    if let Err(e) = signed.check_csrf(field(&f, "csrf_token")) {
        return e.into_response();
    }
    let req = match check(&state, &params).await {
        Ok(r) => r,
        Err(res) => return res,
    };
    match field(&f, "decision") {
        "deny" => see_other(&state.services.oauth().deny_url(&req)),
        "approve" => {
            let workspace_id = field(&f, "workspace_id");
            if workspace_id.is_empty() {
                return PageError::bad_request("Choose the workspace the app may access.")
                    .into_response();
            }
            match state
                .services
                .oauth()
                .approve(signed.user_id(), &req, workspace_id)
                .await
            {
                Ok(url) => see_other(&url),
                Err(e) => fail(e),
            }
        }
        _ => PageError::bad_request("Choose Allow or Deny.").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused() {
        let pairs = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
                .into_iter()
        };
        assert!(oauth_params(pairs(&[
            ("client_id", "a"),
            ("utm_source", "x"),
            ("utm_source", "y")
        ]))
        .is_ok());
        assert!(oauth_params(pairs(&[("redirect_uri", "a"), ("redirect_uri", "b")])).is_err());
    }
}
