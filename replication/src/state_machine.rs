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
//! A snapshot here is positions only: the applied marker. Sending the
//! records themselves (segment transfer) is a later step, so a node can only
//! install a snapshot whose records it already has; [`crate::Shard`]
//! configures openraft never to build snapshots or purge the Raft log, so a
//! node that is behind always catches up from the log.

// openraft's traits fix the error type (`StorageError`, large); boxing it
// here would only unbox it again at the trait boundary.
#![allow(clippy::result_large_err)]

use crate::dedup::Dedup;
use crate::durable_file;
use crate::log_file::RaftEntry;
use crate::types::{NodeId, PublishKind, Receipt, Request, TypeConfig};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, EntryPayload, LogId, RaftSnapshotBuilder, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::sync::Arc;
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
}

/// A snapshot kept in memory to be sent (a later step stores it).
#[derive(Clone)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: Vec<u8>,
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
    /// The last snapshot built or installed.
    snapshot: Arc<Mutex<Option<StoredSnapshot>>>,
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
        let applied: Applied = durable_file::read_hint(&marker)?.unwrap_or_default();
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
            snapshot: Arc::new(Mutex::new(None)),
        })
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

    /// Build the idempotence window again after a restart from `entries`,
    /// the Raft log from its start: every entry up to the last applied one
    /// goes through the window exactly as [`Self::apply_request`] did (the
    /// same ids suppressed, the same ones evicted), without appending. The
    /// offsets follow by counting: the `k`-th record the shard stored in a
    /// topic, of `n` in all, is at `next_offset - n + k`.
    pub fn rebuild_window<'a>(&self, entries: impl IntoIterator<Item = &'a RaftEntry>) {
        let applied = self.applied();
        let Some(last) = applied.last_applied else {
            return;
        };
        let mut dedup = self.dedup.lock();
        let mut stored: BTreeMap<&str, u64> = BTreeMap::new();
        for entry in entries
            .into_iter()
            .take_while(|e| e.log_id.index <= last.index)
        {
            let EntryPayload::Normal(request) = &entry.payload else {
                continue;
            };
            if request.new_epoch {
                dedup.clear();
                stored.clear();
                continue;
            }
            for p in &request.publishes {
                if p.id
                    .as_deref()
                    .is_some_and(|id| dedup.get(&p.topic, id).is_some())
                {
                    continue;
                }
                let k = stored.entry(p.topic.as_str()).or_default();
                if let Some(id) = &p.id {
                    // Its index among the topic's records, for now.
                    dedup.insert(&p.topic, id, Position::new(Epoch(0), *k));
                }
                *k += 1;
            }
        }
        dedup.map_positions(|topic, counted| {
            let n = stored.get(topic).copied().unwrap_or(0);
            let next = applied
                .next_offsets
                .get(topic)
                .copied()
                .unwrap_or(FIRST_OFFSET);
            let epoch = self.log.position(topic).map_or(Epoch(0), |p| p.epoch);
            Position::new(epoch, (next + counted.offset).saturating_sub(n))
        });
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

    /// Take the snapshot `applied`, if this node holds its records.
    fn install_blocking(&self, applied: Applied) -> io::Result<()> {
        for (topic, &next) in &applied.next_offsets {
            let have = self
                .log
                .position(topic)
                .map_or(FIRST_OFFSET, |p| p.next_offset);
            if have < next {
                return Err(io::Error::other(format!(
                    "snapshot needs topic {topic:?} up to offset {next}, this node has {have}: segment transfer is not implemented yet"
                )));
            }
        }
        self.store(applied)
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
        let applied = self.applied();
        let data =
            serde_json::to_vec(&applied).map_err(|e| StorageIOError::read_state_machine(&e))?;
        let snapshot_id = match applied.last_applied {
            Some(l) => format!("{}-{}", l.leader_id, l.index),
            None => "empty".to_owned(),
        };
        let meta = SnapshotMeta {
            last_log_id: applied.last_applied,
            last_membership: applied.membership,
            snapshot_id,
        };
        *self.snapshot.lock() = Some(StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        });
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
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
        let data = snapshot.into_inner();
        let signature = Some(meta.signature());
        let mut applied: Applied = serde_json::from_slice(&data)
            .map_err(|e| StorageIOError::read_snapshot(signature.clone(), &e))?;
        applied.last_applied = meta.last_log_id;
        applied.membership = meta.last_membership.clone();
        let sm = self.clone();
        blocking(move || {
            sm.install_blocking(applied)
                .map_err(|e| StorageIOError::write_snapshot(signature, &e).into())
        })
        .await?;
        *self.snapshot.lock() = Some(StoredSnapshot {
            meta: meta.clone(),
            data,
        });
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        Ok(self.snapshot.lock().clone().map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
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
