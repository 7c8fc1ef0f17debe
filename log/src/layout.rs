//! Where things live in a data directory.
//!
//! ```text
//! <dir>/LOCK                    flock held by the one writing process
//! <dir>/RUNNING                 present while a writer runs (boot id, pid)
//! <dir>/meta/                   sled: topic registry, epochs, retention
//! <dir>/topics/<h2>/<h32>/      one directory per topic, named by the hash
//!                               of its name (see `topic_name`)
//!     <base>.seg  <base>.idx    segments and their sparse indexes
//! <dir>/lost+found/             histories set aside when an epoch changed
//! ```

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::segment;
use crate::topic_name::key_hex;

/// The paths of one data directory.
#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout of the data directory `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The lock file a writer holds.
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("LOCK")
    }

    /// The marker present while a writer runs.
    pub fn running_file(&self) -> PathBuf {
        self.root.join("RUNNING")
    }

    /// The sled metadata directory.
    pub fn meta_dir(&self) -> PathBuf {
        self.root.join("meta")
    }

    /// The directory holding all topic directories.
    pub fn topics_dir(&self) -> PathBuf {
        self.root.join("topics")
    }

    /// Where histories are set aside when their epoch is replaced.
    pub fn lost_found_dir(&self) -> PathBuf {
        self.root.join("lost+found")
    }

    /// The directory of the topic with `key`.
    pub fn topic_dir(&self, key: u128) -> PathBuf {
        let hex = key_hex(key);
        self.topics_dir().join(&hex[..2]).join(hex)
    }

    /// Every topic directory on disk, with its key. Entries that are not
    /// topic directories are skipped.
    pub fn list_topic_dirs(&self) -> io::Result<Vec<(u128, PathBuf)>> {
        let mut out = Vec::new();
        let top = match fs::read_dir(self.topics_dir()) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for shard in top {
            let shard = shard?;
            if !shard.file_type()?.is_dir() {
                continue;
            }
            for entry in fs::read_dir(shard.path())? {
                let entry = entry?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if name.len() != 32 || !entry.file_type()?.is_dir() {
                    continue;
                }
                if let Ok(key) = u128::from_str_radix(name, 16) {
                    out.push((key, entry.path()));
                }
            }
        }
        out.sort_by_key(|(k, _)| *k);
        Ok(out)
    }
}

/// Base offsets of the segments in a topic directory, in order.
pub fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut bases = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(base) = entry
            .file_name()
            .to_str()
            .and_then(segment::parse_segment_name)
        {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// fsync a directory, so that entries created or removed in it survive a
/// power failure.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// The kernel's boot id, if it can be read.
pub fn boot_id(path: &Path) -> Option<String> {
    fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}
