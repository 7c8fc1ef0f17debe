//! Forcing a shard's membership when a majority of its replicas lost
//! their data (disaster recovery; `wse cluster force-membership`).
//!
//! Raft cannot change a membership without a majority of the old one, so
//! this is done offline, on the stopped node that survived with the most
//! of the log: each of its shards gets a new term led by this node, whose
//! first entries are the forced membership (`members`, this node
//! included) and an entry that deletes every topic of the shard
//! ([`crate::Request::new_epoch`]), so each starts a new epoch when it is
//! written next. When the node starts again it
//! is the leader at once; with `members` = itself alone it commits both
//! entries by itself. Other survivors listed in `members` follow it
//! (their entries that this node lacks are cut).
//!
//! Why a new epoch: the lost majority may have committed (and clients may
//! have seen) entries this node never got. Without a new epoch, new
//! publishes would reuse their offsets with other records; with it, a
//! client recovering from any old position is told "not recovered". Every
//! replica, and every node added later (which replays the log, or installs
//! a snapshot carrying the topics' epochs), applies the same entry, so
//! epochs stay equal everywhere.

use crate::log_store::LogStore;
use crate::types::{NodeId, Request};
use openraft::{BasicNode, EntryPayload, LogId, Membership};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

/// Why a membership could not be forced.
#[derive(Debug, thiserror::Error)]
pub enum ForceError {
    /// The members do not name this node (it must lead the new term).
    #[error("the forced members must include this node ({0})")]
    NotAMember(NodeId),
    /// A shard directory holds no Raft log (never ran).
    #[error("{} has no Raft log: nothing to force", .0.display())]
    NoLog(PathBuf),
    /// No `shard-<n>` directory under the data directory.
    #[error("no shard directories under {}", .0.display())]
    NoShards(PathBuf),
    /// Reading or writing the Raft files failed.
    #[error("{}: {source}", dir.display())]
    Io {
        /// The shard directory.
        dir: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// What was written to one shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forced {
    /// The shard.
    pub shard: u32,
    /// The forced membership entry.
    pub membership: LogId<NodeId>,
    /// The entry that starts the new epochs (the next one).
    pub new_epoch: LogId<NodeId>,
}

/// Force `members` on every shard of the stopped node `me` whose log
/// directory is `data_dir` (shards in `<data_dir>/cluster/shard-<n>/`).
pub fn force_node(
    data_dir: &Path,
    me: NodeId,
    members: &BTreeMap<NodeId, BasicNode>,
) -> Result<Vec<Forced>, ForceError> {
    let root = data_dir.join("cluster");
    let io = |source| ForceError::Io {
        dir: root.clone(),
        source,
    };
    let mut shards: Vec<(u32, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(&root).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let number = name.to_str().and_then(|n| n.strip_prefix("shard-"));
        if let Some(shard) = number.and_then(|n| n.parse().ok()) {
            shards.push((shard, entry.path()));
        }
    }
    if shards.is_empty() {
        return Err(ForceError::NoShards(root));
    }
    shards.sort();
    shards
        .into_iter()
        .map(|(shard, dir)| force_shard(&dir, shard, me, members))
        .collect()
}

/// Force `members` on the shard whose Raft files are in `dir`.
pub fn force_shard(
    dir: &Path,
    shard: u32,
    me: NodeId,
    members: &BTreeMap<NodeId, BasicNode>,
) -> Result<Forced, ForceError> {
    if !members.contains_key(&me) {
        return Err(ForceError::NotAMember(me));
    }
    let io = |source| ForceError::Io {
        dir: dir.to_owned(),
        source,
    };
    let store = LogStore::open(dir).map_err(io)?;
    if store.last_log_id().is_none() {
        return Err(ForceError::NoLog(dir.to_owned()));
    }
    let voters: BTreeSet<NodeId> = members.keys().copied().collect();
    let membership = Membership::new(vec![voters], members.clone());
    let epoch = Request {
        publishes: Vec::new(),
        new_epoch: true,
    };
    let ids = store
        .force_new_term(
            me,
            vec![
                EntryPayload::Membership(membership),
                EntryPayload::Normal(epoch),
            ],
        )
        .map_err(io)?;
    tracing::warn!(shard, term = ids[0].leader_id.term, "membership forced");
    Ok(Forced {
        shard,
        membership: ids[0],
        new_epoch: ids[1],
    })
}
