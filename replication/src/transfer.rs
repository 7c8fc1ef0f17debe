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
//! One exception to "same records": a presence stream is trimmed by each
//! node behind its presence snapshots (`wse::presence`), so a source may
//! no longer hold the oldest records asked for. The source then answers
//! from its first record, which is a snapshot of the whole presence state,
//! and the installer fills the offsets it skipped with records that change
//! nothing ([`wse::presence::stream::filler`]): offsets stay aligned, and
//! the fold (the CRDT merges the snapshot) gives the same presence.
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
    // A presence stream this node trimmed: answer from its first record,
    // a snapshot (see the module doc). Other topics keep their records
    // (an install from a source whose retention removed them fails).
    let mut from = from;
    if wse::presence::stream::topic_of(topic).is_some() && from.offset < here.first_offset {
        from.offset = here.first_offset;
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
            if r.offset > next && wse::presence::stream::topic_of(&topic).is_some() {
                // The source trimmed these: fill them (see the module doc).
                let filler = wse::presence::stream::filler();
                while next < r.offset {
                    let a = log
                        .append_with(&topic, RecordKind::Presence, filler.len(), |_, b| {
                            b.extend_from_slice(&filler)
                        })
                        .map_err(io::Error::other)?;
                    if a.position != Position::new(epoch, next) {
                        return Err(misplaced(&topic, a.position, next));
                    }
                    next += 1;
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use wse_log::LogConfig;

    /// A log whose segments roll every KiB, so trims remove records.
    fn small_segments(dir: &std::path::Path) -> Arc<Log> {
        let config = LogConfig {
            segment_max_bytes: 1024,
            ..LogConfig::default()
        };
        Arc::new(Log::open(dir, config).unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_presence_stream_the_source_trimmed_is_filled_to_the_same_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let source = small_segments(&dir.path().join("source"));
        let stream = wse::presence::stream::stream_name("room");
        for i in 0..200 {
            let op = format!("op-{i:03}-{}", "x".repeat(40));
            source
                .append(&stream, RecordKind::Presence, op.as_bytes())
                .unwrap();
        }
        source.flush().unwrap();
        source.trim_before(&stream, 150).unwrap();
        let here = source.position(&stream).unwrap();
        assert!(here.first_offset > 0, "the trim removed segments");

        let records = read_records(&source, &stream, Position::new(here.epoch, 0)).unwrap();
        assert_eq!(
            records[0].offset, here.first_offset,
            "answered from the first record"
        );

        let target = small_segments(&dir.path().join("target"));
        target.create_topic(&stream, here.epoch).unwrap();
        let next = append_fetched(target.clone(), &stream, here.epoch, 0, records)
            .await
            .unwrap();
        assert_eq!(next, here.next_offset);
        let got =
            crate::transfer::read_records(&target, &stream, Position::new(here.epoch, 0)).unwrap();
        let filler = wse::presence::stream::filler();
        for r in &got {
            if r.offset < here.first_offset {
                assert_eq!(r.payload.as_ref(), filler.as_slice(), "offset {}", r.offset);
            } else {
                let want = format!("op-{:03}-{}", r.offset, "x".repeat(40));
                assert_eq!(r.payload.as_ref(), want.as_bytes(), "offset {}", r.offset);
            }
        }
        assert_eq!(got.len() as u64, here.next_offset.min(MAX_RECORDS as u64));

        // A message topic the source trimmed is not filled: the install fails.
        for i in 0..200 {
            source
                .append(
                    "chat",
                    RecordKind::Message,
                    format!("m{i}-{}", "y".repeat(40)).as_bytes(),
                )
                .unwrap();
        }
        source.flush().unwrap();
        source.trim_before("chat", 150).unwrap();
        let chat = source.position("chat").unwrap();
        assert!(chat.first_offset > 0);
        match read_records(&source, "chat", Position::new(chat.epoch, 0)) {
            // The log refuses to read what it removed...
            Err(_) => {}
            // ... or answers from later on: never filled.
            Ok(records) => {
                assert!(records.first().is_some_and(|r| r.offset > 0));
                target.create_topic("chat", chat.epoch).unwrap();
                let filled = append_fetched(target.clone(), "chat", chat.epoch, 0, records).await;
                assert!(filled.is_err(), "a message topic is never filled");
            }
        }
    }
}
