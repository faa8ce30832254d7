//! `GET/POST /login` and `POST /logout`.
//!
//! The sign-in form has no session yet, so its CSRF protection is a double-submit token: the
//! `pgfleet_csrf` cookie (set by `GET /login`) must equal the form's `csrf_token`. Every
//! failed sign-in, whatever the reason (unknown e-mail, wrong password, locked account),
//! answers 401 with the same message. A client address blocked after failed sign-ins, or a
//! password hasher at capacity, answers the form again with 429 and `Retry-After` (the
//! rule: `pgfleet_domain::services::sign_in`).

use std::collections::HashMap;

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use pgfleet_domain::services::sessions::SIGN_IN_FAILED;
use pgfleet_domain::DomainError;

use super::{
    csrf_ok, fail, field, form_map, query_param, read_cookie, render, safe_next, see_other,
    set_cookie, signed_in, Chrome, Notice, PageError, SameSite, CSRF_COOKIE, SESSION_COOKIE,
};
use crate::extract::ClientAddr;
use crate::AppState;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginTemplate {
    chrome: Chrome,
    csrf_token: String,
    next: String,
    email: String,
    error: Option<String>,
}

/// A CSRF cookie value as this server makes them.
fn well_formed(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn login_form(
    state: &AppState,
    status: StatusCode,
    csrf_token: String,
    next: String,
    email: String,
    error: Option<String>,
) -> Response {
    let mut res = render(
        status,
        &LoginTemplate {
            chrome: Chrome::default(),
            csrf_token: csrf_token.clone(),
            next,
            email,
            error,
        },
    );
    set_cookie(
        &mut res,
        state,
        CSRF_COOKIE,
        &csrf_token,
        "/login",
        SameSite::Lax,
        None,
    );
    res
}

/// `GET /login?next=/path`: the sign-in form. An existing CSRF cookie is kept, so two open
/// sign-in tabs both work.
pub(crate) async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let next = safe_next(query_param(query.as_deref(), "next").as_deref());
    let csrf = read_cookie(&headers, CSRF_COOKIE)
        .filter(|t| well_formed(t))
        .unwrap_or_else(|| state.services.rng().with(pgfleet_auth::random_string));
    login_form(&state, StatusCode::OK, csrf, next, String::new(), None)
}

/// `POST /login`: success sets the session cookie and answers 303 to `next`.
pub(crate) async fn login_submit(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let f = match form_map(form) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let cookie = read_cookie(&headers, CSRF_COOKIE).unwrap_or_default();
    if !csrf_ok(&cookie, field(&f, "csrf_token")) {
        return PageError::csrf().into_response();
    }
    let next = safe_next(f.get("next").map(String::as_str));
    let email = field(&f, "email").trim().to_string();
    match state
        .services
        .sessions()
        .sign_in(&email, field(&f, "password"), client)
        .await
    {
        Ok((_, secret)) => {
            // A new sign-in replaces this browser's previous session.
            if let Some(old) = read_cookie(&headers, SESSION_COOKIE) {
                if let Err(e) = state.services.sessions().sign_out(&old).await {
                    tracing::warn!(error = %e, "could not end the previous session");
                }
            }
            let mut res = see_other(&next);
            set_cookie(
                &mut res,
                &state,
                SESSION_COOKIE,
                secret.expose(),
                "/",
                SameSite::Lax,
                None,
            );
            res
        }
        Err(DomainError::Unauthenticated(_)) => login_form(
            &state,
            StatusCode::UNAUTHORIZED,
            cookie,
            next,
            email,
            Some(SIGN_IN_FAILED.to_string()),
        ),
        Err(e @ DomainError::TooManyRequests { .. }) => {
            let (status, notice) = Notice::from_error(e);
            let error = match notice.hint {
                Some(hint) => format!("{} {hint}", notice.message),
                None => notice.message,
            };
            let mut res = login_form(&state, status, cookie, next, email, Some(error));
            crate::error::set_retry_after(&mut res, notice.retry_after_secs);
            res
        }
        Err(e) => fail(e),
    }
}

/// `POST /logout`: ends the session and answers 303 to `/login`.
pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let f = match form_map(form) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    match signed_in(&state, &headers).await {
        Ok(Some(s)) => {
            if let Err(e) = s.check_csrf(field(&f, "csrf_token")) {
                return e.into_response();
            }
            if let Err(e) = state.services.sessions().sign_out(&s.token).await {
                return fail(e);
            }
        }
        Ok(None) => {}
        Err(res) => return res,
    }
    let mut res = see_other("/login");
    set_cookie(
        &mut res,
        &state,
        SESSION_COOKIE,
        "",
        "/",
        SameSite::Lax,
        Some(0),
    );
    res
}
