//! The accept loop: every socket gets its task, within the pre-handshake
//! cap; the loop ends when the server stops.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;

use super::state::ServerState;
use crate::metrics::Metrics;
use crate::session;

/// Accept until the server stops.
pub async fn run(state: Arc<ServerState>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = state.stop_signal.notified() => return,
        };
        if state.stopping.load(Ordering::Acquire) {
            return;
        }
        let (stream, _peer) = match accepted {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and similar: back off briefly
                // instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if state.draining.load(Ordering::Acquire) {
            Metrics::add(&state.metrics.connections_rejected, 1);
            continue;
        }
        match state.handshakes.clone().try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(session::serve(state.clone(), stream, permit));
            }
            Err(_) => {
                // Over the pre-handshake cap: closed before any response.
                Metrics::add(&state.metrics.connections_rejected, 1);
            }
        }
    }
}
