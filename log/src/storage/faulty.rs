//! A storage that injects faults: the test VFS of the log.
//!
//! It wraps another [`Storage`] (real files by default) and consults a
//! list of rules before every operation: "fail the next 3 writes to files
//! whose path contains `.seg` with ENOSPC", "fail every fsync with EIO
//! until cleared", "write only 10 bytes of the next write", "hold every
//! fsync until the test opens a gate" (a slow disk). Clones share
//! their rules, so a test keeps one clone to steer the faults while the
//! log uses another.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::{FsStorage, OpenMode, Storage, StorageFile};

/// `ENOSPC` on Linux: no space left on device.
pub const ENOSPC: i32 = 28;
/// `EMFILE` on Linux: too many open files.
pub const EMFILE: i32 = 24;
/// `EIO` on Linux: input/output error.
pub const EIO: i32 = 5;

/// The operations a rule can target.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum StorageOp {
    /// Opening an existing file.
    Open,
    /// Creating a file (any of the creating open modes).
    Create,
    /// A positional write.
    Write,
    /// A positional read.
    Read,
    /// Truncating or extending a file.
    SetLen,
    /// fsync of a file.
    Sync,
    /// fsync of a directory.
    SyncDir,
    /// Removing a file or a directory tree.
    Remove,
    /// Renaming.
    Rename,
    /// Creating directories.
    CreateDir,
}

/// A gate a stalled operation waits at until the test opens it (a disk
/// that is slow for as long as the test wants). Clones share the gate.
#[derive(Clone, Debug, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    /// A closed gate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Let every waiting and later operation through.
    pub fn open(&self) {
        *self.0.0.lock() = true;
        self.0.1.notify_all();
    }

    /// Block until the gate is open.
    fn wait(&self) {
        let mut open = self.0.0.lock();
        while !*open {
            self.0.1.wait(&mut open);
        }
    }
}

impl PartialEq for Gate {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Gate {}

/// What a matching rule does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// Fail with this OS error number (see [`ENOSPC`], [`EMFILE`], [`EIO`]).
    Fail(i32),
    /// For writes: write only the first `bytes` bytes for real and report
    /// that count (a short write). Other operations are not affected.
    Short {
        /// Bytes actually written.
        bytes: usize,
    },
    /// Wait until the gate is open, then do the operation for real.
    Stall(Gate),
    /// Wait this long, then do the operation for real (a slow disk).
    Delay(Duration),
}

/// One fault to inject.
#[derive(Clone, Debug)]
pub struct FaultRule {
    op: StorageOp,
    action: FaultAction,
    path_contains: Option<String>,
    /// Faults left to inject; `None` until the rule is cleared.
    remaining: Option<u64>,
}

impl FaultRule {
    /// Apply `action` to every `op`, until cleared.
    pub fn new(op: StorageOp, action: FaultAction) -> Self {
        Self {
            op,
            action,
            path_contains: None,
            remaining: None,
        }
    }

    /// Fail every `op` with the OS error `errno`, until cleared.
    pub fn fail(op: StorageOp, errno: i32) -> Self {
        Self::new(op, FaultAction::Fail(errno))
    }

    /// Only for paths containing `part`.
    pub fn path_contains(mut self, part: impl Into<String>) -> Self {
        self.path_contains = Some(part.into());
        self
    }

    /// Only the next `n` matching operations.
    pub fn times(mut self, n: u64) -> Self {
        self.remaining = Some(n);
        self
    }

    fn matches(&self, op: StorageOp, path: &Path) -> bool {
        self.op == op
            && self.remaining != Some(0)
            && self
                .path_contains
                .as_deref()
                .is_none_or(|p| path.to_string_lossy().contains(p))
    }
}

#[derive(Default)]
struct Rules {
    rules: Mutex<Vec<FaultRule>>,
    injected: AtomicU64,
}

impl Rules {
    /// The action of the first rule matching `op` on `path`, counted.
    fn take(&self, op: StorageOp, path: &Path) -> Option<FaultAction> {
        let mut rules = self.rules.lock();
        let rule = rules.iter_mut().find(|r| r.matches(op, path))?;
        if let Some(n) = &mut rule.remaining {
            *n -= 1;
        }
        self.injected.fetch_add(1, Ordering::Relaxed);
        Some(rule.action.clone())
    }

    /// `Err` when a rule says this operation fails; waits first when one
    /// stalls it (the rules' lock is not held while it waits).
    fn check(&self, op: StorageOp, path: &Path) -> io::Result<()> {
        match self.take(op, path) {
            Some(FaultAction::Fail(errno)) => Err(io::Error::from_raw_os_error(errno)),
            Some(FaultAction::Stall(gate)) => {
                gate.wait();
                Ok(())
            }
            Some(FaultAction::Delay(d)) => {
                std::thread::sleep(d);
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// A [`Storage`] that injects the faults its rules describe into the
/// operations of the storage it wraps.
#[derive(Clone)]
pub struct FaultyStorage {
    inner: Arc<dyn Storage>,
    rules: Arc<Rules>,
}

impl Default for FaultyStorage {
    fn default() -> Self {
        Self::new(Arc::new(FsStorage))
    }
}

impl FaultyStorage {
    /// Faults injected into `inner`.
    pub fn new(inner: Arc<dyn Storage>) -> Self {
        Self {
            inner,
            rules: Arc::default(),
        }
    }

    /// Add a rule (rules are consulted in the order they were added).
    pub fn inject(&self, rule: FaultRule) {
        self.rules.rules.lock().push(rule);
    }

    /// Remove every rule: the storage behaves like the one it wraps.
    pub fn clear(&self) {
        self.rules.rules.lock().clear();
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> u64 {
        self.rules.injected.load(Ordering::Relaxed)
    }
}

impl Storage for FaultyStorage {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn StorageFile>> {
        let op = match mode {
            OpenMode::Read | OpenMode::ReadWrite => StorageOp::Open,
            _ => StorageOp::Create,
        };
        self.rules.check(op, path)?;
        Ok(Arc::new(FaultyFile {
            inner: self.inner.open(path, mode)?,
            path: path.to_owned(),
            rules: self.rules.clone(),
        }))
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.rules.check(StorageOp::CreateDir, path)?;
        self.inner.create_dir_all(path)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.rules.check(StorageOp::Remove, path)?;
        self.inner.remove_file(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.rules.check(StorageOp::Remove, path)?;
        self.inner.remove_dir_all(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.rules.check(StorageOp::Rename, from)?;
        self.inner.rename(from, to)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.rules.check(StorageOp::SyncDir, path)?;
        self.inner.sync_dir(path)
    }
}

/// A file of a [`FaultyStorage`].
struct FaultyFile {
    inner: Arc<dyn StorageFile>,
    path: PathBuf,
    rules: Arc<Rules>,
}

impl StorageFile for FaultyFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.rules.check(StorageOp::Read, &self.path)?;
        self.inner.read_at(buf, pos)
    }

    fn write_at(&self, buf: &[u8], pos: u64) -> io::Result<usize> {
        match self.rules.take(StorageOp::Write, &self.path) {
            Some(FaultAction::Fail(errno)) => Err(io::Error::from_raw_os_error(errno)),
            Some(FaultAction::Short { bytes }) if bytes < buf.len() => {
                self.inner.write_at(&buf[..bytes], pos)
            }
            Some(FaultAction::Stall(gate)) => {
                gate.wait();
                self.inner.write_at(buf, pos)
            }
            Some(FaultAction::Delay(d)) => {
                std::thread::sleep(d);
                self.inner.write_at(buf, pos)
            }
            _ => self.inner.write_at(buf, pos),
        }
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.rules.check(StorageOp::SetLen, &self.path)?;
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.rules.check(StorageOp::Sync, &self.path)?;
        self.inner.sync_data()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.rules.check(StorageOp::Sync, &self.path)?;
        self.inner.sync_all()
    }
}
