//! openraft's state machine ([`RaftStateMachine`]) for one shard: committed
//! entries, in log order, become records of the node's topic logs.
//!
//! # Applying exactly once
//!
//! A batch of entries is applied by appending each publish to its topic in
//! the node's [`wse_log::Log`], waiting until the appends are visible (under
//! `always`: fsynced), and only then storing the applied marker
//! (`sm-applied.json`: the last applied log id, the membership, and the next
//! offset of every topic the shard wrote). A crash between the appends and
//! the marker leaves records the marker does not know; after the restart
//! openraft applies those entries again. The marker's offsets tell where
//! each publish must land: when the topic already holds that offset, the
//! record is there from before the crash (a topic's visible records survive
//! as a prefix, and only this state machine writes replicated topics), so
//! it is not appended again.
//!
//! # Snapshots
//!
//! openraft builds a snapshot every `snapshot_every` applied entries and
//! then purges the Raft log behind it (keeping `snapshot_keep` entries for
//! followers slightly behind). A snapshot is positions and ids only (see
//! [`crate::snapshot`]): the applied marker, with each topic's epoch, and
//! the idempotence window; it is stored in `sm-snapshot.json`. A batch is
//! applied under a gate the snapshot builder also takes, so a snapshot
//! never sees the window of a half-applied batch. A node that installs a
//! snapshot fetches the records it lacks from a peer ([`crate::transfer`]);
//! after a restart the window is rebuilt from the latest snapshot and the
//! entries after it.

// openraft's traits fix the error type (`StorageError`, large); boxing it
// here would only unbox it again at the trait boundary.
#![allow(clippy::result_large_err)]

use crate::dedup::Dedup;
use crate::durable_file;
use crate::log_file::RaftEntry;
use crate::snapshot::{self, SnapshotData, StoredSnapshot};
use crate::transfer::{Fetch, NoFetch, Transfer};
use crate::types::{NodeId, PublishKind, Receipt, Request, TypeConfig};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, EntryPayload, LogId, RaftMetrics, RaftSnapshotBuilder, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::watch;
use wse::cluster::RecordEncoder;
use wse_log::{Appended, Epoch, Log, Position, RecordKind};

/// The offset wse-log gives the first record of a new topic.
const FIRST_OFFSET: u64 = 0;

/// The epoch of a topic the replicated log creates: a function of the
/// topic and of the committed entry that first wrote it, so every replica
/// derives the same one, and a topic deleted and written again later gets
/// another (never 0, which reads as "no epoch" in places).
pub(crate) fn topic_epoch(topic: &str, log_id: &LogId<NodeId>) -> Epoch {
    let mut h = crc32fast::Hasher::new();
    h.update(topic.as_bytes());
    h.update(&log_id.leader_id.term.to_le_bytes());
    h.update(&log_id.index.to_le_bytes());
    Epoch(h.finalize().max(1))
}

/// What has been applied: stored in `sm-applied.json`, and a snapshot's data.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// The last entry applied.
    pub last_applied: Option<LogId<NodeId>>,
    /// The membership of the last applied membership entry.
    pub membership: StoredMembership<NodeId, BasicNode>,
    /// For each topic this shard wrote, the offset its next record gets.
    pub next_offsets: BTreeMap<String, u64>,
    /// For each topic this shard holds now, its epoch: a node installing a
    /// snapshot creates a topic it lacks with it. Absent from markers
    /// written before snapshots existed (filled in from the log on open).
    #[serde(default)]
    pub epochs: BTreeMap<String, Epoch>,
}

/// The state machine of one shard on one node. Cheap to clone (the
/// snapshot builder is a clone).
#[derive(Clone)]
pub struct StateMachine {
    /// The node's topic logs, shared with the server.
    log: Arc<Log>,
    /// How a publish becomes its record's bytes.
    encode: RecordEncoder,
    /// Publish ids recently stored (see [`crate::dedup`]).
    dedup: Arc<Mutex<Dedup>>,
    /// `<dir>/sm-applied.json`.
    marker: PathBuf,
    /// What is applied, as the marker stores it.
    applied: Arc<Mutex<Applied>>,
    /// Held while a batch is applied and while a snapshot's contents are
    /// taken: the builder runs beside `apply`, and must not see the window
    /// of a half-applied batch.
    gate: Arc<Mutex<()>>,
    /// `<dir>/sm-snapshot.json`.
    snapshot_file: PathBuf,
    /// The last snapshot built or installed, as stored.
    snapshot: Arc<Mutex<Option<StoredSnapshot>>>,
    /// Where records this node lacks come from when it installs a snapshot.
    transfer: Arc<Transfer>,
}

impl StateMachine {
    /// Open the state machine of a shard whose files are in `dir`, applying
    /// to `log`, encoding each record with `encode`.
    /// `dedup_window` publish ids are remembered (0: none); call
    /// [`StateMachine::rebuild_window`] with the Raft log before applying.
    pub fn open(
        dir: impl AsRef<Path>,
        log: Arc<Log>,
        encode: RecordEncoder,
        dedup_window: usize,
    ) -> io::Result<StateMachine> {
        std::fs::create_dir_all(dir.as_ref())?;
        let marker = dir.as_ref().join("sm-applied.json");
        let snapshot_file = dir.as_ref().join("sm-snapshot.json");
        let mut applied: Applied = durable_file::read_hint(&marker)?.unwrap_or_default();
        let snapshot = StoredSnapshot::load(&snapshot_file)?;
        if let Some(s) = &snapshot
            && s.data.applied.last_applied > applied.last_applied
        {
            // The marker is a hint and may go back after an OS crash; the
            // snapshot is durable, and the log before it may be purged.
            tracing::warn!(marker = ?applied.last_applied, snapshot = ?s.meta.last_log_id, "applied marker behind the snapshot: starting from the snapshot");
            applied = s.data.applied.clone();
        }
        for topic in applied.next_offsets.keys() {
            if let (None, Some(p)) = (applied.epochs.get(topic), log.position(topic)) {
                applied.epochs.insert(topic.clone(), p.epoch);
            }
        }
        for (topic, &next) in &applied.next_offsets {
            let have = log.position(topic).map_or(FIRST_OFFSET, |p| p.next_offset);
            if have < next {
                return Err(io::Error::other(format!(
                    "topic {topic:?} ends at offset {have} but {next} were applied: records were lost"
                )));
            }
        }
        Ok(StateMachine {
            log,
            encode,
            dedup: Arc::new(Mutex::new(Dedup::new(dedup_window))),
            marker,
            applied: Arc::new(Mutex::new(applied)),
            gate: Arc::new(Mutex::new(())),
            snapshot_file,
            snapshot: Arc::new(Mutex::new(snapshot)),
            transfer: Arc::new(Transfer::new(Arc::new(NoFetch))),
        })
    }

    /// Fetch the records a snapshot names and this node lacks through
    /// `fetch` (without it, installing such a snapshot fails).
    pub fn with_fetch(mut self, fetch: Arc<dyn Fetch>) -> StateMachine {
        self.transfer = Arc::new(Transfer::new(fetch));
        self
    }

    /// Follow the shard's Raft `metrics` (to fetch from its leader first).
    pub(crate) fn attach(&self, metrics: watch::Receiver<RaftMetrics<NodeId, BasicNode>>) {
        self.transfer.attach(metrics);
    }

    /// The node's topic logs.
    pub(crate) fn log(&self) -> &Arc<Log> {
        &self.log
    }

    /// The way to peers' records.
    pub(crate) fn transfer(&self) -> &Transfer {
        &self.transfer
    }

    /// What is applied now.
    pub fn applied(&self) -> Applied {
        self.applied.lock().clone()
    }

    /// Apply `entries` on the calling (blocking) thread; see the module doc.
    fn apply_blocking(
        &self,
        entries: Vec<RaftEntry>,
    ) -> Result<Vec<Receipt>, StorageError<NodeId>> {
        let _gate = self.gate.lock();
        let mut next = self.applied();
        let mut pending: BTreeMap<String, Appended> = BTreeMap::new();
        let mut receipts = Vec::with_capacity(entries.len());
        for entry in entries {
            if Some(entry.log_id) <= next.last_applied {
                receipts.push(Receipt::default());
                continue;
            }
            let receipt = match entry.payload {
                EntryPayload::Normal(request) if request.new_epoch => {
                    self.start_new_epochs(&entry.log_id, &mut next, &mut pending)
                        .map_err(|e| StorageIOError::apply(entry.log_id, &e))?;
                    Receipt::default()
                }
                EntryPayload::Normal(request) => self
                    .apply_request(&entry.log_id, &request, &mut next, &mut pending)
                    .map_err(|e| StorageIOError::apply(entry.log_id, &e))?,
                EntryPayload::Membership(m) => {
                    next.membership = StoredMembership::new(Some(entry.log_id), m);
                    Receipt::default()
                }
                EntryPayload::Blank => Receipt::default(),
            };
            next.last_applied = Some(entry.log_id);
            receipts.push(receipt);
        }
        for appended in pending.values() {
            appended
                .wait()
                .map_err(|e| StorageIOError::write_state_machine(&e))?;
        }
        self.store(next)
            .map_err(|e| StorageIOError::write_state_machine(&e))?;
        Ok(receipts)
    }

    /// Append the publishes of `request` that are not there yet.
    fn apply_request(
        &self,
        log_id: &LogId<NodeId>,
        request: &Request,
        next: &mut Applied,
        pending: &mut BTreeMap<String, Appended>,
    ) -> Result<Receipt, wse_log::LogError> {
        let mut positions = Vec::with_capacity(request.publishes.len());
        let mut dedup = self.dedup.lock();
        for p in &request.publishes {
            if let Some(first) = p.id.as_deref().and_then(|id| dedup.get(&p.topic, id)) {
                positions.push(first);
                continue;
            }
            let expected = next
                .next_offsets
                .get(&p.topic)
                .copied()
                .unwrap_or(FIRST_OFFSET);
            let here = self.log.position(&p.topic);
            let position = match here {
                Some(h) if h.next_offset > expected => Position::new(h.epoch, expected),
                here => {
                    if here.is_none() {
                        // Every replica creates the topic with the same
                        // epoch, derived from the entry that first wrote it.
                        self.log
                            .create_topic(&p.topic, topic_epoch(&p.topic, log_id))?;
                    }
                    let payload = &p.payload;
                    let a = match p.kind {
                        PublishKind::Message => self.log.append_with(
                            &p.topic,
                            RecordKind::Message,
                            payload.len() + p.topic.len() + 48,
                            |position, b| (self.encode)(&p.topic, payload, position, b),
                        )?,
                        PublishKind::Presence => self.log.append_with(
                            &p.topic,
                            RecordKind::Presence,
                            payload.len(),
                            |_, b| b.extend_from_slice(payload),
                        )?,
                    };
                    let position = a.position;
                    pending.insert(p.topic.clone(), a);
                    position
                }
            };
            next.next_offsets
                .insert(p.topic.clone(), position.offset + 1);
            next.epochs.insert(p.topic.clone(), position.epoch);
            if let Some(id) = &p.id {
                dedup.insert(&p.topic, id, position);
            }
            positions.push(position);
        }
        Ok(Receipt { positions })
    }

    /// The entry `log_id` starts a new epoch for every topic of the shard
    /// (see [`Request::new_epoch`]): each topic is deleted, and the next
    /// entry that writes it creates it again with the epoch of that entry,
    /// as for any topic written for the first time, so every replica gets
    /// the same one (the log refuses an epoch a topic had before). The
    /// idempotence window forgets them.
    ///
    /// Crash safety: the appends before this entry are waited for and the
    /// marker is stored first, with this shard's topics at offset 0 and
    /// the previous entry as the last applied; a crash after it re-applies
    /// this entry, deleting what is left.
    fn start_new_epochs(
        &self,
        log_id: &LogId<NodeId>,
        next: &mut Applied,
        pending: &mut BTreeMap<String, Appended>,
    ) -> io::Result<()> {
        for (_, appended) in std::mem::take(pending) {
            appended.wait().map_err(io::Error::other)?;
        }
        for offset in next.next_offsets.values_mut() {
            *offset = FIRST_OFFSET;
        }
        next.epochs.clear();
        self.store(next.clone())?;
        for topic in next.next_offsets.keys() {
            self.log.delete_topic(topic).map_err(io::Error::other)?;
        }
        self.dedup.lock().clear();
        tracing::warn!(
            %log_id,
            topics = next.next_offsets.len(),
            "forced membership: every topic of the shard starts a new epoch"
        );
        Ok(())
    }

    /// Build the idempotence window again after a restart: from the
    /// latest snapshot's window, then every entry of `entries` (the Raft
    /// log) after the snapshot up to the last applied one goes through the
    /// window exactly as [`Self::apply_request`] did (the same ids
    /// suppressed, the same ones evicted), without appending. Offsets
    /// follow by counting on from the snapshot's next offsets, as applying
    /// did.
    pub fn rebuild_window<'a>(&self, entries: impl IntoIterator<Item = &'a RaftEntry>) {
        let applied = self.applied();
        let Some(last) = applied.last_applied else {
            return;
        };
        let base = self.snapshot.lock().as_ref().map(|s| s.data.clone());
        let mut dedup = self.dedup.lock();
        let (after, mut next) = match base {
            Some(b) => {
                dedup.restore(&b.window);
                (b.applied.last_applied, b.applied.next_offsets)
            }
            None => (None, BTreeMap::new()),
        };
        let after = after.map(|l| l.index);
        for entry in entries
            .into_iter()
            .filter(|e| Some(e.log_id.index) > after)
            .take_while(|e| e.log_id.index <= last.index)
        {
            let EntryPayload::Normal(request) = &entry.payload else {
                continue;
            };
            if request.new_epoch {
                dedup.clear();
                next.values_mut().for_each(|o| *o = FIRST_OFFSET);
                continue;
            }
            for p in &request.publishes {
                if p.id
                    .as_deref()
                    .is_some_and(|id| dedup.get(&p.topic, id).is_some())
                {
                    continue;
                }
                let offset = next.entry(p.topic.clone()).or_insert(FIRST_OFFSET);
                if let Some(id) = &p.id {
                    // After a new epoch the window holds only ids written
                    // since, all in the topic's current epoch.
                    let epoch = applied.epochs.get(&p.topic).copied().unwrap_or(Epoch(0));
                    dedup.insert(&p.topic, id, Position::new(epoch, *offset));
                }
                *offset += 1;
            }
        }
    }

    /// Store `applied` as the marker, then make it current. Not fsynced:
    /// a marker that goes back after an OS crash only makes entries apply
    /// again, which lands nothing twice (see the module doc), and fills in
    /// topic records an OS crash took under `interval`.
    fn store(&self, applied: Applied) -> io::Result<()> {
        durable_file::write_hint(&self.marker, &applied)?;
        *self.applied.lock() = applied;
        Ok(())
    }

    /// What a snapshot of the state now holds: the marker and the
    /// window, taken between two batches.
    pub(crate) fn view(&self) -> SnapshotData {
        let _gate = self.gate.lock();
        SnapshotData {
            applied: self.applied(),
            window: self.dedup.lock().entries(),
        }
    }

    /// Store `stored` durably and make it the current snapshot, unless a
    /// newer one is current (a build that ran beside an install).
    fn keep_snapshot(&self, stored: StoredSnapshot) -> io::Result<()> {
        let mut current = self.snapshot.lock();
        if current
            .as_ref()
            .is_some_and(|c| c.meta.last_log_id > stored.meta.last_log_id)
        {
            return Ok(());
        }
        stored.save(&self.snapshot_file)?;
        *current = Some(stored);
        Ok(())
    }

    /// Take an installed snapshot whose records are local now: its window,
    /// its marker, and it as the current snapshot.
    pub(crate) fn adopt(&self, stored: StoredSnapshot) -> io::Result<()> {
        let _gate = self.gate.lock();
        self.dedup.lock().restore(&stored.data.window);
        self.store(stored.data.applied.clone())?;
        self.keep_snapshot(stored)
    }
}

/// Run `f` on tokio's blocking pool: wse-log appends may block for room.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError<NodeId>> + Send + 'static,
) -> Result<T, StorageError<NodeId>> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StorageIOError::write_state_machine(&e))?
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let sm = self.clone();
        blocking(move || {
            let data = sm.view();
            let meta = SnapshotMeta {
                last_log_id: data.applied.last_applied,
                last_membership: data.applied.membership.clone(),
                snapshot_id: snapshot::snapshot_id(&data.applied),
            };
            let stored = StoredSnapshot { meta, data };
            let signature = Some(stored.meta.signature());
            let snapshot = stored
                .to_snapshot()
                .and_then(|s| sm.keep_snapshot(stored).map(|()| s))
                .map_err(|e| StorageIOError::write_snapshot(signature, &e))?;
            Ok(snapshot)
        })
        .await
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>>
    {
        let a = self.applied.lock();
        Ok((a.last_applied, a.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Receipt>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = RaftEntry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<RaftEntry> = entries.into_iter().collect();
        let sm = self.clone();
        blocking(move || sm.apply_blocking(entries)).await
    }

    async fn get_snapshot_builder(&mut self) -> StateMachine {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let signature = Some(meta.signature());
        let failed = |e: io::Error| StorageIOError::write_snapshot(signature.clone(), &e).into();
        let mut data = SnapshotData::from_bytes(snapshot.get_ref())
            .map_err(|e| StorageIOError::read_snapshot(signature.clone(), &e))?;
        data.applied.last_applied = meta.last_log_id;
        data.applied.membership = meta.last_membership.clone();
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        snapshot::install(self, stored).await.map_err(failed)
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let current = self.snapshot.lock().clone();
        current
            .map(|s| s.to_snapshot())
            .transpose()
            .map_err(|e| StorageIOError::read_snapshot(None, &e).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Publish;
    use openraft::{CommittedLeaderId, Entry};
    use wse_log::LogConfig;

    fn entry(index: u64, topic: &str, payload: &str) -> RaftEntry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(Request::new(vec![Publish::new(
                topic,
                payload.to_owned(),
            )])),
        }
    }

    /// A new-epoch entry deletes the shard's topics; the next write
    /// creates them under the epoch of its entry. After a crash right
    /// after its first marker (offsets 0, the previous entry applied) the
    /// state machine opens and applying it again does the same.
    #[test]
    fn a_new_epoch_entry_restarts_topics_and_survives_a_crash_in_between() {
        let dir = tempfile::tempdir().unwrap();
        let open_log =
            || Arc::new(Log::open(dir.path().join("log"), LogConfig::default()).unwrap());
        let reset = || Entry {
            log_id: LogId::new(CommittedLeaderId::new(2, 1), 3),
            payload: EntryPayload::Normal(Request {
                publishes: Vec::new(),
                new_epoch: true,
            }),
        };
        let open =
            |log| StateMachine::open(dir.path().join("raft"), log, crate::shard::verbatim(), 0);
        let log = open_log();
        let sm = open(log.clone()).unwrap();
        sm.apply_blocking(vec![entry(1, "t", "a"), entry(2, "t", "b")])
            .unwrap();
        let old = log.position("t").unwrap().epoch;
        sm.apply_blocking(vec![reset()]).unwrap();
        assert!(log.position("t").is_none(), "deleted");
        // The crash window: topics deleted, marker as stored before.
        let mut before = sm.applied();
        before.last_applied = Some(entry(2, "t", "b").log_id);
        durable_file::write(&sm.marker, &before).unwrap();
        drop(sm);
        log.close().unwrap();
        drop(log);
        let log = open_log();
        let sm = open(log.clone()).unwrap();
        let mut written = entry(4, "t", "c");
        written.log_id.leader_id = CommittedLeaderId::new(2, 1);
        let receipts = sm.apply_blocking(vec![reset(), written.clone()]).unwrap();
        let p = log.position("t").unwrap();
        let new = topic_epoch("t", &written.log_id);
        assert_ne!(new, old);
        assert_eq!((p.epoch, p.next_offset), (new, 1));
        assert_eq!(receipts[1].positions, vec![Position::new(new, 0)]);
    }

    /// A crash after the topic appends but before the marker: applying the
    /// same entries again after the restart appends nothing twice.
    #[test]
    fn re_apply_after_a_lost_marker_appends_nothing_twice() {
        let dir = tempfile::tempdir().unwrap();
        let open_log =
            || Arc::new(Log::open(dir.path().join("log"), LogConfig::default()).unwrap());
        let entries = || vec![entry(1, "t", "a"), entry(2, "u", "b"), entry(3, "t", "c")];
        let first = {
            let sm = StateMachine::open(
                dir.path().join("raft"),
                open_log(),
                crate::shard::verbatim(),
                0,
            )
            .unwrap();
            sm.apply_blocking(entries()[..1].to_vec()).unwrap();
            let before = durable_file::read::<Applied>(&sm.marker).unwrap();
            let receipts = sm.apply_blocking(entries()[1..].to_vec()).unwrap();
            // The crash window: records durable, marker still the old one.
            durable_file::write(&sm.marker, &before).unwrap();
            receipts
        };
        let log = open_log();
        let sm = StateMachine::open(
            dir.path().join("raft"),
            log.clone(),
            crate::shard::verbatim(),
            0,
        )
        .unwrap();
        let again = sm.apply_blocking(entries()[1..].to_vec()).unwrap();
        assert_eq!(again, first, "the same positions");
        assert_eq!(log.position("t").unwrap().next_offset, FIRST_OFFSET + 2);
        assert_eq!(log.position("u").unwrap().next_offset, FIRST_OFFSET + 1);
        assert_eq!(sm.applied().last_applied.map(|l| l.index), Some(3));
    }

    /// An OS crash can leave the unfsynced marker empty: it reads as
    /// absent, every entry applies again from the start, and nothing is
    /// stored twice.
    #[test]
    fn a_torn_marker_reads_as_absent_and_re_applying_everything_stores_nothing_twice() {
        let dir = tempfile::tempdir().unwrap();
        let open_log =
            || Arc::new(Log::open(dir.path().join("log"), LogConfig::default()).unwrap());
        let open_sm = |log| {
            StateMachine::open(dir.path().join("raft"), log, crate::shard::verbatim(), 0).unwrap()
        };
        let entries = || vec![entry(1, "t", "a"), entry(2, "u", "b"), entry(3, "t", "c")];
        let first = {
            let sm = open_sm(open_log());
            let receipts = sm.apply_blocking(entries()).unwrap();
            std::fs::write(&sm.marker, b"").unwrap();
            receipts
        };
        let log = open_log();
        let sm = open_sm(log.clone());
        assert_eq!(sm.applied().last_applied, None, "taken as absent");
        assert_eq!(sm.apply_blocking(entries()).unwrap(), first);
        assert_eq!(log.position("t").unwrap().next_offset, FIRST_OFFSET + 2);
        assert_eq!(log.position("u").unwrap().next_offset, FIRST_OFFSET + 1);
    }
}
