//! Small state files replaced atomically: the vote, the commit and purge
//! markers, the state machine's applied marker.
//!
//! [`write`] goes to a temporary file, is fsynced, renamed over the old
//! one, and the directory is fsynced, so after a crash the file holds
//! either the old or the new content, never a mix or nothing: for what must
//! never go back (the vote, the purge marker).
//!
//! [`write_hint`] renames without any fsync: for markers that may go back
//! after an OS crash because everything after them is done again (the
//! commit index, the applied marker). They are written at every commit and
//! every applied batch, where three fsyncs each would dominate a publish's
//! latency. [`read_hint`] reads such a file and takes one an OS crash left
//! empty or torn for absent: going back to the start is always allowed.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Replace `path` with `value` (JSON), durably and atomically.
pub(crate) fn write<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    sync_dir(path)
}

/// Replace `path` with `value` (JSON) atomically for a process crash, but
/// without fsync: after an OS crash it may hold an older value, or be
/// empty (see the module doc).
pub(crate) fn write_hint<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, &bytes)?;
    fs::rename(&tmp, path)
}

/// Read a file [`write_hint`] wrote: `None` when it does not exist, or when
/// an OS crash left it empty or torn (a warning says so).
pub(crate) fn read_hint<T: DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match read(path) {
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            tracing::warn!(file = %path.display(), error = %e, "unreadable marker, starting from the beginning");
            Ok(None)
        }
        other => other,
    }
}

/// Read `path` (JSON); `None` when it does not exist yet.
pub(crate) fn read<T: DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Fsync the directory holding `path`, so a rename or a new file in it
/// survives a crash.
pub(crate) fn sync_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}
