//! OAuth apps of a workspace inside the console (`/console/w/{ws}/apps…`): list, create
//! (redirect URIs, public or confidential; a confidential app's secret is shown once, through
//! the console's sealed flash cookie), edit and delete; the pages' one UI for apps. Each
//! acts through the page's [`pgfleet_domain::WorkspaceAccess`] (the member's), like every
//! other console page.
//!
//! The older addresses of the apps pages lead here: `GET /apps` and `GET /apps/{id}` answer
//! `303` to the console's list of the user's first workspace and to the app's page in its
//! own workspace; a form still posted there (a tab opened before an upgrade) is answered
//! `307`, so the browser posts it again to the console's address.

use askama::Template;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use pgfleet_domain::services::oauth::{App, ClientType as AppType};
use pgfleet_domain::DomainError;

use super::ctx::first_workspace;
use super::forms::{AppFields, ClientType, Confirmed, WorkspaceField};
use super::{render_clearing, see_other_with, take_flash, Ctx, Flash, Nav, Page, Posted};
use crate::pages::{fail, render, require_session, see_other, urlencode, Chrome, Notice};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/console/apps", get(apps_home))
        .route("/console/w/{ws}/apps", get(apps_page).post(app_create))
        .route("/console/w/{ws}/apps/{id}", get(app_page).post(app_update))
        .route("/console/w/{ws}/apps/{id}/delete", post(app_delete))
        .route("/apps", get(old_apps).post(old_apps_create))
        .route("/apps/{id}", get(old_app).post(old_app_post))
        .route("/apps/{id}/delete", post(old_app_delete))
}

/// An app as the pages show it.
pub(super) struct AppView {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) description: Option<String>,
    pub(super) client_type: String,
    pub(super) redirect_uris: Vec<String>,
    /// RFC 3339, for the console's relative time.
    pub(super) created_at: String,
}

impl From<App> for AppView {
    fn from(c: App) -> Self {
        Self {
            created_at: pgfleet_api_types::ts(&c.created_at),
            client_type: c.client_type.to_string(),
            id: c.id,
            name: c.name,
            description: c.description,
            redirect_uris: c.redirect_uris,
        }
    }
}

/// What a create or edit form held (re-shown after an error).
#[derive(Default)]
pub(super) struct AppForm {
    pub(super) name: String,
    pub(super) description: String,
    pub(super) redirect_uris: String,
    pub(super) confidential: bool,
}

impl AppForm {
    /// The edit form of an existing app.
    fn of(client: &App) -> Self {
        Self {
            name: client.name.clone(),
            description: client.description.clone().unwrap_or_default(),
            redirect_uris: client.redirect_uris.join("\n"),
            confidential: client.client_type == AppType::Confidential,
        }
    }

    fn from_fields(f: &AppFields) -> Self {
        Self {
            name: f.name.clone(),
            description: f.description.clone(),
            redirect_uris: f.redirect_uris.clone(),
            confidential: f.client_type == Some(ClientType::Confidential),
        }
    }

    /// The redirect URIs, one a line, blank lines skipped.
    fn uris(&self) -> Vec<String> {
        self.redirect_uris
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    }

    fn description(&self) -> Option<&str> {
        Some(self.description.trim()).filter(|d| !d.is_empty())
    }
}

#[derive(Template)]
#[template(path = "console_apps.html")]
struct AppsTemplate {
    chrome: Chrome,
    nav: Nav,
    issuer: String,
    apps: Vec<AppView>,
    form: AppForm,
    error: Option<Notice>,
}

#[derive(Template)]
#[template(path = "console_app.html")]
struct AppTemplate {
    chrome: Chrome,
    nav: Nav,
    issuer: String,
    app: AppView,
    form: AppForm,
    flash: Option<Flash>,
    error: Option<Notice>,
}

async fn apps_view(
    state: &AppState,
    ctx: Ctx,
    form: AppForm,
    error: Option<Notice>,
) -> Result<AppsTemplate, Response> {
    let apps = state
        .services
        .oauth()
        .clients_list(&ctx.access.workspace_wide().map_err(crate::pages::fail)?)
        .await
        .map_err(fail)?
        .into_iter()
        .map(AppView::from)
        .collect();
    Ok(AppsTemplate {
        chrome: ctx.chrome(),
        nav: ctx.nav,
        issuer: state.services.config().oauth.issuer.clone(),
        apps,
        form,
        error,
    })
}

/// An app of the workspace of the URL (`NotFound` for any other).
async fn workspace_app(state: &AppState, ctx: &Ctx, id: &str) -> Result<App, Response> {
    state
        .services
        .oauth()
        .client_get(
            &ctx.access.workspace_wide().map_err(crate::pages::fail)?,
            id,
        )
        .await
        .map_err(fail)
}

fn app_view(
    state: &AppState,
    ctx: Ctx,
    client: App,
    form: Option<AppForm>,
    error: Option<Notice>,
) -> AppTemplate {
    let form = form.unwrap_or_else(|| AppForm::of(&client));
    AppTemplate {
        chrome: ctx.chrome(),
        nav: ctx.nav,
        issuer: state.services.config().oauth.issuer.clone(),
        app: AppView::from(client),
        form,
        flash: None,
        error,
    }
}

/// `GET /console/apps`: the apps of the user's first workspace (the header's link).
async fn apps_home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match first_workspace(&state, &headers, "/console/apps").await {
        Ok((_, Some(ws))) => see_other(&format!("/console/w/{}/apps", urlencode(&ws))),
        Ok((_, None)) => see_other("/console"),
        Err(res) => res,
    }
}

/// `GET /console/w/{ws}/apps`
async fn apps_page(State(state): State<AppState>, ctx: Ctx) -> Page {
    let page = apps_view(&state, ctx, AppForm::default(), None).await?;
    Ok(render(StatusCode::OK, &page))
}

/// `POST /console/w/{ws}/apps`: then `303` to the app's page, which shows a secret once.
async fn app_create(State(state): State<AppState>, Posted(ctx, f): Posted<AppFields>) -> Page {
    let form = AppForm::from_fields(&f);
    let created = if f.client_type.is_some() {
        state
            .services
            .oauth()
            .client_create(
                &ctx.access
                    .workspace_wide_write()
                    .map_err(crate::pages::fail)?,
                &form.name,
                form.description(),
                &form.uris(),
                form.confidential,
            )
            .await
    } else {
        Err(DomainError::bad_request(
            "Choose the client type: public or confidential",
        ))
    };
    match created {
        Ok(c) => {
            let to = format!("{}/apps/{}", ctx.base(), c.client.id);
            Ok(match c.client_secret {
                Some(secret) => {
                    let flash = Flash {
                        key: format!("app:{}", c.client.id),
                        title: format!(
                            "App {} was created. This is its client secret.",
                            c.client.name
                        ),
                        secret,
                        pooled: None,
                        accelerate: None,
                    };
                    see_other_with(&state, &ctx, &to, flash)
                }
                None => see_other(&to),
            })
        }
        Err(e) => super::refused(e, |n| apps_view(&state, ctx, form, Some(n))).await,
    }
}

/// `GET /console/w/{ws}/apps/{id}`
async fn app_page(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((_, id)): Path<(String, String)>,
) -> Page {
    let client = workspace_app(&state, &ctx, &id).await?;
    let key = format!("app:{}", client.id);
    let (flash, clear) = take_flash(&ctx, |k| k == key);
    let mut page = app_view(&state, ctx, client, None, None);
    page.flash = flash;
    Ok(render_clearing(&state, StatusCode::OK, &page, clear))
}

/// `POST /console/w/{ws}/apps/{id}`: name, description, redirect URIs.
async fn app_update(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    Posted(ctx, f): Posted<AppFields>,
) -> Page {
    let client = workspace_app(&state, &ctx, &id).await?;
    let form = AppForm::from_fields(&f);
    match state
        .services
        .oauth()
        .client_update(
            &ctx.access
                .workspace_wide_write()
                .map_err(crate::pages::fail)?,
            &client.id,
            &form.name,
            form.description(),
            &form.uris(),
        )
        .await
    {
        Ok(c) => Ok(see_other(&format!("{}/apps/{}", ctx.base(), c.id))),
        Err(e) => {
            let (status, notice) = Notice::from_error(e);
            let page = app_view(&state, ctx, client, Some(form), Some(notice));
            Ok(render(status, &page))
        }
    }
}

/// `POST /console/w/{ws}/apps/{id}/delete`: the app and everything issued to it.
async fn app_delete(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    Posted(ctx, f): Posted<Confirmed>,
) -> Page {
    let client = workspace_app(&state, &ctx, &id).await?;
    if let Err(e) = super::confirm_ticked(&f.confirm, "deleted") {
        let (status, notice) = Notice::from_error(e);
        let page = app_view(&state, ctx, client, None, Some(notice));
        return Ok(render(status, &page));
    }
    match state
        .services
        .oauth()
        .client_delete(
            &ctx.access
                .workspace_wide_write()
                .map_err(crate::pages::fail)?,
            &client.id,
        )
        .await
    {
        Ok(()) => Ok(see_other(&format!("{}/apps", ctx.base()))),
        Err(e) => {
            let (status, notice) = Notice::from_error(e);
            let page = app_view(&state, ctx, client, None, Some(notice));
            Ok(render(status, &page))
        }
    }
}

/// `GET /apps` (the older apps page): the console's apps of the user's first workspace.
async fn old_apps(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match first_workspace(&state, &headers, "/apps").await {
        Ok((_, Some(ws))) => see_other(&format!("/console/w/{}/apps", urlencode(&ws))),
        Ok((_, None)) => see_other("/console"),
        Err(res) => res,
    }
}

/// `POST /apps` (the older create form): `307` to the console's create form of the
/// workspace it named (the console checks the membership, the token and the fields).
async fn old_apps_create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<WorkspaceField>,
) -> Response {
    if let Err(res) = require_session(&state, &headers, "/apps").await {
        return res;
    }
    if f.workspace_id.is_empty() {
        return see_other("/apps");
    }
    Redirect::temporary(&format!("/console/w/{}/apps", urlencode(&f.workspace_id))).into_response()
}

/// The console's address of app `id` of the signed-in user (`NotFound` for another's).
async fn console_app_url(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
) -> Result<String, Response> {
    let signed = require_session(state, headers, &format!("/apps/{}", urlencode(id))).await?;
    let client = state
        .services
        .oauth()
        .user_client(signed.user_id(), id)
        .await
        .map_err(fail)?;
    Ok(format!(
        "/console/w/{}/apps/{}",
        urlencode(&client.workspace_id),
        urlencode(&client.id)
    ))
}

/// `GET /apps/{id}` (the older app page): `303` to the app's console page.
async fn old_app(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match console_app_url(&state, &headers, &id).await {
        Ok(url) => see_other(&url),
        Err(res) => res,
    }
}

/// `POST /apps/{id}` (the older edit form): `307` to the console's.
async fn old_app_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match console_app_url(&state, &headers, &id).await {
        Ok(url) => Redirect::temporary(&url).into_response(),
        Err(res) => res,
    }
}

/// `POST /apps/{id}/delete` (the older delete form): `307` to the console's (which asks for
/// its box ticked).
async fn old_app_delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match console_app_url(&state, &headers, &id).await {
        Ok(url) => Redirect::temporary(&format!("{url}/delete")).into_response(),
        Err(res) => res,
    }
}
