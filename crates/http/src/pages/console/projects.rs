//! Projects of a workspace: the list and the create form (a new project's default
//! connection strings are shown once), a project's page with its databases, rename, delete
//! (the name typed), transfer to another workspace, and a new database (empty, from a
//! backup, or a clone).

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use pgfleet_api_types::database::{CreateDatabase, DatabaseSource};
use pgfleet_api_types::project::{CreateProject, Project, UpdateProject};
use pgfleet_api_types::region::RegionStatus;

use super::databases::DatabaseRow;
use super::forms::{Confirmed, Named, NewDatabase, NewProject, Source, Transfer};
use super::{
    backups, confirm_typed, page_at, refused, render_clearing, see_other_with, take_flash, Ctx,
    Flash, Nav, Page, Pager, Posted,
};
use crate::pages::{fail, render, see_other, Chrome, Notice, PageError};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
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
}

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
        .projects()
        .list(&ctx.access, None, page_at(query).map_err(fail)?)
        .await
        .map_err(fail)?;
    let pager = Pager::new(&format!("{}/projects", ctx.base()), query, &list.pagination);
    let projects = list.data;
    let mut first_available = true;
    let regions = state
        .services
        .regions()
        .postgres()
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
async fn project_create(State(state): State<AppState>, Posted(ctx, f): Posted<NewProject>) -> Page {
    let NewProject { name, region } = f;
    let body = CreateProject {
        name: Some(name.clone()),
        region: Some(region.clone()).filter(|r| !r.is_empty()),
        ..CreateProject::default()
    };
    match state
        .services
        .projects()
        .create(
            &ctx.access
                .workspace_wide_write()
                .map_err(crate::pages::fail)?,
            body,
        )
        .await
    {
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
        .projects()
        .get(&ctx.access, id)
        .await
        .map_err(fail)?;
    let list = state
        .services
        .databases()
        .list_in_project(&ctx.access, id, page_at(query).map_err(fail)?)
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
    Posted(ctx, f): Posted<Named>,
) -> Page {
    let body = UpdateProject {
        name: Some(f.name),
        ..UpdateProject::default()
    };
    match state
        .services
        .projects()
        .update(
            &ctx.access.for_write().map_err(crate::pages::fail)?,
            &id,
            body,
        )
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
    Posted(ctx, f): Posted<Confirmed>,
) -> Page {
    let project = state
        .services
        .projects()
        .get(&ctx.access, &id)
        .await
        .map_err(fail)?;
    let typed = confirm_typed(
        &f.confirm,
        &project.name,
        "project",
        "deleted",
        "delete the project",
    );
    if let Err(notice) = typed {
        let page = project_view(&state, ctx, &id, Some(notice), None).await?;
        return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    match state
        .services
        .projects()
        .delete(
            &ctx.access
                .workspace_wide_write()
                .map_err(crate::pages::fail)?,
            &id,
        )
        .await
    {
        Ok(()) => Ok(see_other(&format!("{}/projects", ctx.base()))),
        Err(e) => project_refused(&state, ctx, &id, e).await,
    }
}

/// `POST /console/w/{ws}/projects/{id}/transfer`: `recipient_token`, a live access token of
/// the receiving workspace (as `POST /v1/projects/{id}/transfer` takes it).
async fn project_transfer(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    Posted(ctx, f): Posted<Transfer>,
) -> Page {
    match state
        .services
        .projects()
        .transfer(
            &ctx.access
                .workspace_wide_write()
                .map_err(crate::pages::fail)?,
            &id,
            f.recipient_token.trim(),
        )
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
    Posted(ctx, f): Posted<NewDatabase>,
) -> Page {
    let source = match f.source {
        Some(Source::Empty) => DatabaseSource::Empty,
        Some(Source::Clone) => DatabaseSource::Database {
            database_id: f.clone_of.clone(),
            timestamp: None,
        },
        Some(Source::Backup) => match f.backup.split_once('/') {
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
        None => return Err(PageError::bad_request("Unknown database source.").into_response()),
    };
    let name = Some(f.name.trim().to_string()).filter(|n| !n.is_empty());
    if let Some(n) = &name {
        let taken = backups::project_names(&state, &ctx.access, &id)
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
        .databases()
        .create(
            &ctx.access.for_write().map_err(crate::pages::fail)?,
            &id,
            body,
        )
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
