//! Service tokens (create, shown once; delete behind a sure-box) and the authorized
//! integrations (OAuth grants on the workspace; revoke behind a sure-box) of a workspace.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use super::forms::{Confirmed, Named};
use super::{
    confirm_ticked, page, refused, render_clearing, see_other_with, take_flash, Ctx, Flash, Nav,
    Page, Posted,
};
use crate::pages::{fail, render, see_other, Chrome, Notice};
use crate::AppState;

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
}

#[derive(Template)]
#[template(path = "console_tokens.html")]
struct TokensTemplate {
    chrome: Chrome,
    nav: Nav,
    tokens: Vec<TokenView>,
    flash: Option<Flash>,
    name: String,
    error: Option<Notice>,
}

async fn tokens_view(
    state: &AppState,
    ctx: Ctx,
    name: String,
    error: Option<Notice>,
) -> Result<TokensTemplate, Response> {
    let tokens = state
        .services
        .tokens()
        .list(&ctx.access, &ctx.nav.ws_id, page())
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
        })
        .collect();
    Ok(TokensTemplate {
        chrome: ctx.chrome(),
        nav: ctx.nav,
        tokens,
        flash: None,
        name,
        error,
    })
}

/// `GET /console/w/{ws}/tokens`
async fn tokens_page(State(state): State<AppState>, ctx: Ctx) -> Page {
    let (flash, clear) = take_flash(&ctx, |k| k.starts_with("token:"));
    let mut page = tokens_view(&state, ctx, String::new(), None).await?;
    page.flash = flash.filter(|f| {
        page.tokens
            .iter()
            .any(|t| f.key == format!("token:{}", t.id))
    });
    Ok(render_clearing(&state, StatusCode::OK, &page, clear))
}

/// `POST /console/w/{ws}/tokens`
async fn token_create(State(state): State<AppState>, Posted(ctx, f): Posted<Named>) -> Page {
    let name = f.name;
    match state
        .services
        .tokens()
        .create(&ctx.access, &ctx.nav.ws_id, &name, None)
        .await
    {
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
        Err(e) => refused(e, |n| tokens_view(&state, ctx, name, Some(n))).await,
    }
}

/// `POST /console/w/{ws}/tokens/{id}/delete`
async fn token_delete(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    Posted(ctx, f): Posted<Confirmed>,
) -> Page {
    if let Err(n) = confirm_ticked(&f.confirm, "deleted") {
        return refused(n, |n| tokens_view(&state, ctx, String::new(), Some(n))).await;
    }
    match state
        .services
        .tokens()
        .delete(&ctx.access, &ctx.nav.ws_id, &id)
        .await
    {
        Ok(()) => Ok(see_other(&format!("{}/tokens", ctx.base()))),
        Err(e) => refused(e, |n| tokens_view(&state, ctx, String::new(), Some(n))).await,
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
        .integrations_list(&ctx.access, &ctx.nav.ws_id, page())
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
        .integration_revoke(&ctx.access, &ctx.nav.ws_id, None, Some(&id))
        .await
    {
        Ok(()) => Ok(see_other(&format!("{}/integrations", ctx.base()))),
        Err(e) => refused(e, |n| integrations_view(&state, ctx, Some(n))).await,
    }
}
