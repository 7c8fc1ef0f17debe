//! Changing who replicates the shards while the cluster runs: adding a
//! node, removing one, and deciding at a node's first start whether it
//! founds the cluster or joins one.
//!
//! A change is asked of any node (the `wse cluster` tool, or the server
//! through [`crate::ClusterNode`]); that node applies it to every shard,
//! each shard on its own and concurrently: where this node leads the shard
//! it changes the membership itself, elsewhere it sends the change to the
//! shard's leader (`ShardMembership` RPC), as publishes are forwarded. A
//! leader never passes such a request on: it answers "not the leader" and
//! the asking node retries with the leader it names.
//!
//! - **Add** (`id`, `addr`): `add_learner` (the learner catches up from the
//!   Raft log, which is never purged), wait until it holds the entry that
//!   added it, then `change_membership` to make it a voter. A node that is
//!   already a voter at that address is left as it is; one known at
//!   another address is refused (remove it first).
//! - **Remove** (`id`): `change_membership` without it (not kept as a
//!   learner). Removing the leader is allowed: it steps down once the new
//!   membership is committed. Removing the last voter is refused.
//!
//! Both are idempotent, so an operator retries a change that failed on
//! some shards with the same command. A shard left with the new node as a
//! learner (it did not catch up in time) keeps replicating to it; the next
//! `add` promotes it.
//!
//! # Joining
//!
//! At its first start a node initializes its shards with `--cluster-peers`
//! only when it founds the cluster. It joins instead (initializes nothing;
//! a member gets the log from the leaders, a new node waits for an `add`)
//! when started with `--cluster-join` (`cluster.join`), or when a node of
//! its peer list answers with a shard that has a membership (see
//! [`founds_cluster`]).

use crate::net::message::{PeerRequest, PeerResponse};
use crate::net::{NetError, NetOptions, Peers, call_as_tool};
use crate::node::member_leader;
use crate::types::{NodeId, Raft};
use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, RaftMetrics};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Pause before a shard's change is tried again (no leader reachable, or a
/// previous change still in progress).
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// How long a starting node waits for its peers' answers before it decides
/// whether it founds the cluster.
const JOIN_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// A member as a shard's membership stores it: its peer address.
pub type Node = BasicNode;

/// A change of every shard's membership.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipChange {
    /// Make node `id`, reachable at `addr` (its peer address), a voter.
    Add {
        /// The node's id.
        id: NodeId,
        /// Its peer address, host:port.
        addr: String,
    },
    /// Take node `id` out of the membership.
    Remove {
        /// The node's id.
        id: NodeId,
    },
}

/// What a change did to one shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The membership changed.
    Changed,
    /// It already was as asked (the node was a voter at that address, or
    /// was not a member).
    Unchanged,
}

/// Why a change failed on one shard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ShardError {
    /// The node asked does not lead the shard (only between nodes; the
    /// asking node retries with `leader`).
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader the refusing node knows of.
        leader: Option<NodeId>,
    },
    /// No leader known in time (an election, or a majority is lost: see
    /// `force-membership`), or it could not be reached.
    #[error("no reachable leader: {0}")]
    Unavailable(String),
    /// The change was not done in time (the new node did not catch up, or
    /// the new membership did not commit). A new learner stays a learner.
    #[error("not done within {after_ms} ms: {what}")]
    Timeout {
        /// What was waited for.
        what: String,
        /// How long.
        after_ms: u64,
    },
    /// The change contradicts the membership (the id is a member at
    /// another address; it is the last voter).
    #[error("refused: {0}")]
    Conflict(String),
    /// openraft refused the change.
    #[error("rejected by raft: {0}")]
    Rejected(String),
}

impl ShardError {
    /// True when trying again (at the leader named, or after a pause) may
    /// succeed.
    fn retryable(&self) -> bool {
        matches!(
            self,
            ShardError::NotLeader { .. } | ShardError::Unavailable(_)
        )
    }
}

/// The outcome of a change on every shard.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Shards whose membership changed.
    pub changed: Vec<u32>,
    /// Shards that already were as asked.
    pub unchanged: Vec<u32>,
}

/// Why a change failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum MembershipError {
    /// The request itself is wrong (node id 0, an empty address).
    #[error("invalid membership change: {0}")]
    Invalid(String),
    /// Some shards failed (the others are done: `done`). The change is
    /// idempotent: run it again.
    #[error("{} shard(s) failed ({}), {} done", failed.len(), describe(failed), done.changed.len() + done.unchanged.len())]
    Shards {
        /// Each failed shard and why.
        failed: Vec<(u32, ShardError)>,
        /// The shards that succeeded.
        done: Report,
    },
    /// The node asked could not be reached or did not answer (from the
    /// tool's side only).
    #[error("cannot ask the node: {0}")]
    Net(String),
}

fn describe(failed: &[(u32, ShardError)]) -> String {
    let parts: Vec<String> = failed
        .iter()
        .map(|(s, e)| format!("shard {s}: {e}"))
        .collect();
    parts.join("; ")
}

/// A node's handle for changing its shards' memberships. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Membership {
    /// This node.
    me: NodeId,
    /// Each shard's Raft, by shard number.
    rafts: Vec<Raft>,
    /// To reach the leaders of the shards this node does not lead.
    peers: Peers,
}

impl Membership {
    pub(crate) fn new(me: NodeId, rafts: Vec<Raft>, peers: Peers) -> Membership {
        Membership { me, rafts, peers }
    }

    /// Apply `change` to every shard, each through its leader, within
    /// `timeout`.
    pub(crate) async fn change(
        &self,
        change: MembershipChange,
        timeout: Duration,
    ) -> Result<Report, MembershipError> {
        validate(&change)?;
        let deadline = Instant::now() + timeout;
        let mut tasks = JoinSet::new();
        for shard in 0..self.rafts.len() as u32 {
            let this = self.clone();
            let change = change.clone();
            tasks.spawn(async move {
                let r = this.change_shard(shard, &change, deadline).await;
                (shard, r)
            });
        }
        let mut done = Report::default();
        let mut failed = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((s, Ok(Outcome::Changed))) => done.changed.push(s),
                Ok((s, Ok(Outcome::Unchanged))) => done.unchanged.push(s),
                Ok((s, Err(e))) => failed.push((s, e)),
                Err(e) => return Err(MembershipError::Invalid(format!("task failed: {e}"))),
            }
        }
        done.changed.sort_unstable();
        done.unchanged.sort_unstable();
        failed.sort_by_key(|(s, _)| *s);
        if failed.is_empty() {
            Ok(done)
        } else {
            Err(MembershipError::Shards { failed, done })
        }
    }

    /// Apply `change` to `shard` through its leader, retrying while no
    /// leader answers, until `deadline`.
    async fn change_shard(
        &self,
        shard: u32,
        change: &MembershipChange,
        deadline: Instant,
    ) -> Result<Outcome, ShardError> {
        let raft = &self.rafts[shard as usize];
        let mut hint: Option<NodeId> = None;
        loop {
            let leader = match hint.take() {
                Some(l) => Some(l),
                None => wait_for_leader(raft, deadline).await,
            };
            let result = match leader {
                None => Err(ShardError::Unavailable("no leader elected".into())),
                Some(l) if l == self.me => self.change_here(shard, change, deadline).await,
                Some(l) => self.ask_leader(l, shard, change, deadline).await,
            };
            match result {
                Err(ShardError::NotLeader { leader: next }) if next != leader => hint = next,
                Err(e) if e.retryable() && Instant::now() + RETRY_PAUSE < deadline => {}
                other => return other,
            }
            if hint.is_none() {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }

    /// Send `change` of `shard` to its leader `leader`.
    async fn ask_leader(
        &self,
        leader: NodeId,
        shard: u32,
        change: &MembershipChange,
        deadline: Instant,
    ) -> Result<Outcome, ShardError> {
        let m = self.rafts[shard as usize].metrics().borrow().clone();
        let Some(addr) = address_of(&m, leader) else {
            return Err(ShardError::Unavailable(format!(
                "leader {leader} has no address in the membership"
            )));
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let request = PeerRequest::ShardMembership {
            shard,
            change: change.clone(),
            timeout_ms: millis(left),
        };
        // The leader answers by its deadline; give the answer time to come.
        let wait = left + Duration::from_secs(1);
        match self.peers.call(leader, &addr, &request, wait).await {
            Ok(PeerResponse::ShardMembership(r)) => r,
            Ok(PeerResponse::Failed(why)) => Err(ShardError::Unavailable(why)),
            Ok(_) => Err(ShardError::Unavailable("unexpected answer".into())),
            Err(e) => Err(ShardError::Unavailable(format!("leader {leader}: {e}"))),
        }
    }

    /// Apply `change` to `shard`, which this node must lead (a peer's
    /// `ShardMembership` request lands here).
    pub(crate) async fn change_here(
        &self,
        shard: u32,
        change: &MembershipChange,
        deadline: Instant,
    ) -> Result<Outcome, ShardError> {
        let Some(raft) = self.rafts.get(shard as usize) else {
            return Err(ShardError::Unavailable(format!("no shard {shard}")));
        };
        let m = raft.metrics().borrow().clone();
        if m.current_leader != Some(self.me) {
            return Err(ShardError::NotLeader {
                leader: m.current_leader,
            });
        }
        match change {
            MembershipChange::Add { id, addr } => add(raft, &m, *id, addr, deadline).await,
            MembershipChange::Remove { id } => remove(raft, &m, *id, deadline).await,
        }
    }
}

/// Refuse what no shard could do.
fn validate(change: &MembershipChange) -> Result<(), MembershipError> {
    let invalid = |m: &str| Err(MembershipError::Invalid(m.to_owned()));
    match change {
        MembershipChange::Add { id: 0, .. } | MembershipChange::Remove { id: 0 } => {
            invalid("node id 0 is reserved for tools")
        }
        MembershipChange::Add { addr, .. } if addr.trim().is_empty() => {
            invalid("the new node's peer address is empty")
        }
        _ => Ok(()),
    }
}

/// Add `id` at `addr` to the shard `raft` leads: learner, catch up, voter.
async fn add(
    raft: &Raft,
    m: &RaftMetrics<NodeId, BasicNode>,
    id: NodeId,
    addr: &str,
    deadline: Instant,
) -> Result<Outcome, ShardError> {
    let membership = m.membership_config.membership();
    if let Some(node) = membership.get_node(&id)
        && node.addr != addr
    {
        return Err(ShardError::Conflict(format!(
            "node {id} is a member at {}; remove it first",
            node.addr
        )));
    }
    if membership.voter_ids().any(|v| v == id) {
        return Ok(Outcome::Unchanged);
    }
    let started = Instant::now();
    let added = in_time(
        deadline,
        "adding the learner",
        raft.add_learner(id, BasicNode::new(addr), false),
    )
    .await?
    .map_err(write_error)?;
    let at = added.log_id.index;
    let caught_up = raft
        .wait(Some(deadline.saturating_duration_since(Instant::now())))
        .metrics(
            |m| {
                m.replication
                    .as_ref()
                    .and_then(|r| r.get(&id).copied().flatten())
                    .is_some_and(|matched| matched.index >= at)
                    || m.current_leader != Some(m.id)
            },
            "the learner caught up",
        )
        .await
        .map_err(|_| ShardError::Timeout {
            what: format!("node {id} catching up as a learner (it stays a learner)"),
            after_ms: millis(started.elapsed()),
        })?;
    if caught_up.current_leader != Some(caught_up.id) {
        return Err(ShardError::NotLeader {
            leader: caught_up.current_leader,
        });
    }
    let voters = ChangeMembers::AddVoterIds(BTreeSet::from([id]));
    in_time(
        deadline,
        "committing the new membership",
        raft.change_membership(voters, true),
    )
    .await?
    .map_err(write_error)?;
    Ok(Outcome::Changed)
}

/// Take `id` out of the shard `raft` leads.
async fn remove(
    raft: &Raft,
    m: &RaftMetrics<NodeId, BasicNode>,
    id: NodeId,
    deadline: Instant,
) -> Result<Outcome, ShardError> {
    let membership = m.membership_config.membership();
    if membership.get_node(&id).is_none() {
        return Ok(Outcome::Unchanged);
    }
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    let change = if voters.contains(&id) {
        if voters.len() == 1 {
            return Err(ShardError::Conflict(format!(
                "node {id} is the shard's last voter"
            )));
        }
        ChangeMembers::RemoveVoters(BTreeSet::from([id]))
    } else {
        ChangeMembers::RemoveNodes(BTreeSet::from([id]))
    };
    in_time(
        deadline,
        "committing the new membership",
        raft.change_membership(change, false),
    )
    .await?
    .map_err(write_error)?;
    Ok(Outcome::Changed)
}

/// `work`, unless `deadline` passes first.
async fn in_time<T>(
    deadline: Instant,
    what: &str,
    work: impl Future<Output = T>,
) -> Result<T, ShardError> {
    let started = Instant::now();
    tokio::time::timeout_at(deadline, work)
        .await
        .map_err(|_| ShardError::Timeout {
            what: what.to_owned(),
            after_ms: millis(started.elapsed()),
        })
}

/// A shard error for openraft's refusal of a membership write.
fn write_error(e: RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>) -> ShardError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => ShardError::NotLeader {
            leader: f.leader_id,
        },
        // The previous change is still being committed: try again.
        RaftError::APIError(ClientWriteError::ChangeMembershipError(
            ChangeMembershipError::InProgress(p),
        )) => ShardError::Unavailable(p.to_string()),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(c)) => {
            ShardError::Rejected(c.to_string())
        }
        RaftError::Fatal(f) => ShardError::Unavailable(format!("raft stopped: {f}")),
    }
}

/// The leader of the shard `raft` runs (one in its membership), waiting
/// for one until `deadline`.
async fn wait_for_leader(raft: &Raft, deadline: Instant) -> Option<NodeId> {
    let wait = deadline.saturating_duration_since(Instant::now());
    raft.wait(Some(wait))
        .metrics(|m| member_leader(m).is_some(), "a leader")
        .await
        .ok()
        .and_then(|m| member_leader(&m))
}

/// The address of `node` in the shard's current membership.
fn address_of(m: &RaftMetrics<NodeId, BasicNode>, node: NodeId) -> Option<String> {
    m.membership_config
        .membership()
        .get_node(&node)
        .map(|n| n.addr.clone())
}

fn millis(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

/// Each shard's voters and learners, as `status` shows them.
pub(crate) fn members_of(m: &RaftMetrics<NodeId, BasicNode>) -> (Vec<NodeId>, Vec<NodeId>) {
    let membership = m.membership_config.membership();
    let voters: Vec<NodeId> = membership.voter_ids().collect();
    let learners: Vec<NodeId> = membership.learner_ids().collect();
    (voters, learners)
}

/// Whether node `me`, at its first start (some shard never initialized),
/// founds the cluster (and initializes its shards with `peers`) or joins
/// a running one (and initializes nothing).
///
/// (With `--cluster-join` the caller does not ask: it joins.) It joins
/// when any other node of `peers` answers within a second with a shard that has a membership:
/// the cluster exists already. A joining node that is a member (its data
/// was wiped) gets the log from the leaders; one that is not waits for
/// `add-node`. Initializing instead would give its shards a first
/// membership that may differ from the cluster's under the same log id.
/// Otherwise (no peer answers, or none has a membership) it founds, as
/// every node of a new cluster does with the same list: openraft accepts
/// identical initializations.
pub async fn founds_cluster(me: NodeId, peers: &[(NodeId, String)], options: &NetOptions) -> bool {
    let mut asks = JoinSet::new();
    for (id, addr) in peers.iter().filter(|(id, _)| *id != me) {
        let (id, addr, options) = (*id, addr.clone(), options.clone());
        asks.spawn(async move {
            let status = crate::net::query_status(&addr, &options, JOIN_PROBE_TIMEOUT).await;
            (id, status)
        });
    }
    while let Some(Ok((peer, status))) = asks.join_next().await {
        let Ok(status) = status else { continue };
        if has_members(&status) {
            tracing::info!(
                node = me,
                peer,
                "the cluster runs already: joining, shards not initialized"
            );
            return false;
        }
    }
    true
}

/// True when a node's `status` shows a shard with a membership.
fn has_members(status: &serde_json::Value) -> bool {
    let any = |v: &serde_json::Value| v.as_array().is_some_and(|a| !a.is_empty());
    status["shards"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| any(&s["voters"]) || any(&s["learners"]))
}

/// Ask the node at `addr` to apply `change` to every shard (what `wse
/// cluster add-node` / `remove-node` do), waiting up to `timeout` for the
/// shards, plus a little for the answer.
pub async fn request_change(
    addr: &str,
    change: MembershipChange,
    options: &NetOptions,
    timeout: Duration,
) -> Result<Report, MembershipError> {
    let request = PeerRequest::Membership {
        change,
        timeout_ms: millis(timeout),
    };
    let answer = call_as_tool(addr, &request, options, timeout + Duration::from_secs(2)).await;
    match answer {
        Ok(PeerResponse::Membership(r)) => r,
        Ok(PeerResponse::Failed(why)) => Err(MembershipError::Net(why)),
        Ok(_) => Err(MembershipError::Net(
            NetError::Unexpected("membership").to_string(),
        )),
        Err(e) => Err(MembershipError::Net(e.to_string())),
    }
}

/// The members of a `--cluster-peers` list as openraft nodes.
pub(crate) fn nodes_of(peers: &[(NodeId, String)]) -> BTreeMap<NodeId, BasicNode> {
    peers
        .iter()
        .map(|(id, addr)| (*id, BasicNode::new(addr)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_peer_with_a_membership_means_join() {
        let running = json!({"shards": [{"voters": [1, 2, 3], "learners": []}]});
        assert!(has_members(&running));
        let fresh = json!({"shards": [{"voters": [], "learners": []}]});
        assert!(!has_members(&fresh), "an uninitialized peer says nothing");
        let learner = json!({"shards": [{"voters": [], "learners": [4]}, {"voters": []}]});
        assert!(has_members(&learner));
        assert!(!has_members(&json!({"node": 1})));
    }

    #[test]
    fn node_zero_and_empty_addresses_are_refused() {
        let bad = [
            MembershipChange::Add {
                id: 0,
                addr: "a:1".into(),
            },
            MembershipChange::Add {
                id: 4,
                addr: " ".into(),
            },
            MembershipChange::Remove { id: 0 },
        ];
        for change in bad {
            assert!(
                matches!(validate(&change), Err(MembershipError::Invalid(_))),
                "{change:?}"
            );
        }
        assert!(validate(&MembershipChange::Remove { id: 3 }).is_ok());
    }
}
