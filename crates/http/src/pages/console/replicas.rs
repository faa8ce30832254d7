//! The replicas page (`/console/w/{ws}/replicas`): the `pgfleet serve` processes sharing this
//! metadata store, as `pgfleet admin replicas` lists them (id, version, address, started,
//! last seen, alive or gone). Only server administrators (`users.is_admin`) see it and its
//! link in the nav; anyone else gets a 403 page, as for the other server-administrator
//! actions. The handler takes an [`AdminCtx`], so it runs only with the domain's
//! [`pgfleet_domain::ServerAdmin`] (which the replicas service requires too). The same page
//! shows the WAL archive of each archived Postgres server (point-in-time recovery: last
//! archived segment, `pg_wal` size, base backups and what is wrong, as `/readyz` says it),
//! and, when `[claimable]` is enabled, the unclaimed temporary databases (project, client
//! address, created, expires).

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

struct ArchiveView {
    server: String,
    region: String,
    last_archived: Option<Stamp>,
    earliest: Option<Stamp>,
    last_full: Option<Stamp>,
    wal_bytes: i64,
    problems: String,
}

struct ClaimableView {
    project: String,
    client: String,
    created: Stamp,
    expires: Stamp,
}

#[derive(Template)]
#[template(path = "console_replicas.html")]
struct ReplicasTemplate {
    chrome: Chrome,
    nav: Nav,
    replicas: Vec<ReplicaView>,
    archives: Vec<ArchiveView>,
    /// `None` when claimable databases are off.
    claimables: Option<Vec<ClaimableView>>,
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
    let archives = state
        .services
        .pitr()
        .health()
        .await
        .map_err(fail)?
        .into_iter()
        .map(|a| ArchiveView {
            last_archived: a.last_archived_at.map(|t| Stamp::at(t, now)),
            earliest: a.earliest.map(|t| Stamp::at(t, now)),
            last_full: a.last_full_at.map(|t| Stamp::at(t, now)),
            wal_bytes: a.wal_bytes,
            problems: a.problems.join("; "),
            server: a.server,
            region: a.region,
        })
        .collect();
    let claimables = if state.services.claimable().enabled() {
        let open = state
            .services
            .claimable()
            .open(&admin)
            .await
            .map_err(fail)?;
        Some(
            open.into_iter()
                .map(|c| ClaimableView {
                    created: Stamp::at(c.created_at, now),
                    expires: Stamp::at(c.expires_at, now),
                    project: c.project_id,
                    client: c.client_addr,
                })
                .collect(),
        )
    } else {
        None
    };
    Ok(render(
        StatusCode::OK,
        &ReplicasTemplate {
            chrome: ctx.chrome(),
            nav: ctx.nav,
            replicas,
            archives,
            claimables,
        },
    ))
}
