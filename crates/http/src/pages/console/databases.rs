//! A database's page: its connections (with the pooled endpoint when the pooler runs and the
//! `prisma+postgres://` one when that endpoint runs), its backups and usage, the live status word polled by `console.js`, and delete (the name
//! typed).

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use pgfleet_api_types::database::{Database, DatabaseStatus};

use super::forms::Confirmed;
use super::usage::{usage_view, UsageView};
use super::{
    backups, confirm_typed, page_at, refused, render_clearing, take_flash, Ctx, Flash, Nav, Page,
    Pager, Posted,
};
use crate::pages::{fail, plain_text, render, see_other, Chrome, Notice};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/console/w/{ws}/databases/{id}", get(database_page))
        .route(
            "/console/w/{ws}/databases/{id}/status",
            get(database_status),
        )
        .route(
            "/console/w/{ws}/databases/{id}/delete",
            post(database_delete),
        )
}

/// The restore window for the point-in-time form: `datetime-local` bounds (UTC, seconds).
pub(super) struct WindowView {
    pub(super) min: String,
    pub(super) max: String,
}

impl WindowView {
    fn of(w: &pgfleet_api_types::database::RestoreWindow) -> Option<Self> {
        let local = |t: &str| {
            chrono::DateTime::parse_from_rfc3339(t).ok().map(|t| {
                t.with_timezone(&chrono::Utc)
                    .format("%Y-%m-%dT%H:%M:%S")
                    .to_string()
            })
        };
        Some(Self {
            min: local(&w.earliest)?,
            max: local(&w.latest)?,
        })
    }
}

pub(super) struct DatabaseRow {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) status: &'static str,
    pub(super) is_default: bool,
    pub(super) region: String,
    pub(super) created_at: String,
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
struct ConnectionView {
    id: String,
    name: String,
    host: String,
    /// `host:port` of the pooled endpoint, when the pooler runs.
    pooled: Option<String>,
    /// `host:port` of the `prisma+postgres://` endpoint, when it runs.
    accelerate: Option<String>,
    created_at: String,
}

#[derive(Template)]
#[template(path = "console_database.html")]
pub(super) struct DatabaseTemplate {
    chrome: Chrome,
    nav: Nav,
    db: DatabaseRow,
    project_id: String,
    project_name: String,
    connections: Vec<ConnectionView>,
    /// Whether the pooled endpoint runs (its hint is shown).
    pooled_on: bool,
    /// Whether the `prisma+postgres://` endpoint runs (its hint is shown).
    accelerate_on: bool,
    pager: Pager,
    backups: Vec<backups::BackupView>,
    /// Set when the database can be restored to a point in time.
    window: Option<WindowView>,
    usage: Option<UsageView>,
    flash: Option<Flash>,
    error: Option<Notice>,
}

pub(super) async fn database_view(
    state: &AppState,
    ctx: Ctx,
    id: &str,
    error: Option<Notice>,
    query: Option<&str>,
) -> Result<DatabaseTemplate, Response> {
    let db = state
        .services
        .databases()
        .get(&ctx.access, id)
        .await
        .map_err(fail)?;
    let list = state
        .services
        .connections()
        .list(&ctx.access, Some(id), page_at(query).map_err(fail)?)
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
            accelerate: c
                .endpoints
                .accelerate
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
    let window = db.restore_window.as_ref().and_then(WindowView::of);
    let backups = backups::backup_views(state, &ctx.access, id, &db.name, &project_id)
        .await
        .map_err(fail)?;
    Ok(DatabaseTemplate {
        chrome: ctx.chrome(),
        nav: ctx.nav,
        db: DatabaseRow::from(db),
        project_id,
        project_name,
        pooled_on: state.services.config().pooled.is_some(),
        accelerate_on: state.services.config().accelerate.is_some(),
        connections,
        pager,
        backups,
        window,
        usage: None,
        flash: None,
        error,
    })
}

pub(super) async fn database_refused(
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
    let usage = usage_view(&state, &ctx.access, &id, query.as_deref())
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
        .databases()
        .get(&ctx.access, &id)
        .await
        .map_err(fail)?;
    Ok(plain_text(status_word(&d.status)))
}

/// `POST /console/w/{ws}/databases/{id}/delete`: the database's name must be typed.
async fn database_delete(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    Posted(ctx, f): Posted<Confirmed>,
) -> Page {
    let (ctx, db) = typed_database(
        &state,
        ctx,
        &id,
        &f.confirm,
        "deleted",
        "delete the database",
    )
    .await?;
    let project = db.project.map(|p| p.id).unwrap_or_default();
    match state
        .services
        .databases()
        .delete(&ctx.access.for_write().map_err(crate::pages::fail)?, &id)
        .await
    {
        Ok(()) => Ok(see_other(&format!("{}/projects/{project}", ctx.base()))),
        Err(e) => database_refused(&state, ctx, &id, e).await,
    }
}

/// The database `id` when `confirm` is its name typed; else its page again (422) saying so,
/// and nothing is done: what deleting it or restoring over it takes.
pub(super) async fn typed_database(
    state: &AppState,
    ctx: Ctx,
    id: &str,
    confirm: &str,
    done: &str,
    act: &str,
) -> Result<(Ctx, Database), Response> {
    let db = state
        .services
        .databases()
        .get(&ctx.access, id)
        .await
        .map_err(fail)?;
    if let Err(notice) = confirm_typed(confirm, &db.name, "database", done, act) {
        let page = database_view(state, ctx, id, Some(notice), None).await?;
        return Err(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    Ok((ctx, db))
}

pub(super) fn status_word(s: &DatabaseStatus) -> &'static str {
    match s {
        DatabaseStatus::Provisioning => "provisioning",
        DatabaseStatus::Ready => "ready",
        DatabaseStatus::Recovering => "recovering",
        DatabaseStatus::Failure => "failure",
    }
}
