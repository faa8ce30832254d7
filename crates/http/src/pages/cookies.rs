//! The pages' cookies: reading them from a request and writing them on a response with
//! axum-extra's cookie types (every cookie `HttpOnly`, `Secure` when the public URL is https,
//! with its `Path` and `SameSite`), and the one seal of the flash cookies that carry a secret
//! shown once to the page that shows it (the console's `pgfleet_console_flash`).
//!
//! A flash is sealed with ChaCha20-Poly1305 under a key derived from the session cookie's
//! value, so only the browser holding that session can open it; a
//! server-wide key (axum-extra's `PrivateCookieJar`) would let any session open it.

use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
pub(crate) use axum_extra::extract::cookie::SameSite;
use axum_extra::extract::cookie::{Cookie, CookieJar};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::AppState;

/// A cookie sent by the browser (its value, unquoted; `None` when empty).
pub(crate) fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    CookieJar::from_headers(headers)
        .get(name)
        .map(|c| c.value_trimmed().to_string())
        .filter(|v| !v.is_empty())
}

/// Adds a `Set-Cookie` (HttpOnly; Secure when the public URL is https). `max_age` 0 deletes.
pub(crate) fn set_cookie(
    res: &mut Response,
    state: &AppState,
    name: &'static str,
    value: &str,
    path: &'static str,
    same_site: SameSite,
    max_age_secs: Option<i64>,
) {
    let secure = state.base.is_https();
    let mut cookie = Cookie::build((name, value.to_string()))
        .path(path)
        .http_only(true)
        .same_site(same_site)
        .secure(secure);
    if let Some(age) = max_age_secs {
        cookie = cookie.max_age(time::Duration::seconds(age));
    }
    match HeaderValue::from_str(&cookie.build().to_string()) {
        Ok(v) => {
            res.headers_mut().append(SET_COOKIE, v);
        }
        Err(e) => tracing::error!(error = %e, cookie = name, "invalid cookie value"),
    }
}

/// What the flash key is derived for (besides the session), so it is no other key.
const FLASH_LABEL: &[u8] = b"pgfleet console secret flash v1\0";

/// The flash cookie's key: only the browser holding this session can open it.
fn flash_key(session_token: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(FLASH_LABEL);
    h.update(session_token.as_bytes());
    h.finalize().into()
}

/// `value` sealed for the browser of `session_token` (a random nonce, then the ciphertext,
/// base64url).
pub(crate) fn seal<T: Serialize>(
    state: &AppState,
    session_token: &str,
    value: &T,
) -> Option<String> {
    let mut nonce = [0u8; 12];
    state.services.rng().with(|r| r.fill_bytes(&mut nonce));
    seal_with(session_token, nonce, value)
}

fn seal_with<T: Serialize>(session_token: &str, nonce: [u8; 12], value: &T) -> Option<String> {
    use chacha20poly1305::aead::{Aead, KeyInit};
    let cipher = chacha20poly1305::ChaCha20Poly1305::new((&flash_key(session_token)).into());
    let plain = serde_json::to_vec(value).ok()?;
    let ct = cipher.encrypt((&nonce).into(), plain.as_slice()).ok()?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Some(URL_SAFE_NO_PAD.encode(out))
}

/// What [`seal`] sealed, if this session's key opens it.
pub(crate) fn open<T: DeserializeOwned>(session_token: &str, sealed: &str) -> Option<T> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header::COOKIE;

    #[test]
    fn cookies_are_read_from_every_header() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=1; pgfleet_session=abc"));
        h.append(COOKIE, HeaderValue::from_static("pgfleet_csrf=\"xyz\""));
        h.append(COOKIE, HeaderValue::from_static("empty="));
        assert_eq!(read_cookie(&h, "pgfleet_session").as_deref(), Some("abc"));
        assert_eq!(read_cookie(&h, "pgfleet_csrf").as_deref(), Some("xyz"));
        assert_eq!(read_cookie(&h, "empty"), None);
        assert_eq!(read_cookie(&h, "missing"), None);
    }

    #[test]
    fn a_flash_opens_only_with_its_session() {
        let sealed = seal_with("session-a", [7u8; 12], &"pgfcs_s".to_string()).unwrap_or_default();
        let opened: Option<String> = open("session-a", &sealed);
        assert_eq!(opened.as_deref(), Some("pgfcs_s"));
        assert!(open::<String>("session-b", &sealed).is_none());
        assert!(open::<String>("session-a", "garbage").is_none());
    }
}
