//! Signed webhooks of a workspace: the endpoints (created with their signing secret shown
//! once; deleted behind a sure-box) and each one's recent deliveries.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use pgfleet_api_types::webhook::WebhookState;

use super::forms::{Confirmed, NewWebhook};
use super::{
    confirm_ticked, refused, render_clearing, see_other_with, take_flash, Ctx, Flash, Nav, Page,
    Posted,
};
use crate::pages::{fail, see_other, Chrome, Notice};
use crate::AppState;

/// Deliveries shown per endpoint.
const DELIVERIES_SHOWN: usize = 10;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/console/w/{ws}/webhooks",
            get(webhooks_page).post(webhook_create),
        )
        .route("/console/w/{ws}/webhooks/{id}/delete", post(webhook_delete))
}

struct DeliveryView {
    event_id: String,
    event_type: String,
    status: &'static str,
    attempts: i32,
    last: String,
    created_at: String,
}

struct WebhookView {
    id: String,
    url: String,
    events: String,
    enabled: bool,
    deliveries: Vec<DeliveryView>,
}

#[derive(Template)]
#[template(path = "console_webhooks.html")]
struct WebhooksTemplate {
    chrome: Chrome,
    nav: Nav,
    webhooks: Vec<WebhookView>,
    flash: Option<Flash>,
    url: String,
    events: String,
    error: Option<Notice>,
}

async fn webhooks_view(
    state: &AppState,
    ctx: Ctx,
    url: String,
    events: String,
    error: Option<Notice>,
) -> Result<WebhooksTemplate, Response> {
    let svc = state.services.webhooks();
    let wide = ctx.access.workspace_wide().map_err(fail)?;
    let list = svc.list(&wide, &ctx.nav.ws_id).await.map_err(fail)?.data;
    let mut webhooks = Vec::with_capacity(list.len());
    for w in list {
        let deliveries = svc
            .deliveries(&wide, &ctx.nav.ws_id, &w.id)
            .await
            .map_err(fail)?
            .data
            .into_iter()
            .take(DELIVERIES_SHOWN)
            .map(|d| DeliveryView {
                event_id: d.event_id,
                event_type: d.event_type,
                status: match d.status {
                    pgfleet_api_types::webhook::DeliveryStatus::Pending => "pending",
                    pgfleet_api_types::webhook::DeliveryStatus::Delivered => "delivered",
                    pgfleet_api_types::webhook::DeliveryStatus::Failed => "failed",
                },
                attempts: d.attempts,
                last: d
                    .last_status_code
                    .map(|c| c.to_string())
                    .or(d.last_error)
                    .unwrap_or_default(),
                created_at: d.created_at,
            })
            .collect();
        webhooks.push(WebhookView {
            id: w.id,
            url: w.url,
            events: w.events.map_or_else(
                || "all events".to_string(),
                |e| e.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", "),
            ),
            enabled: w.state == WebhookState::Enabled,
            deliveries,
        });
    }
    Ok(WebhooksTemplate {
        chrome: ctx.chrome(),
        nav: ctx.nav,
        webhooks,
        flash: None,
        url,
        events,
        error,
    })
}

/// `GET /console/w/{ws}/webhooks`
async fn webhooks_page(State(state): State<AppState>, ctx: Ctx) -> Page {
    let (flash, clear) = take_flash(&ctx, |k| k.starts_with("webhook:"));
    let mut page = webhooks_view(&state, ctx, String::new(), String::new(), None).await?;
    page.flash = flash.filter(|f| {
        page.webhooks
            .iter()
            .any(|w| f.key == format!("webhook:{}", w.id))
    });
    Ok(render_clearing(&state, StatusCode::OK, &page, clear))
}

/// `POST /console/w/{ws}/webhooks`: `url`, and `events` comma-separated (empty: all).
async fn webhook_create(State(state): State<AppState>, Posted(ctx, f): Posted<NewWebhook>) -> Page {
    let events: Vec<String> = f
        .events
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect();
    match state
        .services
        .webhooks()
        .create(
            &ctx.access
                .workspace_wide_write()
                .map_err(crate::pages::fail)?,
            &ctx.nav.ws_id,
            &f.url,
            (!events.is_empty()).then_some(events.as_slice()),
        )
        .await
    {
        Ok(w) => {
            let flash = Flash {
                key: format!("webhook:{}", w.webhook.id),
                title: format!("Webhook {} was created; its signing secret:", w.webhook.url),
                secret: w.secret,
                pooled: None,
                accelerate: None,
            };
            let to = format!("{}/webhooks", ctx.base());
            Ok(see_other_with(&state, &ctx, &to, flash))
        }
        Err(e) => refused(e, |n| webhooks_view(&state, ctx, f.url, f.events, Some(n))).await,
    }
}

/// `POST /console/w/{ws}/webhooks/{id}/delete`
async fn webhook_delete(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    Posted(ctx, f): Posted<Confirmed>,
) -> Page {
    let again = String::new;
    if let Err(n) = confirm_ticked(&f.confirm, "deleted") {
        return refused(n, |n| webhooks_view(&state, ctx, again(), again(), Some(n))).await;
    }
    match state
        .services
        .webhooks()
        .delete(
            &ctx.access
                .workspace_wide_write()
                .map_err(crate::pages::fail)?,
            &ctx.nav.ws_id,
            &id,
        )
        .await
    {
        Ok(()) => Ok(see_other(&format!("{}/webhooks", ctx.base()))),
        Err(e) => refused(e, |n| webhooks_view(&state, ctx, again(), again(), Some(n))).await,
    }
}
