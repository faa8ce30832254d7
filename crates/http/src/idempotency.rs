//! `Idempotency-Key` on every `POST` under `/v1`: the middleware that claims a key, runs the
//! request once, records its response and replays it for retries.
//!
//! - Keys are scoped per credential: the principal is the hex SHA-256 of the raw
//!   `Authorization` header. A request without `Authorization` or without the header passes
//!   through untouched.
//! - The request is identified by the SHA-256 of its method, path and query, and body. Same
//!   key and same request within 24 hours → the stored status and JSON body, with
//!   `idempotent-replayed: true`. Same key, another request → 409 `conflict`. The same request
//!   still running → 409 `conflict`.
//! - Responses are recorded when their status is below 500 (except 401: a refused credential
//!   is not worth remembering) and their body is JSON or empty. Otherwise the key is released
//!   so the client may retry.
//! - Once claimed, the request runs to completion in its own task even if the client goes
//!   away, so a retry after a dropped connection gets the recorded response instead of
//!   finding the key stuck in flight.
//!
//! The keys are kept by `pgfleet_domain::idempotency` (rows in the metadata store).

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, OriginalUri, Request, State};
use axum::http::{header, request, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use pgfleet_domain::idempotency::{Begin, IdempotencyKeys};
use pgfleet_domain::DomainError;
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::error::ApiError;
use crate::AppState;

/// The request header naming the key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The response header set on replayed responses.
pub const REPLAYED: &str = "idempotent-replayed";

/// Longest key accepted, in characters.
const MAX_KEY_LEN: usize = 255;

/// The middleware (`axum::middleware::from_fn_with_state` with [`AppState`]).
///
/// The request body is read with the router's `DefaultBodyLimit`, so it must run inside that
/// layer (it does: the limit is set on the outer router, this runs on `/v1`).
pub async fn idempotency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST || !req.headers().contains_key(IDEMPOTENCY_KEY) {
        return next.run(req).await;
    }
    let Some(auth) = req.headers().get(header::AUTHORIZATION) else {
        // Answered 401 by the handler; nothing to remember.
        return next.run(req).await;
    };
    let principal = hex::encode(Sha256::digest(auth.as_bytes()));
    let key = match parse_key(&req) {
        Ok(key) => key,
        Err(e) => return e.into_response(),
    };
    let seal = SealKey::derive(auth.as_bytes(), &key);
    match claim_and_run(state, principal, key, seal, req, next).await {
        Ok(res) => res,
        Err(e) => e.into_response(),
    }
}

/// 1 to 255 printable ASCII characters, sent once.
fn parse_key(req: &Request) -> Result<String, ApiError> {
    let mut values = req.headers().get_all(IDEMPOTENCY_KEY).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(invalid_key("Send the Idempotency-Key header once."));
    };
    let bytes = value.as_bytes();
    if bytes.is_empty()
        || bytes.len() > MAX_KEY_LEN
        || !bytes.iter().all(|b| (0x20..0x7f).contains(b))
    {
        return Err(invalid_key(
            "Use 1 to 255 printable ASCII characters, for example a UUID.",
        ));
    }
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

fn invalid_key(hint: &str) -> ApiError {
    ApiError::bad_request("The Idempotency-Key header is not valid").with_hint(hint)
}

async fn claim_and_run(
    state: AppState,
    principal: String,
    key: String,
    seal: SealKey,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    // `Bytes` applies the router's body limit (`DefaultBodyLimit`, found in the extensions).
    let body = Bytes::from_request(Request::from_parts(parts.clone(), body), &())
        .await
        .map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "The request body is larger than this server accepts",
                )
            } else {
                ApiError::bad_request(format!(
                    "The request body could not be read: {}",
                    e.body_text()
                ))
            }
        })?;
    let hash = request_hash(&parts, &body);
    let store = IdempotencyKeys::new(&state.services);
    match store.begin(&principal, &key, &hash).await? {
        Begin::New => {}
        Begin::Replay { status, body } => return replay(status, seal.open(body)?),
        Begin::Mismatch => {
            return Err(DomainError::conflict(
                "Idempotency-Key was already used with a different request",
                Some(
                    "Use a new key for a different request; a key is remembered for 24 hours \
                     together with the method, path and body it was first sent with."
                        .to_string(),
                ),
            )
            .into())
        }
        Begin::InFlight => {
            return Err(DomainError::conflict(
                "A request with this Idempotency-Key is still being processed",
                Some("Retry later with the same key to get its response.".to_string()),
            )
            .into())
        }
    }
    let req = Request::from_parts(parts, Body::from(body));
    // Detached: runs to the end (and records the outcome) even if this future is dropped.
    tokio::spawn(run_and_record(store, principal, key, seal, req, next).in_current_span())
        .await
        .map_err(|e| DomainError::internal(format!("idempotent request task failed: {e}")).into())
}

/// SHA-256 over the method, the path and query as the client sent them, and the body.
fn request_hash(parts: &request::Parts, body: &[u8]) -> Vec<u8> {
    let uri = parts
        .extensions
        .get::<OriginalUri>()
        .map_or(&parts.uri, |o| &o.0);
    let target = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    let mut h = Sha256::new();
    h.update(parts.method.as_str().as_bytes());
    h.update([0]);
    h.update(target.as_bytes());
    h.update([0]);
    h.update(body);
    h.finalize().to_vec()
}

fn replay(status: u16, body: serde_json::Value) -> Result<Response, ApiError> {
    let status = StatusCode::from_u16(status).map_err(|_| {
        DomainError::internal(format!("stored idempotent status {status} is not valid"))
    })?;
    let mut res = if body.is_null() {
        status.into_response()
    } else {
        (status, axum::Json(body)).into_response()
    };
    res.headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    Ok(res)
}

/// Runs the handler (in its own task, so a panic is caught here), then records its response
/// or releases the key.
async fn run_and_record(
    store: IdempotencyKeys,
    principal: String,
    key: String,
    seal: SealKey,
    req: Request,
    next: Next,
) -> Response {
    let res = match tokio::spawn(next.run(req).in_current_span()).await {
        Ok(res) => res,
        Err(e) => {
            release(&store, &principal, &key).await;
            return ApiError::from(DomainError::internal(format!("handler failed: {e}")))
                .into_response();
        }
    };
    let (parts, body) = res.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            release(&store, &principal, &key).await;
            return ApiError::from(DomainError::internal(format!(
                "reading the response body failed: {e}"
            )))
            .into_response();
        }
    };
    match recordable(&parts, &bytes).map(|v| seal.seal(&v)) {
        Some(value) => {
            match store
                .finish(&principal, &key, parts.status.as_u16(), &value)
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!("idempotency key was released before its response was recorded")
                }
                Err(e) => {
                    tracing::error!(error = %e, "recording the idempotent response failed");
                    release(&store, &principal, &key).await;
                }
            }
        }
        None => release(&store, &principal, &key).await,
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The body to remember, when this response is one to remember.
fn recordable(parts: &axum::http::response::Parts, body: &[u8]) -> Option<serde_json::Value> {
    let status = parts.status;
    if status.is_server_error() || status == StatusCode::UNAUTHORIZED {
        return None;
    }
    if body.is_empty() {
        return Some(serde_json::Value::Null);
    }
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            let ct = ct.trim_start().to_ascii_lowercase();
            ct.starts_with("application/json") || ct.contains("+json")
        });
    if !is_json {
        tracing::warn!(
            status = status.as_u16(),
            "not recording a non-JSON response for Idempotency-Key"
        );
        return None;
    }
    match serde_json::from_slice(body) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(error = %e, "not recording an unparsable JSON response for Idempotency-Key");
            None
        }
    }
}

/// Best effort: a failure leaves the key in flight until it expires, so it is logged.
async fn release(store: &IdempotencyKeys, principal: &str, key: &str) {
    if let Err(e) = store.abandon(principal, key).await {
        tracing::error!(error = %e, "releasing an Idempotency-Key failed");
    }
}

/// Stored responses carry secrets (a created database's password is in its 201 body), and
/// secrets are never stored in plain text: each response is sealed (ChaCha20-Poly1305) with a
/// key derived from the caller's credential and the Idempotency-Key. Only the store's
/// SHA-256 of the credential is kept, so a stored response is unreadable without the
/// credential that created it.
struct SealKey([u8; 32]);

impl SealKey {
    fn derive(authorization: &[u8], key: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"pgfleet idempotency seal v1\0");
        h.update(authorization);
        h.update([0]);
        h.update(key.as_bytes());
        Self(h.finalize().into())
    }

    fn seal(&self, value: &serde_json::Value) -> serde_json::Value {
        use base64::Engine as _;
        use chacha20poly1305::aead::{Aead, KeyInit};
        use rand::RngCore as _;
        let cipher = chacha20poly1305::ChaCha20Poly1305::new((&self.0).into());
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let plain = value.to_string();
        match cipher.encrypt((&nonce).into(), plain.as_bytes()) {
            Ok(ct) => {
                let mut out = nonce.to_vec();
                out.extend_from_slice(&ct);
                serde_json::json!({ "sealed": base64::engine::general_purpose::STANDARD.encode(out) })
            }
            // Cannot happen for in-memory sizes; store nothing readable rather than the plaintext.
            Err(_) => serde_json::Value::Null,
        }
    }

    fn open(&self, stored: serde_json::Value) -> Result<serde_json::Value, ApiError> {
        use base64::Engine as _;
        use chacha20poly1305::aead::{Aead, KeyInit};
        let Some(sealed) = stored.get("sealed").and_then(|v| v.as_str()) else {
            return Ok(stored);
        };
        let fail = || {
            ApiError::from(DomainError::internal(
                "stored idempotent response cannot be opened",
            ))
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| fail())?;
        if raw.len() < 12 {
            return Err(fail());
        }
        let (nonce, ct) = raw.split_at(12);
        let cipher = chacha20poly1305::ChaCha20Poly1305::new((&self.0).into());
        let plain = cipher.decrypt(nonce.into(), ct).map_err(|_| fail())?;
        serde_json::from_slice(&plain).map_err(|_| fail())
    }
}
