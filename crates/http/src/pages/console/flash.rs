//! Secrets shown once (a connection's password, a service token, an OAuth app's secret): they
//! travel from the form that made them to the page that shows them in a sealed flash cookie
//! (`pgfleet_console_flash`, `Path=/console`, `SameSite=Strict`, 5 minutes), cleared as it
//! is shown and never stored.

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use pgfleet_api_types::connection::Endpoints;
use pgfleet_api_types::database::CreatedDatabase;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Ctx;
use crate::pages::{render, see_other, set_cookie};
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
}

impl Flash {
    /// A connection's credentials: its direct string and, when the pooler runs, its pooled one.
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

pub(super) fn flash_key(session_token: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"pgfleet console secret flash v1\0");
    h.update(session_token.as_bytes());
    h.finalize().into()
}

pub(super) fn seal_flash(state: &AppState, session_token: &str, flash: &Flash) -> Option<String> {
    use chacha20poly1305::aead::{Aead, KeyInit};
    let cipher = chacha20poly1305::ChaCha20Poly1305::new((&flash_key(session_token)).into());
    let mut nonce = [0u8; 12];
    state.services.rng().with(|r| r.fill_bytes(&mut nonce));
    let plain = serde_json::to_vec(flash).ok()?;
    let ct = cipher.encrypt((&nonce).into(), plain.as_slice()).ok()?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Some(URL_SAFE_NO_PAD.encode(out))
}

pub(super) fn open_flash(session_token: &str, sealed: &str) -> Option<Flash> {
    use chacha20poly1305::aead::{Aead, KeyInit};
    let raw = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    if raw.len() < 12 {
        return None;
    }
    let (nonce, ct) = raw.split_at(12);
    let cipher = chacha20poly1305::ChaCha20Poly1305::new((&flash_key(session_token)).into());
    let plain = cipher.decrypt(nonce.into(), ct).ok()?;
    serde_json::from_slice(&plain).ok()
}

/// `303` to `location`, carrying `flash` for the page there.
pub(super) fn see_other_with(
    state: &AppState,
    ctx: &Ctx,
    location: &str,
    flash: Flash,
) -> Response {
    let mut res = see_other(location);
    match seal_flash(state, &ctx.signed.token, &flash) {
        Some(v) => set_cookie(
            &mut res,
            state,
            FLASH,
            &v,
            "/console",
            "Strict",
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
        .and_then(|s| open_flash(&ctx.signed.token, s))
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
        set_cookie(&mut res, state, FLASH, "", "/console", "Strict", Some(0));
    }
    res
}
