//! The bounded cache of open segment files, and the set of files that were
//! written but not yet fsynced.
//!
//! However many topics a log holds, it keeps at most `max_open_files`
//! segment files open: a handle is opened on demand and the least recently
//! used one is closed when the cache is full. Handles are shared (`Arc`)
//! and used with positional reads and writes only, so the writer and any
//! number of readers can use one handle at once.
//!
//! Which files need an fsync is tracked by path, not by handle: fsync on
//! any descriptor of a file flushes all of it, so a dirty file whose handle
//! was closed is simply reopened when its turn comes. That keeps the number
//! of open files bounded even when thousands of topics are written between
//! two fsyncs.
//!
//! Files are opened, synced and their directories synced through the log's
//! [`Storage`], so a fault injected there reaches the writer like a real one.

use std::collections::HashSet;
use std::io;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;

use crate::storage::{OpenMode, Storage, StorageFile};

/// Open segment files, least recently used closed first.
pub struct FileCache {
    /// Where files are opened and synced.
    storage: Arc<dyn Storage>,
    open: Mutex<LruCache<PathBuf, Arc<dyn StorageFile>>>,
    dirty: Mutex<Dirty>,
    /// Held through `sync_dirty`: two fsync passes at once (the writer's,
    /// the syncer's, `flush`) would each see only part of the dirty set,
    /// and one could report success while the other's fsync fails.
    syncing: Mutex<()>,
    writable: bool,
    /// False under `Durability::Never`: nothing is ever fsynced, so
    /// nothing is remembered.
    track_dirty: bool,
}

/// Paths with changes not yet forced to disk.
#[derive(Default)]
struct Dirty {
    /// Files with written data.
    files: HashSet<PathBuf>,
    /// Directories with created or removed entries.
    dirs: HashSet<PathBuf>,
}

impl FileCache {
    /// A cache keeping at most `capacity` files open; `writable` opens them
    /// for writing too (the writer's log), otherwise read-only (tools).
    pub fn new(
        storage: Arc<dyn Storage>,
        capacity: usize,
        writable: bool,
        track_dirty: bool,
    ) -> Self {
        let cap = NonZeroUsize::new(capacity.max(1)).expect("capacity is positive");
        Self {
            storage,
            open: Mutex::new(LruCache::new(cap)),
            dirty: Mutex::new(Dirty::default()),
            syncing: Mutex::new(()),
            writable,
            track_dirty,
        }
    }

    /// The open handle of `path`, opening it if needed.
    pub fn get(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        if let Some(f) = self.open.lock().get(path) {
            return Ok(f.clone());
        }
        let mode = if self.writable {
            OpenMode::ReadWrite
        } else {
            OpenMode::Read
        };
        let file = self.storage.open(path, mode)?;
        // Another thread may have opened it meanwhile; either handle works.
        // The evicted handle is closed when its last user drops it.
        self.open.lock().put(path.to_owned(), file.clone());
        Ok(file)
    }

    /// Create `path` (which must not exist) and cache its handle.
    pub fn create(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let file = self.storage.open(path, OpenMode::CreateNew)?;
        self.open.lock().put(path.to_owned(), file.clone());
        Ok(file)
    }

    /// Forget `path` (the file was deleted or renamed).
    pub fn forget(&self, path: &Path) {
        self.open.lock().pop(path);
        self.dirty.lock().files.remove(path);
    }

    /// Forget every file below `dir`.
    pub fn forget_dir(&self, dir: &Path) {
        let mut open = self.open.lock();
        let gone: Vec<PathBuf> = open
            .iter()
            .filter(|(p, _)| p.starts_with(dir))
            .map(|(p, _)| p.clone())
            .collect();
        for p in gone {
            open.pop(&p);
        }
        drop(open);
        let mut dirty = self.dirty.lock();
        dirty.files.retain(|p| !p.starts_with(dir));
        dirty.dirs.retain(|p| !p.starts_with(dir));
    }

    /// Remember that the file `path` has unsynced data.
    pub fn mark_dirty(&self, path: &Path) {
        if !self.track_dirty {
            return;
        }
        let mut dirty = self.dirty.lock();
        if !dirty.files.contains(path) {
            dirty.files.insert(path.to_owned());
        }
    }

    /// Remember that entries of the directory `dir` were created or removed.
    pub fn mark_dir_dirty(&self, dir: &Path) {
        if !self.track_dirty {
            return;
        }
        let mut dirty = self.dirty.lock();
        if !dirty.dirs.contains(dir) {
            dirty.dirs.insert(dir.to_owned());
        }
    }

    /// Number of files and directories waiting for an fsync.
    pub fn dirty_count(&self) -> usize {
        let d = self.dirty.lock();
        d.files.len() + d.dirs.len()
    }

    /// fsync every dirty file, then every dirty directory. Returns how many
    /// were synced. On error the unsynced paths stay dirty and the error
    /// names the one that failed.
    pub fn sync_dirty(&self) -> Result<usize, (PathBuf, io::Error)> {
        let _one_at_a_time = self.syncing.lock();
        let taken = std::mem::take(&mut *self.dirty.lock());
        let files: Vec<PathBuf> = taken.files.into_iter().collect();
        let dirs: Vec<PathBuf> = taken.dirs.into_iter().collect();
        let mut done = 0;
        for (i, path) in files.iter().enumerate() {
            let res = match self.get(path) {
                Ok(f) => f.sync_data(),
                // Deleted by retention meanwhile: nothing left to sync.
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(e) = res {
                let mut dirty = self.dirty.lock();
                dirty.files.extend(files[i..].iter().cloned());
                dirty.dirs.extend(dirs.iter().cloned());
                return Err((path.clone(), e));
            }
            done += 1;
        }
        for (i, dir) in dirs.iter().enumerate() {
            match self.storage.sync_dir(dir) {
                Ok(()) => done += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    self.dirty.lock().dirs.extend(dirs[i..].iter().cloned());
                    return Err((dir.clone(), e));
                }
            }
        }
        Ok(done)
    }

    /// The storage files are opened in.
    pub fn storage(&self) -> &dyn Storage {
        &*self.storage
    }

    /// Close every cached handle (a reader that reloads what is on disk
    /// must not keep reading files that were replaced meanwhile).
    pub fn clear(&self) {
        self.open.lock().clear();
    }

    /// Number of handles currently open.
    pub fn open_count(&self) -> usize {
        self.open.lock().len()
    }
}
