//! The browser pages of the authorization server: sign-in and sign-out ([`auth`]), the OAuth
//! consent page ([`authorize`]), the claim page of `create-db`'s temporary databases
//! ([`claim`]) and the web console ([`console`], which also manages the
//! OAuth apps; the older `/apps` addresses redirect there). Server-rendered with
//! askama (templates in `crates/http/templates/`), no external assets and nothing inline:
//! one stylesheet (`/static/pgfleet.css`, [`assets`]) and no JavaScript but the console's
//! optional copy buttons and live database status (`/console/console.js`), both compiled in
//! and served from this origin.
//!
//! Cookies (all `HttpOnly`, `Secure` when the public URL is https):
//! * `pgfleet_session` (`Path=/; SameSite=Lax`): the session, 43 random characters; the store
//!   keeps only its SHA-256. Each session has its own CSRF token, which every form of a
//!   signed-in page carries as the hidden field `csrf_token`.
//! * `pgfleet_csrf` (`Path=/login; SameSite=Lax`): the sign-in form has no session yet, so it
//!   uses a double-submit token: the cookie's value must equal the form's `csrf_token`.
//! * `pgfleet_console_flash` (`Path=/console; SameSite=Strict`, 5 minutes): carries a secret
//!   just made (a connection's password, a token, an OAuth app's secret) across the
//!   post/redirect/get to the page that shows it once. Sealed (ChaCha20-Poly1305) with a key
//!   derived from the session cookie, so only that browser's session can read it; cleared
//!   when shown ([`cookies`], which reads and writes every cookie with axum-extra's types).
//!
//! CSRF tokens are compared in constant time; a missing or wrong one answers a 403 page.
//! Every response of these routes carries the security headers of [`security_headers`]; the
//! consent page has no `form-action` (see [`CONSENT_CSP`]).

use std::collections::HashMap;

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::Form;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use pgfleet_domain::services::sessions::SessionInfo;
use pgfleet_domain::DomainError;

use crate::error::ApiError;
use crate::AppState;

pub(crate) mod assets;
mod auth;
mod authorize;
mod claim;
mod console;
mod cookies;

pub(crate) use cookies::{read_cookie, set_cookie, SameSite};

pub const SESSION_COOKIE: &str = "pgfleet_session";
pub const CSRF_COOKIE: &str = "pgfleet_csrf";

/// The Content-Security-Policy of every page but the consent page.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The consent page's policy: [`CSP`] without `form-action`. Its form is answered with a
/// redirect to the client's redirect URI, and Chromium checks `form-action` against every
/// redirect that follows a form submission, including those the client's own callback makes
/// (tried: a callback that redirects to another origin is blocked even when the redirect
/// URI's origin is listed). The page renders nothing unescaped and has no password field.
pub const CONSENT_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                               frame-ancestors 'none'; base-uri 'none'";

/// Where a signed-in user lands by default.
const HOME: &str = "/console";

/// The page routes (merged into the root router, outside `/v1`).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(root))
        .route("/login", get(auth::login_page).post(auth::login_submit))
        .route("/logout", post(auth::logout))
        .route(
            "/authorize",
            get(authorize::authorize_page).post(authorize::authorize_decide),
        )
        .merge(console::router())
        .merge(claim::router())
        .layer(axum::middleware::map_response(security_headers))
}

/// `GET /`: a browser pointed at the server's base URL lands on the console (which sends it
/// on to `/login` when it is not signed in). 303, so no client caches it as permanent.
async fn root() -> axum::response::Redirect {
    axum::response::Redirect::to(HOME)
}

/// The headers of every page response. A handler may set its own CSP (the consent page does)
/// or `Cache-Control` (the console's script may be cached) first; the others are always these.
async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    if !h.contains_key(CONTENT_SECURITY_POLICY) {
        h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    }
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if !h.contains_key(CACHE_CONTROL) {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// What the frame of a page (`base.html`) needs: who is signed in, for the sign-out form.
#[derive(Debug, Clone, Default)]
pub(crate) struct Chrome {
    pub email: Option<String>,
    pub csrf: String,
}

/// A message and an optional way out, shown in a form's error box.
#[derive(Debug, Clone)]
pub(crate) struct Notice {
    pub message: String,
    pub hint: Option<String>,
    /// `Retry-After` of the response that shows it (429s).
    pub retry_after_secs: Option<u64>,
}

impl Notice {
    /// The status and words of a domain error (the mapping of the API, so a page never shows
    /// more than the API would).
    pub(crate) fn from_error(e: DomainError) -> (StatusCode, Self) {
        let api = ApiError::from(e);
        (
            api.status,
            Self {
                message: api.message,
                hint: api.hint,
                retry_after_secs: api.retry_after_secs,
            },
        )
    }

    /// A page showing this notice: `render` with the notice's `Retry-After`, if any.
    pub(crate) fn render(
        status: StatusCode,
        retry_after_secs: Option<u64>,
        page: &impl Template,
    ) -> Response {
        let mut res = render(status, page);
        crate::error::set_retry_after(&mut res, retry_after_secs);
        res
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorTemplate<'a> {
    chrome: Chrome,
    status: u16,
    title: &'a str,
    message: &'a str,
    hint: Option<&'a str>,
}

/// An error answered as a page (never a redirect).
#[derive(Debug)]
pub(crate) struct PageError {
    pub status: StatusCode,
    pub title: String,
    pub message: String,
    pub hint: Option<String>,
    pub retry_after_secs: Option<u64>,
    /// The metadata store was unreachable (see [`crate::error::MetadataDown`]).
    pub metadata_down: bool,
}

impl PageError {
    pub(crate) fn new(
        status: StatusCode,
        title: impl Into<String>,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Self {
        Self {
            status,
            title: title.into(),
            message: message.into(),
            hint,
            retry_after_secs: None,
            metadata_down: false,
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Bad request", message, None)
    }

    /// A missing or wrong CSRF token.
    pub(crate) fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "The form was not sent from a current page of this site, so it was not accepted.",
            Some("Go back, reload the page and send the form again.".to_string()),
        )
    }
}

impl From<DomainError> for PageError {
    fn from(e: DomainError) -> Self {
        let metadata_down = matches!(
            e,
            DomainError::Unavailable {
                dependency: pgfleet_domain::Dependency::MetadataStore,
                ..
            }
        );
        let (status, n) = Notice::from_error(e);
        let title = match status.as_u16() {
            400 | 422 => "This request cannot be accepted",
            401 => "Not signed in",
            403 => "Not allowed",
            404 => "Not found",
            409 => "Not possible right now",
            429 => "Too many requests",
            503 => "Temporarily unavailable",
            _ => "Something went wrong",
        };
        Self {
            retry_after_secs: n.retry_after_secs,
            metadata_down,
            ..Self::new(status, title, n.message, n.hint)
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let mut res = Notice::render(
            self.status,
            self.retry_after_secs,
            &ErrorTemplate {
                chrome: Chrome::default(),
                status: self.status.as_u16(),
                title: &self.title,
                message: &self.message,
                hint: self.hint.as_deref(),
            },
        );
        if self.metadata_down {
            res.extensions_mut().insert(crate::error::MetadataDown);
        }
        res
    }
}

/// The page answered while the metadata circuit breaker is open ([`crate::breaker`]).
pub(crate) fn unavailable_page(message: String, hint: Option<String>) -> PageError {
    PageError {
        retry_after_secs: Some(crate::error::UNAVAILABLE_RETRY_AFTER_SECS),
        ..PageError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Temporarily unavailable",
            message,
            hint,
        )
    }
}

/// A domain error as a page response.
pub(crate) fn fail(e: DomainError) -> Response {
    PageError::from(e).into_response()
}

/// Renders a template as an HTML response.
pub(crate) fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (
            status,
            [(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering a page failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                plain_text("Something went wrong on our side."),
            )
                .into_response()
        }
    }
}

/// `body` as `text/plain` (UTF-8): fragments `console.js` polls, and the last-resort error.
pub(crate) fn plain_text(body: impl IntoResponse) -> Response {
    (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// `303 See Other` to `location`.
pub(crate) fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => {
            let mut res = StatusCode::SEE_OTHER.into_response();
            res.headers_mut().insert(LOCATION, v);
            res
        }
        Err(_) => PageError::bad_request("The redirect target is not a valid URL.").into_response(),
    }
}

/// `303` to the sign-in page, coming back to `next` afterwards.
pub(crate) fn to_login(next: &str) -> Response {
    see_other(&format!("/login?next={}", urlencode(next)))
}

pub(crate) fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Where to go after signing in: only a path on this site (`/…`, not `//…` nor `/\…`, which
/// browsers read as another host), printable ASCII only; anything else goes home.
pub(crate) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && n.bytes().all(|b| (0x21..=0x7e).contains(&b)) =>
        {
            n.to_string()
        }
        _ => HOME.to_string(),
    }
}

/// One query-string parameter (the last one when repeated).
pub(crate) fn query_param(raw: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .last()
}

/// A form body as a map (`Form` rejections become a 400 page): for the sign-in and consent
/// forms, which pass fields on as they came.
pub(crate) fn form_map(
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Result<HashMap<String, String>, PageError> {
    form_typed(form)
}

/// A typed form body (`Form` rejections become a 400 page).
pub(crate) fn form_typed<T>(form: Result<Form<T>, FormRejection>) -> Result<T, PageError> {
    match form {
        Ok(Form(f)) => Ok(f),
        Err(e) => Err(PageError::bad_request(format!(
            "The form could not be read: {}",
            e.body_text()
        ))),
    }
}

/// A field of a form, `""` when absent.
pub(crate) fn field<'a>(f: &'a HashMap<String, String>, name: &str) -> &'a str {
    f.get(name).map(String::as_str).unwrap_or("")
}

/// Constant-time comparison of a CSRF token with what a form sent.
pub(crate) fn csrf_ok(expected: &str, sent: &str) -> bool {
    !expected.is_empty() && pgfleet_auth::constant_time_eq(expected.as_bytes(), sent.as_bytes())
}

/// A signed-in browser: its session and the cookie value that names it.
pub(crate) struct Signed {
    pub info: SessionInfo,
    pub token: String,
}

impl Signed {
    pub(crate) fn chrome(&self) -> Chrome {
        Chrome {
            email: Some(self.info.user.email.clone()),
            csrf: self.info.csrf.clone(),
        }
    }

    pub(crate) fn user_id(&self) -> &str {
        &self.info.user.id
    }

    /// The form was sent by a page of this session.
    pub(crate) fn check_csrf(&self, sent: &str) -> Result<(), PageError> {
        if csrf_ok(&self.info.csrf, sent) {
            Ok(())
        } else {
            Err(PageError::csrf())
        }
    }
}

/// The session of this browser, if it has a live one.
pub(crate) async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Signed>, Response> {
    let Some(token) = read_cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    match state.services.sessions().session(&token).await {
        Ok(Some(info)) => Ok(Some(Signed { info, token })),
        Ok(None) => Ok(None),
        Err(e) => Err(fail(e)),
    }
}

/// The session, or a redirect to the sign-in page that comes back to `next`.
pub(crate) async fn require_session(
    state: &AppState,
    headers: &HeaderMap,
    next: &str,
) -> Result<Signed, Response> {
    signed_in(state, headers)
        .await?
        .ok_or_else(|| to_login(next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_a_local_path_or_home() {
        assert_eq!(safe_next(Some("/authorize?a=b")), "/authorize?a=b");
        assert_eq!(safe_next(Some("/apps/itgr_x")), "/apps/itgr_x");
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "evil",
            "",
            "/a b",
            "/\u{e9}",
            "/x\ny",
        ] {
            assert_eq!(safe_next(Some(bad)), HOME, "{bad:?}");
        }
        assert_eq!(safe_next(None), HOME);
    }

    #[test]
    fn csrf_needs_an_exact_non_empty_match() {
        assert!(csrf_ok("abc", "abc"));
        assert!(!csrf_ok("abc", "abd"));
        assert!(!csrf_ok("abc", ""));
        assert!(!csrf_ok("", ""));
    }
}
