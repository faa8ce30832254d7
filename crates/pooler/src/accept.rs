//! Accepting clients: the cap on client connections (refused at once past the places kept
//! to say "too many clients"), and starting each client's session on the session thread
//! [`workers::Workers::place`] picks (its socket moved to that thread's event loop), or
//! where it was accepted.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tracing::Instrument as _;

use crate::{client, workers, Shared, REFUSAL_SLOTS};

/// Accepts clients until `stop` resolves; each session runs on the thread of `workers` it
/// is placed on (its socket moved there), or here.
pub(crate) async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    stop: impl std::future::Future<Output = ()>,
    workers: Option<&workers::Workers>,
) {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let before = shared.active_clients.fetch_add(1, Ordering::AcqRel);
                    let max = shared.settings.max_client_connections;
                    if before >= max.saturating_add(REFUSAL_SLOTS) {
                        // Past the places kept to say "too many clients": close at once,
                        // so a flood of sockets costs one descriptor for no time.
                        shared.client_gone();
                        drop(tcp);
                        continue;
                    }
                    let over = before >= max;
                    start_session(shared.clone(), tcp, peer, over, workers);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pooler: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = &mut stop => break,
        }
    }
}

/// Runs a client's session: on the session thread it is placed on, or here.
fn start_session(
    shared: Arc<Shared>,
    tcp: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    over: bool,
    workers: Option<&workers::Workers>,
) {
    // Every log line of the client's session carries its address.
    let span = tracing::info_span!("pooler_client", %peer);
    let run = move |shared: Arc<Shared>, tcp| async move {
        client::handle(shared.clone(), tcp, over)
            .instrument(span)
            .await;
        shared.client_gone();
    };
    let (placed, elsewhere) = match workers.and_then(workers::Workers::place) {
        Some((placed, Some(elsewhere))) => (placed, elsewhere),
        // Here (counted on this loop while it runs, when this is a session thread).
        here => {
            let placed = here.map(|(placed, _)| placed);
            tokio::spawn(async move {
                let _placed = placed;
                run(shared, tcp).await;
            });
            return;
        }
    };
    // The socket leaves this event loop for the other thread's.
    match tcp.into_std() {
        Ok(std_tcp) => {
            elsewhere.spawn(async move {
                let _placed = placed;
                match tokio::net::TcpStream::from_std(std_tcp) {
                    Ok(tcp) => run(shared, tcp).await,
                    Err(e) => {
                        tracing::debug!(error = %e, "pooler: client lost moving threads");
                        shared.client_gone();
                    }
                }
            });
        }
        Err(e) => {
            tracing::debug!(error = %e, "pooler: client lost moving threads");
            shared.client_gone();
        }
    }
}
