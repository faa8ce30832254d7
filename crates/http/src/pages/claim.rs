//! `GET/POST /claim-db/claim`: the page a `create-db` claim URL opens
//! (`{CLAIM_DB_WORKER_URL}/claim?projectID={claim token}&utm_…`, the CLI's `utm_` parameters
//! ignored). A browser without a session signs in first and comes back; then the user picks
//! one of their workspaces and confirms (a form with the session's CSRF token), and the
//! database moves there (`pgfleet_domain::services::claimable`). A claimed, expired or unknown
//! link answers a page saying so. 404 unless `[claimable] enabled`.

use std::collections::HashMap;

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use pgfleet_domain::services::claimable::ClaimStatus;
use pgfleet_domain::services::sessions::WorkspaceSummary;

use super::{
    fail, field, form_map, query_param, render, require_session, see_other, urlencode, Chrome,
    PageError,
};
use crate::AppState;

/// Longest claim token looked at (this server's are 49 characters).
const MAX_TOKEN: usize = 128;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/claim-db/claim", get(claim_page).post(claim_submit))
}

#[derive(Template)]
#[template(path = "claim.html")]
struct ClaimTemplate {
    chrome: Chrome,
    token: String,
    expires_at: String,
    workspaces: Vec<WorkspaceSummary>,
}

fn not_enabled() -> Response {
    PageError::new(
        StatusCode::NOT_FOUND,
        "Not found",
        "Claimable databases are not enabled on this server.",
        None,
    )
    .into_response()
}

/// The page of a link that cannot be claimed (any more).
fn closed(status: &ClaimStatus) -> Response {
    let (code, title, message) = match status {
        ClaimStatus::Claimed => (
            StatusCode::GONE,
            "Already claimed",
            "This database has already been claimed; a claim link works once.",
        ),
        ClaimStatus::Expired => (
            StatusCode::GONE,
            "Expired",
            "This temporary database was not claimed in time and is deleted.",
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "Unknown claim link",
            "This claim link is not valid. Check that it was copied whole.",
        ),
    };
    PageError::new(
        code,
        title,
        message,
        Some("Create a new database with `npx create-db`.".to_string()),
    )
    .into_response()
}

async fn claim_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if !state.services.claimable().enabled() {
        return not_enabled();
    }
    let token = query_param(query.as_deref(), "projectID").unwrap_or_default();
    if token.len() > MAX_TOKEN {
        return closed(&ClaimStatus::Unknown);
    }
    let here = format!("/claim-db/claim?projectID={}", urlencode(&token));
    let signed = match require_session(&state, &headers, &here).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let expires_at = match state.services.claimable().status(&token).await {
        Ok(ClaimStatus::Open { expires_at }) => expires_at,
        Ok(other) => return closed(&other),
        Err(e) => return fail(e),
    };
    let workspaces = match state
        .services
        .sessions()
        .user_workspaces(signed.user_id())
        .await
    {
        Ok(w) => w,
        Err(e) => return fail(e),
    };
    render(
        StatusCode::OK,
        &ClaimTemplate {
            chrome: signed.chrome(),
            token,
            expires_at: expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            workspaces,
        },
    )
}

async fn claim_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    if !state.services.claimable().enabled() {
        return not_enabled();
    }
    let f = match form_map(form) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let token = field(&f, "token");
    let here = format!("/claim-db/claim?projectID={}", urlencode(token));
    let signed = match require_session(&state, &headers, &here).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    if let Err(e) = signed.check_csrf(field(&f, "csrf_token")) {
        return e.into_response();
    }
    if token.len() > MAX_TOKEN {
        return closed(&ClaimStatus::Unknown);
    }
    let ws = field(&f, "workspace_id");
    let access = match state.services.access().console(signed.user_id(), ws).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            return PageError::new(
                StatusCode::FORBIDDEN,
                "Not allowed",
                "You are not a member of that workspace.",
                None,
            )
            .into_response()
        }
        Err(e) => return fail(e),
    };
    let access = match access.workspace_wide_write() {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    match state.services.claimable().claim(&access, token).await {
        Ok(project) => see_other(&format!("/console/w/{ws}/projects/{}", project.id)),
        Err(e) => match state.services.claimable().status(token).await {
            // The link itself is spent: say so rather than the claim's conflict.
            Ok(s @ (ClaimStatus::Claimed | ClaimStatus::Expired | ClaimStatus::Unknown)) => {
                closed(&s)
            }
            _ => fail(e),
        },
    }
}
