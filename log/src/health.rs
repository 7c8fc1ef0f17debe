//! Whether storage works, as the writer last found it: the fault that made
//! it stop, when to try again, and the backoff between tries.
//!
//! A failed write or fsync does not stop the log for good (ENOSPC clears
//! when space is freed, EMFILE when files are closed). The writer fails
//! the appends it could not make safe, records the fault here, and until
//! `retry_at` appenders fail fast with [`LogError::Unavailable`] instead of
//! queueing records that cannot be written. After `retry_at` appends are
//! taken again: the next batch is the probe. A fault while the log is
//! already down doubles the backoff (up to its maximum); a success resets
//! it. One line is logged when an episode starts and one when it ends.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::LogError;

/// A storage operation that failed, kept so every append it affects gets
/// the same typed error (an `io::Error` cannot be cloned, so its parts are
/// kept and a new one is made for each caller).
#[derive(Debug)]
pub(crate) struct StorageFault {
    op: &'static str,
    path: PathBuf,
    errno: Option<i32>,
    kind: io::ErrorKind,
    message: String,
}

impl StorageFault {
    /// The fault of `op` on `path`.
    pub(crate) fn new(op: &'static str, path: PathBuf, e: &io::Error) -> Self {
        Self {
            op,
            path,
            errno: e.raw_os_error(),
            kind: e.kind(),
            message: e.to_string(),
        }
    }

    /// The fault behind a log error of the writer path.
    pub(crate) fn from_error(e: LogError) -> Self {
        match e {
            LogError::Io { op, path, source } | LogError::Unavailable { op, path, source } => {
                Self::new(op, path, &source)
            }
            other => Self::new(
                "write",
                PathBuf::new(),
                &io::Error::other(other.to_string()),
            ),
        }
    }

    /// The error an affected append gets.
    pub(crate) fn error(&self) -> LogError {
        let source = match self.errno {
            Some(n) => io::Error::from_raw_os_error(n),
            None => io::Error::new(self.kind, self.message.clone()),
        };
        LogError::Unavailable {
            op: self.op,
            path: self.path.clone(),
            source,
        }
    }

    /// True for a failed fsync (of a file or a directory).
    pub(crate) fn is_fsync(&self) -> bool {
        self.op == "fsync"
    }
}

/// The writer's view of storage, shared with appenders.
pub(crate) struct Health {
    /// Fast check for appenders: false while storage works.
    down: AtomicBool,
    state: Mutex<State>,
    min_backoff: Duration,
    max_backoff: Duration,
}

struct State {
    fault: Option<Arc<StorageFault>>,
    /// Faults recorded so far: a success proves storage works only if no
    /// fault was recorded since it started (the syncer fails beside the
    /// writer).
    faults: u64,
    retry_at: Instant,
    backoff: Duration,
}

impl Health {
    /// Healthy storage; retries back off from `min` to `max`.
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Self {
            down: AtomicBool::new(false),
            state: Mutex::new(State {
                fault: None,
                faults: 0,
                retry_at: Instant::now(),
                backoff: Duration::ZERO,
            }),
            min_backoff: min,
            max_backoff: max.max(min),
        }
    }

    /// True from a fault until storage worked again.
    pub(crate) fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    /// The fault appends must fail fast with now (down and before the next
    /// retry), if any.
    pub(crate) fn failing_fast(&self) -> Option<Arc<StorageFault>> {
        if !self.is_down() {
            return None;
        }
        let s = self.state.lock();
        (Instant::now() < s.retry_at)
            .then(|| s.fault.clone())
            .flatten()
    }

    /// `Err` while appends must fail fast.
    pub(crate) fn check(&self) -> Result<(), LogError> {
        match self.failing_fast() {
            Some(f) => Err(f.error()),
            None => Ok(()),
        }
    }

    /// The last fault, while storage is down.
    pub(crate) fn fault(&self) -> Option<Arc<StorageFault>> {
        if !self.is_down() {
            return None;
        }
        self.state.lock().fault.clone()
    }

    /// When the writer should probe storage again, while it is down.
    pub(crate) fn retry_at(&self) -> Option<Instant> {
        self.is_down().then(|| self.state.lock().retry_at)
    }

    /// A storage operation failed: enter (or stay in) the down state, with
    /// the next retry one backoff away.
    pub(crate) fn failed(&self, fault: StorageFault) -> Arc<StorageFault> {
        let fault = Arc::new(fault);
        let mut s = self.state.lock();
        let starts = !self.is_down();
        s.backoff = if starts {
            self.min_backoff
        } else {
            (s.backoff * 2).clamp(self.min_backoff, self.max_backoff)
        };
        s.retry_at = Instant::now() + s.backoff;
        s.fault = Some(fault.clone());
        s.faults += 1;
        self.down.store(true, Ordering::Release);
        if starts {
            tracing::error!(
                op = fault.op,
                path = %fault.path.display(),
                error = %fault.message,
                "storage fault: appends fail until it clears; retrying from {:?} up to every {:?}",
                self.min_backoff,
                self.max_backoff,
            );
        } else {
            tracing::debug!(op = fault.op, error = %fault.message, backoff = ?s.backoff, "storage still failing");
        }
        fault
    }

    /// A token for `recovered`: taken before an operation that, if it
    /// succeeds, shows storage works.
    pub(crate) fn attempt(&self) -> u64 {
        self.state.lock().faults
    }

    /// Storage worked again for an operation that started at `attempt`:
    /// leave the down state, unless a fault was recorded meanwhile.
    pub(crate) fn recovered(&self, attempt: u64) {
        if !self.is_down() {
            return;
        }
        let mut s = self.state.lock();
        if s.faults != attempt {
            return;
        }
        self.down.store(false, Ordering::Release);
        if let Some(f) = s.fault.take() {
            tracing::info!(op = f.op, path = %f.path.display(), "storage works again; appends resume");
        }
        s.backoff = Duration::ZERO;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enospc() -> StorageFault {
        StorageFault::new("write", "x.seg".into(), &io::Error::from_raw_os_error(28))
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_and_resets_on_recovery() {
        let h = Health::new(Duration::from_millis(10), Duration::from_millis(30));
        assert!(h.check().is_ok());
        h.failed(enospc());
        assert!(h.is_down());
        let e = h.check().unwrap_err();
        assert!(
            matches!(&e, LogError::Unavailable { source, .. } if source.raw_os_error() == Some(28))
        );
        h.failed(enospc());
        assert_eq!(h.state.lock().backoff, Duration::from_millis(20));
        let attempt = h.attempt();
        h.failed(enospc());
        assert_eq!(h.state.lock().backoff, Duration::from_millis(30));
        h.recovered(attempt);
        assert!(h.is_down(), "a fault was recorded since the attempt began");
        h.recovered(h.attempt());
        assert!(!h.is_down() && h.check().is_ok() && h.fault().is_none());
        h.failed(enospc());
        assert_eq!(h.state.lock().backoff, Duration::from_millis(10));
    }
}
