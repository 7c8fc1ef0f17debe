//! The file that holds a shard's Raft log on one node.
//!
//! Why not a wse-log topic: Raft must be able to cut a divergent suffix
//! (openraft's `truncate`), and a wse-log topic cannot lose records at its
//! head: offsets once visible are history. So the Raft log is one plain
//! append-only file of frames:
//!
//! ```text
//! /* len */ 4 + /* crc32 of body */ 4 + /* body: the entry, MessagePack */ len
//! ```
//!
//! Appends are fsynced before openraft hears they are durable. A torn or
//! damaged tail (a crash mid-append) ends the log at the last whole frame:
//! such entries were never reported durable. Truncating a suffix shortens
//! the file; purging a prefix rewrites the file without it (temp file,
//! fsync, rename), which is rare (after a snapshot) and bounded by the
//! entries kept.
//!
//! Write amplification: a published message is written twice on every
//! node, once here (inside its Raft entry) and once into its topic's log by
//! the state machine; plus the small applied marker per applied batch.

use crate::types::TypeConfig;
use openraft::Entry;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wse_log::storage::{OpenMode, Storage, StorageFile, write_all_at};

/// Bytes before a frame's body: length and CRC.
const FRAME_HEADER: usize = /* len */ 4 + /* crc */ 4;

/// A body larger than this is damage, not an entry (a batch is far smaller).
const MAX_BODY: usize = 256 << 20;

/// The open Raft log file and where each entry starts in it.
pub(crate) struct LogFile {
    /// The file operations (real files unless a test injects faults).
    storage: Arc<dyn Storage>,
    /// `<dir>/raft-log`.
    path: PathBuf,
    /// Open for reading and writing; writes go at `end`.
    file: Arc<dyn StorageFile>,
    /// Byte offset of each entry's frame, by log index: `truncate` cuts the
    /// file there.
    starts: BTreeMap<u64, u64>,
    /// Length of the whole frames; the file is cut here on open.
    end: u64,
}

/// An entry of the log file, decoded.
pub(crate) type RaftEntry = Entry<TypeConfig>;

impl LogFile {
    /// Open (or create) the log in `dir` through `storage`; returns the
    /// whole entries found, after cutting a torn tail.
    pub(crate) fn open(
        storage: Arc<dyn Storage>,
        dir: &Path,
    ) -> io::Result<(LogFile, Vec<RaftEntry>)> {
        let path = dir.join("raft-log");
        let file = if path.exists() {
            storage.open(&path, OpenMode::ReadWrite)?
        } else {
            let file = storage.open(&path, OpenMode::CreateNew)?;
            storage.sync_dir(dir)?;
            file
        };
        let bytes = read_all(&*file)?;
        let (entries, starts, end) = scan(&bytes);
        if end < bytes.len() as u64 {
            tracing::warn!(path = %path.display(), kept = end, found = bytes.len(), "raft log: cutting a torn tail");
            file.set_len(end)?;
            file.sync_all()?;
        }
        let log = LogFile {
            storage,
            path,
            file,
            starts,
            end,
        };
        Ok((log, entries))
    }

    /// Append `entries` (consecutive, after the last one) and fsync.
    pub(crate) fn append(&mut self, entries: &[RaftEntry]) -> io::Result<()> {
        let mut buf = Vec::new();
        let mut starts = Vec::with_capacity(entries.len());
        for e in entries {
            starts.push((e.log_id.index, self.end + buf.len() as u64));
            encode_frame(e, &mut buf)?;
        }
        write_all_at(&*self.file, &buf, self.end)?;
        self.file.sync_data()?;
        self.end += buf.len() as u64;
        self.starts.extend(starts);
        Ok(())
    }

    /// How many entries the file holds.
    pub(crate) fn len(&self) -> usize {
        self.starts.len()
    }

    /// Remove the entries from `index` on (inclusive), durably.
    pub(crate) fn truncate(&mut self, index: u64) -> io::Result<()> {
        let Some(&cut) = self.starts.get(&index) else {
            return Ok(()); // nothing at or after `index` is stored
        };
        self.file.set_len(cut)?;
        self.file.sync_all()?;
        self.end = cut;
        self.starts.split_off(&index);
        Ok(())
    }

    /// Rewrite the file with only `kept` (the entries after a purge).
    pub(crate) fn rewrite(&mut self, kept: &[RaftEntry]) -> io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        let mut buf = Vec::new();
        let mut starts = BTreeMap::new();
        for e in kept {
            starts.insert(e.log_id.index, buf.len() as u64);
            encode_frame(e, &mut buf)?;
        }
        {
            let f = self.storage.open(&tmp, OpenMode::CreateTruncate)?;
            write_all_at(&*f, &buf, 0)?;
            f.sync_all()?;
        }
        self.storage.rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            self.storage.sync_dir(dir)?;
        }
        self.file = self.storage.open(&self.path, OpenMode::ReadWrite)?;
        self.starts = starts;
        self.end = buf.len() as u64;
        Ok(())
    }
}

/// The whole content of `file`.
fn read_all(file: &dyn StorageFile) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        let n = file.read_at(&mut chunk, bytes.len() as u64)?;
        if n == 0 {
            return Ok(bytes);
        }
        bytes.extend_from_slice(&chunk[..n]);
    }
}

/// Append one frame holding `entry` to `buf`.
fn encode_frame(entry: &RaftEntry, buf: &mut Vec<u8>) -> io::Result<()> {
    let body = rmp_serde::to_vec_named(entry).map_err(io::Error::other)?;
    buf.extend_from_slice(&(body.len() as u32).to_le_bytes());
    buf.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    buf.extend_from_slice(&body);
    Ok(())
}

/// Decode the whole frames at the start of `bytes`: the entries, where each
/// starts, and where the last whole frame ends.
fn scan(bytes: &[u8]) -> (Vec<RaftEntry>, BTreeMap<u64, u64>, u64) {
    let mut entries = Vec::new();
    let mut starts = BTreeMap::new();
    let mut at = 0usize;
    while let Some((entry, len)) = decode_frame(&bytes[at..]) {
        starts.insert(entry.log_id.index, at as u64);
        entries.push(entry);
        at += len;
    }
    (entries, starts, at as u64)
}

/// The entry of the frame at the start of `bytes` and the frame's length,
/// or `None` when it is torn or damaged.
fn decode_frame(bytes: &[u8]) -> Option<(RaftEntry, usize)> {
    let header = bytes.get(..FRAME_HEADER)?;
    let len = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..8].try_into().ok()?);
    if len > MAX_BODY {
        return None;
    }
    let body = bytes.get(FRAME_HEADER..FRAME_HEADER + len)?;
    if crc32fast::hash(body) != crc {
        return None;
    }
    let entry = rmp_serde::from_slice(body).ok()?;
    Some((entry, FRAME_HEADER + len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, EntryPayload, LogId};
    use std::fs::{self, OpenOptions};
    use wse_log::storage::FsStorage;

    fn entry(index: u64) -> RaftEntry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Blank,
        }
    }

    fn indexes(entries: &[RaftEntry]) -> Vec<u64> {
        entries.iter().map(|e| e.log_id.index).collect()
    }

    #[test]
    fn append_truncate_rewrite_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (mut f, found) = LogFile::open(Arc::new(FsStorage), dir.path()).unwrap();
        assert!(found.is_empty());
        f.append(&(1..=5).map(entry).collect::<Vec<_>>()).unwrap();
        f.truncate(4).unwrap();
        f.append(&[entry(4)]).unwrap();
        drop(f);
        let (mut f, found) = LogFile::open(Arc::new(FsStorage), dir.path()).unwrap();
        assert_eq!(indexes(&found), vec![1, 2, 3, 4]);
        f.rewrite(&found[2..]).unwrap();
        f.append(&[entry(5)]).unwrap();
        drop(f);
        let (_, found) = LogFile::open(Arc::new(FsStorage), dir.path()).unwrap();
        assert_eq!(indexes(&found), vec![3, 4, 5]);
    }

    #[test]
    fn a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let (mut f, _) = LogFile::open(Arc::new(FsStorage), dir.path()).unwrap();
        f.append(&[entry(1), entry(2)]).unwrap();
        drop(f);
        let path = dir.path().join("raft-log");
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let (mut f, found) = LogFile::open(Arc::new(FsStorage), dir.path()).unwrap();
        assert_eq!(indexes(&found), vec![1]);
        f.append(&[entry(2)]).unwrap();
        drop(f);
        let (_, found) = LogFile::open(Arc::new(FsStorage), dir.path()).unwrap();
        assert_eq!(indexes(&found), vec![1, 2]);
    }
}
