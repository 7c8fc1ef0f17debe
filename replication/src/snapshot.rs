//! A shard's snapshot: what a node needs to go on from a log index without
//! the Raft log entries before it, which are purged behind it.
//!
//! The records themselves are already in the node's topic logs, so a
//! snapshot holds only positions and ids, never records ([`SnapshotData`]):
//! the applied marker (last applied log id, membership, each topic's next
//! offset and epoch) and the idempotence window's contents. Its size is
//! bounded by the shard's topics and the window (`dedup_window` ids), not
//! by the traffic.
//!
//! The latest snapshot (built here or installed from the leader) is kept in
//! `sm-snapshot.json` next to `sm-applied.json`, stored durably (temp file,
//! fsync, rename, fsync of the directory) before openraft hears of it:
//! openraft purges the Raft log behind it, and after a restart both
//! `get_current_snapshot` and the idempotence window start from it.
//!
//! Installing a snapshot ([`install`]) brings each topic of the shard to
//! the snapshot's position: a topic with another epoch (a forced new epoch
//! happened) is deleted, a missing one is created with the snapshot's
//! epoch, and records the node lacks are fetched from a peer
//! ([`crate::transfer`]). Only then are the marker and the window replaced.

use crate::dedup::WindowEntry;
use crate::durable_file;
use crate::state_machine::{Applied, StateMachine};
use crate::types::{NodeId, TypeConfig};
use openraft::storage::Snapshot;
use openraft::{BasicNode, SnapshotMeta};
use serde::{Deserialize, Serialize};
use std::io::{self, Cursor};
use std::path::Path;
use wse_log::{Epoch, Log, Position};

/// What a snapshot holds (sent as JSON to a node that installs it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotData {
    /// The applied marker at the snapshot: topics' next offsets and epochs.
    pub applied: Applied,
    /// The idempotence window at the snapshot, oldest id first.
    #[serde(default)]
    pub window: Vec<WindowEntry>,
}

impl SnapshotData {
    /// The bytes sent to a follower.
    pub fn to_bytes(&self) -> io::Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(io::Error::other)
    }

    /// Read what [`Self::to_bytes`] wrote.
    pub fn from_bytes(bytes: &[u8]) -> io::Result<SnapshotData> {
        serde_json::from_slice(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

/// The latest snapshot, as `sm-snapshot.json` stores it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct StoredSnapshot {
    /// openraft's description (last log id, membership, id).
    pub(crate) meta: SnapshotMeta<NodeId, BasicNode>,
    /// The contents.
    pub(crate) data: SnapshotData,
}

impl StoredSnapshot {
    /// The snapshot in `path`, if one was stored.
    pub(crate) fn load(path: &Path) -> io::Result<Option<StoredSnapshot>> {
        durable_file::read(path)
    }

    /// Store it in `path`, durably: openraft purges the log behind it.
    pub(crate) fn save(&self, path: &Path) -> io::Result<()> {
        durable_file::write(path, self)
    }

    /// As openraft hands it out.
    pub(crate) fn to_snapshot(&self) -> io::Result<Snapshot<TypeConfig>> {
        Ok(Snapshot {
            meta: self.meta.clone(),
            snapshot: Box::new(Cursor::new(self.data.to_bytes()?)),
        })
    }
}

/// The id openraft shows for a snapshot of `applied`.
pub(crate) fn snapshot_id(applied: &Applied) -> String {
    match applied.last_applied {
        Some(l) => format!("{}-{}", l.leader_id, l.index),
        None => "empty".to_owned(),
    }
}

/// Take the snapshot `stored` on `sm`: bring every topic it names to its
/// position (fetching missing records from peers), then replace the marker,
/// the window and the stored snapshot. Returns once the records are local
/// and visible.
pub(crate) async fn install(sm: &StateMachine, stored: StoredSnapshot) -> io::Result<()> {
    let log = sm.log().clone();
    let applied = &stored.data.applied;
    for (topic, &next) in &applied.next_offsets {
        let epoch = applied.epochs.get(topic).copied();
        let have = {
            let (log, topic) = (log.clone(), topic.clone());
            tokio::task::spawn_blocking(move || prepare_topic(&log, &topic, epoch, next))
                .await
                .map_err(io::Error::other)??
        };
        if let (Some(epoch), true) = (epoch, have < next) {
            tracing::info!(
                topic,
                from = have,
                until = next,
                "snapshot install: fetching records"
            );
            let from = Position::new(epoch, have);
            sm.transfer()
                .pull(&log, topic, from, next, &stored.meta.last_membership)
                .await?;
        }
    }
    let sm = sm.clone();
    tokio::task::spawn_blocking(move || sm.adopt(stored))
        .await
        .map_err(io::Error::other)?
}

/// Make `topic` of `log` ready to receive the snapshot's records: delete it
/// if it has another epoch than the snapshot's (or the snapshot has none:
/// it started a new epoch and was not written since), create it with the
/// snapshot's epoch if it is missing. Returns the offset its next record
/// gets.
fn prepare_topic(log: &Log, topic: &str, epoch: Option<Epoch>, next: u64) -> io::Result<u64> {
    let here = log.position(topic);
    if let Some(h) = &here
        && Some(h.epoch) != epoch
    {
        tracing::warn!(topic, old = %h.epoch, "snapshot install: the topic starts another epoch");
        log.delete_topic(topic).map_err(io::Error::other)?;
    }
    match (log.position(topic), epoch) {
        (Some(h), _) => Ok(h.next_offset),
        (None, Some(epoch)) => {
            log.create_topic(topic, epoch).map_err(io::Error::other)?;
            Ok(log.position(topic).map_or(0, |p| p.next_offset))
        }
        (None, None) if next == 0 => Ok(0),
        (None, None) => Err(io::Error::other(format!(
            "snapshot names topic {topic:?} up to offset {next} without its epoch"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, LogId, StoredMembership};
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use wse_log::{LogConfig, RecordKind};

    fn data() -> SnapshotData {
        let log_id = LogId::new(CommittedLeaderId::new(3, 1), 42);
        SnapshotData {
            applied: Applied {
                last_applied: Some(log_id),
                membership: StoredMembership::default(),
                next_offsets: BTreeMap::from([("t".to_owned(), 7)]),
                epochs: BTreeMap::from([("t".to_owned(), Epoch(9))]),
            },
            window: vec![WindowEntry {
                topic: "t".into(),
                id: "p-1".into(),
                position: Position::new(Epoch(9), 3),
            }],
        }
    }

    #[test]
    fn snapshot_data_round_trips_and_its_file_survives() {
        let d = data();
        assert_eq!(SnapshotData::from_bytes(&d.to_bytes().unwrap()).unwrap(), d);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sm-snapshot.json");
        assert!(StoredSnapshot::load(&path).unwrap().is_none());
        let stored = StoredSnapshot {
            meta: SnapshotMeta {
                last_log_id: d.applied.last_applied,
                last_membership: d.applied.membership.clone(),
                snapshot_id: snapshot_id(&d.applied),
            },
            data: d.clone(),
        };
        stored.save(&path).unwrap();
        let back = StoredSnapshot::load(&path).unwrap().unwrap();
        assert_eq!((back.meta, back.data), (stored.meta, d));
    }

    /// Reads another in-process node's log.
    struct FromLog(Arc<Log>);

    impl crate::transfer::Fetch for FromLog {
        fn fetch(
            &self,
            request: crate::transfer::FetchRequest,
        ) -> crate::net::BoxFuture<'static, Result<Vec<crate::FetchedRecord>, String>> {
            let got = crate::transfer::read_records(&self.0, &request.topic, request.from);
            Box::pin(async move { got })
        }
    }

    /// Installing a snapshot whose topic has another epoch here (a forced
    /// new epoch happened while this node was away) deletes the local
    /// topic, creates it with the snapshot's epoch, and fetches every
    /// record to the same offsets, payloads unchanged.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn install_replaces_a_topic_of_another_epoch_and_fetches_its_records() {
        let dir = tempfile::tempdir().unwrap();
        let open =
            |name: &str| Arc::new(Log::open(dir.path().join(name), LogConfig::default()).unwrap());
        let (source, here) = (open("source"), open("here"));
        source.create_topic("t", Epoch(7)).unwrap();
        for p in ["a", "b", "c"] {
            source
                .append("t", RecordKind::Message, p.as_bytes())
                .unwrap();
        }
        here.create_topic("t", Epoch(5)).unwrap();
        here.append("t", RecordKind::Message, b"old").unwrap();
        let sm = StateMachine::open(
            dir.path().join("raft"),
            here.clone(),
            crate::shard::verbatim(),
            10,
        )
        .unwrap()
        .with_fetch(Arc::new(FromLog(source.clone())));
        let mut d = data();
        d.applied.next_offsets = BTreeMap::from([("t".to_owned(), 3)]);
        d.applied.epochs = BTreeMap::from([("t".to_owned(), Epoch(7))]);
        let nodes = BTreeMap::from([(1, BasicNode::new("source"))]);
        let membership = openraft::Membership::new(vec![[1].into()], nodes);
        d.applied.membership = StoredMembership::new(None, membership);
        let stored = StoredSnapshot {
            meta: SnapshotMeta {
                last_log_id: d.applied.last_applied,
                last_membership: d.applied.membership.clone(),
                snapshot_id: snapshot_id(&d.applied),
            },
            data: d.clone(),
        };
        install(&sm, stored).await.unwrap();
        let p = here.position("t").unwrap();
        assert_eq!((p.epoch, p.next_offset), (Epoch(7), 3));
        let read = |log: &Log| {
            let at = Position::new(Epoch(7), 0);
            let batch = log.read("t", at, wse_log::ReadLimits::default()).unwrap();
            let records: Vec<_> = batch
                .records
                .iter()
                .map(|r| (r.offset(), r.payload()))
                .collect();
            records
        };
        assert_eq!(read(&here), read(&source));
        assert_eq!(sm.applied(), d.applied, "the marker is the snapshot's");
        assert_eq!(sm.view().window, d.window, "and so is the window");
    }

    /// A marker written before snapshots existed (no `epochs`) still
    /// loads; opening fills the epochs in from the topic logs.
    #[test]
    fn an_old_applied_marker_without_epochs_still_loads() {
        let mut value = serde_json::to_value(Applied {
            next_offsets: BTreeMap::from([("t".to_owned(), 1)]),
            ..Applied::default()
        })
        .unwrap();
        value.as_object_mut().unwrap().remove("epochs");
        let old = value.to_string();
        assert!(!old.contains("epochs"));
        let applied: Applied = serde_json::from_str(&old).unwrap();
        assert_eq!(applied.next_offsets["t"], 1);
        assert!(applied.epochs.is_empty());

        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(Log::open(dir.path().join("log"), LogConfig::default()).unwrap());
        log.create_topic("t", Epoch(5)).unwrap();
        log.append("t", RecordKind::Message, b"a").unwrap();
        let raft = dir.path().join("raft");
        std::fs::create_dir_all(&raft).unwrap();
        std::fs::write(raft.join("sm-applied.json"), old).unwrap();
        let sm = StateMachine::open(&raft, log, crate::shard::verbatim(), 0).unwrap();
        assert_eq!(sm.applied().epochs["t"], Epoch(5));
    }
}
