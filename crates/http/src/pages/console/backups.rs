//! A database's backups in the console: the list (each with its kind, scheduled or on
//! demand, and its status, polled live by `console.js` while it runs), "Back up now",
//! restore in place (the database's name typed), and "New database from it" with a name
//! asked up front: the default is `<database>-restore-<backup date>`, made unique among the
//! project's databases, and a name the project already has is refused rather than
//! duplicated. With a restore window (point-in-time recovery), "Restore to a point in time":
//! a UTC `datetime-local` bounded by the window, the database's name typed.

use std::collections::HashSet;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Router;
use pgfleet_domain::services::backup_kinds::BackupTrigger;
use pgfleet_domain::{DomainError, PageRequest, WorkspaceAccess};

use super::forms::{Empty, Restore, RestoreToTime};
use super::{database_refused, human_size, typed_database, Ctx, Page, Posted, LIST_LIMIT};
use crate::pages::{fail, plain_text, see_other};
use crate::AppState;

/// Most pages of a project's databases read to know the names it has (100 a page).
const NAME_PAGES: usize = 50;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/console/w/{ws}/databases/{id}/backups",
            post(backup_create),
        )
        .route(
            "/console/w/{ws}/databases/{id}/backups/{bid}/status",
            get(backup_status),
        )
        .route(
            "/console/w/{ws}/databases/{id}/restore",
            post(database_restore),
        )
        .route(
            "/console/w/{ws}/databases/{id}/restore-to-time",
            post(database_restore_to_time),
        )
}

/// A backup row of the database page.
pub(super) struct BackupView {
    pub(super) id: String,
    pub(super) status: String,
    /// "scheduled" or "on demand".
    pub(super) kind: &'static str,
    pub(super) size: String,
    pub(super) created_at: String,
    /// The name "New database from it" proposes.
    pub(super) new_name: String,
}

fn kind_word(t: BackupTrigger) -> &'static str {
    match t {
        BackupTrigger::Scheduled => "scheduled",
        BackupTrigger::OnDemand => "on demand",
    }
}

/// The names of a project's databases (every page, at most [`NAME_PAGES`]).
pub(super) async fn project_names(
    state: &AppState,
    p: &WorkspaceAccess,
    project_id: &str,
) -> Result<HashSet<String>, DomainError> {
    let mut names = HashSet::new();
    let mut after = None;
    for _ in 0..NAME_PAGES {
        let list = state
            .services
            .databases()
            .list_in_project(
                p,
                project_id,
                PageRequest {
                    after,
                    limit: LIST_LIMIT,
                },
            )
            .await?;
        names.extend(list.data.into_iter().map(|d| d.name));
        match list
            .pagination
            .next_cursor
            .filter(|_| list.pagination.has_more)
        {
            Some(c) => after = PageRequest::parse(Some(&c), None, LIST_LIMIT)?.after,
            None => break,
        }
    }
    Ok(names)
}

/// `base`, or `base-2`, `base-3`, … : the first one not in `taken`.
pub(super) fn unique_name(base: &str, taken: &HashSet<String>) -> String {
    if !taken.contains(base) {
        return base.to_string();
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|n| !taken.contains(n))
        .unwrap_or_default()
}

/// The backups of database `id` (named `db_name`) of project `project_id`, newest first.
pub(super) async fn backup_views(
    state: &AppState,
    p: &WorkspaceAccess,
    id: &str,
    db_name: &str,
    project_id: &str,
) -> Result<Vec<BackupView>, DomainError> {
    let rows = state.services.backups().list_with_trigger(p, id).await?;
    let mut taken = if rows.is_empty() {
        HashSet::new()
    } else {
        project_names(state, p, project_id).await?
    };
    Ok(rows
        .into_iter()
        .map(|(b, trigger)| {
            let day = b.created_at.get(..10).unwrap_or_default();
            let new_name = unique_name(&format!("{db_name}-restore-{day}"), &taken);
            // Two backups of one day do not propose the same name.
            taken.insert(new_name.clone());
            BackupView {
                size: b.size.map(human_size).unwrap_or_default(),
                kind: kind_word(trigger),
                id: b.id,
                status: b.status,
                created_at: b.created_at,
                new_name,
            }
        })
        .collect())
}

/// `POST /console/w/{ws}/databases/{id}/backups`: back up now.
async fn backup_create(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    Posted(ctx, _): Posted<Empty>,
) -> Page {
    match state
        .services
        .backups()
        .create(&ctx.access.for_write().map_err(crate::pages::fail)?, &id)
        .await
    {
        Ok(_) => Ok(see_other(&format!("{}/databases/{id}", ctx.base()))),
        Err(e) => database_refused(&state, ctx, &id, e).await,
    }
}

/// `GET /console/w/{ws}/databases/{id}/backups/{bid}/status`: the status word alone
/// (`text/plain`), polled by `console.js` while a backup runs.
async fn backup_status(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((_, id, bid)): Path<(String, String, String)>,
) -> Page {
    let b = state
        .services
        .backups()
        .get(&ctx.access, &id, &bid)
        .await
        .map_err(fail)?;
    Ok(plain_text(b.status))
}

/// `POST /console/w/{ws}/databases/{id}/restore`: `backup_id`, and the database's name typed.
async fn database_restore(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    Posted(ctx, f): Posted<Restore>,
) -> Page {
    let (ctx, _) = typed_database(
        &state,
        ctx,
        &id,
        &f.confirm,
        "restored",
        "restore the backup",
    )
    .await?;
    match state
        .services
        .backups()
        .restore(
            &ctx.access.for_write().map_err(crate::pages::fail)?,
            &id,
            &id,
            &f.backup_id,
        )
        .await
    {
        Ok(_) => Ok(see_other(&format!("{}/databases/{id}", ctx.base()))),
        Err(e) => database_refused(&state, ctx, &id, e).await,
    }
}

/// `POST /console/w/{ws}/databases/{id}/restore-to-time`: `at` (UTC) inside the database's
/// restore window, and the database's name typed (point-in-time recovery, in place).
async fn database_restore_to_time(
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    Posted(ctx, f): Posted<RestoreToTime>,
) -> Page {
    let (ctx, _) = typed_database(
        &state,
        ctx,
        &id,
        &f.confirm,
        "restored",
        "restore it to a point in time",
    )
    .await?;
    let Some(at) = f.target() else {
        let e = DomainError::bad_request("Choose a date and time to restore to");
        return database_refused(&state, ctx, &id, e).await;
    };
    match state
        .services
        .backups()
        .restore_as_of(
            &ctx.access.for_write().map_err(crate::pages::fail)?,
            &id,
            &id,
            Some(&at),
        )
        .await
    {
        Ok(_) => Ok(see_other(&format!("{}/databases/{id}", ctx.base()))),
        Err(e) => database_refused(&state, ctx, &id, e).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proposed_names_are_unique() {
        let taken: HashSet<String> = ["a-restore-2025-01-02", "a-restore-2025-01-02-2"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(unique_name("b", &taken), "b");
        assert_eq!(
            unique_name("a-restore-2025-01-02", &taken),
            "a-restore-2025-01-02-3"
        );
    }
}
