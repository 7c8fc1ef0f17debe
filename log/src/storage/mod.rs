//! The storage seam: every file operation the writer path performs (segment
//! and index writes, fsyncs, segment creation and deletion, repairs at
//! open, the running marker) goes through a [`Storage`], in the manner of
//! SQLite's test VFS or SpacetimeDB's commitlog `Repo`.
//!
//! [`FsStorage`] (real files, `std::fs`) is the default. [`FaultyStorage`]
//! wraps another storage and injects faults at chosen points (ENOSPC,
//! EMFILE, EIO, short writes), so tests — this crate's and the server's —
//! can prove that the log survives them.
//!
//! Read-only scans (loading a topic directory at open, `verify`, the
//! `DirReader` of the tools) read with `std::fs` directly: they never
//! change a file, and the tools must work without a log.

mod faulty;
mod fs;

pub use faulty::{EIO, EMFILE, ENOSPC, FaultAction, FaultRule, FaultyStorage, Gate, StorageOp};
pub use fs::FsStorage;

use std::io;
use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

/// How a file is opened.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// An existing file, for reading.
    Read,
    /// An existing file, for reading and writing.
    ReadWrite,
    /// A new file (it must not exist), for reading and writing.
    CreateNew,
    /// A file created if missing and kept if present, for writing.
    CreateOrOpen,
    /// A file created if missing and emptied if present, for writing.
    CreateTruncate,
}

/// An open file, used with positional reads and writes only, so one handle
/// can be shared by the writer and any number of readers.
pub trait StorageFile: Send + Sync {
    /// Read into `buf` at byte `pos`; returns how many bytes were read
    /// (0 at end of file).
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize>;
    /// Write `buf` at byte `pos`; returns how many bytes were written,
    /// which may be fewer than asked.
    fn write_at(&self, buf: &[u8], pos: u64) -> io::Result<usize>;
    /// Cut or extend the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Force the file's data (and the metadata needed to read it) to
    /// stable storage.
    fn sync_data(&self) -> io::Result<()>;
    /// Force the file's data and all its metadata to stable storage.
    fn sync_all(&self) -> io::Result<()>;
}

/// The file operations of the log's writer path.
pub trait Storage: Send + Sync {
    /// Open `path` as `mode` says.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn StorageFile>>;
    /// Create a directory and its missing parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Remove a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Remove a directory and everything below it.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Rename a file or directory.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// fsync a directory, so entries created or removed in it survive a
    /// power failure.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
}

/// Write all of `buf` at `pos`, continuing after short writes.
pub fn write_all_at(file: &dyn StorageFile, mut buf: &[u8], mut pos: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match file.write_at(buf, pos) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                buf = &buf[n..];
                pos += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Read up to `len` bytes at `pos`, fewer only at end of file.
pub fn read_at_most(file: &dyn StorageFile, pos: u64, len: usize) -> io::Result<Bytes> {
    let mut buf = BytesMut::zeroed(len);
    let mut done = 0;
    while done < len {
        match file.read_at(&mut buf[done..], pos + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(done);
    Ok(buf.freeze())
}

/// Remove `path`; a file that is already gone is fine.
pub(crate) fn remove_if_present(storage: &dyn Storage, path: &Path) -> io::Result<()> {
    match storage.remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
