//! Extractors that answer bad input in the contract's error shape: JSON bodies, query strings,
//! path parameters and the bearer credential; and the `/v1` gate that refuses a body of
//! another media type before any handler runs ([`require_json_bodies`]).

use std::net::IpAddr;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use pgfleet_domain::{AuthFailure, DomainError, WorkspaceAccess};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::AppState;

/// `axum::Json` with contract-shaped rejections.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rej) => Err(json_rejection(rej)),
        }
    }
}

/// `415 unsupported_media_type`: a body (or a declared body type) that is not JSON.
pub fn unsupported_media_type() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "The request body must be JSON",
    )
    .with_hint("Send the header `Content-Type: application/json`.")
}

/// Whether `Content-Type` names JSON: `application/json` or `application/<anything>+json`,
/// with any parameters (as axum's `Json` decides).
fn is_json(value: &header::HeaderValue) -> bool {
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.split_once('/') {
        Some(("application", sub)) => sub == "json" || sub.ends_with("+json"),
        _ => false,
    }
}

/// Whether the request says it carries a body (a non-zero `Content-Length`, or any
/// `Transfer-Encoding`), without reading it.
fn announces_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// Whether a request's body, declared or sent, is something other than JSON: a
/// `Content-Type` that is not JSON on a method that takes a body, or a body without any
/// `Content-Type`.
fn declares_non_json(method: &Method, headers: &HeaderMap) -> bool {
    match headers.get(header::CONTENT_TYPE) {
        Some(ct) => {
            !is_json(ct) && !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
        }
        None => announces_body(headers),
    }
}

/// Middleware of `/v1`: every body the API takes is JSON, so a request with another
/// `Content-Type` (a form post, `text/plain`, …) or a body without one is answered `415` before
/// authentication, idempotency bookkeeping or any handler — also on the operations that take
/// no body (`…/rotate`, `DELETE`), so that no route accepts a body it would silently ignore.
pub async fn require_json_bodies(req: Request, next: axum::middleware::Next) -> Response {
    if declares_non_json(req.method(), req.headers()) {
        return unsupported_media_type().into_response();
    }
    next.run(req).await
}

/// `413 payload_too_large`: a body over the size cap.
pub fn payload_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "The request body is larger than this server accepts",
    )
}

/// `400 bad_request`: a body that is not JSON at all; `detail` is serde's sentence.
pub fn body_not_json(detail: &str) -> ApiError {
    ApiError::bad_request(format!("The request body is not valid JSON: {detail}"))
}

/// `400 bad_request`: JSON of the wrong shape (a wrong type, a missing field, an unknown enum
/// value); `detail` is serde's sentence.
pub fn body_does_not_fit(detail: &str) -> ApiError {
    ApiError::bad_request(format!(
        "The request body does not fit this operation: {detail}"
    ))
}

fn json_rejection(rej: JsonRejection) -> ApiError {
    match rej {
        JsonRejection::MissingJsonContentType(_) => unsupported_media_type(),
        JsonRejection::BytesRejection(ref b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            payload_too_large()
        }
        JsonRejection::JsonSyntaxError(e) => body_not_json(&source_text(&e)),
        // 400 here; an operation whose contract lists 422 and not 400 answers 422 (see
        // `crate::statuses`).
        JsonRejection::JsonDataError(e) => body_does_not_fit(&source_text(&e)),
        other => ApiError::bad_request(format!(
            "The request body could not be read: {}",
            other.body_text()
        )),
    }
}

/// serde's own sentence ("missing field `name` at line 1 column 2"), without axum's prefix.
fn source_text(e: &dyn std::error::Error) -> String {
    let mut cur: &dyn std::error::Error = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// `axum::extract::Query` with contract-shaped rejections.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Query(v))
            .map_err(|e: QueryRejection| {
                ApiError::bad_request(format!(
                    "The query string is not valid: {}",
                    source_text(&e)
                ))
            })
    }
}

/// `axum::extract::Path` with contract-shaped rejections.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Path(v))
            .map_err(|e: PathRejection| {
                ApiError::bad_request(format!("The path is not valid: {}", source_text(&e)))
            })
    }
}

/// The authenticated caller, from `Authorization: Bearer …`, as the capability the
/// services require (an API credential is scoped to its workspace when authenticated).
pub struct Auth(pub WorkspaceAccess);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
            return Err(DomainError::Unauthenticated(AuthFailure::Missing).into());
        };
        let value = value
            .to_str()
            .map_err(|_| DomainError::Unauthenticated(AuthFailure::Malformed))?;
        let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(DomainError::Unauthenticated(AuthFailure::Malformed).into());
        }
        let principal = state.services.tokens().authenticate_bearer(token).await?;
        Ok(Auth(state.services.access().api(principal)))
    }
}

/// A JSON body that may be absent: an empty body without `Content-Type` (or with a JSON one)
/// gives `T::default()`; any other `Content-Type`, or a body without one, is `415`.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let declared_json = match req.headers().get(header::CONTENT_TYPE) {
            Some(ct) if is_json(ct) => true,
            Some(_) => return Err(unsupported_media_type()),
            None => false,
        };
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    payload_too_large()
                } else {
                    ApiError::bad_request(format!(
                        "The request body could not be read: {}",
                        e.body_text()
                    ))
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        if !declared_json {
            return Err(unsupported_media_type());
        }
        axum::Json::<T>::from_bytes(&bytes)
            .map(|axum::Json(v)| OptionalJson(v))
            .map_err(json_rejection)
    }
}

/// The client's IP address: the TCP peer, as the server records it for every connection
/// (`into_make_service_with_connect_info`), or, when the peer is a trusted proxy
/// (`sign_in.trusted_proxies`), what its `X-Forwarded-For` says ([`client_ip`]). Sign-in
/// throttling counts failures by it.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(info) = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        else {
            // A server wired without connect info: refuse rather than throttle every client
            // as one.
            return Err(
                DomainError::internal("the server does not record client addresses").into(),
            );
        };
        let trusted = &state.services.config().sign_in.trusted_proxies;
        let forwarded = parts.headers.get_all("x-forwarded-for");
        Ok(ClientAddr(client_ip(
            info.0.ip(),
            forwarded.iter(),
            trusted,
        )))
    }
}

/// Most `X-Forwarded-For` entries looked at (a bound on the work a header can cause).
const MAX_FORWARDED_HOPS: usize = 32;

/// The client of a request from `peer`: `peer` itself unless it is a trusted proxy; then the
/// right-most `X-Forwarded-For` entry that is not a trusted proxy (each proxy appends the
/// address it saw, so entries further left are the client's to make up). An entry that is
/// not an address ends the walk at the proxy before it.
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded: impl Iterator<Item = &'a HeaderValue>,
    trusted: &[IpAddr],
) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let entries: Vec<&str> = forwarded
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut client = peer;
    for entry in entries.iter().rev().take(MAX_FORWARDED_HOPS) {
        match entry.trim().parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => client = ip,
            Ok(ip) => return ip,
            Err(_) => return client,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), header::HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn json_media_types() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/merge-patch+json",
        ] {
            assert!(is_json(&header::HeaderValue::from_static(ok)), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonp",
            "text/json",
            "",
        ] {
            assert!(!is_json(&header::HeaderValue::from_static(bad)), "{bad}");
        }
    }

    #[test]
    fn which_requests_are_refused() {
        let ct = header::CONTENT_TYPE;
        let len = header::CONTENT_LENGTH;
        assert!(declares_non_json(
            &Method::POST,
            &headers(&[(ct.clone(), "text/plain")])
        ));
        assert!(declares_non_json(
            &Method::POST,
            &headers(&[(len.clone(), "2")])
        ));
        assert!(declares_non_json(
            &Method::DELETE,
            &headers(&[(header::TRANSFER_ENCODING, "chunked")])
        ));
        assert!(!declares_non_json(
            &Method::POST,
            &headers(&[(len.clone(), "0")])
        ));
        assert!(!declares_non_json(&Method::POST, &headers(&[])));
        assert!(!declares_non_json(
            &Method::PATCH,
            &headers(&[(ct.clone(), "application/json"), (len, "2")])
        ));
        assert!(!declares_non_json(
            &Method::GET,
            &headers(&[(ct, "text/plain")])
        ));
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn of(peer: &str, headers: &[&str], trusted: &[&str]) -> IpAddr {
        let values: Vec<HeaderValue> = headers
            .iter()
            .map(|h| HeaderValue::from_str(h).unwrap())
            .collect();
        let trusted: Vec<IpAddr> = trusted.iter().map(|t| ip(t)).collect();
        client_ip(ip(peer), values.iter(), &trusted)
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        // Not a trusted proxy: the header is the client's to make up.
        assert_eq!(of("10.0.0.9", &["1.2.3.4"], &[]), ip("10.0.0.9"));
        assert_eq!(of("10.0.0.9", &["1.2.3.4"], &["10.0.0.1"]), ip("10.0.0.9"));
        // A trusted proxy: the right-most entry it did not add itself.
        let proxy = ["10.0.0.1"];
        assert_eq!(of("10.0.0.1", &["1.2.3.4"], &proxy), ip("1.2.3.4"));
        assert_eq!(of("10.0.0.1", &["6.6.6.6, 1.2.3.4"], &proxy), ip("1.2.3.4"));
        assert_eq!(
            of("10.0.0.1", &["6.6.6.6", "1.2.3.4"], &proxy),
            ip("1.2.3.4")
        );
        // Two proxies in a row.
        let both = ["10.0.0.1", "10.0.0.2"];
        assert_eq!(
            of("10.0.0.1", &["6.6.6.6, 1.2.3.4, 10.0.0.2"], &both),
            ip("1.2.3.4")
        );
        // No header, garbage, or only proxies: the last proxy seen.
        assert_eq!(of("10.0.0.1", &[], &proxy), ip("10.0.0.1"));
        assert_eq!(of("10.0.0.1", &["nonsense"], &proxy), ip("10.0.0.1"));
        assert_eq!(of("10.0.0.1", &["10.0.0.2, x"], &both), ip("10.0.0.1"));
        assert_eq!(of("10.0.0.1", &["2001:db8::1"], &proxy), ip("2001:db8::1"));
    }
}
