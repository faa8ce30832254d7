//! The members page of a workspace (`/console/w/{ws}/members`): every member sees the list;
//! an admin of the workspace or a server administrator adds existing users (by e-mail) and
//! removes members; a server administrator also creates users, with a chosen initial
//! password or a generated one shown once (in the console's sealed flash cookie). The rules
//! live in [`pgfleet_domain::services::members`]; a refusal is shown on the page with its
//! status (403 for a non-admin). A server administrator also makes members server
//! administrators (or not; never the last one). Each form asks the domain for the
//! capability it needs ([`MemberRights`]) and hands it to the service, which requires it.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use pgfleet_domain::services::members::{MemberRights, MIN_PASSWORD_CHARS};
use pgfleet_domain::DomainError;

use super::forms::{Confirmed, NewMember, NewUser, ServerAdmin as ServerAdminField};
use super::{
    page_at, render_clearing, see_other_with, take_flash, Ctx, Flash, Nav, Page, Pager, Posted,
};
use crate::pages::{fail, see_other, Chrome, Notice};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/console/w/{ws}/members",
            get(members_page).post(member_add),
        )
        .route("/console/w/{ws}/members/users", post(user_create))
        .route("/console/w/{ws}/members/{user}/remove", post(member_remove))
        .route(
            "/console/w/{ws}/members/{user}/server-admin",
            post(member_server_admin),
        )
}

/// Which of the page's forms to show.
struct Rights {
    create_users: bool,
    manage_members: bool,
}

impl From<&MemberRights> for Rights {
    fn from(r: &MemberRights) -> Self {
        Self {
            create_users: r.can_create_users(),
            manage_members: r.can_manage_members(),
        }
    }
}

struct MemberView {
    user_id: String,
    email: String,
    role: String,
    since: String,
    is_me: bool,
    is_server_admin: bool,
}

#[derive(Template)]
#[template(path = "console_members.html")]
struct MembersTemplate {
    chrome: Chrome,
    nav: Nav,
    members: Vec<MemberView>,
    pager: Pager,
    rights: Rights,
    min_password: usize,
    flash: Option<Flash>,
    /// What the add form held (after a refusal).
    add_email: String,
    /// What the create form held (after a refusal; never the password).
    new_email: String,
    error: Option<Notice>,
}

async fn members_view(
    state: &AppState,
    ctx: Ctx,
    query: Option<&str>,
    error: Option<Notice>,
) -> Result<MembersTemplate, Response> {
    let me = ctx.signed.user_id().to_string();
    let service = state.services.members();
    let rights = service
        .rights(&ctx.access.workspace_wide().map_err(crate::pages::fail)?)
        .await
        .map_err(fail)?;
    let list = service
        .list(
            &ctx.access.workspace_wide().map_err(crate::pages::fail)?,
            page_at(query).map_err(fail)?,
        )
        .await
        .map_err(fail)?;
    let pager = Pager::new(&format!("{}/members", ctx.base()), query, &list.pagination);
    let members = list
        .data
        .into_iter()
        .map(|m| MemberView {
            is_me: m.user_id == me,
            since: pgfleet_api_types::ts(&m.since),
            user_id: m.user_id,
            email: m.email,
            role: m.role.to_string(),
            is_server_admin: m.is_server_admin,
        })
        .collect();
    Ok(MembersTemplate {
        chrome: ctx.chrome(),
        nav: ctx.nav,
        members,
        pager,
        rights: Rights::from(&rights),
        min_password: MIN_PASSWORD_CHARS,
        flash: None,
        add_email: String::new(),
        new_email: String::new(),
        error,
    })
}

/// The members page again with why a form was refused (and its status).
async fn refused(
    state: &AppState,
    ctx: Ctx,
    e: DomainError,
    fill: impl FnOnce(&mut MembersTemplate),
) -> Page {
    let (status, notice) = Notice::from_error(e);
    let retry_after = notice.retry_after_secs;
    let mut page = members_view(state, ctx, None, Some(notice)).await?;
    fill(&mut page);
    Ok(Notice::render(status, retry_after, &page))
}

/// `GET /console/w/{ws}/members`
async fn members_page(State(state): State<AppState>, ctx: Ctx, RawQuery(query): RawQuery) -> Page {
    let (flash, clear) = take_flash(&ctx, |k| k.starts_with("user:"));
    let mut page = members_view(&state, ctx, query.as_deref(), None).await?;
    page.flash = flash;
    Ok(render_clearing(&state, StatusCode::OK, &page, clear))
}

/// `POST /console/w/{ws}/members`: `email` of an existing user, `role` (member or admin).
async fn member_add(State(state): State<AppState>, Posted(ctx, f): Posted<NewMember>) -> Page {
    let email = f.email.clone();
    let members = state.services.members();
    let added = async {
        let rights = members.rights(&ctx.access.workspace_wide()?).await?;
        members.add(rights.manage_members()?, &email, &f.role).await
    };
    match added.await {
        Ok(_) => Ok(see_other(&format!("{}/members", ctx.base()))),
        Err(e) => refused(&state, ctx, e, |p| p.add_email = email).await,
    }
}

/// `POST /console/w/{ws}/members/users`: a new user (`email`, optional `password`) who joins
/// this workspace with `role`.
async fn user_create(State(state): State<AppState>, Posted(ctx, f): Posted<NewUser>) -> Page {
    let email = f.email.clone();
    let password = f.password.as_str();
    let members = state.services.members();
    let created = async {
        let rights = members.rights(&ctx.access.workspace_wide()?).await?;
        let admin = rights.create_users()?;
        members
            .create_user(
                admin,
                &email,
                Some(password).filter(|p| !p.is_empty()),
                Some((rights.manage_members()?, f.role.as_str())),
            )
            .await
    }
    .await;
    match created {
        Ok(c) => {
            let to = format!("{}/members", ctx.base());
            Ok(match c.generated_password {
                Some(secret) => {
                    let flash = Flash {
                        key: format!("user:{}", c.user.id),
                        title: format!(
                            "User {} was created with this password; give it to them.",
                            c.user.email
                        ),
                        secret,
                        pooled: None,
                        accelerate: None,
                    };
                    see_other_with(&state, &ctx, &to, flash)
                }
                None => see_other(&to),
            })
        }
        Err(e) => refused(&state, ctx, e, |p| p.new_email = email).await,
    }
}

/// `POST /console/w/{ws}/members/{user}/remove`
async fn member_remove(
    State(state): State<AppState>,
    Path((_, user)): Path<(String, String)>,
    Posted(ctx, f): Posted<Confirmed>,
) -> Page {
    if let Err(e) = super::confirm_ticked(&f.confirm, "removed") {
        return refused(&state, ctx, e, |_| {}).await;
    }
    let members = state.services.members();
    let removed = async {
        let rights = members.rights(&ctx.access.workspace_wide()?).await?;
        members.remove(rights.manage_members()?, &user).await
    };
    match removed.await {
        Ok(()) if user == ctx.signed.user_id() => Ok(see_other("/console")),
        Ok(()) => Ok(see_other(&format!("{}/members", ctx.base()))),
        Err(e) => refused(&state, ctx, e, |_| {}).await,
    }
}

/// `POST /console/w/{ws}/members/{user}/server-admin`: `admin` = `true` or `false`.
async fn member_server_admin(
    State(state): State<AppState>,
    Path((_, user)): Path<(String, String)>,
    Posted(ctx, f): Posted<ServerAdminField>,
) -> Page {
    let admin = match f.admin {
        Some(admin) => admin,
        None => {
            let e = DomainError::bad_request_hint(
                "admin must be true or false",
                "Use the page's button.",
            );
            return refused(&state, ctx, e, |_| {}).await;
        }
    };
    let members = state.services.members();
    let changed = async {
        let rights = members.rights(&ctx.access.workspace_wide()?).await?;
        members
            .set_server_admin(rights.administer_server()?, &user, admin)
            .await
    };
    match changed.await {
        Ok(()) => Ok(see_other(&format!("{}/members", ctx.base()))),
        Err(e) => refused(&state, ctx, e, |_| {}).await,
    }
}
