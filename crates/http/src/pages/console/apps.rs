//! OAuth apps of a workspace inside the console (`/console/w/{ws}/apps…`): list, create
//! (redirect URIs, public or confidential; a confidential app's secret is shown once, through
//! the console's sealed flash cookie), edit and delete. The same services as the older
//! `/apps` pages ([`crate::pages::apps`], kept working for existing links and scripts), scoped
//! to the workspace of the URL.

use std::collections::HashMap;

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use pgfleet_domain::DomainError;
use pgfleet_storage::oauth::ClientRow;

use super::{
    enter, enter_form, render_clearing, see_other_with, take_flash, Ctx, Flash, Nav, Signed,
};
use crate::pages::apps::{AppForm, AppView};
use crate::pages::{fail, field, render, require_session, see_other, Chrome, Notice};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/console/apps", get(apps_home))
        .route("/console/w/{ws}/apps", get(apps_page).post(app_create))
        .route("/console/w/{ws}/apps/{id}", get(app_page).post(app_update))
        .route("/console/w/{ws}/apps/{id}/delete", post(app_delete))
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
        .oauth_clients_list(&ctx.nav.ws_id)
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
async fn workspace_app(
    state: &AppState,
    signed: &Signed,
    ws: &str,
    id: &str,
) -> Result<ClientRow, Response> {
    match state.services.user_oauth_client(signed.user_id(), id).await {
        Ok(c) if c.workspace_id == ws => Ok(c),
        Ok(_) => Err(fail(DomainError::not_found("App", id))),
        Err(e) => Err(fail(e)),
    }
}

fn app_view(
    state: &AppState,
    ctx: Ctx,
    client: ClientRow,
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
    let signed = match require_session(&state, &headers, "/console/apps").await {
        Ok(s) => s,
        Err(res) => return res,
    };
    match state.services.user_workspaces(signed.user_id()).await {
        Ok(ws) => match ws.first() {
            Some(w) => see_other(&format!("/console/w/{}/apps", w.id)),
            None => see_other("/console"),
        },
        Err(e) => fail(e),
    }
}

/// `GET /console/w/{ws}/apps`
async fn apps_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(ws): Path<String>,
) -> Response {
    let next = format!("/console/w/{ws}/apps");
    let ctx = match enter(&state, &headers, &ws, "apps", &next).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    match apps_view(&state, ctx, AppForm::default(), None).await {
        Ok(p) => render(StatusCode::OK, &p),
        Err(res) => res,
    }
}

/// `POST /console/w/{ws}/apps`: then `303` to the app's page, which shows a secret once.
async fn app_create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(ws): Path<String>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let (ctx, f) = match enter_form(&state, &headers, &ws, "apps", form).await {
        Ok(x) => x,
        Err(res) => return res,
    };
    let form = AppForm::from_fields(&f);
    let created = if matches!(field(&f, "client_type"), "public" | "confidential") {
        state
            .services
            .oauth_client_create(
                &ws,
                Some(ctx.signed.user_id()),
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
            match c.client_secret {
                Some(secret) => {
                    let flash = Flash {
                        key: format!("app:{}", c.client.id),
                        title: format!(
                            "App {} was created. This is its client secret.",
                            c.client.name
                        ),
                        secret,
                    };
                    see_other_with(&state, &ctx, &to, flash)
                }
                None => see_other(&to),
            }
        }
        Err(e) => {
            let (status, notice) = Notice::from_error(e);
            match apps_view(&state, ctx, form, Some(notice)).await {
                Ok(p) => render(status, &p),
                Err(res) => res,
            }
        }
    }
}

/// `GET /console/w/{ws}/apps/{id}`
async fn app_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((ws, id)): Path<(String, String)>,
) -> Response {
    let next = format!("/console/w/{ws}/apps/{id}");
    let ctx = match enter(&state, &headers, &ws, "apps", &next).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    let client = match workspace_app(&state, &ctx.signed, &ws, &id).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    let key = format!("app:{}", client.id);
    let (flash, clear) = take_flash(&headers, &ctx, |k| k == key);
    let mut page = app_view(&state, ctx, client, None, None);
    page.flash = flash;
    render_clearing(&state, StatusCode::OK, &page, clear)
}

/// `POST /console/w/{ws}/apps/{id}`: name, description, redirect URIs.
async fn app_update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((ws, id)): Path<(String, String)>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let (ctx, f) = match enter_form(&state, &headers, &ws, "apps", form).await {
        Ok(x) => x,
        Err(res) => return res,
    };
    let client = match workspace_app(&state, &ctx.signed, &ws, &id).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    let form = AppForm::from_fields(&f);
    match state
        .services
        .oauth_client_update(
            &ws,
            &client.id,
            &form.name,
            form.description(),
            &form.uris(),
        )
        .await
    {
        Ok(c) => see_other(&format!("{}/apps/{}", ctx.base(), c.id)),
        Err(e) => {
            let (status, notice) = Notice::from_error(e);
            render(
                status,
                &app_view(&state, ctx, client, Some(form), Some(notice)),
            )
        }
    }
}

/// `POST /console/w/{ws}/apps/{id}/delete`: the app and everything issued to it.
async fn app_delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((ws, id)): Path<(String, String)>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let (ctx, _) = match enter_form(&state, &headers, &ws, "apps", form).await {
        Ok(x) => x,
        Err(res) => return res,
    };
    let client = match workspace_app(&state, &ctx.signed, &ws, &id).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    match state.services.oauth_client_delete(&ws, &client.id).await {
        Ok(()) => see_other(&format!("{}/apps", ctx.base())),
        Err(e) => {
            let (status, notice) = Notice::from_error(e);
            render(status, &app_view(&state, ctx, client, None, Some(notice)))
        }
    }
}
