//! Segment transfer: a node that installs a snapshot whose topics reach
//! further than its own topic logs fetches the missing records from a peer
//! that has them, and appends them unchanged at the same offsets.
//!
//! Why it is needed: the Raft log is purged behind snapshots, so a node
//! that was stopped (or cut off) while its shard's leader purged cannot
//! catch up from the log; openraft sends it a snapshot instead. The
//! snapshot holds positions only (see [`crate::snapshot`]), never records,
//! so the records between this node's head and the snapshot's are read
//! from a peer's [`wse_log::Log`], in bounded batches
//! ([`MAX_RECORDS`], [`MAX_BYTES`]).
//!
//! Which peer: the shard's current leader first (it built the snapshot, so
//! it holds every record the snapshot names), then every other member of
//! the snapshot's membership, until one has them. A record lands at the
//! offset it had on the source, with its payload bytes as stored there
//! (the payload already carries its position stamp); a record that would
//! land elsewhere stops the install with an error rather than leave two
//! nodes with different records at one offset.
//!
//! How the records are asked for is behind [`Fetch`]: over the peer
//! transport ([`crate::Peers`], the `ReadRecords` request) or, in tests,
//! straight from another in-process node's log ([`crate::Loopback`]).

use crate::net::BoxFuture;
use crate::types::NodeId;
use bytes::Bytes;
use openraft::{BasicNode, RaftMetrics, StoredMembership};
use serde::{Deserialize, Serialize};
use std::io;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::watch;
use wse_log::{Appended, Epoch, Log, Position, ReadLimits, RecordKind};

/// Records at most in one fetch answer.
pub const MAX_RECORDS: usize = 4096;
/// Record bytes at most in one fetch answer (at least one record is sent):
/// well under the peer link's 64 MiB frame limit.
pub const MAX_BYTES: usize = 4 << 20;
/// How long an install keeps trying its sources before it gives up (and
/// openraft stops the shard with a storage error): long enough to ride out
/// a leader change or a peer restart.
const PATIENCE: Duration = Duration::from_secs(30);
/// Pause between two rounds over every source.
const ROUND_PAUSE: Duration = Duration::from_millis(200);

/// One record as a peer sends it: where it is, what kind, its payload
/// bytes as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchedRecord {
    /// Its offset in the topic.
    pub offset: u64,
    /// Its [`RecordKind`], as the on-disk byte.
    pub kind: u8,
    /// Its payload, unchanged.
    pub payload: Bytes,
}

/// A request for records: node `asker` wants `topic` from `from` (epoch
/// and offset) out of node `source`'s log.
#[derive(Clone, Debug)]
pub struct FetchRequest {
    /// The node that installs the snapshot.
    pub asker: NodeId,
    /// The node asked.
    pub source: NodeId,
    /// The source's peer address, from the shard's membership.
    pub addr: String,
    /// The topic.
    pub topic: String,
    /// The first record wanted; its epoch must be the topic's on the
    /// source.
    pub from: Position,
}

/// How a state machine gets records it lacks from another node.
pub trait Fetch: Send + Sync {
    /// Up to [`MAX_RECORDS`] / [`MAX_BYTES`] consecutive records of
    /// `request.topic` from `request.from`, read from `request.source`;
    /// empty when the source has none there yet; an error (as text) when it
    /// cannot be asked or has another history.
    fn fetch(
        &self,
        request: FetchRequest,
    ) -> BoxFuture<'static, Result<Vec<FetchedRecord>, String>>;
}

/// A fetcher for a state machine that has no peers (the storage test
/// suite): every fetch fails, so an install that needs records fails.
pub struct NoFetch;

impl Fetch for NoFetch {
    fn fetch(
        &self,
        request: FetchRequest,
    ) -> BoxFuture<'static, Result<Vec<FetchedRecord>, String>> {
        let why = format!("no peers to fetch {:?} from", request.topic);
        Box::pin(async move { Err(why) })
    }
}

/// Serve a fetch from `log` (the source's side): read `topic` from `from`
/// within the transfer's bounds. Blocking (a disk read): run it on the
/// blocking pool.
pub fn read_records(log: &Log, topic: &str, from: Position) -> Result<Vec<FetchedRecord>, String> {
    let Some(here) = log.position(topic) else {
        return Err(format!("no topic {topic:?} here"));
    };
    if here.epoch != from.epoch {
        return Err(format!(
            "topic {topic:?} has epoch {} here, {} was asked for",
            here.epoch, from.epoch
        ));
    }
    if from.offset >= here.next_offset {
        return Ok(Vec::new());
    }
    let limits = ReadLimits {
        max_records: MAX_RECORDS,
        max_bytes: MAX_BYTES,
    };
    let batch = log.read(topic, from, limits).map_err(|e| e.to_string())?;
    Ok(batch
        .records
        .iter()
        .map(|r| FetchedRecord {
            offset: r.offset(),
            kind: r.kind() as u8,
            payload: r.payload(),
        })
        .collect())
}

/// A state machine's way to its peers' records: the fetcher and where the
/// shard's leader is.
pub(crate) struct Transfer {
    /// How records are asked for.
    fetch: Arc<dyn Fetch>,
    /// The shard's Raft metrics (leader, own id), set once the Raft runs:
    /// the state machine is created before its Raft.
    metrics: OnceLock<watch::Receiver<RaftMetrics<NodeId, BasicNode>>>,
}

impl Transfer {
    /// A transfer through `fetch`.
    pub(crate) fn new(fetch: Arc<dyn Fetch>) -> Transfer {
        Transfer {
            fetch,
            metrics: OnceLock::new(),
        }
    }

    /// Learn the shard's leader from `metrics` from now on.
    pub(crate) fn attach(&self, metrics: watch::Receiver<RaftMetrics<NodeId, BasicNode>>) {
        let _ = self.metrics.set(metrics);
    }

    /// The nodes to ask, best first: the current leader, then the other
    /// members of `membership`; never this node.
    fn sources(
        &self,
        membership: &StoredMembership<NodeId, BasicNode>,
    ) -> (NodeId, Vec<(NodeId, String)>) {
        let (me, leader) = self
            .metrics
            .get()
            .map(|m| {
                let m = m.borrow();
                (m.id, m.current_leader)
            })
            .unwrap_or((0, None));
        let mut nodes: Vec<(NodeId, String)> = membership
            .membership()
            .nodes()
            .filter(|(id, _)| **id != me)
            .map(|(id, n)| (*id, n.addr.clone()))
            .collect();
        nodes.sort_by_key(|(id, _)| Some(*id) != leader);
        (me, nodes)
    }

    /// Make `log`'s `topic` (epoch `epoch`) hold every record up to
    /// `until` (exclusive), fetching from a peer from its current head
    /// (`from`) on, and wait until they are visible. The sources come from
    /// `membership` (the snapshot's).
    pub(crate) async fn pull(
        &self,
        log: &Arc<Log>,
        topic: &str,
        from: Position,
        until: u64,
        membership: &StoredMembership<NodeId, BasicNode>,
    ) -> io::Result<()> {
        let (me, sources) = self.sources(membership);
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut at = from.offset;
        let mut errors = Vec::new();
        while at < until {
            let got = self
                .fetch_round(me, &sources, topic, Position::new(from.epoch, at))
                .await;
            match got {
                Ok(records) => {
                    let wanted: Vec<FetchedRecord> = records
                        .into_iter()
                        .take_while(|r| r.offset < until)
                        .collect();
                    at = append_fetched(log.clone(), topic, from.epoch, at, wanted).await?;
                    errors.clear();
                }
                Err(e) => errors = e,
            }
            if !errors.is_empty() {
                if tokio::time::Instant::now() + ROUND_PAUSE >= deadline {
                    return Err(io::Error::other(format!(
                        "cannot fetch topic {topic:?} from offset {at} (up to {until}): {}",
                        errors.join("; ")
                    )));
                }
                tokio::time::sleep(ROUND_PAUSE).await;
            }
        }
        Ok(())
    }

    /// Ask each source in turn for records at `from`; the first non-empty
    /// answer, or every source's error.
    async fn fetch_round(
        &self,
        me: NodeId,
        sources: &[(NodeId, String)],
        topic: &str,
        from: Position,
    ) -> Result<Vec<FetchedRecord>, Vec<String>> {
        let mut errors = Vec::new();
        for (source, addr) in sources {
            let request = FetchRequest {
                asker: me,
                source: *source,
                addr: addr.clone(),
                topic: topic.to_owned(),
                from,
            };
            match self.fetch.fetch(request).await {
                Ok(records) if !records.is_empty() => return Ok(records),
                Ok(_) => errors.push(format!("node {source} has no records there yet")),
                Err(e) => errors.push(format!("node {source}: {e}")),
            }
        }
        if sources.is_empty() {
            errors.push("no other member to fetch from".to_owned());
        }
        Err(errors)
    }
}

/// Append `records` (consecutive from `at`) to `topic` on the blocking
/// pool, each at its source offset, and wait until they are visible.
/// Returns the offset after the last one.
async fn append_fetched(
    log: Arc<Log>,
    topic: &str,
    epoch: Epoch,
    at: u64,
    records: Vec<FetchedRecord>,
) -> io::Result<u64> {
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut next = at;
        let mut last: Option<Appended> = None;
        for r in records {
            let kind = RecordKind::from_byte(r.kind)
                .ok_or_else(|| io::Error::other(format!("record kind {} unknown", r.kind)))?;
            let expected = Position::new(epoch, next);
            if r.offset != next {
                return Err(misplaced(&topic, expected, r.offset));
            }
            let payload = &r.payload;
            let a = log
                .append_with(&topic, kind, payload.len(), |_, b| {
                    b.extend_from_slice(payload)
                })
                .map_err(io::Error::other)?;
            if a.position != expected {
                return Err(misplaced(&topic, a.position, r.offset));
            }
            next += 1;
            last = Some(a);
        }
        if let Some(a) = last {
            a.wait().map_err(io::Error::other)?;
        }
        Ok(next)
    })
    .await
    .map_err(io::Error::other)?
}

/// The error for a fetched record that does not land where it was.
fn misplaced(topic: &str, landed: Position, source: u64) -> io::Error {
    io::Error::other(format!(
        "topic {topic:?}: fetched record of offset {source} lands at {landed:?}: the topic log differs from its source"
    ))
}
