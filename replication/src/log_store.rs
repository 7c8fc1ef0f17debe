//! openraft's log storage ([`RaftLogStorage`]) for one shard on one node.
//!
//! Entries are kept in the [`LogFile`] and, for reading, in memory (every
//! entry not purged). Both are bounded by purging: openraft purges the log
//! behind each snapshot (every `snapshot_every` entries, keeping
//! `snapshot_keep`), and [`RaftLogStorage::purge`] drops the entries from
//! memory and rewrites the file without them (on the blocking pool). The
//! vote and the purge marker live in `raft-vote.json` (replaced atomically
//! and durably, [`durable_file`]), the commit marker in
//! `raft-committed.json` (a hint).
//!
//! File I/O runs on tokio's blocking pool, never on a worker. openraft
//! serializes the writes (it awaits each call), so the file needs no
//! ordering of its own; the in-memory entries are shared with the log
//! readers of the replication tasks.

use crate::durable_file;
use crate::log_file::{LogFile, RaftEntry};
use crate::types::{NodeId, TypeConfig};
use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{CommittedLeaderId, EntryPayload, LogId, StorageError, StorageIOError, Vote};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wse_log::storage::{FsStorage, Storage};

/// What `raft-vote.json` holds: the state that must never go back.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct VoteFile {
    /// The vote granted in the current term (a node votes once per term).
    vote: Option<Vote<NodeId>>,
    /// Entries up to here were purged; the log continues after it.
    last_purged: Option<LogId<NodeId>>,
}

/// The Raft log of one shard on one node. Cheap to clone: clones share the
/// file and the entries (a clone is also the log reader).
#[derive(Clone)]
pub struct LogStore {
    /// The directory of the files.
    dir: PathBuf,
    /// The frames on disk; locked only by writers (one at a time anyway).
    file: Arc<Mutex<LogFile>>,
    /// Entries by index, for readers.
    entries: Arc<RwLock<BTreeMap<u64, RaftEntry>>>,
    /// Vote and purge marker as stored.
    marks: Arc<Mutex<VoteFile>>,
    /// The commit marker as stored.
    committed: Arc<Mutex<Option<LogId<NodeId>>>>,
}

impl LogStore {
    /// The entries held now, in log order (a copy).
    pub fn entries(&self) -> Vec<RaftEntry> {
        self.entries.read().values().cloned().collect()
    }

    /// How many entries are held: in memory, and in the file.
    pub fn held(&self) -> (usize, usize) {
        let memory = self.entries.read().len();
        (memory, self.file.lock().len())
    }

    /// The last log id: of the last entry, or the last purged one.
    pub(crate) fn last_log_id(&self) -> Option<LogId<NodeId>> {
        let last = self.entries.read().values().next_back().map(|e| e.log_id);
        last.or(self.marks.lock().last_purged)
    }

    /// Open (or create) the Raft log in `dir`, on real files.
    pub fn open(dir: impl AsRef<Path>) -> io::Result<LogStore> {
        LogStore::open_on(Arc::new(FsStorage), dir)
    }

    /// [`LogStore::open`] with the log file's operations going through
    /// `storage`, where tests inject faults (a slow or failing disk). The
    /// small marker files (vote, purge, commit) stay on `std::fs`.
    pub fn open_on(storage: Arc<dyn Storage>, dir: impl AsRef<Path>) -> io::Result<LogStore> {
        let dir = dir.as_ref().to_owned();
        std::fs::create_dir_all(&dir)?;
        let marks: VoteFile = durable_file::read(&dir.join("raft-vote.json"))?.unwrap_or_default();
        let committed = durable_file::read_hint(&dir.join("raft-committed.json"))?.flatten();
        let (file, found) = LogFile::open(storage, &dir)?;
        let purged = marks.last_purged.map(|l| l.index);
        let entries = found
            .into_iter()
            .filter(|e| Some(e.log_id.index) > purged)
            .map(|e| (e.log_id.index, e))
            .collect();
        Ok(LogStore {
            dir,
            file: Arc::new(Mutex::new(file)),
            entries: Arc::new(RwLock::new(entries)),
            marks: Arc::new(Mutex::new(marks)),
            committed: Arc::new(Mutex::new(committed)),
        })
    }

    /// Offline only (no Raft runs on these files): make `me` the leader of
    /// a new term and append `payloads` as that term's first entries. The
    /// term is one above both the stored vote's and the last entry's; the
    /// vote for `me` in it is stored first, committed, so openraft starts
    /// this node as the leader (a crash before the entries leaves only a
    /// higher vote). Returns the entries' log ids. Used by
    /// `force-membership` (see `crate::force`).
    pub(crate) fn force_new_term(
        &self,
        me: NodeId,
        payloads: Vec<EntryPayload<TypeConfig>>,
    ) -> io::Result<Vec<LogId<NodeId>>> {
        let last = self.last_log_id();
        let mut marks = self.marks.lock();
        let voted = marks.vote.map_or(0, |v| v.leader_id().term);
        let term = voted.max(last.map_or(0, |l| l.leader_id.term)) + 1;
        let mut next = marks.clone();
        next.vote = Some(Vote::new_committed(term, me));
        durable_file::write(&self.dir.join("raft-vote.json"), &next)?;
        *marks = next;
        let first = last.map_or(0, |l| l.index + 1);
        let entries: Vec<RaftEntry> = payloads
            .into_iter()
            .zip(first..)
            .map(|(payload, index)| RaftEntry {
                log_id: LogId::new(CommittedLeaderId::new(term, me), index),
                payload,
            })
            .collect();
        self.file.lock().append(&entries)?;
        let ids = entries.iter().map(|e| e.log_id).collect();
        self.entries
            .write()
            .extend(entries.into_iter().map(|e| (e.log_id.index, e)));
        Ok(ids)
    }

    /// Store the vote file with `change` applied, durably.
    async fn update_marks(
        &self,
        change: impl FnOnce(&mut VoteFile) + Send + 'static,
    ) -> io::Result<()> {
        let marks = self.marks.clone();
        let path = self.dir.join("raft-vote.json");
        blocking(move || {
            let mut m = marks.lock();
            let mut next = m.clone();
            change(&mut next);
            durable_file::write(&path, &next)?;
            *m = next;
            Ok(())
        })
        .await
    }
}

/// Run file I/O on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(io::Error::other)?
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<RaftEntry>, StorageError<NodeId>> {
        Ok(self
            .entries
            .read()
            .range(range)
            .map(|(_, e)| e.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let last_purged_log_id = self.marks.lock().last_purged;
        Ok(LogState {
            last_purged_log_id,
            last_log_id: self.last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let vote = *vote;
        self.update_marks(move |m| m.vote = Some(vote))
            .await
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.marks.lock().vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        let slot = self.committed.clone();
        let path = self.dir.join("raft-committed.json");
        blocking(move || {
            // A hint: openraft re-derives the commit index when it is lost.
            durable_file::write_hint(&path, &committed)?;
            *slot.lock() = committed;
            Ok(())
        })
        .await
        .map_err(|e| StorageIOError::write(&e).into())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(*self.committed.lock())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = RaftEntry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<RaftEntry> = entries.into_iter().collect();
        let file = self.file.clone();
        let (written, entries) = blocking(move || Ok((file.lock().append(&entries), entries)))
            .await
            .map_err(|e| StorageIOError::write_logs(&e))?;
        if let Err(e) = written {
            let err = StorageIOError::write_logs(&e);
            callback.log_io_completed(Err(e));
            return Err(err.into());
        }
        self.entries
            .write()
            .extend(entries.into_iter().map(|e| (e.log_id.index, e)));
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.entries.write().split_off(&log_id.index);
        let file = self.file.clone();
        blocking(move || file.lock().truncate(log_id.index))
            .await
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        // The marker first: after a crash between the two steps, entries up
        // to it are ignored on open; the other order would leave a hole.
        self.update_marks(move |m| m.last_purged = Some(log_id))
            .await
            .map_err(|e| StorageIOError::write_logs(&e))?;
        let kept: Vec<RaftEntry> = {
            let mut entries = self.entries.write();
            *entries = entries.split_off(&(log_id.index + 1));
            entries.values().cloned().collect()
        };
        let file = self.file.clone();
        blocking(move || file.lock().rewrite(&kept))
            .await
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }
}
