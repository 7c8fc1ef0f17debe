//! Rust errors as Python exceptions, with the types and messages of
//! PYTHON_API.md.
//!
//! | Rust | Python |
//! |---|---|
//! | `ServerError::AlreadyRunning`, `NotRunning`, `Limit`, `Recovery`, `Runtime` | `RuntimeError` (upstream's messages) |
//! | `ServerError::Bind` | `OSError(errno, "cannot bind host:port: ...")` |
//! | `ServerError::Config`, configuration errors | `ValueError` |
//! | `ServerError::Timeout` (`flush`), a cluster publish not committed in time | `TimeoutError` |
//! | a cluster publish with no reachable leader | `ConnectionError` |
//! | `LogError::InvalidTopic`, `RecordTooLarge` | `ValueError` |
//! | `ServerError::Send` (`send` of a frame larger than `max_outbound_queue_bytes`) | `ValueError` |
//! | `ServerError::Tls` (a certificate or key file that cannot be used) | `ValueError` |
//! | `LogError::NotRecoverable` | [`NotRecoverableError`] (a `LookupError`) with attributes |
//! | `LogError::Unavailable` (a storage fault) | `OSError(errno, message)` |
//! | `LogError::Damaged` (records the disk lost) | `OSError(EIO, message naming the file and offsets)` |
//! | other `LogError`s | `RuntimeError` |

use pyo3::exceptions::{
    PyConnectionError, PyLookupError, PyOSError, PyRuntimeError, PyTimeoutError, PyValueError,
};
use pyo3::prelude::*;
use wse::ServerError;
use wse_log::{LogError, NotRecoverable, NotRecoverableReason};

pyo3::create_exception!(
    wse_server,
    NotRecoverableError,
    PyLookupError,
    "The requested history of a topic is not in the log: another epoch, removed by retention, or past the newest record. Attributes: topic, reason ('epoch_mismatch', 'removed' or 'ahead'), epoch (the topic's current epoch, 8 hex digits), first_offset, next_offset."
);

/// A server error as the Python exception upstream raises.
pub fn server_error(py: Python<'_>, err: ServerError) -> PyErr {
    match err {
        ServerError::Bind { addr, source } => PyOSError::new_err((
            source.raw_os_error().unwrap_or(0),
            format!("cannot bind {addr}: {source}"),
        )),
        // The bare message, as upstream (`ping_interval (30s) must be less
        // than idle_timeout (10s)`), without the Rust error's prefix.
        ServerError::Config(e) => PyValueError::new_err(e.0),
        ServerError::Log(e) | ServerError::Publish(wse::PublishError::Log(e)) => log_error(py, e),
        e @ (ServerError::Timeout(_) | ServerError::Publish(wse::PublishError::Timeout { .. })) => {
            PyTimeoutError::new_err(e.to_string())
        }
        e @ ServerError::Publish(wse::PublishError::Unavailable { .. }) => {
            PyConnectionError::new_err(e.to_string())
        }
        ServerError::Presence(e @ wse::presence::PresenceError::DataTooLarge { .. }) => {
            PyValueError::new_err(e.to_string())
        }
        e @ (ServerError::Send(_) | ServerError::Tls(_)) => PyValueError::new_err(e.to_string()),
        other => PyRuntimeError::new_err(other.to_string()),
    }
}

/// A log error as a Python exception.
pub fn log_error(py: Python<'_>, err: LogError) -> PyErr {
    match err {
        LogError::NotRecoverable(nr) => not_recoverable(py, &nr),
        e @ (LogError::InvalidTopic(_) | LogError::RecordTooLarge { .. }) => {
            PyValueError::new_err(e.to_string())
        }
        // Storage faults carry their errno (ENOSPC, EMFILE, EIO, ...).
        LogError::Unavailable { ref source, .. } => {
            PyOSError::new_err((source.raw_os_error().unwrap_or(0), err.to_string()))
        }
        // Damaged records are an I/O error of the disk that held them.
        e @ LogError::Damaged(_) => PyOSError::new_err((wse_log::storage::EIO, e.to_string())),
        other => PyRuntimeError::new_err(other.to_string()),
    }
}

/// `NotRecoverableError` carrying the topic's current state.
pub fn not_recoverable(py: Python<'_>, nr: &NotRecoverable) -> PyErr {
    let err = NotRecoverableError::new_err(nr.to_string());
    let reason = match nr.reason {
        NotRecoverableReason::EpochMismatch => "epoch_mismatch",
        NotRecoverableReason::Removed => "removed",
        NotRecoverableReason::Ahead => "ahead",
    };
    let value = err.value(py);
    // Attributes are a convenience; the message carries the same facts.
    let _ = value.setattr("topic", nr.topic.as_str());
    let _ = value.setattr("reason", reason);
    let _ = value.setattr("epoch", nr.epoch.to_string());
    let _ = value.setattr("first_offset", nr.first_offset);
    let _ = value.setattr("next_offset", nr.next_offset);
    err
}

/// `RuntimeError("Not running")`.
pub fn not_running() -> PyErr {
    PyRuntimeError::new_err(ServerError::NotRunning.to_string())
}
