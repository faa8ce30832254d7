//! Secrets shown once (a connection's strings, a service token, an OAuth app's secret): they
//! travel from the form that made them to the page that shows them in a sealed flash cookie
//! (`pgfleet_console_flash`, `Path=/console`, `SameSite=Strict`, 5 minutes), cleared as it
//! is shown and never stored. Sealed with the pages' one seal ([`crate::pages::cookies`]).

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;
use pgfleet_api_types::connection::Endpoints;
use pgfleet_api_types::database::CreatedDatabase;
use serde::{Deserialize, Serialize};

use super::Ctx;
use crate::pages::cookies::{open, seal};
use crate::pages::{render, see_other, set_cookie, SameSite};
use crate::AppState;

/// The console's flash cookie.
pub(super) const FLASH: &str = "pgfleet_console_flash";
/// How long a sealed secret waits for its page, in seconds.
const FLASH_MAX_AGE: i64 = 300;

/// A secret on its way to the page that shows it once.
#[derive(Serialize, Deserialize)]
pub(super) struct Flash {
    /// What the secret belongs to, e.g. `connection:{id}` or `token:{id}`.
    pub(super) key: String,
    pub(super) title: String,
    pub(super) secret: String,
    /// The pooled connection string, next to a connection's direct one `secret` (the page
    /// shows a direct/pooled toggle).
    #[serde(default)]
    pub(super) pooled: Option<String>,
    /// The `prisma+postgres://` string (Prisma Client's `accelerateUrl`, carrying the API key)
    /// next to a connection's direct one, when that endpoint runs (a third choice of the
    /// toggle).
    #[serde(default)]
    pub(super) accelerate: Option<String>,
}

impl Flash {
    /// A connection's credentials: its direct string and, when the pooler runs, its pooled one;
    /// when the `prisma+postgres://` endpoint runs, its string too.
    pub(super) fn connection(
        key: String,
        title: String,
        direct: String,
        endpoints: &Endpoints,
    ) -> Self {
        Self {
            key,
            title,
            secret: direct,
            pooled: endpoints
                .pooled
                .as_ref()
                .and_then(|e| e.connection_string.clone()),
            accelerate: endpoints
                .accelerate
                .as_ref()
                .and_then(|e| e.connection_string.clone()),
        }
    }

    /// The default connection of a database just created (shown once, like a connection's).
    pub(super) fn created_database(
        key: String,
        title: String,
        created: &CreatedDatabase,
    ) -> Option<Self> {
        let conn = created.database.connections.first()?;
        let direct = conn
            .endpoints
            .direct
            .as_ref()
            .and_then(|e| e.connection_string.clone())
            .or_else(|| created.connection_string.clone())?;
        Some(Self::connection(key, title, direct, &conn.endpoints))
    }
}

/// `303` to `location`, carrying `flash` for the page there.
pub(super) fn see_other_with(
    state: &AppState,
    ctx: &Ctx,
    location: &str,
    flash: Flash,
) -> Response {
    let mut res = see_other(location);
    match seal(state, &ctx.signed.token, &flash) {
        Some(v) => set_cookie(
            &mut res,
            state,
            FLASH,
            &v,
            "/console",
            SameSite::Strict,
            Some(FLASH_MAX_AGE),
        ),
        None => tracing::error!("could not seal a console secret"),
    }
    res
}

/// The flash of this browser whose key `accept` takes, and whether a cookie must be cleared.
pub(super) fn take_flash(ctx: &Ctx, accept: impl Fn(&str) -> bool) -> (Option<Flash>, bool) {
    let flash = ctx
        .sealed_flash
        .as_deref()
        .and_then(|s| open::<Flash>(&ctx.signed.token, s))
        .filter(|f| accept(&f.key));
    (flash, ctx.sealed_flash.is_some())
}

/// Renders a page, clearing the flash cookie when the browser sent one.
pub(super) fn render_clearing(
    state: &AppState,
    status: StatusCode,
    page: &impl Template,
    clear: bool,
) -> Response {
    let mut res = render(status, page);
    if clear {
        set_cookie(
            &mut res,
            state,
            FLASH,
            "",
            "/console",
            SameSite::Strict,
            Some(0),
        );
    }
    res
}
