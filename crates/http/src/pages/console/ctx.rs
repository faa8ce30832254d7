//! The shared context of every console page: the signed-in member on the workspace of the
//! URL ([`Ctx`], extracted before a handler runs; [`AdminCtx`] when the page is a server
//! administrator's: it holds the domain's [`ServerAdmin`] or the page is a 403), a posted form with its CSRF token checked
//! ([`Posted`]), the frame of a page ([`Nav`]), list paging ([`Pager`]), the page of a domain
//! refusal ([`refused`]) and the confirmations of destructive forms.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Form, FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pgfleet_api_types::Pagination;
use pgfleet_domain::{PageRequest, ServerAdmin, WorkspaceAccess};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::flash::FLASH;
use super::stamp::Stamp;
use crate::pages::{
    fail, form_typed, query_param, read_cookie, require_session, Chrome, Notice, PageError, Signed,
};
use crate::AppState;

/// Page size of every list.
pub(super) const LIST_LIMIT: i64 = 100;

pub(super) struct WorkspaceOption {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) selected: bool,
}

/// The frame of a console page: the workspace switcher and the nav.
pub(crate) struct Nav {
    pub(super) workspaces: Vec<WorkspaceOption>,
    pub(super) ws_id: String,
    pub(super) ws_name: String,
    pub(super) section: &'static str,
    /// The user is a server administrator (the domain gave [`Ctx::admin`]): the nav links
    /// the replicas page.
    pub(super) server_admin: bool,
    /// The injected clock's time when the page was asked for (relative timestamps).
    pub(super) now: chrono::DateTime<chrono::Utc>,
}

impl Nav {
    /// An RFC 3339 time of an API shape in the console's one format (see [`Stamp`]).
    pub(super) fn when(&self, raw: &str) -> Stamp {
        Stamp::parse(raw, self.now)
    }
}

/// A signed-in member on the workspace of the URL (`/console/w/{ws}/…`), extracted before
/// a handler runs: a browser without a session is sent to sign in and back to the page, a
/// user who is not a member gets 403. The nav section is the part of the path after the
/// workspace.
pub(super) struct Ctx {
    pub(super) signed: Signed,
    pub(super) access: WorkspaceAccess,
    /// The user as a server administrator, when they are one.
    pub(super) admin: Option<ServerAdmin>,
    pub(super) nav: Nav,
    /// The sealed secret this browser brought, if any (see [`super::flash::take_flash`]).
    pub(super) sealed_flash: Option<String>,
}

impl Ctx {
    pub(super) fn chrome(&self) -> Chrome {
        self.signed.chrome()
    }

    pub(super) fn base(&self) -> String {
        format!("/console/w/{}", self.nav.ws_id)
    }
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let ws = workspace_in(parts, state).await?;
        let signed = require_session(state, &parts.headers, parts.uri.path()).await?;
        let mut ctx = member(state, signed, &ws, section_of(parts.uri.path())).await?;
        ctx.sealed_flash = read_cookie(&parts.headers, FLASH);
        Ok(ctx)
    }
}

/// A server administrator's page: a [`Ctx`] whose user is one, or the 403 page that
/// anyone else gets. A handler that takes it cannot forget the check.
pub(super) struct AdminCtx(pub(super) Ctx, pub(super) ServerAdmin);

impl FromRequestParts<AppState> for AdminCtx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let ctx = Ctx::from_request_parts(parts, state).await?;
        match ctx.admin.clone() {
            Some(admin) => Ok(AdminCtx(ctx, admin)),
            None => Err(fail(pgfleet_domain::access::not_server_admin())),
        }
    }
}

/// A form `T` (one of [`super::forms`]) posted by a member: the session, the form and its
/// CSRF token, then the membership (a session that ended sends the browser to sign in and
/// back to the workspace). A form that cannot be read is a 400 page, a wrong token a 403.
pub(super) struct Posted<T>(pub(super) Ctx, pub(super) T);

/// Every console form: its CSRF token and its own fields.
#[derive(Deserialize)]
struct WithCsrf<T> {
    #[serde(default)]
    csrf_token: String,
    #[serde(flatten)]
    form: T,
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for Posted<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let ws = workspace_in(&mut parts, state).await?;
        let section = section_of(parts.uri.path());
        let signed = require_session(state, &parts.headers, &format!("/console/w/{ws}")).await?;
        let form = Form::<WithCsrf<T>>::from_request(Request::from_parts(parts, body), state).await;
        let f = form_typed(form).map_err(IntoResponse::into_response)?;
        signed
            .check_csrf(&f.csrf_token)
            .map_err(IntoResponse::into_response)?;
        Ok(Posted(member(state, signed, &ws, section).await?, f.form))
    }
}

/// The `{ws}` of the route.
pub(super) async fn workspace_in(parts: &mut Parts, state: &AppState) -> Result<String, Response> {
    let Path(mut params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .map_err(IntoResponse::into_response)?;
    params.remove("ws").ok_or_else(not_member)
}

/// The nav section of a console path: what follows `/console/w/{ws}/`.
pub(super) fn section_of(path: &str) -> &'static str {
    let after = path
        .strip_prefix("/console/w/")
        .and_then(|rest| rest.split('/').nth(1));
    match after {
        Some("tokens") => "tokens",
        Some("webhooks") => "webhooks",
        Some("integrations") => "integrations",
        Some("members") => "members",
        Some("apps") => "apps",
        Some("replicas") => "replicas",
        _ => "projects",
    }
}

/// What a console handler answers: the page, or what replaces it (a redirect to sign in, a
/// 403, an error page).
pub(super) type Page = Result<Response, Response>;

/// The page of `view` again, with the domain's refusal `e` as its notice and status.
pub(super) async fn refused<T, F>(
    e: pgfleet_domain::DomainError,
    view: impl FnOnce(Notice) -> F,
) -> Page
where
    T: Template,
    F: std::future::Future<Output = Result<T, Response>>,
{
    let (status, notice) = Notice::from_error(e);
    let retry_after = notice.retry_after_secs;
    Ok(Notice::render(status, retry_after, &view(notice).await?))
}

pub(super) fn not_member() -> Response {
    PageError::new(
        StatusCode::FORBIDDEN,
        "Not allowed",
        "You are not a member of that workspace, or it does not exist.",
        Some("Choose one of your workspaces in the workspace switcher.".to_string()),
    )
    .into_response()
}

/// The signed-in user (or the sign-in redirect back to `next`) and the id of their first
/// workspace, if any: where `/console`, `/console/apps` and the older `/apps` land.
pub(super) async fn first_workspace(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    next: &str,
) -> Result<(Signed, Option<String>), Response> {
    let signed = require_session(state, headers, next).await?;
    let rows = state
        .services
        .sessions()
        .user_workspaces(signed.user_id())
        .await
        .map_err(fail)?;
    let first = rows.into_iter().next().map(|w| w.id);
    Ok((signed, first))
}

pub(super) async fn member(
    state: &AppState,
    signed: Signed,
    ws: &str,
    section: &'static str,
) -> Result<Ctx, Response> {
    // The membership check is the domain's: a console principal exists only as its answer.
    let Some(access) = state
        .services
        .access()
        .console(signed.user_id(), ws)
        .await
        .map_err(fail)?
    else {
        return Err(not_member());
    };
    let admin = state
        .services
        .access()
        .server_admin_of(&access)
        .await
        .map_err(fail)?;
    let rows = state
        .services
        .sessions()
        .user_workspaces(signed.user_id())
        .await
        .map_err(fail)?;
    let ws_name = rows
        .iter()
        .find(|w| w.id == ws)
        .map(|w| w.name.clone())
        .unwrap_or_default();
    let workspaces = rows
        .into_iter()
        .map(|w| WorkspaceOption {
            selected: w.id == ws,
            id: w.id,
            name: w.name,
        })
        .collect();
    Ok(Ctx {
        access,
        nav: Nav {
            workspaces,
            ws_id: ws.to_string(),
            ws_name,
            section,
            server_admin: admin.is_some(),
            now: state.services.clock().now(),
        },
        admin,
        signed,
        sealed_flash: None,
    })
}

pub(super) fn page() -> PageRequest {
    PageRequest {
        after: None,
        limit: LIST_LIMIT,
    }
}

/// The page of a list that `?cursor=…` asks for.
pub(super) fn page_at(query: Option<&str>) -> Result<PageRequest, pgfleet_domain::DomainError> {
    PageRequest::parse(query_param(query, "cursor").as_deref(), None, LIST_LIMIT)
}

/// The links between the pages of a list shown at `path`.
#[derive(Default)]
pub(crate) struct Pager {
    pub(super) first: Option<String>,
    pub(super) next: Option<String>,
}

impl Pager {
    pub(super) fn new(path: &str, query: Option<&str>, p: &Pagination) -> Self {
        Self {
            first: query_param(query, "cursor")
                .filter(|c| !c.is_empty())
                .map(|_| path.to_string()),
            next: p
                .next_cursor
                .as_ref()
                .filter(|_| p.has_more)
                .map(|c| format!("{path}?cursor={}", crate::pages::urlencode(c))),
        }
    }
}

/// A destructive form's confirmation: `Ok` when its `confirm` field (`confirm`) is `name` (of a `what`),
/// else the notice to show (nothing was `done`; typing the name is what it takes to `act`).
pub(super) fn confirm_typed(
    confirm: &str,
    name: &str,
    what: &str,
    done: &str,
    act: &str,
) -> Result<(), Notice> {
    if confirm.trim() == name {
        return Ok(());
    }
    Err(Notice {
        message: format!(
            "The name you typed does not match the {what}'s name; nothing was {done}."
        ),
        hint: Some(format!("Type {name} exactly to {act}.")),
        retry_after_secs: None,
    })
}

/// A destructive button's confirmation: `Ok` when its form's `confirm` box was ticked (the
/// box is `required`, so a browser does not send the form without it; without JavaScript
/// too), else the notice to show (nothing was `done`).
pub(super) fn confirm_ticked(confirm: &str, done: &str) -> Result<(), pgfleet_domain::DomainError> {
    if confirm == "yes" {
        return Ok(());
    }
    Err(pgfleet_domain::DomainError::unprocessable(
        format!("Nothing was {done}: the confirmation box was not ticked."),
        Some("Tick the box next to the button, then press the button again.".to_string()),
    ))
}
