//! Server connections: opening one to a tenant database as the connection's own login role
//! (TLS when the server asks for it, SCRAM answered with the key recovered from the client's
//! proof, or no password over a trusted Unix socket), and what the pool keeps about it.
//! The login messages are built and read with `postgres-protocol`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use crate::leftover::Leftover;
use fallible_iterator::FallibleIterator as _;
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use tracing::Instrument as _;

use crate::proto::{self, put_message, ProtoError};
use crate::scram::{ClientExchange, ClientKey, ScramError, Verifier, MECHANISM};
use crate::stream::BackendStream;

/// Where a PostgreSQL server listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BackendHost {
    Tcp(String),
    /// The directory holding the server's socket (`.s.PGSQL.<port>`).
    Unix(PathBuf),
}

/// A PostgreSQL server tenant databases live on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BackendTarget {
    /// Stable name of the server (for logs and metrics).
    pub key: String,
    pub host: BackendHost,
    pub port: u16,
    /// Ask the server for TLS (TCP only).
    pub tls: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("cannot reach the database server: {0}")]
    Io(#[from] std::io::Error),
    #[error("{message}")]
    Server {
        severity: String,
        code: String,
        message: String,
    },
    #[error("authentication with the database server failed: {0}")]
    Auth(String),
    #[error("protocol error from the database server: {0}")]
    Protocol(String),
    #[error("timed out connecting to the database server")]
    Timeout,
}

impl From<ProtoError> for BackendError {
    fn from(e: ProtoError) -> Self {
        match e {
            ProtoError::Io(e) => Self::Io(e),
            ProtoError::Malformed(m) => Self::Protocol(m.to_string()),
        }
    }
}

impl From<ScramError> for BackendError {
    fn from(e: ScramError) -> Self {
        Self::Auth(e.to_string())
    }
}

/// The statements a server session has prepared (the proxy's names), each with when it was
/// last used, so that the least recently used can be closed once there are too many: every
/// statement holds memory in its backend, and the clients of a pool may prepare many.
#[derive(Debug, Default)]
pub struct PreparedSet {
    last_used: HashMap<String, u64>,
    clock: u64,
}

impl PreparedSet {
    pub fn len(&self) -> usize {
        self.last_used.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last_used.is_empty()
    }

    /// The use counter now: statements used from here on have a later mark.
    pub fn now(&self) -> u64 {
        self.clock
    }

    /// Whether the session has `name`, marking it used.
    pub fn touch(&mut self, name: &str) -> bool {
        self.clock += 1;
        match self.last_used.get_mut(name) {
            Some(t) => {
                *t = self.clock;
                true
            }
            None => false,
        }
    }

    pub fn insert(&mut self, name: String) {
        self.clock += 1;
        self.last_used.insert(name, self.clock);
    }

    pub fn remove(&mut self, name: &str) {
        self.last_used.remove(name);
    }

    pub fn clear(&mut self) {
        self.last_used.clear();
    }

    /// Forgets and returns the least recently used statement among those last used before
    /// `since` (statements used since then may still be needed by the batch being written).
    pub fn evict_before(&mut self, since: u64) -> Option<String> {
        let name = self
            .last_used
            .iter()
            .filter(|(_, &t)| t <= since)
            .min_by_key(|(_, &t)| t)
            .map(|(n, _)| n.clone())?;
        self.last_used.remove(&name);
        Some(name)
    }
}

/// A server connection and what the proxy knows about its session.
pub struct ServerConn {
    pub stream: BackendStream,
    pub pid: i32,
    pub secret: i32,
    /// What the server reported at startup (its defaults for this session).
    pub params: Vec<(String, String)>,
    /// The session's reported parameters now (updated by every `ParameterStatus`).
    pub current: Vec<(String, String)>,
    /// The statements this session has prepared (the proxy's names).
    pub prepared: PreparedSet,
    pub last_used: Instant,
    pub created: Instant,
    /// The database's slot this connection holds (released when it is dropped).
    pub slot: Option<tokio::sync::OwnedSemaphorePermit>,
    /// Its place under the proxy's cap on server connections (released when it is dropped).
    pub proxy_slot: Option<tokio::sync::OwnedSemaphorePermit>,
    /// What the clients' SQL since the last reset may have left on the session (see
    /// [`crate::leftover`]): decides whether the connection is reused, reset or closed.
    pub leftover: Leftover,
}

impl Drop for ServerConn {
    /// A closed server connection ends its session cleanly (no "unexpected EOF" in the
    /// server's log).
    fn drop(&mut self) {
        self.stream.terminate_now();
    }
}

impl std::fmt::Debug for ServerConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConn")
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

/// What a connection attempt needs besides the target.
pub struct ConnectSpec<'a> {
    pub target: &'a BackendTarget,
    pub role: &'a str,
    pub database: &'a str,
    pub key: Option<&'a ClientKey>,
    pub verifier: &'a Verifier,
    pub tls: Option<&'a Arc<rustls::ClientConfig>>,
    pub timeout: Duration,
}

impl ServerConn {
    /// Opens and authenticates a server connection, up to its first `ReadyForQuery`.
    pub async fn connect(spec: &ConnectSpec<'_>) -> Result<Self, BackendError> {
        // The login's log lines say which server and database they are about.
        let span = tracing::info_span!(
            "pooler_server",
            server = %spec.target.key,
            database = %spec.database
        );
        tokio::time::timeout(spec.timeout, Self::connect_inner(spec).instrument(span))
            .await
            .map_err(|_| BackendError::Timeout)?
    }

    async fn connect_inner(spec: &ConnectSpec<'_>) -> Result<Self, BackendError> {
        let mut stream = open(spec.target, spec.tls).await?;
        let mut out = BytesMut::new();
        frontend::startup_message(
            [
                ("user", spec.role),
                ("database", spec.database),
                ("application_name", "pgfleet-pooler"),
            ],
            &mut out,
        )?;
        stream.write_all(&out).await?;

        let mut buf = BytesMut::with_capacity(1024);
        let mut scram: Option<ClientExchange> = None;
        let mut pid = 0;
        let mut secret = 0;
        let mut params = Vec::new();
        loop {
            out.clear();
            match read_backend(&mut stream, &mut buf).await? {
                Message::AuthenticationOk => {}
                Message::AuthenticationSasl(body) => {
                    let offered = body
                        .mechanisms()
                        .any(|m| Ok(m == MECHANISM))
                        .map_err(malformed)?;
                    if !offered {
                        return Err(BackendError::Auth(
                            "the server does not offer SCRAM-SHA-256".into(),
                        ));
                    }
                    if spec.key.is_none() {
                        return Err(BackendError::Auth("no client key for this role yet".into()));
                    }
                    let (ex, first) = ClientExchange::start();
                    scram = Some(ex);
                    frontend::sasl_initial_response(MECHANISM, first.as_bytes(), &mut out)?;
                    stream.write_all(&out).await?;
                }
                Message::AuthenticationSaslContinue(body) => {
                    let (Some(ex), Some(key)) = (scram.as_mut(), spec.key) else {
                        return Err(BackendError::Protocol("unexpected SASL".into()));
                    };
                    let fin = ex.respond(key, body.data())?;
                    frontend::sasl_response(fin.as_bytes(), &mut out)?;
                    stream.write_all(&out).await?;
                }
                Message::AuthenticationSaslFinal(body) => {
                    let ex = scram
                        .as_ref()
                        .ok_or_else(|| BackendError::Protocol("unexpected SASL".into()))?;
                    ex.verify(&spec.verifier.server_key, body.data())?;
                }
                Message::ErrorResponse(body) => {
                    let (mut severity, mut code, mut message) = Default::default();
                    let mut fields = body.fields();
                    while let Some(f) = fields.next().map_err(malformed)? {
                        let value = String::from_utf8_lossy(f.value_bytes()).into_owned();
                        match f.type_() {
                            b'S' => severity = value,
                            b'C' => code = value,
                            b'M' => message = value,
                            _ => {}
                        }
                    }
                    return Err(BackendError::Server {
                        severity,
                        code,
                        message,
                    });
                }
                Message::ParameterStatus(body) => {
                    let name = body.name().map_err(malformed)?;
                    let value = body.value().map_err(malformed)?;
                    params.push((name.to_string(), value.to_string()));
                }
                Message::BackendKeyData(body) => {
                    pid = body.process_id();
                    secret = body.secret_key();
                }
                Message::ReadyForQuery(_) => break,
                other => {
                    if let Some(method) = auth_method(&other) {
                        return Err(BackendError::Auth(format!(
                            "the server asks for authentication method {method}; only SCRAM-SHA-256 or trust are supported"
                        )));
                    }
                }
            }
        }
        Ok(Self {
            stream,
            pid,
            secret,
            current: params.clone(),
            params,
            prepared: PreparedSet::default(),
            last_used: Instant::now(),
            created: Instant::now(),
            slot: None,
            proxy_slot: None,
            leftover: Leftover::None,
        })
    }

    /// Notes what a client's message may have left on the session.
    pub fn note_leftover(&mut self, leftover: Leftover) {
        self.leftover = self.leftover.max(leftover);
    }

    /// Resets the session for another client with `DISCARD ALL`: settings back to the login
    /// role's defaults (the role too: `ALTER ROLE … SET role` is one of them), SQL prepared
    /// statements, cursors, `LISTEN`s, session advisory locks, temporary tables, cached
    /// plans and sequence state gone. The proxy's own prepared statements are gone with them
    /// (forgotten here; they are prepared again on use). Whether the session is usable (an
    /// error or no answer within 5 s means it must be closed).
    pub async fn reset(&mut self) -> bool {
        let mut q = BytesMut::new();
        put_message(&mut q, b'Q', b"DISCARD ALL\0");
        if self.stream.write_all(&q).await.is_err() {
            return false;
        }
        let current = &mut self.current;
        let stream = &mut self.stream;
        let reset = async {
            let mut ok = true;
            loop {
                let (tag, body) = proto::read_message(stream).await.ok()?;
                match tag {
                    // RESET ALL reports the values going back to the defaults.
                    b'S' => {
                        if let Some((k, v)) = crate::params::parse_status(&body) {
                            crate::params::set(current, &k, &v);
                        }
                    }
                    b'E' => ok = false,
                    b'Z' => return Some(ok && body.first() == Some(&b'I')),
                    _ => {}
                }
            }
        };
        let ok = tokio::time::timeout(Duration::from_secs(5), reset)
            .await
            .ok()
            .flatten()
            .unwrap_or(false);
        self.prepared.clear();
        if ok {
            self.leftover = Leftover::None;
        }
        ok
    }

    /// Whether an idle connection still looks usable: nothing to read (a terminated backend
    /// has sent its FATAL error and closed).
    pub fn looks_alive(&mut self) -> bool {
        self.stream.nothing_to_read()
    }
}

/// Reads the server's next message during login, with `buf` keeping what arrived beyond it.
async fn read_backend(
    stream: &mut BackendStream,
    buf: &mut BytesMut,
) -> Result<Message, BackendError> {
    loop {
        if let Some(m) = Message::parse(buf).map_err(malformed)? {
            return Ok(m);
        }
        if buf.len() > MAX_LOGIN_MESSAGE {
            return Err(BackendError::Protocol("login message too long".into()));
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(BackendError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
    }
}

/// A message from the server that `postgres-protocol` could not read.
fn malformed(e: std::io::Error) -> BackendError {
    BackendError::Protocol(e.to_string())
}

/// Largest message accepted from the server during login.
const MAX_LOGIN_MESSAGE: usize = 1 << 20;

/// The protocol's code of an authentication request other than SCRAM or none.
fn auth_method(m: &Message) -> Option<i32> {
    Some(match m {
        Message::AuthenticationKerberosV5 => 2,
        Message::AuthenticationCleartextPassword => 3,
        Message::AuthenticationMd5Password(_) => 5,
        Message::AuthenticationScmCredential => 6,
        Message::AuthenticationGss => 7,
        Message::AuthenticationGssContinue(_) => 8,
        Message::AuthenticationSspi => 9,
        _ => return None,
    })
}

/// A plain socket to the server (TCP with `TCP_NODELAY`, or its Unix socket).
async fn connect_socket(target: &BackendTarget) -> std::io::Result<BackendStream> {
    match &target.host {
        BackendHost::Unix(dir) => Ok(BackendStream::Unix(
            UnixStream::connect(dir.join(format!(".s.PGSQL.{}", target.port))).await?,
        )),
        BackendHost::Tcp(host) => {
            let tcp = TcpStream::connect((host.as_str(), target.port)).await?;
            tcp.set_nodelay(true)?;
            Ok(BackendStream::Tcp(tcp))
        }
    }
}

async fn open(
    target: &BackendTarget,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<BackendStream, BackendError> {
    match connect_socket(target).await? {
        BackendStream::Tcp(tcp) if target.tls => start_tls(tcp, target, tls).await,
        plain => Ok(plain),
    }
}

/// `SSLRequest`, then the TLS handshake (`sslmode=require` semantics from `config`).
async fn start_tls(
    mut tcp: TcpStream,
    target: &BackendTarget,
    config: Option<&Arc<rustls::ClientConfig>>,
) -> Result<BackendStream, BackendError> {
    let config = config.ok_or_else(|| {
        BackendError::Protocol("TLS to the database server is not configured".into())
    })?;
    let BackendHost::Tcp(host) = &target.host else {
        return Err(BackendError::Protocol("TLS needs a TCP server".into()));
    };
    tcp.write_all(&proto::startup_packet(proto::SSL_REQUEST, &[]))
        .await?;
    if tcp.read_u8().await? != b'S' {
        return Err(BackendError::Protocol(
            "the database server refused TLS".into(),
        ));
    }
    let name = rustls::pki_types::ServerName::try_from(host.clone())
        .map_err(|e| BackendError::Protocol(format!("server name: {e}")))?;
    let tls = tokio_rustls::TlsConnector::from(config.clone())
        .connect(name, tcp)
        .await?;
    Ok(BackendStream::Tls(Box::new(tls)))
}

/// Sends a cancel request for a backend session (over a plain socket: PostgreSQL takes
/// cancel requests before any authentication or TLS).
pub async fn send_cancel(target: &BackendTarget, pid: i32, secret: i32) -> std::io::Result<()> {
    let mut key = Vec::with_capacity(8);
    key.extend_from_slice(&pid.to_be_bytes());
    key.extend_from_slice(&secret.to_be_bytes());
    let mut s = connect_socket(target).await?;
    s.write_all(&proto::startup_packet(proto::CANCEL_REQUEST, &key))
        .await?;
    // The server closes the connection when it has read the request.
    let mut b = [0u8; 1];
    let _ = s.read(&mut b).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::PreparedSet;

    #[test]
    fn evicts_the_least_recently_used_before_the_mark() {
        let mut set = PreparedSet::default();
        set.insert("a".into());
        set.insert("b".into());
        set.insert("c".into());
        assert!(set.touch("a"));
        assert!(!set.touch("zzz"));
        let mark = set.now();
        assert!(set.touch("b"));
        // "c" is the oldest; "b" was used after the mark and is spared.
        assert_eq!(set.evict_before(mark).as_deref(), Some("c"));
        assert_eq!(set.evict_before(mark).as_deref(), Some("a"));
        assert_eq!(set.evict_before(mark), None);
        assert_eq!(set.len(), 1);
    }
}
