//! The web console (`/console`): projects, databases, connections, backups and service tokens
//! of a workspace, for a signed-in user. The selected workspace is part of every URL
//! (`/console/w/{workspace}/…`); each request checks that the user is a member of it and then
//! calls the same domain services as the `/v1` API, as the principal of a `pgfleet_domain::access::WorkspaceAccess`. No business
//! logic lives here: a refused request shows the domain's message and hint on the page.
//!
//! Every form is a `POST` with the session's CSRF token, read as a typed value ([`forms`],
//! through [`Posted`], which checks the token and the membership), answered with `303` on
//! success. A secret that is shown once (a connection's password, a service token) travels
//! to the page that shows it in a sealed flash cookie (`pgfleet_console_flash`, `Path=/console`,
//! `SameSite=Strict`, 5 minutes; [`flash`]), like a new OAuth app's secret ([`apps`]); it is
//! cleared as it is shown and never stored. `console.js` (`crates/http/static/console.js`,
//! compiled in and served by [`home`], allowed by this router's CSP
//! `script-src 'self'`) adds copy buttons and refreshes the status of databases that are
//! provisioning or recovering from `GET /console/w/{ws}/databases/{id}/status` (and of
//! running backups, [`backups`]); without JavaScript everything works, by reloading the page.
//!
//! Destructive buttons of a table row (rotate, delete a connection or token, revoke) sit in a
//! form with a `required` "sure" checkbox the server checks too ([`confirm_ticked`]); whole
//! resources are deleted with their name typed ([`confirm_typed`]). A new project's or
//! database's default connection strings (direct and pooled) are shown once, like a new
//! connection's. Times are shown in one format ([`Stamp`]).
//!
//! Lists show [`LIST_LIMIT`] items a page; longer ones get a "Next page" link carrying the
//! services' opaque cursor (`?cursor=…`). This module is the router; the shared context of a
//! page (the member, the nav, paging, refusals, confirmations) is [`ctx`]. Each page group has
//! its module, like the API's handlers: the entry points ([`home`]), projects ([`projects`]),
//! a database's page ([`databases`]), its connections ([`connections`]), members
//! ([`members`]), OAuth apps ([`apps`]), backups ([`backups`]), service tokens and
//! integrations ([`tokens`]), signed webhooks ([`webhooks`]), the usage charts ([`usage`]), the timestamp format ([`stamp`])
//! and the server administrators' replicas page ([`replicas`]).

use axum::http::header::CONTENT_SECURITY_POLICY;
use axum::http::HeaderValue;
use axum::response::Response;
use axum::Router;

use crate::AppState;

/// The console's policy: [`super::CSP`] plus this site's own script (copy buttons, live
/// status) and its requests to this site.
pub const CONSOLE_CSP: &str =
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; \
     img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

mod apps;
mod backups;
mod connections;
mod ctx;
mod databases;
mod flash;
mod forms;
mod home;
mod members;
mod projects;
mod replicas;
mod stamp;
mod tokens;
mod usage;
mod webhooks;

use ctx::{
    confirm_ticked, confirm_typed, page, page_at, refused, AdminCtx, Ctx, Nav, Page, Pager, Posted,
    LIST_LIMIT,
};
use databases::{database_refused, typed_database};
use flash::{render_clearing, see_other_with, take_flash, Flash};
use stamp::Stamp;
use usage::human_size;

/// The console routes (merged into the page router).
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(home::router())
        .merge(projects::router())
        .merge(databases::router())
        .merge(connections::router())
        .merge(backups::router())
        .merge(tokens::router())
        .merge(webhooks::router())
        .merge(members::router())
        .merge(apps::router())
        .merge(replicas::router())
        .layer(axum::middleware::map_response(console_csp))
}

async fn console_csp(mut res: Response) -> Response {
    res.headers_mut().insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONSOLE_CSP),
    );
    res
}
