//! One client session: TLS and startup, SCRAM against the stored verifier, then relaying
//! messages while a server connection is lent to it.
//!
//! **Transaction mode.** A server connection is checked out when the client sends a
//! message and returned when the server reports `ReadyForQuery` idle with no more replies
//! owed (every `Query`, `Sync` and `FunctionCall` forwarded owes one).
//!
//! **Prepared statements.** A client's named statement becomes `pgf_<hash of its text and
//! parameter types>` on the server. Before a `Bind` or `Describe` uses it on a server
//! connection that has not prepared it, the proxy sends `Close` + `Parse` itself and hides
//! their replies (`CloseComplete`/`ParseComplete` carry no data, so hiding "the next N" of
//! a reply batch is exact). The hidden counts are kept per batch (up to each reply-owing
//! message) because an error makes the server skip to the next `Sync`. After an error the
//! statements prepared in that batch are forgotten (a later use re-prepares, and every
//! `Parse` the proxy sends comes after a `Close` of the name, which is not an error when the
//! statement does not exist). Each server connection keeps at most
//! `max_prepared_statements`; the least recently used are closed to make room.
//!
//! **Session state** a client leaves on a server connection in transaction mode (`SET
//! search_path`, `SET ROLE`, `set_config(…, false)`, `LISTEN`, temporary tables …) is noted
//! from the SQL text of its `Query` and `Parse` messages (and each `Bind` of a named
//! statement, which may run on another connection than its `Parse`) and from `ParameterStatus`
//! of parameters that are not tracked; when the transaction ends the connection is reset
//! (`DISCARD ALL`) or closed instead of going straight back to the pool (see
//! [`crate::leftover`]). The tracked parameters follow their client instead (see
//! [`crate::params`]).
//!
//! **COPY FROM through the extended protocol.** The server ignores a `Sync` that reaches it
//! in copy-in mode (tokio-postgres sends one right after the `Execute`), so when the client
//! ends the copy, the `Sync`s it sent since that `Execute` are taken off what is owed;
//! otherwise the session would never look finished and would keep its server connection.
//!
//! **Long messages** (from [`STREAM_FROM`] bytes) are passed on as they arrive rather than
//! held whole, in both directions, so a session's memory stays bounded whatever the size of
//! a query, a bound parameter or a row. The exceptions are what the proxy must read whole:
//! a named `Parse` in transaction mode (kept to re-prepare it elsewhere), and the short
//! messages it inspects.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::leftover::{self, Leftover};
use crate::params;
use crate::pool::{AcquireError, Lease, Pool};
use crate::proto::{self, peek_header, put_message, ProtoError, Startup};
use crate::scram::{Binding, ScramError, ServerExchange, Verifier, MECHANISM, MECHANISM_PLUS};
use crate::stream::ClientStream;
use crate::{CancelSlot, CancelTarget, PoolMode, Shared};

/// Serves one client connection; `over` when the proxy already has
/// `max_client_connections` (the client is told so after startup; a cancel request is still
/// carried out).
pub(crate) async fn handle(shared: Arc<Shared>, tcp: TcpStream, over: bool) {
    let _ = tcp.set_nodelay(true);
    let now = tokio::time::Instant::now();
    let deadline = now + shared.settings.client_login_timeout;
    let startup_deadline = deadline.min(now + shared.settings.startup_timeout);
    let Ok(Some((stream, params, end_point))) =
        tokio::time::timeout_at(startup_deadline, startup(&shared, tcp)).await
    else {
        return;
    };
    let mut client = stream;
    if over {
        let told = fatal(
            &mut client,
            "53300",
            "sorry, too many clients already (the pooler's max_client_connections)",
        );
        let _ = tokio::time::timeout(BRIEFLY, told).await;
        return;
    }
    let logged_in =
        tokio::time::timeout_at(deadline, login(&shared, &mut client, &params, end_point)).await;
    let Ok(logged_in) = logged_in else {
        // As PostgreSQL's authentication_timeout says it (briefly: the client may not read).
        let told = fatal(
            &mut client,
            "57014",
            "canceling authentication due to timeout",
        );
        let _ = tokio::time::timeout(BRIEFLY, told).await;
        return;
    };
    let auth = match logged_in {
        Ok(Some(auth)) => auth,
        Ok(None) => return,
        Err(e) => {
            tracing::debug!(error = %e, "pooler: client left during login");
            return;
        }
    };
    let Some((pool, mut out, wanted)) = join(&shared, &mut client, &params, auth).await else {
        return;
    };
    let slot: CancelSlot = Arc::new(Mutex::new(None));
    let (pid, secret) = shared.register_cancel(slot.clone());
    proto::put_backend_key(&mut out, pid, secret);
    proto::put_ready(&mut out, b'I');
    if client.write_all(&out).await.is_ok() {
        let mut s = Session::new(shared.clone(), pool.clone(), client, slot, wanted);
        let _ = s.run().await;
        s.finish().await;
    }
    shared.unregister_cancel(pid);
    pool.client_left();
}

/// How long a refused client is given to take its error message (it may not read).
const BRIEFLY: std::time::Duration = std::time::Duration::from_secs(1);

async fn fatal(client: &mut ClientStream, code: &str, message: &str) {
    let mut out = BytesMut::new();
    proto::put_error(&mut out, "FATAL", code, message);
    let _ = client.write_all(&out).await;
    let _ = client.shutdown().await;
}

/// SSL negotiation up to the startup parameters; with them, the channel-binding data of the
/// certificate the handshake used (when SCRAM-SHA-256-PLUS can be offered).
async fn startup(
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
enum LoginError {
    #[error(transparent)]
    Proto(#[from] ProtoError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A client that proved it knows the connection's password, for its database.
struct Authenticated {
    route: crate::catalog::Route,
    verifier: Verifier,
    key: crate::scram::ClientKey,
    server_final: String,
}

/// Authenticates the client; `None` when it was refused (the client has been told why).
async fn login(
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
async fn join(
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

fn acquire_error(e: &AcquireError) -> (String, String) {
    match e {
        AcquireError::Timeout => (
            "53300".to_string(),
            "timed out waiting for a server connection (pool exhausted)".to_string(),
        ),
        AcquireError::Closed => (
            "57P01".to_string(),
            "terminating connection: the connection's credentials changed or it was deleted"
                .to_string(),
        ),
        AcquireError::Backend(crate::backend::BackendError::Server { code, message, .. }) => {
            (code.clone(), message.clone())
        }
        AcquireError::Backend(b) => ("08006".to_string(), b.to_string()),
    }
}

/// Replies to hide in one batch, and statements it prepared.
#[derive(Debug, Default)]
struct Batch {
    hide_parse: u32,
    hide_close: u32,
    prepared: Vec<String>,
}

struct ClientStatement {
    server_name: String,
    /// The `Parse` body, already renamed.
    parse: Bytes,
    /// What running it may leave on the server session (noted at each `Bind`: it may run
    /// on another server connection than the one it was parsed on).
    leftover: Leftover,
}

enum Step {
    Continue,
    Done,
}

struct Session {
    shared: Arc<Shared>,
    pool: Arc<Pool>,
    client: ClientStream,
    cbuf: BytesMut,
    sbuf: BytesMut,
    lease: Option<Lease>,
    statements: HashMap<Vec<u8>, ClientStatement>,
    /// Replies (ReadyForQuery) the server still owes.
    owed: usize,
    /// Batches whose ReadyForQuery has not arrived, oldest first.
    batches: VecDeque<Batch>,
    /// The batch being written (its reply-owing message not sent yet).
    open: Batch,
    in_transaction: bool,
    /// Extended-protocol messages were sent after the last `Sync`: the server session is
    /// in the middle of something even when idle.
    unsynced: bool,
    slot: CancelSlot,
    /// A FATAL error from the server was already passed on.
    fatal_sent: bool,
    /// Bytes of a long client message still to pass through as they arrive.
    client_pass: usize,
    /// `Sync`s sent since the last `Execute` or `Query`.
    syncs_since_execute: usize,
    /// The server said it is in copy-in mode (`CopyInResponse`) and the client has not
    /// ended the copy yet.
    copy_in: bool,
    /// The client's values of the tracked parameters (see [`crate::params`]).
    wanted: Vec<(String, String)>,
    /// The replies to the proxy's own `SET`s are being hidden (up to their ReadyForQuery).
    setting: bool,
    /// Bytes of a long server message still to pass through as they arrive.
    server_pass: usize,
    /// The server session's statement-use counter when this client got it: statements used
    /// since may be needed by what is being sent, so they are not closed to make room.
    lease_mark: u64,
}

impl Session {
    fn new(
        shared: Arc<Shared>,
        pool: Arc<Pool>,
        client: ClientStream,
        slot: CancelSlot,
        wanted: Vec<(String, String)>,
    ) -> Self {
        Self {
            shared,
            pool,
            client,
            cbuf: BytesMut::with_capacity(8192),
            sbuf: BytesMut::with_capacity(8192),
            lease: None,
            statements: HashMap::new(),
            owed: 0,
            batches: VecDeque::new(),
            open: Batch::default(),
            in_transaction: false,
            unsynced: false,
            slot,
            fatal_sent: false,
            client_pass: 0,
            server_pass: 0,
            syncs_since_execute: 0,
            copy_in: false,
            wanted,
            setting: false,
            lease_mark: 0,
        }
    }

    /// No reply owed, no transaction open, nothing half-sent: the server session can be
    /// lent to someone else (or left).
    fn between_transactions(&self) -> bool {
        self.owed == 0
            && !self.in_transaction
            && !self.unsynced
            && self.client_pass == 0
            && !self.setting
    }

    fn transaction_mode(&self) -> bool {
        self.shared.settings.mode == PoolMode::Transaction
    }

    async fn run(&mut self) -> Result<(), ProtoError> {
        let mut closed = self.pool.closed();
        let mut shutdown = self.shared.shutdown.subscribe();
        let mut to_server = BytesMut::with_capacity(8192);
        let mut to_client = BytesMut::with_capacity(8192);
        let mut ctmp = vec![0u8; 8 * 1024];
        let mut stmp = vec![0u8; 16 * 1024];
        let mut server_unflushed = false;
        loop {
            // Between transactions (session mode keeps its lease then), a shutdown or a
            // closed pool ends the session; a transaction in flight finishes first.
            if self.lease.is_none() || (self.between_transactions() && to_server.is_empty()) {
                let reason = if *shutdown.borrow() {
                    Some("the pooler is shutting down")
                } else {
                    *closed.borrow()
                };
                if let Some(reason) = reason {
                    self.bye("57P01", &format!("terminating connection: {reason}"))
                        .await;
                    return Ok(());
                }
            }
            // Queue every whole message the client has sent, and what has arrived of a
            // long one (checking a server connection out first when there is none).
            loop {
                if self.client_pass > 0 {
                    pass_on(&mut self.client_pass, &mut self.cbuf, &mut to_server);
                    if self.client_pass > 0 {
                        break;
                    }
                    continue;
                }
                let Some((tag, len)) = peek_header(&self.cbuf)? else {
                    break;
                };
                let whole = self.cbuf.len() >= len;
                if !whole && (len < STREAM_FROM || !self.streamable(tag)) {
                    break;
                }
                if tag == b'X' {
                    return Ok(());
                }
                if self.lease.is_none() {
                    if let Step::Done = self.attach().await {
                        return Ok(());
                    }
                    self.sync_params(&mut to_server);
                }
                if whole {
                    let msg = self.cbuf.split_to(len);
                    self.forward(tag, msg, &mut to_server);
                } else {
                    self.forward_head(tag, len, &mut to_server);
                }
            }

            let between = self.between_transactions() && to_server.is_empty();
            // A client idle inside a transaction holds a server connection others may need.
            let idle_timeout = self.shared.settings.idle_transaction_timeout;
            let idle_in_transaction = self.in_transaction
                && self.owed == 0
                && to_server.is_empty()
                && self.client_pass == 0
                && !idle_timeout.is_zero();
            let Some(lease) = self.lease.as_mut() else {
                to_server.clear();
                tokio::select! {
                    r = self.client.read_buf(&mut self.cbuf) => {
                        if !matches!(r, Ok(n) if n > 0) {
                            return Ok(());
                        }
                    }
                    _ = closed.changed() => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            };
            let server = &mut lease.conn.stream;
            let client = &mut self.client;
            let queued = &mut to_server;
            let unflushed = &mut server_unflushed;
            let io = std::future::poll_fn(|cx| {
                poll_io(cx, client, server, queued, unflushed, &mut ctmp, &mut stmp)
            });
            let event = tokio::select! {
                _ = shutdown.changed(), if between => continue,
                _ = closed.changed(), if between => continue,
                e = io => e,
                () = tokio::time::sleep(idle_timeout), if idle_in_transaction => Io::IdleInTransaction,
            };
            match event {
                Io::IdleInTransaction => {
                    // As PostgreSQL's idle_in_transaction_session_timeout says it; the server
                    // connection, mid-transaction, is closed rather than reused.
                    self.bye(
                        "25P03",
                        "terminating connection due to idle-in-transaction timeout",
                    )
                    .await;
                    return Ok(());
                }
                Io::ClientData(n) => self.cbuf.extend_from_slice(&ctmp[..n]),
                Io::ClientGone => return Ok(()),
                Io::ServerGone => {
                    self.server_lost().await;
                    return Ok(());
                }
                Io::ServerData(n) => {
                    self.sbuf.extend_from_slice(&stmp[..n]);
                    let release = self.take_server_messages(&mut to_client)?;
                    // The transaction is over once its last reply is in hand: the server
                    // connection goes back before the client write, which may wait on a
                    // slow client, so a waiting client can start on it meanwhile.
                    if release && to_server.is_empty() && !self.fatal_sent {
                        self.release();
                        server_unflushed = false;
                    }
                    if !to_client.is_empty() {
                        if self.client.write_all(&to_client).await.is_err()
                            || self.client.flush().await.is_err()
                        {
                            return Ok(());
                        }
                        to_client.clear();
                    }
                    if self.fatal_sent {
                        self.drop_lease();
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Checks a server connection out for the client.
    async fn attach(&mut self) -> Step {
        match self.pool.acquire(&self.shared).await {
            Ok(lease) => {
                if let Ok(mut slot) = self.slot.lock() {
                    *slot = Some(CancelTarget {
                        target: self.pool.target.clone(),
                        pid: lease.conn.pid,
                        secret: lease.conn.secret,
                    });
                }
                self.lease_mark = lease.conn.prepared.now();
                self.lease = Some(lease);
                self.owed = 0;
                self.unsynced = false;
                self.batches.clear();
                self.open = Batch::default();
                Step::Continue
            }
            Err(e) => {
                let (code, msg) = acquire_error(&e);
                self.bye(&code, &msg).await;
                Step::Done
            }
        }
    }

    /// Gives the server session the client's values of the tracked parameters, with one
    /// `SET` query queued first whose replies are hidden.
    fn sync_params(&mut self, out: &mut BytesMut) {
        let Some(lease) = self.lease.as_ref() else {
            return;
        };
        if let Some(q) = params::sync_query(&self.wanted, &lease.conn.current) {
            let mut body = q.into_bytes();
            body.push(0);
            put_message(out, b'Q', &body);
            self.setting = true;
        }
    }

    /// A `ParameterStatus` from the server: the session's value now, and the client's.
    fn note_status(&mut self, body: &[u8]) {
        let Some((name, value)) = params::parse_status(body) else {
            return;
        };
        if let Some(l) = self.lease.as_mut() {
            params::set(&mut l.conn.current, &name, &value);
        }
        if params::tracked(&name).is_some() {
            params::set(&mut self.wanted, &name, &value);
        } else {
            // A reported parameter that does not follow its client (`is_superuser` after a
            // `SET ROLE` in a function, say) changed: whatever changed it, reset.
            self.note_leftover(Leftover::Resettable);
        }
    }

    fn clear_slot(&self) {
        if let Ok(mut slot) = self.slot.lock() {
            *slot = None;
        }
    }

    /// The transaction is over: the server connection goes back (reset or closed first
    /// when the client left session state on it).
    fn release(&mut self) {
        self.clear_slot();
        if let Some(lease) = self.lease.take() {
            self.pool.give_back(lease);
        }
    }

    /// Notes on the server connection what a client message may leave on its session.
    fn note_leftover(&mut self, leftover: Leftover) {
        if let Some(l) = self.lease.as_mut() {
            l.conn.note_leftover(leftover);
        }
    }

    fn drop_lease(&mut self) {
        self.clear_slot();
        if let Some(lease) = self.lease.take() {
            self.pool.release(lease, false);
        }
    }

    async fn bye(&mut self, code: &str, message: &str) {
        self.drop_lease();
        fatal(&mut self.client, code, message).await;
    }

    async fn server_lost(&mut self) {
        self.drop_lease();
        if !self.fatal_sent {
            fatal(
                &mut self.client,
                "08006",
                "server connection lost; the transaction was aborted",
            )
            .await;
        }
    }

    /// When the client leaves: an idle server connection goes back to the pool (after
    /// `DISCARD ALL` in session mode, and in transaction mode when the client left session
    /// state on it), one in the middle of something, or with state `DISCARD ALL` does not
    /// undo, is closed.
    async fn finish(&mut self) {
        let Some(mut lease) = self.lease.take() else {
            return;
        };
        self.clear_slot();
        if !self.between_transactions() {
            self.pool.release(lease, false);
            return;
        }
        if self.transaction_mode() {
            self.pool.give_back(lease);
            return;
        }
        let ok = lease.conn.leftover < Leftover::Permanent && lease.conn.reset().await;
        self.pool.release(lease, ok);
    }

    fn batch_for_replies(&mut self) -> &mut Batch {
        if self.batches.is_empty() {
            &mut self.open
        } else {
            &mut self.batches[0]
        }
    }

    /// Notes what a client message sent to the server owes and leaves open.
    fn note_sent(&mut self, tag: u8) {
        match tag {
            b'E' | b'Q' => self.syncs_since_execute = 0,
            b'S' => self.syncs_since_execute += 1,
            // The end of a copy-in: the server ignored the `Sync`s it received in copy-in
            // mode (tokio-postgres sends one right after the `Execute` of a COPY FROM), so
            // they owe nothing, and their batches are one with the next.
            b'c' | b'f' if self.copy_in => {
                self.copy_in = false;
                for _ in 0..std::mem::take(&mut self.syncs_since_execute) {
                    let Some(b) = self.batches.pop_back() else {
                        break;
                    };
                    self.owed = self.owed.saturating_sub(1);
                    self.open.hide_parse += b.hide_parse;
                    self.open.hide_close += b.hide_close;
                    self.open.prepared.extend(b.prepared);
                }
            }
            _ => {}
        }
        match tag {
            // Each owes one ReadyForQuery and ends a batch.
            b'Q' | b'S' | b'F' => {
                self.unsynced = false;
                self.owed += 1;
                self.batches.push_back(std::mem::take(&mut self.open));
            }
            b'P' | b'B' | b'D' | b'E' | b'C' => self.unsynced = true,
            _ => {}
        }
    }

    /// Whether the long client message at the head of `cbuf` can be passed on before all of
    /// it has arrived: not what transaction mode must read whole (a named `Parse`, and
    /// `Describe`/`Close`, which are short), and a `Bind` only once its names are in.
    fn streamable(&self, tag: u8) -> bool {
        if !self.transaction_mode() {
            return true;
        }
        let body = &self.cbuf[5..];
        match tag {
            b'P' => body.first() == Some(&0),
            b'B' => bind_names(&self.cbuf).is_some(),
            b'D' | b'C' => false,
            _ => true,
        }
    }

    /// Starts passing a long client message through: the head is queued now (a `Bind`'s
    /// renamed), the rest as it arrives.
    fn forward_head(&mut self, tag: u8, len: usize, out: &mut BytesMut) {
        self.note_sent(tag);
        // SQL text too long to read whole before passing it on: assumed to change session
        // state (a reset after the transaction costs one round trip).
        if matches!(tag, b'Q' | b'P' | b'F') {
            self.note_leftover(Leftover::Resettable);
        }
        let mut rest = len;
        if tag == b'B' && self.transaction_mode() {
            if let Some(consumed) = self.bind_head(len, out) {
                let _ = self.cbuf.split_to(consumed);
                rest = len - consumed;
            }
        }
        self.client_pass = rest;
    }

    /// Appends one client message to what goes to the server, renaming prepared statements
    /// in transaction mode.
    fn forward(&mut self, tag: u8, msg: BytesMut, out: &mut BytesMut) {
        self.note_sent(tag);
        let leftover = leftover_of(tag, &msg);
        self.note_leftover(leftover);
        if !self.transaction_mode() {
            out.extend_from_slice(&msg);
            return;
        }
        match tag {
            b'P' => self.forward_parse(msg, leftover, out),
            b'B' => self.forward_bind(msg, out),
            b'D' | b'C' => self.forward_describe_or_close(tag, msg, out),
            _ => out.extend_from_slice(&msg),
        }
    }

    fn forward_parse(&mut self, msg: BytesMut, leftover: Leftover, out: &mut BytesMut) {
        let body = &msg[5..];
        let Some((name, rest)) = proto::split_cstr(body) else {
            out.extend_from_slice(&msg);
            return;
        };
        if name.is_empty() {
            out.extend_from_slice(&msg);
            return;
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, rest);
        let server_name = format!("pgf_{}", hex::encode(&digest.as_ref()[..12]));
        debug_assert_eq!(server_name.len(), SERVER_NAME_LEN);
        let mut parse = Vec::with_capacity(rest.len() + server_name.len() + 1);
        proto::put_cstr(&mut parse, &server_name);
        parse.extend_from_slice(rest);
        let parse = Bytes::from(parse);
        // Re-preparing a name the server session already has would fail, so it is closed
        // first, also when the proxy does not know of it: after an error the statements of a
        // batch are forgotten, but its `Parse` may have succeeded before the error.
        if !self
            .lease
            .as_mut()
            .is_some_and(|l| l.conn.prepared.touch(&server_name))
        {
            self.make_room(out);
        }
        self.prepare_on_server(&server_name, &parse, false, out);
        self.statements.insert(
            name.to_vec(),
            ClientStatement {
                server_name,
                parse,
                leftover,
            },
        );
    }

    /// Queues `Close` (its reply hidden) and `Parse` of `server_name` and notes the statement
    /// prepared on the server session; `ParseComplete` is hidden too when the `Parse` is the
    /// proxy's own rather than the client's.
    fn prepare_on_server(
        &mut self,
        server_name: &str,
        parse: &[u8],
        own: bool,
        out: &mut BytesMut,
    ) {
        put_statement_message(out, b'C', server_name);
        put_message(out, b'P', parse);
        self.open.hide_close += 1;
        if own {
            self.open.hide_parse += 1;
        }
        self.open.prepared.push(server_name.to_string());
        if let Some(l) = self.lease.as_mut() {
            l.conn.prepared.insert(server_name.to_string());
        }
    }

    /// Makes sure the server session has the client's statement `name`; returns its server
    /// name, or `None` when the client never prepared it (the server will say so).
    fn ensure_prepared(&mut self, name: &[u8], out: &mut BytesMut) -> Option<String> {
        let st = self.statements.get(name)?;
        let server_name = st.server_name.clone();
        if self.lease.as_mut()?.conn.prepared.touch(&server_name) {
            return Some(server_name);
        }
        self.make_room(out);
        let parse = self.statements.get(name)?.parse.clone();
        self.prepare_on_server(&server_name, &parse, true, out);
        Some(server_name)
    }

    /// Before a statement is prepared on the server session: closes the least recently used
    /// ones (replies hidden) while the session has `max_prepared_statements`, sparing those
    /// used since this client got it. Should one of these `Close`s be skipped after an error,
    /// the statement stays on the server unknown to the proxy; a later `Parse` of it closes
    /// it first anyway.
    fn make_room(&mut self, out: &mut BytesMut) {
        let max = self.shared.settings.max_prepared_statements;
        let Some(lease) = self.lease.as_mut() else {
            return;
        };
        while lease.conn.prepared.len() >= max {
            let Some(old) = lease.conn.prepared.evict_before(self.lease_mark) else {
                break;
            };
            put_statement_message(out, b'C', &old);
            self.open.hide_close += 1;
        }
    }

    fn forward_bind(&mut self, msg: BytesMut, out: &mut BytesMut) {
        let from = self.bind_head_of(&msg, msg.len(), out).unwrap_or(0);
        out.extend_from_slice(&msg[from..]);
    }

    /// Queues the head of the `Bind` at the start of `cbuf` (`len` bytes in all) with its
    /// statement renamed; returns how many bytes of the original head it replaces, or
    /// `None` when the message passes unchanged (unnamed or unknown statement).
    fn bind_head(&mut self, len: usize, out: &mut BytesMut) -> Option<usize> {
        let cbuf = std::mem::take(&mut self.cbuf);
        let r = self.bind_head_of(&cbuf, len, out);
        self.cbuf = cbuf;
        r
    }

    fn bind_head_of(&mut self, msg: &[u8], len: usize, out: &mut BytesMut) -> Option<usize> {
        let (portal, stmt, consumed) = bind_names(msg)?;
        if stmt.is_empty() {
            return None;
        }
        // The length field counts itself but not the type byte.
        let new_len = i32::try_from(len - 1 - stmt.len() + SERVER_NAME_LEN).ok()?;
        let server_name = self.ensure_prepared(stmt, out)?;
        debug_assert_eq!(server_name.len(), SERVER_NAME_LEN);
        let leftover = self
            .statements
            .get(stmt)
            .map_or(Leftover::None, |s| s.leftover);
        self.note_leftover(leftover);
        out.extend_from_slice(b"B");
        out.extend_from_slice(&new_len.to_be_bytes());
        out.extend_from_slice(portal);
        out.extend_from_slice(&[0]);
        out.extend_from_slice(server_name.as_bytes());
        out.extend_from_slice(&[0]);
        Some(consumed)
    }

    fn forward_describe_or_close(&mut self, tag: u8, msg: BytesMut, out: &mut BytesMut) {
        let body = &msg[5..];
        let (Some(&kind), Some((name, _))) = (body.first(), proto::split_cstr(&body[1..])) else {
            out.extend_from_slice(&msg);
            return;
        };
        if kind != b'S' || name.is_empty() {
            out.extend_from_slice(&msg);
            return;
        }
        let server_name = if tag == b'C' {
            match self.statements.remove(name) {
                Some(st) => {
                    if let Some(l) = self.lease.as_mut() {
                        l.conn.prepared.remove(&st.server_name);
                    }
                    st.server_name
                }
                None => {
                    out.extend_from_slice(&msg);
                    return;
                }
            }
        } else {
            match self.ensure_prepared(name, out) {
                Some(n) => n,
                None => {
                    out.extend_from_slice(&msg);
                    return;
                }
            }
        };
        put_statement_message(out, tag, &server_name);
    }

    /// Takes the server's whole messages, hiding the replies to the proxy's own messages;
    /// returns whether the server connection can be released now.
    fn take_server_messages(&mut self, out: &mut BytesMut) -> Result<bool, ProtoError> {
        let mut release = false;
        loop {
            if self.server_pass > 0 {
                pass_on(&mut self.server_pass, &mut self.sbuf, out);
                if self.server_pass > 0 {
                    break;
                }
                continue;
            }
            let Some((tag, len)) = peek_header(&self.sbuf)? else {
                break;
            };
            if self.sbuf.len() < len {
                // Rows, copy data and the like go on as they arrive; what the proxy reads
                // (below) is short.
                if !self.setting
                    && len >= STREAM_FROM
                    && !matches!(tag, b'1' | b'3' | b'Z' | b'C' | b'E' | b'S')
                {
                    self.server_pass = len;
                    continue;
                }
                break;
            }
            if tag == b'S' {
                let body = self.sbuf[5..len].to_vec();
                self.note_status(&body);
            }
            if self.setting {
                // Replies to the proxy's own SETs: they come before any the client is owed.
                match tag {
                    b'E' => {
                        let fields = proto::error_fields(&self.sbuf[5..len]);
                        tracing::warn!(?fields, "pooler: a session parameter could not be set");
                        // Do not try again with every transaction.
                        if let Some(l) = self.lease.as_ref() {
                            self.wanted.clone_from(&l.conn.current);
                            self.wanted.retain(|(k, _)| params::tracked(k).is_some());
                        }
                    }
                    b'Z' => self.setting = false,
                    _ => {}
                }
                let _ = self.sbuf.split_to(len);
                continue;
            }
            match tag {
                b'1' | b'3' => {
                    let b = self.batch_for_replies();
                    let counter = if tag == b'1' {
                        &mut b.hide_parse
                    } else {
                        &mut b.hide_close
                    };
                    if *counter > 0 {
                        *counter -= 1;
                        let _ = self.sbuf.split_to(len);
                        continue;
                    }
                }
                b'G' => self.copy_in = true,
                b'Z' => {
                    self.copy_in = false;
                    self.owed = self.owed.saturating_sub(1);
                    self.batches.pop_front();
                    let status = self.sbuf.get(5).copied().unwrap_or(b'I');
                    self.in_transaction = status != b'I';
                    if status == b'I' {
                        self.pool
                            .counters
                            .transactions
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    if self.owed == 0
                        && status == b'I'
                        && !self.unsynced
                        && self.client_pass == 0
                        && self.transaction_mode()
                    {
                        release = true;
                    }
                }
                b'C' => {
                    self.pool
                        .counters
                        .statements
                        .fetch_add(1, Ordering::Relaxed);
                    let tag_text = &self.sbuf[5..len];
                    if tag_text.starts_with(b"DISCARD ALL")
                        || tag_text.starts_with(b"DEALLOCATE ALL")
                    {
                        if let Some(l) = self.lease.as_mut() {
                            l.conn.prepared.clear();
                        }
                    }
                }
                b'E' => {
                    let fields = proto::error_fields(&self.sbuf[5..len]);
                    if fields
                        .iter()
                        .any(|(k, v)| *k == b'S' && (v == "FATAL" || v == "PANIC"))
                    {
                        self.fatal_sent = true;
                    }
                    // Statements of this batch may not exist on the server.
                    let names = std::mem::take(&mut self.batch_for_replies().prepared);
                    if let Some(l) = self.lease.as_mut() {
                        for n in names {
                            l.conn.prepared.remove(&n);
                        }
                    }
                }
                _ => {}
            }
            let msg = self.sbuf.split_to(len);
            out.extend_from_slice(&msg);
        }
        Ok(release)
    }
}

/// Bytes queued for the server above which the client is not read until they are sent.
const MAX_QUEUED: usize = 1 << 20;

/// Length of the server-side name of a client's statement: `pgf_` and 24 hex digits.
const SERVER_NAME_LEN: usize = 28;

/// Messages at least this long are passed through as they arrive instead of whole.
pub(crate) const STREAM_FROM: usize = 64 * 1024;

/// Moves what has arrived of a message being passed through (`pass` bytes still to go)
/// from `from` to `to`.
fn pass_on(pass: &mut usize, from: &mut BytesMut, to: &mut BytesMut) {
    let n = (*pass).min(from.len());
    to.extend_from_slice(&from.split_to(n));
    *pass -= n;
}

/// The portal and statement names of the `Bind` at the start of `msg` (type byte included)
/// and where its parameters start, once both names have arrived.
fn bind_names(msg: &[u8]) -> Option<(&[u8], &[u8], usize)> {
    let body = msg.get(5..)?;
    let (portal, rest) = proto::split_cstr(body)?;
    let (stmt, _) = proto::split_cstr(rest)?;
    Some((portal, stmt, 5 + portal.len() + 1 + stmt.len() + 1))
}

/// What one wait of a session holding a server connection produced.
enum Io {
    ServerData(usize),
    ServerGone,
    ClientData(usize),
    ClientGone,
    /// `idle_transaction_timeout` passed with the client silent inside a transaction.
    IdleInTransaction,
}

/// Writes what is queued for the server (then flushes, which matters for TLS) as far as it
/// goes, and waits for bytes from the server or the client. Writing to and reading from the
/// server in the same wait is what keeps a client that pipelines much from deadlocking its
/// session (the server blocked writing replies nobody reads while the proxy is blocked
/// writing queries it does not take). The client is not read while much is still queued.
fn poll_io(
    cx: &mut std::task::Context<'_>,
    client: &mut ClientStream,
    server: &mut crate::stream::BackendStream,
    queued: &mut BytesMut,
    unflushed: &mut bool,
    ctmp: &mut [u8],
    stmp: &mut [u8],
) -> std::task::Poll<Io> {
    use std::pin::Pin;
    use std::task::Poll;
    use tokio::io::AsyncWrite;
    while !queued.is_empty() {
        match Pin::new(&mut *server).poll_write(cx, queued) {
            Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(Io::ServerGone),
            Poll::Ready(Ok(n)) => {
                bytes::Buf::advance(queued, n);
                *unflushed = true;
            }
            Poll::Pending => break,
        }
    }
    if queued.is_empty() && *unflushed {
        match Pin::new(&mut *server).poll_flush(cx) {
            Poll::Ready(Ok(())) => *unflushed = false,
            Poll::Ready(Err(_)) => return Poll::Ready(Io::ServerGone),
            Poll::Pending => {}
        }
    }
    if let Poll::Ready(n) = poll_read_some(cx, server, stmp) {
        return Poll::Ready(n.map_or(Io::ServerGone, Io::ServerData));
    }
    if queued.len() < MAX_QUEUED {
        if let Poll::Ready(n) = poll_read_some(cx, client, ctmp) {
            return Poll::Ready(n.map_or(Io::ClientGone, Io::ClientData));
        }
    }
    Poll::Pending
}

/// Reads what is there into `buf`: `Some(n)`, or `None` at end of stream or on an error.
fn poll_read_some<S: tokio::io::AsyncRead + Unpin>(
    cx: &mut std::task::Context<'_>,
    stream: &mut S,
    buf: &mut [u8],
) -> std::task::Poll<Option<usize>> {
    let mut rb = tokio::io::ReadBuf::new(buf);
    match std::pin::Pin::new(stream).poll_read(cx, &mut rb) {
        std::task::Poll::Ready(Ok(())) => {
            let n = rb.filled().len();
            std::task::Poll::Ready((n > 0).then_some(n))
        }
        std::task::Poll::Ready(Err(_)) => std::task::Poll::Ready(None),
        std::task::Poll::Pending => std::task::Poll::Pending,
    }
}

/// A `Describe` (`D`) or `Close` (`C`) of the prepared statement `name`.
fn put_statement_message(out: &mut BytesMut, tag: u8, name: &str) {
    let mut b = vec![b'S'];
    proto::put_cstr(&mut b, name);
    put_message(out, tag, &b);
}

/// What a client message may leave on the server session: the SQL text of a `Query` or a
/// `Parse` read by [`leftover::classify`]; a `FunctionCall` (by OID, unread) is assumed to.
fn leftover_of(tag: u8, msg: &[u8]) -> Leftover {
    let body = msg.get(5..).unwrap_or_default();
    match tag {
        b'Q' => leftover::classify(body.strip_suffix(&[0]).unwrap_or(body)),
        b'P' => proto::split_cstr(body)
            .and_then(|(_, rest)| proto::split_cstr(rest))
            .map_or(Leftover::Resettable, |(query, _)| leftover::classify(query)),
        b'F' => Leftover::Resettable,
        _ => Leftover::None,
    }
}
