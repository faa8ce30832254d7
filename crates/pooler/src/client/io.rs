//! The wait of a session holding a server connection: writing what is queued for the
//! server and reading from either side in one poll, and passing long messages through; and
//! the signal that ends a session between transactions (pool closed, pooler shutting down).

use std::future::Future;
use std::pin::Pin;

use bytes::BytesMut;
use tokio::sync::watch;

use crate::stream::ClientStream;

/// Bytes queued for the server above which the client is not read until they are sent.
const MAX_QUEUED: usize = 1 << 20;

/// Moves what has arrived of a message being passed through (`pass` bytes still to go)
/// from `from` to `to`.
pub(super) fn pass_on(pass: &mut usize, from: &mut BytesMut, to: &mut BytesMut) {
    let n = (*pass).min(from.len());
    to.extend_from_slice(&from[..n]);
    bytes::Buf::advance(from, n);
    *pass -= n;
}

/// Resolves once the pool is closed or the pooler shuts down (either channel changes after
/// what `closed` and `shutdown` have seen).
pub(super) type StopSignal = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A [`StopSignal`]. A session keeps one across its waits rather than making one per wait:
/// each new one registers with both channels when first polled, and each dropped one
/// unregisters, a lock taken twice per channel at every wait of every transaction.
pub(super) fn stop_signal(
    closed: &watch::Receiver<Option<&'static str>>,
    shutdown: &watch::Receiver<bool>,
) -> StopSignal {
    let (mut closed, mut shutdown) = (closed.clone(), shutdown.clone());
    Box::pin(async move {
        // A sender gone (which the session's own `Arc`s prevent) never signals.
        let closed = async {
            if closed.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let shutdown = async {
            if shutdown.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = closed => {}
            () = shutdown => {}
        }
    })
}

/// What one wait of a session holding a server connection produced.
pub(super) enum Io {
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
pub(super) fn poll_io(
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

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt as _;

    #[tokio::test]
    async fn the_stop_signal_answers_either_change_and_nothing_else() {
        let (close, mut closed) = watch::channel(None);
        let (shut, mut shutdown) = watch::channel(false);
        let mut stop = stop_signal(&closed, &shutdown);
        assert!((&mut stop).now_or_never().is_none());
        close.send_replace(Some("deleted"));
        assert!((&mut stop).now_or_never().is_some());
        // Once what changed has been read, a new signal waits for the next change.
        assert_eq!(*closed.borrow_and_update(), Some("deleted"));
        let mut stop = stop_signal(&closed, &shutdown);
        assert!((&mut stop).now_or_never().is_none());
        shut.send_replace(true);
        assert!((&mut stop).now_or_never().is_some());
        // A sender gone is no signal.
        assert!(*shutdown.borrow_and_update());
        let mut stop = stop_signal(&closed, &shutdown);
        drop(close);
        drop(shut);
        assert!((&mut stop).now_or_never().is_none());
    }
}
