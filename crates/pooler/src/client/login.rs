//! Logging a client in: the SSL/TLS negotiation (with the SSLRequest, or direct with the
//! `postgresql` ALPN protocol) up to the startup packet, the refusals that need no password,
//! the SCRAM-SHA-256(-PLUS) exchange against the stored verifier (the same for an unknown
//! user, so existence does not leak), and joining the database's pool with the server
//! parameters the client is told.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
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
                if version >> 16 != 3 {
                    fatal(
                        &mut stream,
                        "0A000",
                        &format!(
                            "unsupported frontend protocol {}.{}: the server supports 3.0",
                            version >> 16,
                            version & 0xffff
                        ),
                    )
                    .await;
                    return None;
                }
                let params: HashMap<String, String> = params.into_iter().collect();
                if version & 0xffff != 0 {
                    // A newer 3.x minor: tell the client to speak 3.0, naming the protocol
                    // options we do not know.
                    let unknown: Vec<&String> =
                        params.keys().filter(|k| k.starts_with("_pq_.")).collect();
                    let mut body = Vec::new();
                    body.extend_from_slice(&0i32.to_be_bytes());
                    let n = i32::try_from(unknown.len()).unwrap_or(0);
                    body.extend_from_slice(&n.to_be_bytes());
                    for k in unknown {
                        proto::put_cstr(&mut body, k);
                    }
                    let mut out = BytesMut::new();
                    put_message(&mut out, b'v', &body);
                    stream.write_all(&out).await.ok()?;
                }
                return Some((stream, params, end_point));
            }
        }
    }
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

/// Authenticates the client; `None` when it was refused (the client has been told why).
pub(super) async fn login(
    shared: &Shared,
    client: &mut ClientStream,
    params: &HashMap<String, String>,
    end_point: Option<Vec<u8>>,
) -> Result<Option<Authenticated>, LoginError> {
    if shared.settings.require_tls && !client.is_tls() {
        fatal(
            client,
            "28000",
            "the pooled endpoint requires TLS; connect with sslmode=require",
        )
        .await;
        return Ok(None);
    }
    if params
        .get("replication")
        .is_some_and(|v| !matches!(v.as_str(), "false" | "off" | "no" | "0"))
    {
        fatal(
            client,
            "08P01",
            "replication connections are not supported by the pooled endpoint; use the direct endpoint",
        )
        .await;
        return Ok(None);
    }
    if params.get("options").is_some_and(|v| !v.trim().is_empty()) {
        // Server sessions are shared: per-client settings cannot be applied to them.
        fatal(
            client,
            "08P01",
            "unsupported startup parameter: options (the pooled endpoint shares server sessions; \
             use SET LOCAL in a transaction, session mode, or the direct endpoint)",
        )
        .await;
        return Ok(None);
    }
    let Some(user) = params.get("user").filter(|u| !u.is_empty()).cloned() else {
        fatal(
            client,
            "28000",
            "no PostgreSQL user name specified in startup packet",
        )
        .await;
        return Ok(None);
    };
    let route = match shared.route(&user).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "pooler: catalog lookup failed");
            fatal(
                client,
                "58000",
                "the pooler cannot look up credentials right now; retry shortly",
            )
            .await;
            return Ok(None);
        }
    };
    let verifier = route
        .as_ref()
        .and_then(|r| r.verifier.parse::<Verifier>().ok());
    let (known, verifier) = match verifier {
        Some(v) => (true, v),
        None => (false, Verifier::mock(&shared.mock_key, &user)),
    };

    // SCRAM exchange (the same for an unknown user, so existence does not leak). Over TLS
    // with a certificate whose end-point hash is defined, -PLUS (channel binding) is offered
    // first.
    let plus = end_point.filter(|_| client.is_tls());
    let mut out = BytesMut::new();
    let mut mechanisms = Vec::new();
    if plus.is_some() {
        proto::put_cstr(&mut mechanisms, MECHANISM_PLUS);
    }
    proto::put_cstr(&mut mechanisms, MECHANISM);
    mechanisms.push(0);
    proto::put_auth(&mut out, 10, &mechanisms);
    client.write_all(&out).await?;
    let (tag, body) = match proto::read_message(client).await {
        Ok(m) => m,
        // psql hangs up here to ask for a password, then reconnects.
        Err(_) => return Ok(None),
    };
    let bad_password = format!("password authentication failed for user \"{user}\"");
    let initial = (|| {
        if tag != b'p' {
            return None;
        }
        let (mech, rest) = proto::split_cstr(&body)?;
        if rest.len() < 4 {
            return None;
        }
        let binding = if mech == MECHANISM_PLUS.as_bytes() {
            Binding::Plus(plus.clone()?)
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
    })();
    let Some((initial, binding)) = initial else {
        fatal(
            client,
            "28000",
            "expected a SASL initial response for an offered SCRAM-SHA-256 mechanism",
        )
        .await;
        return Ok(None);
    };
    let (exchange, server_first) = match ServerExchange::start(verifier.clone(), &initial, binding)
    {
        Ok(x) => x,
        Err(ScramError::ChannelBinding) => {
            fatal(
                client,
                "28000",
                "channel binding failed: use SCRAM-SHA-256-PLUS over this connection's TLS",
            )
            .await;
            return Ok(None);
        }
        Err(e) => {
            fatal(client, "08P01", &e.to_string()).await;
            return Ok(None);
        }
    };
    let mut out = BytesMut::new();
    proto::put_auth(&mut out, 11, server_first.as_bytes());
    client.write_all(&out).await?;
    let (tag, body) = match proto::read_message(client).await {
        Ok(m) => m,
        Err(_) => return Ok(None),
    };
    if tag != b'p' {
        fatal(client, "08P01", "expected a SASL response").await;
        return Ok(None);
    }
    let (key, server_final) = match exchange.finish(&body) {
        Ok(x) if known => x,
        _ => {
            fatal(client, "28P01", &bad_password).await;
            return Ok(None);
        }
    };
    let Some(route) = route else {
        fatal(client, "28P01", &bad_password).await;
        return Ok(None);
    };
    if let Some(why) = &route.unavailable {
        fatal(
            client,
            "57P03",
            &format!("the database is not available now ({why}); retry shortly"),
        )
        .await;
        return Ok(None);
    }
    let wanted = params
        .get("database")
        .filter(|d| !d.is_empty())
        .unwrap_or(&user);
    if *wanted != route.pg_database {
        fatal(
            client,
            "3D000",
            &format!(
                "database \"{wanted}\" does not exist for user \"{user}\" (its database is \"{}\")",
                route.pg_database
            ),
        )
        .await;
        return Ok(None);
    }
    Ok(Some(Authenticated {
        route,
        verifier,
        key,
        server_final,
    }))
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
    // The tracked parameters follow the client: its startup values, else the defaults.
    let wanted: Vec<(String, String)> = params::TRACKED
        .iter()
        .filter_map(|name| {
            let mine = params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str());
            let value = mine.or_else(|| params::get(&server_params, name))?;
            Some((name.to_string(), value.to_string()))
        })
        .collect();
    let mut out = BytesMut::new();
    proto::put_auth(&mut out, 12, server_final.as_bytes());
    proto::put_auth(&mut out, 0, &[]);
    for (k, v) in &server_params {
        let v = params::get(&wanted, k).unwrap_or(v);
        proto::put_parameter_status(&mut out, k, v);
    }
    Some((pool, out, wanted))
}
