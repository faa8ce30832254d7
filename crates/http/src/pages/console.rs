//! The web console (`/console`): projects, databases, connections, backups and service tokens
//! of a workspace, for a signed-in user. The selected workspace is part of every URL
//! (`/console/w/{workspace}/…`); each request checks that the user is a member of it and then
//! calls the same domain services as the `/v1` API, as [`Principal::session`]. No business
//! logic lives here: a refused request shows the domain's message and hint on the page.
//!
//! Every form is a `POST` with the session's CSRF token, answered with `303` on success. A
//! secret that is shown once (a connection's password, a service token) travels to the page
//! that shows it in a sealed flash cookie (`pgfleet_console_flash`, `Path=/console`,
//! `SameSite=Strict`, 5 minutes), like the OAuth app secret of [`super::apps`]; it is cleared
//! as it is shown and never stored. `console.js` (served here, allowed by this router's CSP
//! `script-src 'self'`) adds copy buttons and refreshes the status of databases that are
//! provisioning or recovering from `GET /console/w/{ws}/databases/{id}/status` (and of
//! running backups, [`backups`]); without JavaScript everything works, by reloading the page.
//!
//! Destructive buttons of a table row (rotate, delete a connection or token, revoke) sit in a
//! form with a `required` "sure" checkbox the server checks too ([`confirm_ticked`]); whole
//! resources are deleted with their name typed ([`confirm_typed`]). A new project's or
//! database's default connection strings (direct and pooled) are shown once, like a new
//! connection's. Times are shown in one format ([`Stamp`]).
//!
//! Lists show [`LIST_LIMIT`] items a page; longer ones get a "Next page" link carrying the
//! services' opaque cursor (`?cursor=…`). Members ([`members`]), OAuth apps ([`apps`]),
//! backups ([`backups`]), service tokens and integrations ([`tokens`]), the usage charts
//! ([`usage`]), the timestamp format ([`stamp`]) and the server administrators' replicas
//! page ([`replicas`]) have their own modules.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Form, FromRequest, FromRequestParts, Path, RawQuery, Request, State};
use axum::http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use pgfleet_api_types::connection::Endpoints;
use pgfleet_api_types::database::{
    CreateDatabase, CreatedDatabase, Database, DatabaseSource, DatabaseStatus,
};
use pgfleet_api_types::project::{CreateProject, Project, UpdateProject};
use pgfleet_api_types::region::RegionStatus;
use pgfleet_api_types::Pagination;
use pgfleet_domain::{PageRequest, Principal};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{
    fail, field, form_map, query_param, read_cookie, render, require_session, see_other,
    set_cookie, Chrome, Notice, PageError, Signed,
};
use crate::AppState;

/// The console's flash cookie.
const FLASH: &str = "pgfleet_console_flash";
/// How long a sealed secret waits for its page, in seconds.
const FLASH_MAX_AGE: i64 = 300;
/// The console's policy: [`super::CSP`] plus this site's own script (copy buttons, live
/// status) and its requests to this site.
pub const CONSOLE_CSP: &str =
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; \
     img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// The copy buttons: shown only when this script runs.
const CONSOLE_JS: &str = r#"// pgfleet console: copy buttons for secrets shown once, and live database status.
document.querySelectorAll('button[data-copy]').forEach(function (b) {
  b.hidden = false;
  b.addEventListener('click', function () {
    var el = document.getElementById(b.getAttribute('data-copy'));
    if (!el || !navigator.clipboard) { return; }
    navigator.clipboard.writeText(el.textContent.trim()).then(function () {
      b.textContent = 'Copied';
    });
  });
});
// While a status badge of the page says provisioning or recovering (a database) or running
// (a backup), ask its status endpoint (a few bytes of text/plain) every 2 s and update the
// badge in place: typed input and a secret shown on the page are kept.
function pgfleetBusy() {
  return Array.prototype.filter.call(document.querySelectorAll('[data-status-url]'), function (e) {
    var s = e.textContent.trim();
    return s === 'provisioning' || s === 'recovering' || s === 'running';
  });
}
function pgfleetPoll() {
  if (!pgfleetBusy().length) { return; }
  setTimeout(function () {
    Promise.all(pgfleetBusy().map(function (e) {
      return fetch(e.getAttribute('data-status-url'), { credentials: 'same-origin' })
        .then(function (r) { return r.ok && !r.redirected ? r.text() : null; })
        .then(function (t) { if (t && t.trim()) { e.textContent = t.trim(); } });
    })).then(pgfleetPoll, function () {});
  }, 2000);
}
pgfleetPoll();
"#;
/// Page size of every list.
const LIST_LIMIT: i64 = 100;

mod apps;
mod backups;
mod members;
mod replicas;
mod stamp;
mod tokens;
mod usage;

use stamp::Stamp;
use usage::{human_size, usage_view, UsageView};

/// The console routes (merged into the page router).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(console_home))
        .route("/console/console.js", get(console_js))
        .route("/console/switch", get(switch))
        .route("/console/w/{ws}", get(workspace_home))
        .route(
            "/console/w/{ws}/projects",
            get(projects_page).post(project_create),
        )
        .route("/console/w/{ws}/projects/{id}", get(project_page))
        .route("/console/w/{ws}/projects/{id}/rename", post(project_rename))
        .route("/console/w/{ws}/projects/{id}/delete", post(project_delete))
        .route(
            "/console/w/{ws}/projects/{id}/transfer",
            post(project_transfer),
        )
        .route(
            "/console/w/{ws}/projects/{id}/databases",
            post(database_create),
        )
        .route("/console/w/{ws}/databases/{id}", get(database_page))
        .route(
            "/console/w/{ws}/databases/{id}/status",
            get(database_status),
        )
        .route(
            "/console/w/{ws}/databases/{id}/delete",
            post(database_delete),
        )
        .route(
            "/console/w/{ws}/databases/{id}/connections",
            post(connection_create),
        )
        .route(
            "/console/w/{ws}/databases/{id}/connections/{cid}/rotate",
            post(connection_rotate),
        )
        .route(
            "/console/w/{ws}/databases/{id}/connections/{cid}/delete",
            post(connection_delete),
        )
        .merge(backups::router())
        .merge(tokens::router())
        .merge(members::router())
        .merge(apps::router())
        .merge(replicas::router())
        .layer(axum::middleware::map_response(console_csp))
}

async fn console_csp(mut res: Response) -> Response {
    res.headers_mut().insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONSOLE_CSP),
    );
    res
}

/// `GET /console/console.js`
async fn console_js() -> Response {
    (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        )],
        CONSOLE_JS,
    )
        .into_response()
}

struct WorkspaceOption {
    id: String,
    name: String,
    selected: bool,
}

/// The frame of a console page: the workspace switcher and the nav.
pub(crate) struct Nav {
    workspaces: Vec<WorkspaceOption>,
    ws_id: String,
    ws_name: String,
    section: &'static str,
    /// The user is a server administrator: the nav links the replicas page.
    server_admin: bool,
    /// The injected clock's time when the page was asked for (relative timestamps).
    now: chrono::DateTime<chrono::Utc>,
}

impl Nav {
    /// An RFC 3339 time of an API shape in the console's one format (see [`Stamp`]).
    fn when(&self, raw: &str) -> Stamp {
        Stamp::parse(raw, self.now)
    }
}

/// A signed-in member on the workspace of the URL (`/console/w/{ws}/…`), extracted before
/// a handler runs: a browser without a session is sent to sign in and back to the page, a
/// user who is not a member gets 403. The nav section is the part of the path after the
/// workspace.
struct Ctx {
    signed: Signed,
    principal: Principal,
    nav: Nav,
    /// The sealed secret this browser brought, if any (see [`take_flash`]).
    sealed_flash: Option<String>,
}

impl Ctx {
    fn chrome(&self) -> Chrome {
        self.signed.chrome()
    }

    fn base(&self) -> String {
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

/// A form posted by a member: the session, the form and its CSRF token, then the
/// membership (a session that ended sends the browser to sign in and back to the
/// workspace).
struct Posted(Ctx, HashMap<String, String>);

impl FromRequest<AppState> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let ws = workspace_in(&mut parts, state).await?;
        let section = section_of(parts.uri.path());
        let signed = require_session(state, &parts.headers, &format!("/console/w/{ws}")).await?;
        let form =
            Form::<HashMap<String, String>>::from_request(Request::from_parts(parts, body), state)
                .await;
        let f = form_map(form).map_err(IntoResponse::into_response)?;
        signed.check_csrf(&f).map_err(IntoResponse::into_response)?;
        Ok(Posted(member(state, signed, &ws, section).await?, f))
    }
}

/// The `{ws}` of the route.
async fn workspace_in(parts: &mut Parts, state: &AppState) -> Result<String, Response> {
    let Path(mut params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .map_err(IntoResponse::into_response)?;
    params.remove("ws").ok_or_else(not_member)
}

/// The nav section of a console path: what follows `/console/w/{ws}/`.
fn section_of(path: &str) -> &'static str {
    let after = path
        .strip_prefix("/console/w/")
        .and_then(|rest| rest.split('/').nth(1));
    match after {
        Some("tokens") => "tokens",
        Some("integrations") => "integrations",
        Some("members") => "members",
        Some("apps") => "apps",
        Some("replicas") => "replicas",
        _ => "projects",
    }
}

/// What a console handler answers: the page, or what replaces it (a redirect to sign in, a
/// 403, an error page).
type Page = Result<Response, Response>;

/// The page of `view` again, with the domain's refusal `e` as its notice and status.
async fn refused<T, F>(e: pgfleet_domain::DomainError, view: impl FnOnce(Notice) -> F) -> Page
where
    T: Template,
    F: std::future::Future<Output = Result<T, Response>>,
{
    let (status, notice) = Notice::from_error(e);
    let retry_after = notice.retry_after_secs;
    Ok(Notice::render(status, retry_after, &view(notice).await?))
}

fn not_member() -> Response {
    PageError::new(
        StatusCode::FORBIDDEN,
        "Not allowed",
        "You are not a member of that workspace, or it does not exist.",
        Some("Choose one of your workspaces in the workspace switcher.".to_string()),
    )
    .into_response()
}

async fn member(
    state: &AppState,
    signed: Signed,
    ws: &str,
    section: &'static str,
) -> Result<Ctx, Response> {
    if !state
        .services
        .user_is_member(signed.user_id(), ws)
        .await
        .map_err(fail)?
    {
        return Err(not_member());
    }
    let rows = state
        .services
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
        principal: Principal::session(signed.user_id(), ws),
        nav: Nav {
            workspaces,
            ws_id: ws.to_string(),
            ws_name,
            section,
            server_admin: signed.info.user.is_admin,
            now: state.services.clock().now(),
        },
        signed,
        sealed_flash: None,
    })
}

fn page() -> PageRequest {
    PageRequest {
        after: None,
        limit: LIST_LIMIT,
    }
}

/// The page of a list that `?cursor=…` asks for.
fn page_at(query: Option<&str>) -> Result<PageRequest, pgfleet_domain::DomainError> {
    PageRequest::parse(query_param(query, "cursor").as_deref(), None, LIST_LIMIT)
}

/// The links between the pages of a list shown at `path`.
#[derive(Default)]
pub(crate) struct Pager {
    first: Option<String>,
    next: Option<String>,
}

impl Pager {
    fn new(path: &str, query: Option<&str>, p: &Pagination) -> Self {
        Self {
            first: query_param(query, "cursor")
                .filter(|c| !c.is_empty())
                .map(|_| path.to_string()),
            next: p
                .next_cursor
                .as_ref()
                .filter(|_| p.has_more)
                .map(|c| format!("{path}?cursor={}", super::urlencode(c))),
        }
    }
}

/// A secret on its way to the page that shows it once.
#[derive(Serialize, Deserialize)]
struct Flash {
    /// What the secret belongs to, e.g. `connection:{id}` or `token:{id}`.
    key: String,
    title: String,
    secret: String,
    /// The pooled connection string, next to a connection's direct one `secret` (the page
    /// shows a direct/pooled toggle).
    #[serde(default)]
    pooled: Option<String>,
}

impl Flash {
    /// A connection's credentials: its direct string and, when the pooler runs, its pooled one.
    fn connection(key: String, title: String, direct: String, endpoints: &Endpoints) -> Self {
        Self {
            key,
            title,
            secret: direct,
            pooled: endpoints
                .pooled
                .as_ref()
                .and_then(|e| e.connection_string.clone()),
        }
    }

    /// The default connection of a database just created (shown once, like a connection's).
    fn created_database(key: String, title: String, created: &CreatedDatabase) -> Option<Self> {
        let conn = created.database.connections.first()?;
        let direct = conn
            .endpoints
            .direct
            .as_ref()
            .and_then(|e| e.connection_string.clone())
            .or_else(|| created.connection_string.clone())?;
        Some(Self::connection(key, title, direct, &conn.endpoints))
    }
}

fn flash_key(session_token: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"pgfleet console secret flash v1\0");
    h.update(session_token.as_bytes());
    h.finalize().into()
}

fn seal_flash(state: &AppState, session_token: &str, flash: &Flash) -> Option<String> {
    use chacha20poly1305::aead::{Aead, KeyInit};
    let cipher = chacha20poly1305::ChaCha20Poly1305::new((&flash_key(session_token)).into());
    let mut nonce = [0u8; 12];
    state.services.rng().with(|r| r.fill_bytes(&mut nonce));
    let plain = serde_json::to_vec(flash).ok()?;
    let ct = cipher.encrypt((&nonce).into(), plain.as_slice()).ok()?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Some(URL_SAFE_NO_PAD.encode(out))
}

fn open_flash(session_token: &str, sealed: &str) -> Option<Flash> {
    use chacha20poly1305::aead::{Aead, KeyInit};
    let raw = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    if raw.len() < 12 {
        return None;
    }
    let (nonce, ct) = raw.split_at(12);
    let cipher = chacha20poly1305::ChaCha20Poly1305::new((&flash_key(session_token)).into());
    let plain = cipher.decrypt(nonce.into(), ct).ok()?;
    serde_json::from_slice(&plain).ok()
}

/// `303` to `location`, carrying `flash` for the page there.
fn see_other_with(state: &AppState, ctx: &Ctx, location: &str, flash: Flash) -> Response {
    let mut res = see_other(location);
    match seal_flash(state, &ctx.signed.token, &flash) {
        Some(v) => set_cookie(
            &mut res,
            state,
            FLASH,
            &v,
            "/console",
            "Strict",
            Some(FLASH_MAX_AGE),
        ),
        None => tracing::error!("could not seal a console secret"),
    }
    res
}

/// The flash of this browser whose key `accept` takes, and whether a cookie must be cleared.
fn take_flash(ctx: &Ctx, accept: impl Fn(&str) -> bool) -> (Option<Flash>, bool) {
    let flash = ctx
        .sealed_flash
        .as_deref()
        .and_then(|s| open_flash(&ctx.signed.token, s))
        .filter(|f| accept(&f.key));
    (flash, ctx.sealed_flash.is_some())
}

/// Renders a page, clearing the flash cookie when the browser sent one.
fn render_clearing(
    state: &AppState,
    status: StatusCode,
    page: &impl Template,
    clear: bool,
) -> Response {
    let mut res = render(status, page);
    if clear {
        set_cookie(&mut res, state, FLASH, "", "/console", "Strict", Some(0));
    }
    res
}

/// A destructive form's confirmation: `Ok` when its `confirm` field is `name` (of a `what`),
/// else the notice to show (nothing was `done`; typing the name is what it takes to `act`).
fn confirm_typed(
    f: &HashMap<String, String>,
    name: &str,
    what: &str,
    done: &str,
    act: &str,
) -> Result<(), Notice> {
    if field(f, "confirm").trim() == name {
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
fn confirm_ticked(
    f: &HashMap<String, String>,
    done: &str,
) -> Result<(), pgfleet_domain::DomainError> {
    if field(f, "confirm") == "yes" {
        return Ok(());
    }
    Err(pgfleet_domain::DomainError::unprocessable(
        format!("Nothing was {done}: the confirmation box was not ticked."),
        Some("Tick the box next to the button, then press the button again.".to_string()),
    ))
}

fn status_word(s: &DatabaseStatus) -> &'static str {
    match s {
        DatabaseStatus::Provisioning => "provisioning",
        DatabaseStatus::Ready => "ready",
        DatabaseStatus::Recovering => "recovering",
        DatabaseStatus::Failure => "failure",
    }
}

// ---------------------------------------------------------------------------------------------
// Home and workspace switcher

#[derive(Template)]
#[template(path = "console_empty.html")]
struct EmptyTemplate {
    chrome: Chrome,
}

/// `GET /console`: the user's first workspace.
async fn console_home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let signed = match require_session(&state, &headers, "/console").await {
        Ok(s) => s,
        Err(res) => return res,
    };
    match state.services.user_workspaces(signed.user_id()).await {
        Ok(ws) => match ws.first() {
            Some(w) => see_other(&format!("/console/w/{}/projects", w.id)),
            None => render(
                StatusCode::OK,
                &EmptyTemplate {
                    chrome: signed.chrome(),
                },
            ),
        },
        Err(e) => fail(e),
    }
}

/// `GET /console/switch?workspace_id=…`: the switcher's form (works without JavaScript).
async fn switch(RawQuery(query): RawQuery) -> Response {
    match query_param(query.as_deref(), "workspace_id") {
        Some(ws) if !ws.is_empty() => {
            see_other(&format!("/console/w/{}/projects", super::urlencode(&ws)))
        }
        _ => see_other("/console"),
    }
}

/// `GET /console/w/{ws}`
async fn workspace_home(Path(ws): Path<String>) -> Response {
    see_other(&format!("/console/w/{}/projects", super::urlencode(&ws)))
}

// ---------------------------------------------------------------------------------------------
// Projects

struct RegionOption {
    id: String,
    name: String,
    available: bool,
    selected: bool,
}

#[derive(Template)]
#[template(path = "console_projects.html")]
struct ProjectsTemplate {
    chrome: Chrome,
    nav: Nav,
    projects: Vec<Project>,
    pager: Pager,
    regions: Vec<RegionOption>,
    name: String,
    error: Option<Notice>,
}

async fn projects_view(
    state: &AppState,
    ctx: Ctx,
    name: String,
    region: &str,
    error: Option<Notice>,
    query: Option<&str>,
) -> Result<ProjectsTemplate, Response> {
    let list = state
        .services
        .projects_list(&ctx.principal, None, page_at(query).map_err(fail)?)
        .await
        .map_err(fail)?;
    let pager = Pager::new(&format!("{}/projects", ctx.base()), query, &list.pagination);
    let projects = list.data;
    let mut first_available = true;
    let regions = state
        .services
        .regions_postgres()
        .into_iter()
        .map(|r| {
            let available = r.status == RegionStatus::Available;
            let selected = if region.is_empty() {
                available && std::mem::take(&mut first_available)
            } else {
                r.id == region
            };
            RegionOption {
                id: r.id,
                name: r.name,
                available,
                selected,
            }
        })
        .collect();
    Ok(ProjectsTemplate {
        chrome: ctx.chrome(),
        nav: ctx.nav,
        projects,
        pager,
        regions,
        name,
        error,
    })
}

/// `GET /console/w/{ws}/projects`
async fn projects_page(State(state): State<AppState>, ctx: Ctx, RawQuery(query): RawQuery) -> Page {
    let page = projects_view(&state, ctx, String::new(), "", None, query.as_deref()).await?;
    Ok(render(StatusCode::OK, &page))
}

/// `POST /console/w/{ws}/projects`: name and region; the project gets its default database.
async fn project_create(State(state): State<AppState>, Posted(ctx, f): Posted) -> Page {
    let name = field(&f, "name").to_string();
    let region = field(&f, "region").to_string();
    let body = CreateProject {
        name: Some(name.clone()),
        region: Some(region.clone()).filter(|r| !r.is_empty()),
        ..CreateProject::default()
    };
    match state.services.project_create(&ctx.principal, body).await {
        Ok(created) => {
            let to = format!("{}/projects/{}", ctx.base(), created.project.id);
            let flash = created.database.as_ref().and_then(|d| {
                let title = format!(
                    "Project {} was created with its database {}. Its default connection:",
                    created.project.name, d.database.name
                );
                Flash::created_database(format!("database:{}", d.database.id), title, d)
            });
            Ok(match flash {
                Some(flash) => see_other_with(&state, &ctx, &to, flash),
                None => see_other(&to),
            })
        }
        Err(e) => {
            refused(e, |n| {
                projects_view(&state, ctx, name, &region, Some(n), None)
            })
            .await
        }
    }
}

struct DatabaseRow {
    id: String,
    name: String,
    status: &'static str,
    is_default: bool,
    region: String,
    created_at: String,
}

impl From<Database> for DatabaseRow {
    fn from(d: Database) -> Self {
        Self {
            status: status_word(&d.status),
            region: d.region.map(|r| r.id).unwrap_or_default(),
            id: d.id,
            name: d.name,
            is_default: d.is_default,
            created_at: d.created_at,
        }
    }
}

#[derive(Template)]
#[template(path = "console_project.html")]
struct ProjectTemplate {
    chrome: Chrome,
    nav: Nav,
    project: Project,
    databases: Vec<DatabaseRow>,
    pager: Pager,
    /// The default connection of the project or database just created.
    flash: Option<Flash>,
    error: Option<Notice>,
}

async fn project_view(
    state: &AppState,
    ctx: Ctx,
    id: &str,
    error: Option<Notice>,
    query: Option<&str>,
) -> Result<ProjectTemplate, Response> {
    let project = state
        .services
        .project_get(&ctx.principal, id)
        .await
        .map_err(fail)?;
    let list = state
        .services
        .project_databases_list(&ctx.principal, id, page_at(query).map_err(fail)?)
        .await
        .map_err(fail)?;
    let pager = Pager::new(
        &format!("{}/projects/{id}", ctx.base()),
        query,
        &list.pagination,
    );
    let databases = list.data.into_iter().map(DatabaseRow::from).collect();
    Ok(ProjectTemplate {
        chrome: ctx.chrome(),
        nav: ctx.nav,
        project,
        databases,
        pager,
        flash: None,
        error,
    })
}

async fn project_refused(
    state: &AppState,
    ctx: Ctx,
    id: &str,
    e: pgfleet_domain::DomainError,
) -> Page {
    refused(e, |n| project_view(state, ctx, id, Some(n), None)).await
}

/// `GET /console/w/{ws}/projects/{id}`
async fn project_page(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((_, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Page {
    let (flash, clear) = take_flash(&ctx, |k| k.starts_with("database:"));
    let mut page = project_view(&state, ctx, &id, None, query.as_deref()).await?;
    page.flash = flash.filter(|f| {
        page.databases
            .iter()
            .any(|d| f.key == format!("database:{}", d.id))
    });
    Ok(render_clearing(&state, StatusCode::OK, &page, clear))
}

/// `POST /console/w/{ws}/projects/{id}/rename`
async fn project_rename(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    Posted(ctx, f): Posted,
) -> Page {
    let body = UpdateProject {
        name: Some(field(&f, "name").to_string()),
        ..UpdateProject::default()
    };
    match state
        .services
        .project_update(&ctx.principal, &id, body)
        .await
    {
        Ok(p) => Ok(see_other(&format!("{}/projects/{}", ctx.base(), p.id))),
        Err(e) => project_refused(&state, ctx, &id, e).await,
    }
}

/// `POST /console/w/{ws}/projects/{id}/delete`: the project's name must be typed.
async fn project_delete(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    Posted(ctx, f): Posted,
) -> Page {
    let project = state
        .services
        .project_get(&ctx.principal, &id)
        .await
        .map_err(fail)?;
    let typed = confirm_typed(
        &f,
        &project.name,
        "project",
        "deleted",
        "delete the project",
    );
    if let Err(notice) = typed {
        let page = project_view(&state, ctx, &id, Some(notice), None).await?;
        return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    match state.services.project_delete(&ctx.principal, &id).await {
        Ok(()) => Ok(see_other(&format!("{}/projects", ctx.base()))),
        Err(e) => project_refused(&state, ctx, &id, e).await,
    }
}

/// `POST /console/w/{ws}/projects/{id}/transfer`: `recipient_token`, a live access token of
/// the receiving workspace (as `POST /v1/projects/{id}/transfer` takes it).
async fn project_transfer(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    Posted(ctx, f): Posted,
) -> Page {
    match state
        .services
        .project_transfer(&ctx.principal, &id, field(&f, "recipient_token").trim())
        .await
    {
        Ok(()) => Ok(see_other(&format!("{}/projects", ctx.base()))),
        Err(e) => project_refused(&state, ctx, &id, e).await,
    }
}

/// `POST /console/w/{ws}/projects/{id}/databases`: `source` is `empty`, `backup`
/// (`backup` = `{database}/{backup}`) or `clone` (`clone_of` = a database of the workspace).
async fn database_create(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    Posted(ctx, f): Posted,
) -> Page {
    let source = match field(&f, "source") {
        "" | "empty" => DatabaseSource::Empty,
        "clone" => DatabaseSource::Database {
            database_id: field(&f, "clone_of").to_string(),
        },
        "backup" => match field(&f, "backup").split_once('/') {
            Some((db, b)) => DatabaseSource::Backup {
                database_id: db.to_string(),
                backup_id: b.to_string(),
            },
            None => {
                let e = pgfleet_domain::DomainError::unprocessable(
                    "Choose the backup to create the database from",
                    None,
                );
                return project_refused(&state, ctx, &id, e).await;
            }
        },
        _ => return Err(PageError::bad_request("Unknown database source.").into_response()),
    };
    let name = Some(field(&f, "name").trim().to_string()).filter(|n| !n.is_empty());
    if let Some(n) = &name {
        let taken = backups::project_names(&state, &ctx.principal, &id)
            .await
            .map_err(fail)?;
        if taken.contains(n) {
            let e = pgfleet_domain::DomainError::conflict(
                format!("This project already has a database named {n}; nothing was created."),
                Some("Choose another name for the new database.".to_string()),
            );
            return project_refused(&state, ctx, &id, e).await;
        }
    }
    let body = CreateDatabase {
        name,
        source: Some(source),
        ..CreateDatabase::default()
    };
    match state
        .services
        .database_create(&ctx.principal, &id, body)
        .await
    {
        Ok(created) => {
            let to = format!("{}/databases/{}", ctx.base(), created.database.id);
            let title = format!(
                "Database {} was created. Its default connection:",
                created.database.name
            );
            let key = created
                .database
                .default_connection_id
                .clone()
                .or_else(|| created.database.connections.first().map(|c| c.id.clone()))
                .map(|c| format!("connection:{c}"))
                .unwrap_or_default();
            Ok(match Flash::created_database(key, title, &created) {
                Some(flash) => see_other_with(&state, &ctx, &to, flash),
                None => see_other(&to),
            })
        }
        Err(e) => project_refused(&state, ctx, &id, e).await,
    }
}

// ---------------------------------------------------------------------------------------------
// A database: connections and backups

struct ConnectionView {
    id: String,
    name: String,
    host: String,
    /// `host:port` of the pooled endpoint, when the pooler runs.
    pooled: Option<String>,
    created_at: String,
}

#[derive(Template)]
#[template(path = "console_database.html")]
struct DatabaseTemplate {
    chrome: Chrome,
    nav: Nav,
    db: DatabaseRow,
    project_id: String,
    project_name: String,
    connections: Vec<ConnectionView>,
    /// Whether the pooled endpoint runs (its column and hint are shown).
    pooled_on: bool,
    pager: Pager,
    backups: Vec<backups::BackupView>,
    usage: Option<UsageView>,
    flash: Option<Flash>,
    error: Option<Notice>,
}

async fn database_view(
    state: &AppState,
    ctx: Ctx,
    id: &str,
    error: Option<Notice>,
    query: Option<&str>,
) -> Result<DatabaseTemplate, Response> {
    let db = state
        .services
        .database_get(&ctx.principal, id)
        .await
        .map_err(fail)?;
    let list = state
        .services
        .connections_list(&ctx.principal, Some(id), page_at(query).map_err(fail)?)
        .await
        .map_err(fail)?;
    let pager = Pager::new(
        &format!("{}/databases/{id}", ctx.base()),
        query,
        &list.pagination,
    );
    let connections = list
        .data
        .into_iter()
        .map(|c| ConnectionView {
            host: c
                .endpoints
                .direct
                .as_ref()
                .map(|e| format!("{}:{}", e.host, e.port))
                .unwrap_or_default(),
            pooled: c
                .endpoints
                .pooled
                .as_ref()
                .map(|e| format!("{}:{}", e.host, e.port)),
            id: c.id,
            name: c.name,
            created_at: c.created_at,
        })
        .collect();
    let (project_id, project_name) = db
        .project
        .as_ref()
        .map(|p| (p.id.clone(), p.name.clone()))
        .unwrap_or_default();
    let backups = backups::backup_views(state, &ctx.principal, id, &db.name, &project_id)
        .await
        .map_err(fail)?;
    Ok(DatabaseTemplate {
        chrome: ctx.chrome(),
        nav: ctx.nav,
        db: DatabaseRow::from(db),
        project_id,
        project_name,
        pooled_on: state.services.config().pooled.is_some(),
        connections,
        pager,
        backups,
        usage: None,
        flash: None,
        error,
    })
}

async fn database_refused(
    state: &AppState,
    ctx: Ctx,
    id: &str,
    e: pgfleet_domain::DomainError,
) -> Page {
    refused(e, |n| database_view(state, ctx, id, Some(n), None)).await
}

/// `GET /console/w/{ws}/databases/{id}`
async fn database_page(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((_, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Page {
    let (flash, clear) = take_flash(&ctx, |k| k.starts_with("connection:"));
    let usage = usage_view(&state, &ctx.principal, &id, query.as_deref())
        .await
        .map_err(fail)?;
    let mut page = database_view(&state, ctx, &id, None, query.as_deref()).await?;
    page.usage = Some(usage);
    page.flash = flash.filter(|f| {
        page.connections
            .iter()
            .any(|c| f.key == format!("connection:{}", c.id))
    });
    Ok(render_clearing(&state, StatusCode::OK, &page, clear))
}

/// `GET /console/w/{ws}/databases/{id}/status`: the status word alone (`text/plain`), polled
/// by `console.js` while a database is provisioning or recovering.
async fn database_status(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((_, id)): Path<(String, String)>,
) -> Page {
    let d = state
        .services
        .database_get(&ctx.principal, &id)
        .await
        .map_err(fail)?;
    Ok((
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        status_word(&d.status),
    )
        .into_response())
}

/// `POST /console/w/{ws}/databases/{id}/delete`: the database's name must be typed.
async fn database_delete(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    Posted(ctx, f): Posted,
) -> Page {
    let db = state
        .services
        .database_get(&ctx.principal, &id)
        .await
        .map_err(fail)?;
    let typed = confirm_typed(&f, &db.name, "database", "deleted", "delete the database");
    if let Err(notice) = typed {
        let page = database_view(&state, ctx, &id, Some(notice), None).await?;
        return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    let project = db.project.map(|p| p.id).unwrap_or_default();
    match state.services.database_delete(&ctx.principal, &id).await {
        Ok(()) => Ok(see_other(&format!("{}/projects/{project}", ctx.base()))),
        Err(e) => database_refused(&state, ctx, &id, e).await,
    }
}

/// `POST /console/w/{ws}/databases/{id}/connections`
async fn connection_create(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    Posted(ctx, f): Posted,
) -> Page {
    match state
        .services
        .connection_create(&ctx.principal, &id, field(&f, "name"))
        .await
    {
        Ok(c) => {
            let flash = Flash::connection(
                format!("connection:{}", c.connection.id),
                format!("Connection {} was created.", c.connection.name),
                c.connection_string,
                &c.connection.endpoints,
            );
            let to = format!("{}/databases/{id}", ctx.base());
            Ok(see_other_with(&state, &ctx, &to, flash))
        }
        Err(e) => database_refused(&state, ctx, &id, e).await,
    }
}

/// `POST /console/w/{ws}/databases/{id}/connections/{cid}/rotate`
async fn connection_rotate(
    State(state): State<AppState>,
    Path((_, id, cid)): Path<(String, String, String)>,
    Posted(ctx, f): Posted,
) -> Page {
    if let Err(n) = confirm_ticked(&f, "rotated") {
        return database_refused(&state, ctx, &id, n).await;
    }
    match state.services.connection_rotate(&ctx.principal, &cid).await {
        Ok(c) => {
            let flash = Flash::connection(
                format!("connection:{}", c.connection.id),
                format!(
                    "The password of connection {} was rotated; the old one no longer works.",
                    c.connection.name
                ),
                c.connection_string,
                &c.connection.endpoints,
            );
            let to = format!("{}/databases/{id}", ctx.base());
            Ok(see_other_with(&state, &ctx, &to, flash))
        }
        Err(e) => database_refused(&state, ctx, &id, e).await,
    }
}

/// `POST /console/w/{ws}/databases/{id}/connections/{cid}/delete`
async fn connection_delete(
    State(state): State<AppState>,
    Path((_, id, cid)): Path<(String, String, String)>,
    Posted(ctx, f): Posted,
) -> Page {
    if let Err(n) = confirm_ticked(&f, "deleted") {
        return database_refused(&state, ctx, &id, n).await;
    }
    match state.services.connection_delete(&ctx.principal, &cid).await {
        Ok(()) => Ok(see_other(&format!("{}/databases/{id}", ctx.base()))),
        Err(e) => database_refused(&state, ctx, &id, e).await,
    }
}
