//! The accept loop: every socket gets its task, within the pending
//! handshake limits (`state/handshakes.rs`: per address, and in all, where
//! a new socket takes the oldest pending one's place); the loop ends when
//! the server stops.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::metrics::Metrics;
use crate::session;
use crate::state::ServerState;
use crate::state::handshakes::Admission;

/// First and longest pause after a failed `accept`.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Accept until the server stops.
pub async fn run(state: Arc<ServerState>, listener: TcpListener) {
    let mut backoff = Duration::ZERO;
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = state.life.stopped() => return,
        };
        if state.life.is_stopping() {
            return;
        }
        let (stream, peer) = match accepted {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors (EMFILE, ENFILE) and similar:
                // back off, longer each time, instead of spinning; the
                // waiting connections stay in the listen backlog.
                Metrics::add(&state.metrics.accept_failures, 1);
                if backoff.is_zero() {
                    tracing::warn!(error = %e, "accept failed; backing off");
                }
                backoff = (backoff * 2).clamp(ACCEPT_BACKOFF_MIN, ACCEPT_BACKOFF_MAX);
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        backoff = Duration::ZERO;
        if state.life.is_draining() {
            Metrics::add(&state.metrics.connections_rejected, 1);
            continue;
        }
        match state.conns.admit_handshake(peer.ip()) {
            Admission::Admitted { slot, evicted } => {
                if evicted {
                    Metrics::add(&state.metrics.handshakes_evicted, 1);
                }
                tokio::spawn(session::serve(state.clone(), stream, slot));
            }
            Admission::AddressFull | Admission::Full => {
                // Closed (dropped) before any response.
                Metrics::add(&state.metrics.connections_rejected, 1);
                Metrics::add(&state.metrics.handshakes_refused, 1);
            }
        }
    }
}
