//! Logging a client in, one step after the other, each answering the client or refusing it
//! with what PostgreSQL would say:
//!
//! 1. [`startup`]: the SSL/TLS negotiation (with the SSLRequest, or direct with the
//!    `postgresql` ALPN protocol) up to the startup packet, and the protocol version
//!    ([`protocol_reply`]: 3.0 spoken, a newer 3.x told so);
//! 2. [`login`]: the refusals that need no password ([`check_startup`]), the
//!    SCRAM-SHA-256(-PLUS) exchange against the stored verifier ([`authenticate`]; the same
//!    for an unknown user, so existence does not leak), then whether the route admits the
//!    client ([`admit`]: its database, available now);
//! 3. [`join`]: counting the client in its database's pool, and the end of the login
//!    ([`welcome`]: SASL final, `AuthenticationOk`, the server parameters with the client's
//!    own values of the tracked ones, [`tracked_values`]).
//!
//! The steps after the startup packet work on any byte stream, so the tests play the client
//! over an in-memory one (`login/tests.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{acquire_error, fatal};
use crate::params;
use crate::pool::Pool;
use crate::proto::{self, put_message, ProtoError, Startup};
use crate::scram::{Binding, ScramError, ServerExchange, Verifier, MECHANISM, MECHANISM_PLUS};
use crate::stream::ClientStream;
use crate::Shared;

/// SSL negotiation up to the startup parameters; with them, the channel-binding data of the
/// certificate the handshake used (when SCRAM-SHA-256-PLUS can be offered).
pub(super) async fn startup(
    shared: &Shared,
    tcp: TcpStream,
) -> Option<(ClientStream, HashMap<String, String>, Option<Vec<u8>>)> {
    let mut end_point = None;
    let mut stream = match direct_tls(shared, tcp).await? {
        Ok((tls, bound)) => {
            end_point = bound;
            ClientStream::Tls(Box::new(tls))
        }
        Err(tcp) => ClientStream::Plain(tcp),
    };
    loop {
        let packet = match proto::read_startup(&mut stream).await {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(error = %e, "pooler: bad startup packet");
                return None;
            }
        };
        match packet {
            Startup::Ssl => {
                let ClientStream::Plain(mut tcp) = stream else {
                    return None;
                };
                match shared.current_tls() {
                    Some(tls) => {
                        tcp.write_all(b"S").await.ok()?;
                        match tls.acceptor.accept(tcp).await {
                            Ok(s) => {
                                stream = ClientStream::Tls(Box::new(s));
                                end_point.clone_from(&tls.end_point);
                            }
                            Err(e) => {
                                tracing::debug!(error = %e, "pooler: TLS handshake failed");
                                return None;
                            }
                        }
                    }
                    None => {
                        tcp.write_all(b"N").await.ok()?;
                        stream = ClientStream::Plain(tcp);
                    }
                }
            }
            Startup::GssEnc => {
                stream.write_all(b"N").await.ok()?;
            }
            Startup::Cancel { pid, secret } => {
                shared.cancel(pid, secret).await;
                return None;
            }
            Startup::Params { version, params } => {
                let params: HashMap<String, String> = params.into_iter().collect();
                match protocol_reply(version, &params) {
                    Ok(None) => {}
                    Ok(Some(out)) => stream.write_all(&out).await.ok()?,
                    Err(r) => {
                        fatal(&mut stream, r.code, &r.message).await;
                        return None;
                    }
                }
                return Some((stream, params, end_point));
            }
        }
    }
}

/// What the client is told about its protocol version: nothing for 3.0, a
/// `NegotiateProtocolVersion` (3.0, and the protocol options not known) for a newer 3.x;
/// refused for another major version.
pub(super) fn protocol_reply(
    version: i32,
    params: &HashMap<String, String>,
) -> Result<Option<BytesMut>, Refusal> {
    if version >> 16 != 3 {
        return Err(Refusal::new(
            "0A000",
            format!(
                "unsupported frontend protocol {}.{}: the server supports 3.0",
                version >> 16,
                version & 0xffff
            ),
        ));
    }
    if version & 0xffff == 0 {
        return Ok(None);
    }
    // A newer 3.x minor: tell the client to speak 3.0, naming the protocol options we do
    // not know.
    let mut unknown: Vec<&String> = params.keys().filter(|k| k.starts_with("_pq_.")).collect();
    unknown.sort();
    let mut body = Vec::new();
    // The newest minor version spoken: 0.
    body.extend_from_slice(&0i32.to_be_bytes());
    let n = i32::try_from(unknown.len()).unwrap_or(0);
    body.extend_from_slice(&n.to_be_bytes());
    for k in unknown {
        proto::put_cstr(&mut body, k);
    }
    let mut out = BytesMut::new();
    put_message(&mut out, b'v', &body);
    Ok(Some(out))
}

/// The TLS handshake of a client that starts with it (PostgreSQL 17's
/// `sslnegotiation=direct`) instead of an SSLRequest; such a client must ask for the
/// `postgresql` ALPN protocol, as PostgreSQL requires (so that another protocol's client
/// cannot be talked into this one). `Err` gives back a connection that starts otherwise;
/// `None` means the client was refused or left.
async fn direct_tls(
    shared: &Shared,
    tcp: TcpStream,
) -> Option<Result<(tokio_rustls::server::TlsStream<TcpStream>, Option<Vec<u8>>), TcpStream>> {
    /// The first byte of a TLS handshake record.
    const HANDSHAKE: u8 = 0x16;
    let mut first = [0u8; 1];
    if tcp.peek(&mut first).await.ok()? == 0 || first[0] != HANDSHAKE {
        return Some(Err(tcp));
    }
    let Some(tls) = shared.current_tls() else {
        tracing::debug!("pooler: direct TLS without a certificate configured");
        return None;
    };
    let stream = match tls.acceptor.accept(tcp).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(error = %e, "pooler: direct TLS handshake failed");
            return None;
        }
    };
    if stream.get_ref().1.alpn_protocol() != Some(ALPN_POSTGRESQL) {
        let mut stream = ClientStream::Tls(Box::new(stream));
        fatal(
            &mut stream,
            "08P01",
            "direct TLS connection without the postgresql ALPN protocol",
        )
        .await;
        return None;
    }
    Some(Ok((stream, tls.end_point.clone())))
}

/// The ALPN protocol of PostgreSQL connections.
pub(crate) const ALPN_POSTGRESQL: &[u8] = b"postgresql";

#[derive(Debug, thiserror::Error)]
pub(super) enum LoginError {
    #[error(transparent)]
    Proto(#[from] ProtoError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A client that proved it knows the connection's password, for its database.
pub(super) struct Authenticated {
    route: crate::catalog::Route,
    verifier: Verifier,
    key: crate::scram::ClientKey,
    server_final: String,
}

/// Why a client is refused: the SQLSTATE and message of the FATAL error it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refusal {
    pub(super) code: &'static str,
    pub(super) message: String,
}

impl Refusal {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    fn bad_password(user: &str) -> Self {
        Self::new(
            "28P01",
            format!("password authentication failed for user \"{user}\""),
        )
    }
}

/// Tells the client why it is refused; the login ends without a session.
async fn refuse<S, T>(client: &mut S, r: Refusal) -> Result<Option<T>, LoginError>
where
    S: AsyncWrite + Unpin,
{
    fatal(client, r.code, &r.message).await;
    Ok(None)
}

/// Authenticates the client (`tls`: over TLS); `None` when it was refused (the client has
/// been told why) or left.
pub(super) async fn login<S>(
    shared: &Shared,
    client: &mut S,
    tls: bool,
    params: &HashMap<String, String>,
    end_point: Option<Vec<u8>>,
) -> Result<Option<Authenticated>, LoginError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let user = match check_startup(params, tls, shared.settings.require_tls) {
        Ok(u) => u,
        Err(r) => return refuse(client, r).await,
    };
    let route = match shared.route(user).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "pooler: catalog lookup failed");
            let r = Refusal::new(
                "58000",
                "the pooler cannot look up credentials right now; retry shortly",
            );
            return refuse(client, r).await;
        }
    };
    let verifier = route
        .as_ref()
        .and_then(|r| r.verifier.parse::<Verifier>().ok());
    let (known, verifier) = match verifier {
        Some(v) => (true, v),
        None => (false, Verifier::mock(&shared.mock_key, user)),
    };
    // Over TLS with a certificate whose end-point hash is defined, -PLUS is offered first.
    let plus = end_point.filter(|_| tls);
    let (key, server_final) = match authenticate(client, &verifier, plus, user).await? {
        Exchange::Proved(key, server_final) if known => (key, server_final),
        Exchange::Proved(..) => return refuse(client, Refusal::bad_password(user)).await,
        Exchange::Refused(r) => return refuse(client, r).await,
        Exchange::Left => return Ok(None),
    };
    let route = match admit(route, params, user) {
        Ok(r) => r,
        Err(r) => return refuse(client, r).await,
    };
    Ok(Some(Authenticated {
        route,
        verifier,
        key,
        server_final,
    }))
}

/// The refusals that need no password: TLS required, a replication connection, the
/// `options` parameter, no user name. The user name otherwise.
pub(super) fn check_startup(
    params: &HashMap<String, String>,
    tls: bool,
    require_tls: bool,
) -> Result<&str, Refusal> {
    if require_tls && !tls {
        return Err(Refusal::new(
            "28000",
            "the pooled endpoint requires TLS; connect with sslmode=require",
        ));
    }
    if params
        .get("replication")
        .is_some_and(|v| !matches!(v.as_str(), "false" | "off" | "no" | "0"))
    {
        return Err(Refusal::new(
            "08P01",
            "replication connections are not supported by the pooled endpoint; use the direct endpoint",
        ));
    }
    if params.get("options").is_some_and(|v| !v.trim().is_empty()) {
        // Server sessions are shared: per-client settings cannot be applied to them.
        return Err(Refusal::new(
            "08P01",
            "unsupported startup parameter: options (the pooled endpoint shares server sessions; \
             use SET LOCAL in a transaction, session mode, or the direct endpoint)",
        ));
    }
    params
        .get("user")
        .map(String::as_str)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            Refusal::new(
                "28000",
                "no PostgreSQL user name specified in startup packet",
            )
        })
}

/// How the SCRAM exchange ended.
#[derive(Debug)]
pub(super) enum Exchange {
    /// The client proved it knows the verifier's password: its key and the server-final
    /// message it is still to be sent.
    Proved(crate::scram::ClientKey, String),
    Refused(Refusal),
    /// The client hung up (psql does, to ask for a password, then reconnects).
    Left,
}

/// The SCRAM-SHA-256 exchange against `verifier`: the mechanisms offered (-PLUS first when
/// `plus`, the certificate's end-point data, is given), the client's first message, the
/// server-first, the client's proof.
pub(super) async fn authenticate<S>(
    client: &mut S,
    verifier: &Verifier,
    plus: Option<Vec<u8>>,
    user: &str,
) -> Result<Exchange, LoginError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut out = BytesMut::new();
    let mut mechanisms = Vec::new();
    if plus.is_some() {
        proto::put_cstr(&mut mechanisms, MECHANISM_PLUS);
    }
    proto::put_cstr(&mut mechanisms, MECHANISM);
    mechanisms.push(0);
    proto::put_auth(&mut out, 10, &mechanisms);
    client.write_all(&out).await?;
    let Ok((tag, body)) = proto::read_message(client).await else {
        return Ok(Exchange::Left);
    };
    let Some((initial, binding)) = initial_response(tag, &body, plus) else {
        return Ok(Exchange::Refused(Refusal::new(
            "28000",
            "expected a SASL initial response for an offered SCRAM-SHA-256 mechanism",
        )));
    };
    let (exchange, server_first) = match ServerExchange::start(verifier.clone(), &initial, binding)
    {
        Ok(x) => x,
        Err(ScramError::ChannelBinding) => {
            return Ok(Exchange::Refused(Refusal::new(
                "28000",
                "channel binding failed: use SCRAM-SHA-256-PLUS over this connection's TLS",
            )))
        }
        Err(e) => return Ok(Exchange::Refused(Refusal::new("08P01", e.to_string()))),
    };
    let mut out = BytesMut::new();
    proto::put_auth(&mut out, 11, server_first.as_bytes());
    client.write_all(&out).await?;
    let Ok((tag, body)) = proto::read_message(client).await else {
        return Ok(Exchange::Left);
    };
    if tag != b'p' {
        return Ok(Exchange::Refused(Refusal::new(
            "08P01",
            "expected a SASL response",
        )));
    }
    Ok(match exchange.finish(&body) {
        Ok((key, server_final)) => Exchange::Proved(key, server_final),
        Err(_) => Exchange::Refused(Refusal::bad_password(user)),
    })
}

/// The client's first SCRAM message and the channel binding it asks for, from a
/// `SASLInitialResponse` naming an offered mechanism.
fn initial_response(tag: u8, body: &[u8], plus: Option<Vec<u8>>) -> Option<(Vec<u8>, Binding)> {
    if tag != b'p' {
        return None;
    }
    let (mech, rest) = proto::split_cstr(body)?;
    if rest.len() < 4 {
        return None;
    }
    let binding = if mech == MECHANISM_PLUS.as_bytes() {
        Binding::Plus(plus?)
    } else if mech == MECHANISM.as_bytes() {
        if plus.is_some() {
            Binding::PlainWhilePlusOffered
        } else {
            Binding::NotOffered
        }
    } else {
        return None;
    };
    Some((rest[4..].to_vec(), binding))
}

/// Whether the route lets the authenticated client in: a known connection, its database
/// available now, and the database the client asked for (else its user name) its own.
pub(super) fn admit(
    route: Option<crate::catalog::Route>,
    params: &HashMap<String, String>,
    user: &str,
) -> Result<crate::catalog::Route, Refusal> {
    let Some(route) = route else {
        return Err(Refusal::bad_password(user));
    };
    if let Some(why) = &route.unavailable {
        return Err(Refusal::new(
            "57P03",
            format!("the database is not available now ({why}); retry shortly"),
        ));
    }
    let wanted = params
        .get("database")
        .map(String::as_str)
        .filter(|d| !d.is_empty())
        .unwrap_or(user);
    if wanted != route.pg_database {
        return Err(Refusal::new(
            "3D000",
            format!(
                "database \"{wanted}\" does not exist for user \"{user}\" (its database is \"{}\")",
                route.pg_database
            ),
        ));
    }
    Ok(route)
}

/// Counts the authenticated client in its database's pool and ends its login with the
/// server parameters; `None` when it was refused (the client has been told why).
pub(super) async fn join(
    shared: &Shared,
    client: &mut ClientStream,
    params: &HashMap<String, String>,
    auth: Authenticated,
) -> Option<(Arc<Pool>, BytesMut, Vec<(String, String)>)> {
    let Authenticated {
        route,
        verifier,
        key,
        server_final,
    } = auth;
    let pool = shared.pool_for(route, verifier, key);
    // The limit is per database, whichever of its connections the clients use.
    if pool.client_joined() > shared.settings.max_clients {
        pool.client_left();
        fatal(client, "53300", "sorry, too many clients already").await;
        return None;
    }
    let server_params = match pool.params() {
        Some(p) => p,
        None => match pool.acquire(shared).await {
            Ok(lease) => {
                let p = lease.conn.params.clone();
                pool.release(lease, true);
                p
            }
            Err(e) => {
                pool.client_left();
                let (code, msg) = acquire_error(&e);
                fatal(client, &code, &msg).await;
                return None;
            }
        },
    };
    let wanted = tracked_values(params, &server_params);
    let out = welcome(&server_final, &server_params, &wanted);
    Some((pool, out, wanted))
}

/// The tracked parameters (see [`crate::params`]) as the client wants them: its startup
/// values, else the server's.
pub(super) fn tracked_values(
    params: &HashMap<String, String>,
    server_params: &[(String, String)],
) -> Vec<(String, String)> {
    params::TRACKED
        .iter()
        .filter_map(|name| {
            let mine = params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str());
            let value = mine.or_else(|| params::get(server_params, name))?;
            Some((name.to_string(), value.to_string()))
        })
        .collect()
}

/// The end of a login up to the key data: the SASL final message, `AuthenticationOk`, and a
/// `ParameterStatus` for each of the server's parameters (the client's value of a tracked
/// one).
pub(super) fn welcome(
    server_final: &str,
    server_params: &[(String, String)],
    wanted: &[(String, String)],
) -> BytesMut {
    let mut out = BytesMut::new();
    proto::put_auth(&mut out, 12, server_final.as_bytes());
    proto::put_auth(&mut out, 0, &[]);
    for (k, v) in server_params {
        let v = params::get(wanted, k).unwrap_or(v);
        proto::put_parameter_status(&mut out, k, v);
    }
    out
}

#[cfg(test)]
mod tests;
