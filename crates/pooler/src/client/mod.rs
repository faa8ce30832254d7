//! One client session: TLS and startup, SCRAM against the stored verifier, then relaying
//! messages while a server connection is lent to it.
//!
//! - [`login`]: the SSL/TLS negotiation, the startup packet, the SCRAM exchange and the
//!   refusals before it, and joining the database's pool;
//! - [`session`]: relaying once logged in, and when the server connection is lent and
//!   given back;
//! - [`replies`]: the transaction-pooling state machine (what the server still owes, which
//!   replies to hide);
//! - [`statements`]: prepared-statement renaming and re-preparing in transaction mode;
//! - [`io`]: the wait that writes to and reads from both sides at once.

mod io;
mod login;
mod replies;
mod session;
mod statements;

use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::pool::AcquireError;
use crate::proto;
use crate::{CancelSlot, Shared};

pub(crate) use login::ALPN_POSTGRESQL;

/// Serves one client connection; `over` when the proxy already has
/// `max_client_connections` (the client is told so after startup; a cancel request is still
/// carried out).
pub(crate) async fn handle(shared: Arc<Shared>, tcp: TcpStream, over: bool) {
    let _ = tcp.set_nodelay(true);
    let now = tokio::time::Instant::now();
    let deadline = now + shared.settings.client_login_timeout;
    let startup_deadline = deadline.min(now + shared.settings.startup_timeout);
    let Ok(Some((stream, params, end_point))) =
        tokio::time::timeout_at(startup_deadline, login::startup(&shared, tcp)).await
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
    let client_tls = client.is_tls();
    let logged_in = tokio::time::timeout_at(
        deadline,
        login::login(&shared, &mut client, client_tls, &params, end_point),
    )
    .await;
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
    let Some((pool, mut out, wanted)) = login::join(&shared, &mut client, &params, auth).await
    else {
        return;
    };
    let slot: CancelSlot = Arc::new(Mutex::new(None));
    let (pid, secret) = shared.register_cancel(slot.clone());
    proto::put_backend_key(&mut out, pid, secret);
    proto::put_ready(&mut out, b'I');
    if client.write_all(&out).await.is_ok() {
        let mut s = session::Session::new(shared.clone(), pool.clone(), client, slot, wanted);
        let _ = s.run().await;
        s.finish().await;
    }
    shared.unregister_cancel(pid);
    pool.client_left();
}

/// How long a refused client is given to take its error message (it may not read).
const BRIEFLY: std::time::Duration = std::time::Duration::from_secs(1);

async fn fatal<S: AsyncWrite + Unpin>(client: &mut S, code: &str, message: &str) {
    let mut out = BytesMut::new();
    proto::put_error(&mut out, "FATAL", code, message);
    let _ = client.write_all(&out).await;
    let _ = client.shutdown().await;
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
