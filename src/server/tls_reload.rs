//! Reloading the TLS certificate of a running server (`reload_tls`,
//! SIGHUP in `wse serve`, and the file watcher in `ticker`), counted and
//! logged in one place.

use super::{Server, ServerError};
use crate::metrics::Metrics;
use crate::state::ServerState;

impl Server {
    /// Read the TLS certificate and key files again and present them from
    /// the next handshake on; established connections keep their
    /// sessions. On error the certificate in force stays (`wse serve` does
    /// this on SIGHUP; the files are also checked every
    /// `tls_reload_interval`).
    pub fn reload_tls(&self) -> Result<(), ServerError> {
        let state = self.state()?;
        let tls = state.tls.as_ref().ok_or(ServerError::NoTls)?;
        let result = tls.reload();
        note_tls_reload(&state, &result);
        Ok(result?)
    }
}

/// Count and log the outcome of a TLS reload.
pub(super) fn note_tls_reload(state: &ServerState, result: &Result<(), crate::tls::TlsError>) {
    match result {
        Ok(()) => {
            Metrics::add(&state.metrics.tls_reloads, 1);
            tracing::info!("TLS certificate reloaded");
        }
        Err(e) => {
            Metrics::add(&state.metrics.tls_reload_failures, 1);
            tracing::warn!(error = %e, "TLS reload refused; the certificate in force stays");
        }
    }
}
