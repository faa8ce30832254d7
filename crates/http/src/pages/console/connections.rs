//! A database's connections: create, rotate the password and delete (both ticked); the new
//! credentials (the direct string, and the pooled and `prisma+postgres://` ones when those
//! endpoints run) are shown once on the database's page.

use axum::extract::{Path, State};
use axum::routing::post;
use axum::Router;

use super::databases::database_refused;
use super::forms::{Confirmed, Named};
use super::{confirm_ticked, see_other_with, Flash, Page, Posted};
use crate::pages::see_other;
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/console/w/{ws}/databases/{id}/connections",
            post(connection_create),
        )
        .route(
            "/console/w/{ws}/databases/{id}/connections/{cid}/rotate",
            post(connection_rotate),
        )
        .route(
            "/console/w/{ws}/databases/{id}/connections/{cid}/delete",
            post(connection_delete),
        )
}

/// `POST /console/w/{ws}/databases/{id}/connections`
async fn connection_create(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    Posted(ctx, f): Posted<Named>,
) -> Page {
    match state
        .services
        .connections()
        .create(
            &ctx.access.for_write().map_err(crate::pages::fail)?,
            &id,
            &f.name,
        )
        .await
    {
        Ok(c) => {
            let flash = Flash::connection(
                format!("connection:{}", c.connection.id),
                format!("Connection {} was created.", c.connection.name),
                c.connection_string,
                &c.connection.endpoints,
            );
            let to = format!("{}/databases/{id}", ctx.base());
            Ok(see_other_with(&state, &ctx, &to, flash))
        }
        Err(e) => database_refused(&state, ctx, &id, e).await,
    }
}

/// `POST /console/w/{ws}/databases/{id}/connections/{cid}/rotate`
async fn connection_rotate(
    State(state): State<AppState>,
    Path((_, id, cid)): Path<(String, String, String)>,
    Posted(ctx, f): Posted<Confirmed>,
) -> Page {
    if let Err(n) = confirm_ticked(&f.confirm, "rotated") {
        return database_refused(&state, ctx, &id, n).await;
    }
    match state
        .services
        .connections()
        .rotate(&ctx.access.for_write().map_err(crate::pages::fail)?, &cid)
        .await
    {
        Ok(c) => {
            let flash = Flash::connection(
                format!("connection:{}", c.connection.id),
                format!(
                    "The password of connection {} was rotated; the old one no longer works.",
                    c.connection.name
                ),
                c.connection_string,
                &c.connection.endpoints,
            );
            let to = format!("{}/databases/{id}", ctx.base());
            Ok(see_other_with(&state, &ctx, &to, flash))
        }
        Err(e) => database_refused(&state, ctx, &id, e).await,
    }
}

/// `POST /console/w/{ws}/databases/{id}/connections/{cid}/delete`
async fn connection_delete(
    State(state): State<AppState>,
    Path((_, id, cid)): Path<(String, String, String)>,
    Posted(ctx, f): Posted<Confirmed>,
) -> Page {
    if let Err(n) = confirm_ticked(&f.confirm, "deleted") {
        return database_refused(&state, ctx, &id, n).await;
    }
    match state
        .services
        .connections()
        .delete(&ctx.access.for_write().map_err(crate::pages::fail)?, &cid)
        .await
    {
        Ok(()) => Ok(see_other(&format!("{}/databases/{id}", ctx.base()))),
        Err(e) => database_refused(&state, ctx, &id, e).await,
    }
}
