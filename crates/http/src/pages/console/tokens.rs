//! Service tokens (create, shown once, optionally limited to one project and/or to reads;
//! delete behind a sure-box) and the authorized integrations (OAuth grants on the
//! workspace; revoke behind a sure-box) of a workspace.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use super::forms::{Confirmed, NewToken};
use super::{
    confirm_ticked, page, refused, render_clearing, see_other_with, take_flash, Ctx, Flash, Nav,
    Page, Posted,
};
use crate::pages::{fail, render, see_other, Chrome, Notice};
use crate::AppState;
use pgfleet_domain::TokenScope;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/console/w/{ws}/tokens",
            get(tokens_page).post(token_create),
        )
        .route("/console/w/{ws}/tokens/{id}/delete", post(token_delete))
        .route("/console/w/{ws}/integrations", get(integrations_page))
        .route(
            "/console/w/{ws}/integrations/{id}/revoke",
            post(integration_revoke),
        )
}

struct TokenView {
    id: String,
    name: String,
    hint: String,
    created_at: String,
    expires_at: Option<String>,
    /// What it reaches: "whole workspace" or "project NAME (id)", and ", read-only".
    scope: String,
}

/// A project to pick in the create form.
struct ProjectOption {
    id: String,
    name: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "console_tokens.html")]
struct TokensTemplate {
    chrome: Chrome,
    nav: Nav,
    tokens: Vec<TokenView>,
    flash: Option<Flash>,
    name: String,
    projects: Vec<ProjectOption>,
    read_only: bool,
    error: Option<Notice>,
}

async fn tokens_view(
    state: &AppState,
    ctx: Ctx,
    form: NewToken,
    error: Option<Notice>,
) -> Result<TokensTemplate, Response> {
    let projects: Vec<(String, String)> = state
        .services
        .projects()
        .list(&ctx.access, None, page())
        .await
        .map_err(fail)?
        .data
        .into_iter()
        .map(|p| (p.id, p.name))
        .collect();
    let project_name = |id: &str| {
        projects
            .iter()
            .find(|(p, _)| p == id)
            .map(|(_, n)| format!("project {n} ({id})"))
            .unwrap_or_else(|| format!("project {id}"))
    };
    let tokens = state
        .services
        .tokens()
        .list(
            &ctx.access.workspace_wide().map_err(crate::pages::fail)?,
            &ctx.nav.ws_id,
            page(),
        )
        .await
        .map_err(fail)?
        .data
        .into_iter()
        .map(|t| TokenView {
            id: t.id,
            name: t.name,
            hint: t.value_hint,
            created_at: t.created_at,
            expires_at: t.expires_at,
            scope: format!(
                "{}{}",
                t.project_id
                    .as_deref()
                    .map_or_else(|| "whole workspace".to_string(), project_name),
                if t.read_only { ", read-only" } else { "" }
            ),
        })
        .collect();
    let projects = projects
        .into_iter()
        .map(|(id, name)| ProjectOption {
            selected: id == form.project,
            id,
            name,
        })
        .collect();
    Ok(TokensTemplate {
        chrome: ctx.chrome(),
        nav: ctx.nav,
        tokens,
        flash: None,
        name: form.name,
        projects,
        read_only: form.read_only == "yes",
        error,
    })
}

/// `GET /console/w/{ws}/tokens`
async fn tokens_page(State(state): State<AppState>, ctx: Ctx) -> Page {
    let (flash, clear) = take_flash(&ctx, |k| k.starts_with("token:"));
    let mut page = tokens_view(&state, ctx, NewToken::default(), None).await?;
    page.flash = flash.filter(|f| {
        page.tokens
            .iter()
            .any(|t| f.key == format!("token:{}", t.id))
    });
    Ok(render_clearing(&state, StatusCode::OK, &page, clear))
}

/// `POST /console/w/{ws}/tokens`
async fn token_create(State(state): State<AppState>, Posted(ctx, f): Posted<NewToken>) -> Page {
    let scope = TokenScope {
        project_id: Some(f.project.clone()).filter(|p| !p.is_empty()),
        read_only: f.read_only == "yes",
    };
    let created = match ctx.access.workspace_wide_write() {
        Ok(access) => {
            state
                .services
                .tokens()
                .create(&access, &ctx.nav.ws_id, &f.name, None, &scope)
                .await
        }
        Err(e) => Err(e),
    };
    match created {
        Ok(t) => {
            let flash = Flash {
                key: format!("token:{}", t.token.id),
                title: format!("Service token {} was created.", t.token.name),
                secret: t.value,
                pooled: None,
                accelerate: None,
            };
            let to = format!("{}/tokens", ctx.base());
            Ok(see_other_with(&state, &ctx, &to, flash))
        }
        Err(e) => refused(e, |n| tokens_view(&state, ctx, f, Some(n))).await,
    }
}

/// `POST /console/w/{ws}/tokens/{id}/delete`
async fn token_delete(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    Posted(ctx, f): Posted<Confirmed>,
) -> Page {
    if let Err(n) = confirm_ticked(&f.confirm, "deleted") {
        return refused(n, |n| {
            tokens_view(&state, ctx, NewToken::default(), Some(n))
        })
        .await;
    }
    match state
        .services
        .tokens()
        .delete(
            &ctx.access
                .workspace_wide_write()
                .map_err(crate::pages::fail)?,
            &ctx.nav.ws_id,
            &id,
        )
        .await
    {
        Ok(()) => Ok(see_other(&format!("{}/tokens", ctx.base()))),
        Err(e) => {
            refused(e, |n| {
                tokens_view(&state, ctx, NewToken::default(), Some(n))
            })
            .await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Authorized integrations (OAuth grants on this workspace)

struct IntegrationView {
    id: String,
    client_name: String,
    client_id: String,
    scopes: String,
    user: String,
    created_at: String,
}

#[derive(Template)]
#[template(path = "console_integrations.html")]
struct IntegrationsTemplate {
    chrome: Chrome,
    nav: Nav,
    integrations: Vec<IntegrationView>,
    error: Option<Notice>,
}

async fn integrations_view(
    state: &AppState,
    ctx: Ctx,
    error: Option<Notice>,
) -> Result<IntegrationsTemplate, Response> {
    let integrations = state
        .services
        .oauth()
        .integrations_list(
            &ctx.access.workspace_wide().map_err(crate::pages::fail)?,
            &ctx.nav.ws_id,
            page(),
        )
        .await
        .map_err(fail)?
        .data
        .into_iter()
        .map(|i| IntegrationView {
            id: i.id,
            client_name: i.client.name,
            client_id: i.client.id,
            scopes: i.scopes.join(" "),
            user: i.created_by_user.email,
            created_at: i.created_at,
        })
        .collect();
    Ok(IntegrationsTemplate {
        chrome: ctx.chrome(),
        nav: ctx.nav,
        integrations,
        error,
    })
}

/// `GET /console/w/{ws}/integrations`
async fn integrations_page(State(state): State<AppState>, ctx: Ctx) -> Page {
    let page = integrations_view(&state, ctx, None).await?;
    Ok(render(StatusCode::OK, &page))
}

/// `POST /console/w/{ws}/integrations/{id}/revoke`: its tokens stop working at once.
async fn integration_revoke(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    Posted(ctx, f): Posted<Confirmed>,
) -> Page {
    if let Err(n) = confirm_ticked(&f.confirm, "revoked") {
        return refused(n, |n| integrations_view(&state, ctx, Some(n))).await;
    }
    match state
        .services
        .oauth()
        .integration_revoke(
            &ctx.access
                .workspace_wide_write()
                .map_err(crate::pages::fail)?,
            &ctx.nav.ws_id,
            None,
            Some(&id),
        )
        .await
    {
        Ok(()) => Ok(see_other(&format!("{}/integrations", ctx.base()))),
        Err(e) => refused(e, |n| integrations_view(&state, ctx, Some(n))).await,
    }
}
