//! The replicas page (`/console/w/{ws}/replicas`): the `pgfleet serve` processes sharing this
//! metadata store, as `pgfleet admin replicas` lists them (id, version, address, started,
//! last seen, alive or gone). Only server administrators (`users.is_admin`) see it and its
//! link in the nav; anyone else gets a 403 page, as for the other server-administrator
//! actions. The handler takes an [`AdminCtx`], so it runs only with the domain's
//! [`pgfleet_domain::ServerAdmin`] (which the replicas service requires too).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use pgfleet_domain::services::replicas::ReplicaState;

use super::{AdminCtx, Nav, Page, Stamp};
use crate::pages::{fail, render, Chrome};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/console/w/{ws}/replicas", get(replicas_page))
}

struct ReplicaView {
    id: String,
    version: String,
    address: String,
    started: Stamp,
    last_seen: Stamp,
    alive: bool,
    state: &'static str,
}

#[derive(Template)]
#[template(path = "console_replicas.html")]
struct ReplicasTemplate {
    chrome: Chrome,
    nav: Nav,
    replicas: Vec<ReplicaView>,
}

/// `GET /console/w/{ws}/replicas`
async fn replicas_page(State(state): State<AppState>, AdminCtx(ctx, admin): AdminCtx) -> Page {
    let now = ctx.nav.now;
    let replicas = state
        .services
        .replicas()
        .list_for(&admin)
        .await
        .map_err(fail)?
        .into_iter()
        .map(|r| ReplicaView {
            started: Stamp::at(r.started_at, now),
            last_seen: Stamp::at(r.last_seen_at, now),
            alive: r.state == ReplicaState::Alive,
            state: r.state.as_str(),
            id: r.id,
            version: r.version,
            address: r.address,
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &ReplicasTemplate {
            chrome: ctx.chrome(),
            nav: ctx.nav,
            replicas,
        },
    ))
}
