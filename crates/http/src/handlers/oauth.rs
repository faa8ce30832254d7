//! The OAuth endpoints for machines: `POST /token`, `POST /revoke`, `POST /register` (RFC 7591)
//! and the RFC 8414 / JWKS
//! documents. Errors are RFC 6749 §5.2 JSON (`{"error", "error_description"}`), not the API's
//! error shape, because OAuth clients parse that.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use pgfleet_domain::services::oauth::{ClientAuth, OAuthError};

use crate::AppState;

fn no_store(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

fn oauth_error(e: OAuthError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut res = (
        status,
        Json(serde_json::json!({ "error": e.error, "error_description": e.description })),
    )
        .into_response();
    if e.basic_challenge {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Basic realm="pgfleet""#),
        );
    }
    no_store(res)
}

/// `Authorization: Basic` client credentials (RFC 6749 §2.3.1: each part form-urlencoded).
fn client_auth(headers: &HeaderMap) -> Result<ClientAuth, OAuthError> {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(ClientAuth::default());
    };
    let Some(encoded) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return Ok(ClientAuth::default());
    };
    let bad = || OAuthError {
        status: 401,
        error: "invalid_client",
        description: "Malformed Basic credentials".to_string(),
        basic_challenge: true,
    };
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    let dec = |s: &str| {
        url::form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Ok(ClientAuth {
        basic: Some((dec(id).ok_or_else(bad)?, dec(secret).ok_or_else(bad)?)),
    })
}

/// `POST /token`: authorization_code (PKCE S256) and refresh_token grants.
pub async fn oauth_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return oauth_error(OAuthError {
            status: 400,
            error: "invalid_request",
            description: "The body must be application/x-www-form-urlencoded".to_string(),
            basic_challenge: false,
        });
    };
    let auth = match client_auth(&headers) {
        Ok(a) => a,
        Err(e) => return oauth_error(e),
    };
    match state.services.oauth().token(&form, &auth).await {
        Ok(t) => no_store(Json(t).into_response()),
        Err(e) => oauth_error(e),
    }
}

/// `POST /revoke` (RFC 7009): 200 for unknown tokens too.
pub async fn oauth_revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return oauth_error(OAuthError {
            status: 400,
            error: "invalid_request",
            description: "The body must be application/x-www-form-urlencoded".to_string(),
            basic_challenge: false,
        });
    };
    let auth = match client_auth(&headers) {
        Ok(a) => a,
        Err(e) => return oauth_error(e),
    };
    match state.services.oauth().revoke(&form, &auth).await {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(e) => oauth_error(e),
    }
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414).
pub async fn oauth_metadata(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.services.oauth().metadata())
}

/// `GET /.well-known/jwks.json`.
pub async fn oauth_jwks(
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, crate::error::ApiError> {
    Ok(Json(state.services.oauth().jwks().await?))
}

/// `POST /register`: RFC 7591 dynamic client registration (public clients only; see
/// `pgfleet_domain::services::oauth::registration`). 201 with the client's metadata, or an
/// RFC 7591 §3.2.2 error body.
pub async fn oauth_register(
    State(state): State<AppState>,
    body: Result<
        Json<pgfleet_domain::services::oauth::registration::RegistrationRequest>,
        axum::extract::rejection::JsonRejection,
    >,
) -> Response {
    let Ok(Json(req)) = body else {
        return oauth_error(OAuthError {
            status: 400,
            error: "invalid_client_metadata",
            description: "The body must be a JSON object of client metadata (RFC 7591)".to_string(),
            basic_challenge: false,
        });
    };
    match state.services.oauth().register_client(req).await {
        Ok(c) => no_store((StatusCode::CREATED, Json(c)).into_response()),
        Err(e) => oauth_error(e),
    }
}
