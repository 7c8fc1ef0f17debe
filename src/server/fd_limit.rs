//! File descriptors: a connection holds one, the log holds up to
//! `max_open_files` plus a few of its own. A server whose
//! `max_connections` exceeds what the process may open fails in the worst
//! way: `accept`, segment opens and fsyncs start returning EMFILE under
//! load. So at start the soft limit is raised to the hard limit, and
//! `max_connections` is cut to the descriptors left after the log's
//! reserve (with a warning saying so).

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Descriptors kept for everything that is not a connection or a segment
/// file: the listener, the metadata store, the runtime, stdio, pipes.
pub(crate) const RESERVE: u64 = 64;

/// Raise the soft open-file limit to the hard limit; returns the soft
/// limit now in force (`None`: unlimited).
pub(crate) fn raise_soft_limit() -> Option<u64> {
    let now = getrlimit(Resource::Nofile);
    if now.current != now.maximum {
        let raised = Rlimit {
            current: now.maximum,
            maximum: now.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
        }
    }
    getrlimit(Resource::Nofile).current
}

/// The connections the descriptor limit `limit` leaves room for, after
/// `log_files` for the log's segment files and [`RESERVE`].
pub(crate) fn connections_allowed(limit: Option<u64>, log_files: usize) -> Option<usize> {
    let limit = limit?;
    let left = limit.saturating_sub(log_files as u64 + RESERVE);
    Some(usize::try_from(left).unwrap_or(usize::MAX).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_and_the_reserve_come_off_the_limit() {
        assert_eq!(connections_allowed(Some(1024), 256), Some(704));
        assert_eq!(connections_allowed(None, 256), None);
        // Never zero: a server that admits nobody is a configuration error
        // the operator should see as refusals, not as a silent no-op.
        assert_eq!(connections_allowed(Some(100), 256), Some(1));
    }
}
