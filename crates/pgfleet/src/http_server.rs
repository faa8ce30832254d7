//! The accept loop of pgfleet's HTTP listeners (HTTP/1.1 on hyper): the API's ([`serve`])
//! and the `prisma+postgres://` endpoint's ([`serve_with`], optionally over TLS), bounded so
//! that network clients cannot take the process's file descriptors or hold them for long:
//!
//! - at most `max_connections` connections are open (each listener's share of the
//!   descriptor budget, `crate::descriptors`); a connection past it is accepted,
//!   answered `503` (the API; up to [`REFUSERS`] at a time, each within a second; more are
//!   closed unanswered) or closed at once (TLS listeners, which cannot answer before a
//!   handshake), so the listener stays responsive and a client is served as
//!   soon as a place frees up (rather than queueing behind idle sockets in the kernel's
//!   backlog);
//! - a new connection must finish its TLS handshake, if any, and deliver a complete request
//!   head within `header_read_timeout`
//!   (and within `keep_alive_timeout` if that is shorter), a kept-alive one its next request
//!   head within `keep_alive_timeout` (hyper's own timer, which starts whenever the
//!   connection starts waiting for a request);
//! - a request body must arrive whole within `body_read_timeout` of its head (a client
//!   trickling a body would otherwise hold its connection and a handler);
//! - `accept` failing for want of descriptors backs off briefly instead of spinning;
//! - handlers can extract `axum::extract::ConnectInfo<SocketAddr>` (the peer address);
//! - on shutdown the listener closes, idle connections are closed and requests in flight
//!   finish (the caller bounds how long).

use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt as _;

/// The bounds of the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub keep_alive_timeout: Duration,
    /// A request's body must have arrived whole within this after its head (a handler
    /// reading it gets an error past it).
    pub body_read_timeout: Duration,
}

/// One listener: its bounds, TLS, and how it names itself in the log.
#[derive(Clone)]
pub struct Listener {
    pub limits: Limits,
    /// TLS on every accepted connection (HTTP/1.1 after the handshake).
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// Names the listener in log lines (`HTTP`, `accelerate`).
    pub name: &'static str,
    /// The setting that raises the cap, named in the warning when it is reached.
    pub cap_setting: &'static str,
}

/// The body of the `503` a connection refused at the cap gets (the API's error shape).
const REFUSED_BODY: &str =
    r#"{"error":{"code":"unavailable","message":"too many connections; retry in a moment"}}"#;

/// The whole `503` response, built once.
fn refused_response() -> &'static [u8] {
    static RESPONSE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    RESPONSE.get_or_init(|| {
        format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
             connection: close\r\nretry-after: 1\r\ncontent-length: {}\r\n\r\n{REFUSED_BODY}",
            REFUSED_BODY.len()
        )
        .into_bytes()
    })
}

/// Connections past the cap answered `503` at the same time; more are closed unanswered.
/// (The descriptor reserve covers them.)
pub const REFUSERS: usize = 64;
/// How long a refused connection is given to send its request before it is closed.
const REFUSE_WAIT: Duration = Duration::from_secs(1);

/// How long `accept` rests after an error (out of descriptors, most likely).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// At most one warning about the cap per this period.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Serves the API's `app` on `listener` (plain HTTP) until `shutdown` resolves, then stops
/// accepting and returns once every connection has finished.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let options = Listener {
        limits,
        tls: None,
        name: "HTTP",
        cap_setting: "http.max_connections",
    };
    serve_with(listener, app, options, shutdown).await;
}

/// Serves `app` on `listener` as `options` say until `shutdown` resolves, then stops
/// accepting and returns once every connection has finished.
pub async fn serve_with(
    listener: TcpListener,
    app: axum::Router,
    options: Listener,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let Listener {
        limits,
        tls,
        name,
        cap_setting,
    } = options;
    let places = Arc::new(Semaphore::new(limits.max_connections));
    let refusing = Arc::new(Semaphore::new(REFUSERS));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.keep_alive_timeout);
    let mut warned: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Per-connection errors (a reset before accept) need no pause; running
                    // out of descriptors does, or the loop would spin.
                    if !is_connection_error(&e) {
                        tracing::warn!(error = %e, listener = name, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(place) = places.clone().try_acquire_owned() else {
            if warned.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                warned = Some(Instant::now());
                tracing::warn!(
                    max_connections = limits.max_connections,
                    listener = name,
                    "{name}: connection cap reached; refusing new connections ({cap_setting})"
                );
            }
            // A plain-HTTP answer means nothing before a TLS handshake: closed at once.
            match (&tls, refusing.clone().try_acquire_owned()) {
                (None, Ok(permit)) => {
                    tokio::spawn(refuse(tcp, permit));
                }
                // Already answering as many as it may: closed unanswered.
                _ => drop(tcp),
            }
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let first_request = Arc::new(Notify::new());
        let service = {
            let first_request = first_request.clone();
            let app = app.clone();
            let body_read_timeout = limits.body_read_timeout;
            hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                first_request.notify_one();
                let mut req =
                    req.map(|b| axum::body::Body::new(DeadlineBody::new(b, body_read_timeout)));
                req.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(req)
            })
        };
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let tls = tls.clone();
        let header_read_timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            let _place = place;
            // hyper's timer (the keep-alive setting) runs whenever the connection waits for
            // a request head; the handshake and the first head must also arrive within
            // `header_read_timeout`. Dropping the connection closes it.
            let silent = async {
                if tokio::time::timeout(header_read_timeout, first_request.notified())
                    .await
                    .is_ok()
                {
                    std::future::pending::<()>().await;
                }
            };
            let served = async {
                let r = match tls {
                    None => {
                        watcher
                            .watch(builder.serve_connection(TokioIo::new(tcp), service))
                            .await
                    }
                    Some(acceptor) => match acceptor.accept(tcp).await {
                        Ok(stream) => {
                            watcher
                                .watch(builder.serve_connection(TokioIo::new(stream), service))
                                .await
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, %peer, listener = name, "TLS handshake failed");
                            return;
                        }
                    },
                };
                if let Err(e) = r {
                    tracing::debug!(error = %e, %peer, listener = name, "connection ended with an error");
                }
            };
            tokio::select! {
                () = served => {}
                () = silent => {
                    tracing::debug!(%peer, listener = name, "no request head in time; closing");
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Answers `503` to the request a refused connection sends first, and closes. (HTTP clients
/// take a response sent before their request for a broken connection, so it is read
/// first, for at most [`REFUSE_WAIT`]; its send buffer being empty, the write does not
/// block.)
async fn refuse(mut tcp: TcpStream, _refusing: OwnedSemaphorePermit) {
    let mut head = [0u8; 4096];
    if let Ok(Ok(n)) = tokio::time::timeout(REFUSE_WAIT, tcp.read(&mut head)).await {
        if n > 0 {
            let _ = tcp.try_write(refused_response());
            let _ = tcp.shutdown().await;
        }
    }
}

/// Errors of one connection that did not make it through `accept`, as opposed to errors of
/// the listener or the process (out of descriptors, out of memory).
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// A request body that fails once its deadline has passed (an `Incoming` has no deadline of
/// its own: a client could send a head and then a byte a minute).
struct DeadlineBody<B> {
    inner: B,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl<B> DeadlineBody<B> {
    fn new(inner: B, timeout: Duration) -> Self {
        Self {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

/// The error a handler reading a body past its deadline gets.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimeout;

impl<B> hyper::body::Body for DeadlineBody<B>
where
    B: hyper::body::Body<Data = hyper::body::Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = hyper::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimeout))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}
