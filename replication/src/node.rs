//! A node of a cluster as the server sees it: its shards, its peer
//! listener, and the publish path ([`wse::cluster::Replicator`]).
//!
//! A topic belongs to one shard for the cluster's life ([`shard_of`]).
//! Each shard has a queue on every node: a publish joins the queue of its
//! topic's shard, and the queue's task hands what has gathered to the
//! shard's leader as one Raft entry, so a burst of publishes costs one
//! consensus round. On the leader the entry is submitted directly (entries
//! are pipelined: submitted in order, committed in order, waited for in
//! parallel); on another node the batch is forwarded to the leader over the
//! peer link and the task waits for the answer before it sends the next
//! batch, so a node's publishes reach the shard's log in the order they
//! were made. A batch forwarded here by a peer joins this node's queue too,
//! and is refused (not forwarded again) if this node no longer leads.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use openraft::{BasicNode, RaftMetrics, ServerState};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use wse::cluster::{
    BoxFuture, ClusterStarter, ClusterStatus, Commit, MembershipFailed, PublishError,
    RecordEncoder, Replicator, ShardStatus,
};
use wse::config::ClusterConfig;
use wse_log::{Log, Position};

use crate::error::ClusterError;
use crate::lag::LagTracker;
use crate::membership::{
    self, Membership, MembershipChange, MembershipError, Outcome, Report, ShardError,
};
use crate::net::{
    ForwardError, ForwardRefused, ListenerHandle, NetError, NetOptions, PeerListener, PeerService,
    Peers,
};
use crate::shard::{Shard, ShardOptions};
use crate::transfer::{self, FetchedRecord};
use crate::types::{NodeId, Publish, Raft};

/// Publishes at most in one Raft entry.
const MAX_BATCH: usize = 1024;
/// Pause before a batch that did not reach the leader is tried again.
const RETRY_PAUSE: Duration = Duration::from_millis(50);
/// Payload bytes at most in one Raft entry (one large message still goes
/// alone).
const MAX_BATCH_BYTES: usize = 1 << 20;

/// The shard a topic belongs to, among `shards`: CRC-32 of the name, a
/// function every node and every version computes alike.
pub fn shard_of(topic: &str, shards: u32) -> u32 {
    crc32fast::hash(topic.as_bytes()) % shards.max(1)
}

/// Starts a node's part of the cluster `config` describes on a server's
/// log (`wse serve` and the Python module plug it into the server).
pub struct Starter {
    config: ClusterConfig,
}

impl Starter {
    /// A starter for `config` (already validated by the server's config).
    pub fn new(config: ClusterConfig) -> Self {
        Starter { config }
    }
}

impl ClusterStarter for Starter {
    fn start(
        &self,
        log: Arc<Log>,
        encode: RecordEncoder,
    ) -> BoxFuture<'static, Result<Arc<dyn Replicator>, Box<dyn std::error::Error + Send + Sync>>>
    {
        let config = self.config.clone();
        Box::pin(async move {
            let node = ClusterNode::start(config, log, encode).await?;
            Ok(Arc::new(node) as Arc<dyn Replicator>)
        })
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The options lack what a node needs.
    #[error("cluster options: {0}")]
    Options(&'static str),
    /// The peer listener could not bind.
    #[error("cannot bind the peer listener on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// A shard could not start.
    #[error(transparent)]
    Shard(#[from] ClusterError),
}

/// This node's part of the cluster. Cheap to clone.
#[derive(Clone)]
pub struct ClusterNode {
    inner: Arc<Inner>,
}

struct Inner {
    me: NodeId,
    shards: Vec<Shard>,
    /// One queue per shard, see the module doc.
    queues: Vec<mpsc::UnboundedSender<Submission>>,
    peers: Peers,
    listener: Mutex<Option<ListenerHandle>>,
    publish_timeout: Duration,
    /// Adds and removes nodes on every shard (see `membership`).
    membership: Membership,
    /// Per shard, the term in which this node was first seen leading it,
    /// and when (see `Replicator::leader_for`).
    leading_since: Vec<Mutex<Option<(u64, Instant)>>>,
    /// Followers' lag in time and leader changes, sampled.
    lag: LagTracker,
    /// The node's topic logs, read for peers installing a snapshot.
    log: Arc<Log>,
}

/// Publishes that go into one Raft entry together (never split), and
/// where their positions go.
struct Submission {
    publishes: Vec<Publish>,
    /// Forwarded by a peer: refused rather than forwarded again.
    from_peer: bool,
    /// When the publisher stops waiting.
    deadline: Instant,
    reply: oneshot::Sender<Result<Vec<Position>, ForwardRefused>>,
}

impl ClusterNode {
    /// Bind the peer listener, start every shard on `log` (Raft files in
    /// `<log dir>/cluster/shard-<n>/`), initialize the shards that have
    /// never run with `config.peers`, and serve peers.
    pub async fn start(
        config: ClusterConfig,
        log: Arc<Log>,
        encode: RecordEncoder,
    ) -> Result<ClusterNode, StartError> {
        let me = config.node_id.ok_or(StartError::Options("no node id"))?;
        let addr = config
            .listen
            .clone()
            .ok_or(StartError::Options("no listen address"))?;
        let listener = PeerListener::bind(&addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let peers = Peers::new(me, NetOptions::default());
        let options = ShardOptions {
            heartbeat: config.heartbeat,
            election_timeout: (config.election_timeout, config.election_timeout * 2),
            publish_timeout: config.publish_timeout,
            dedup_window: config.dedup_window,
            encode,
            snapshot_every: config.snapshot_every,
            snapshot_keep: config.snapshot_keep,
            fetch: Arc::new(peers.clone()),
            storage: Arc::new(wse_log::storage::FsStorage),
        };
        let root = log.dir().join("cluster");
        let mut shards = Vec::new();
        for shard in 0..config.shards {
            let dir = root.join(format!("shard-{shard}"));
            shards.push(start_shard(me, shard, &dir, &log, &peers, &options).await?);
        }
        initialize_if_founding(me, &config, &shards).await?;
        let rafts = shards.iter().map(|s| s.raft().clone()).collect();
        let mut receivers = Vec::new();
        let mut queues = Vec::new();
        for _ in 0..config.shards {
            let (tx, rx) = mpsc::unbounded_channel();
            queues.push(tx);
            receivers.push(rx);
        }
        let inner = Arc::new(Inner {
            me,
            shards,
            queues,
            peers: peers.clone(),
            listener: Mutex::new(None),
            publish_timeout: config.publish_timeout,
            membership: Membership::new(me, rafts, peers),
            leading_since: (0..config.shards).map(|_| Mutex::new(None)).collect(),
            lag: LagTracker::default(),
            log,
        });
        tokio::spawn(sample_lag(Arc::downgrade(&inner)));
        for (shard, rx) in receivers.into_iter().enumerate() {
            tokio::spawn(run_queue(inner.clone(), shard, rx));
        }
        *inner.listener.lock() = Some(listener.serve(inner.clone()));
        tracing::info!(node = me, shards = config.shards, "cluster node started");
        Ok(ClusterNode { inner })
    }

    /// The shard a topic belongs to on this cluster.
    pub fn shard_of(&self, topic: &str) -> u32 {
        shard_of(topic, self.inner.shards.len() as u32)
    }

    /// The Raft of `shard` on this node.
    pub fn raft(&self, shard: u32) -> Option<&Raft> {
        self.inner.shards.get(shard as usize).map(Shard::raft)
    }

    /// Make node `id`, listening for peers at `addr`, a voter of every
    /// shard (a learner first, until it caught up), within `timeout`. The
    /// node must run already, started to join (see `membership`). Done
    /// through each shard's leader, wherever it is.
    pub async fn add_node(
        &self,
        id: NodeId,
        addr: &str,
        timeout: Duration,
    ) -> Result<Report, MembershipError> {
        let addr = addr.to_owned();
        let change = MembershipChange::Add { id, addr };
        self.inner.membership.change(change, timeout).await
    }

    /// Take node `id` out of every shard's membership, within `timeout`.
    pub async fn remove_node(
        &self,
        id: NodeId,
        timeout: Duration,
    ) -> Result<Report, MembershipError> {
        let change = MembershipChange::Remove { id };
        self.inner.membership.change(change, timeout).await
    }
}

/// Initialize every shard that never ran with `--cluster-peers`, unless
/// this node joins a running cluster ([`membership::founds_cluster`]).
async fn initialize_if_founding(
    me: NodeId,
    config: &ClusterConfig,
    shards: &[Shard],
) -> Result<(), StartError> {
    let mut fresh = Vec::new();
    for shard in shards {
        if !shard.is_initialized().await? {
            fresh.push(shard);
        }
    }
    if fresh.is_empty() || config.join {
        if config.join && !fresh.is_empty() {
            tracing::info!(node = me, "--cluster-join: joining, shards not initialized");
        }
        return Ok(());
    }
    if !membership::founds_cluster(me, &config.peers, &NetOptions::default()).await {
        return Ok(());
    }
    let members = membership::nodes_of(&config.peers);
    for shard in fresh {
        shard.initialize_if_new(members.clone()).await?;
    }
    Ok(())
}

async fn start_shard(
    me: NodeId,
    shard: u32,
    dir: &Path,
    log: &Arc<Log>,
    peers: &Peers,
    options: &ShardOptions,
) -> Result<Shard, ClusterError> {
    Shard::start(me, shard, dir, log.clone(), peers.network(shard), options).await
}

impl Inner {
    /// Queue `publishes` for `shard`; the receiver gets their positions.
    fn enqueue(
        &self,
        shard: u32,
        publishes: Vec<Publish>,
        from_peer: bool,
    ) -> oneshot::Receiver<Result<Vec<Position>, ForwardRefused>> {
        let (reply, rx) = oneshot::channel();
        let submission = Submission {
            publishes,
            from_peer,
            deadline: Instant::now() + self.publish_timeout,
            reply,
        };
        // A closed queue drops the reply sender: the receiver sees it.
        let _ = self.queues[shard as usize].send(submission);
        rx
    }

    /// Hand `batch` to the leader of `shard` (see the module doc). A batch
    /// that certainly did not reach a leader (no connection, or refused as
    /// "not the leader") is tried again until its deadline, and so is one
    /// whose fate is unknown (the connection broke after sending, no answer
    /// in time) when every publish in it has an id; without ids such a
    /// batch is reported as failed, never sent twice.
    async fn route(&self, shard: u32, batch: Vec<Submission>) {
        let s = &self.shards[shard as usize];
        let deadline = batch
            .iter()
            .map(|b| b.deadline)
            .min()
            .unwrap_or_else(Instant::now);
        let mut local = batch;
        let mut hint: Option<NodeId> = None;
        loop {
            let leader = match hint.take() {
                Some(l) => Some(l),
                None => self.wait_for_leader(s, deadline).await,
            };
            let Some(leader) = leader else {
                let reason =
                    "no leader (an election is running, or this node is cut off from a majority)";
                return fail(local, &ForwardRefused::Unavailable(reason.into()));
            };
            if leader == self.me {
                return self.submit_here(s, local).await;
            }
            // Forwarded here by a peer that took us for the leader: it
            // retries with the leader we name, no second hop.
            let (from_peers, mine): (Vec<_>, Vec<_>) = local.into_iter().partition(|b| b.from_peer);
            fail(
                from_peers,
                &ForwardRefused::NotLeader {
                    leader: Some(leader),
                },
            );
            local = mine;
            if local.is_empty() {
                return;
            }
            let Some(addr) = address_of(&s.metrics(), leader) else {
                let reason = format!("leader {leader} has no address in the membership");
                return fail(local, &ForwardRefused::Unavailable(reason));
            };
            let publishes = local
                .iter()
                .flat_map(|b| b.publishes.iter().cloned())
                .collect();
            let wait = deadline.saturating_duration_since(Instant::now());
            // Sending again cannot store anything twice when every publish
            // has an id: the shard's idempotence window absorbs a copy.
            let identified = local
                .iter()
                .all(|b| b.publishes.iter().all(|p| p.id.is_some()));
            let answer = self
                .peers
                .forward(leader, &addr, shard, publishes, wait)
                .await;
            match answer {
                Ok(positions) => return deliver(local, positions),
                Err(ForwardError::Refused(ForwardRefused::NotLeader { leader: next })) => {
                    hint = next.filter(|&n| n != leader);
                }
                Err(ForwardError::Unreachable(e)) if not_sent(&e) || identified => {}
                Err(ForwardError::Refused(why)) => return fail(local, &why),
                Err(ForwardError::Timeout(_)) => {
                    let after_ms = self.publish_timeout.as_millis() as u64;
                    return fail(local, &ForwardRefused::Timeout { after_ms });
                }
                Err(e) => return fail(local, &ForwardRefused::Unavailable(e.to_string())),
            }
            if Instant::now() + RETRY_PAUSE >= deadline {
                let reason = format!("leader {leader} of shard {shard} not reachable in time");
                return fail(local, &ForwardRefused::Unavailable(reason));
            }
            if hint.is_none() {
                // The link's own backoff decides when a connection is
                // tried again; this only keeps the loop from spinning.
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }

    /// Submit `batch` as one entry of `s`, which this node leads; a task
    /// waits for the commit, so the next entry can be submitted meanwhile.
    async fn submit_here(&self, s: &Shard, batch: Vec<Submission>) {
        let publishes = batch
            .iter()
            .flat_map(|b| b.publishes.iter().cloned())
            .collect();
        let queue = self.queues[s.id() as usize].clone();
        match s.submit(publishes).await {
            Ok(commit) => {
                tokio::spawn(async move {
                    match commit.await {
                        Ok(positions) => deliver(batch, positions),
                        Err(e) => retry_or_fail(batch, &refusal(&e), &queue),
                    }
                });
            }
            Err(e) => fail(batch, &refusal(&e)),
        }
    }

    /// The leader of `s`, waiting for one until `deadline`. A leader just
    /// removed from the membership (followers still name it until they
    /// elect another) does not count.
    async fn wait_for_leader(&self, s: &Shard, deadline: Instant) -> Option<NodeId> {
        let wait = deadline.saturating_duration_since(Instant::now());
        s.raft()
            .wait(Some(wait))
            .metrics(|m| member_leader(m).is_some(), "a leader")
            .await
            .ok()
            .and_then(|m| member_leader(&m))
    }
}

/// The leader `m` knows of, if it is in the shard's membership.
pub(crate) fn member_leader(m: &RaftMetrics<NodeId, BasicNode>) -> Option<NodeId> {
    m.current_leader
        .filter(|&l| m.membership_config.membership().get_node(&l).is_some())
}

/// The address of `node` in the shard's current membership.
fn address_of(m: &RaftMetrics<NodeId, BasicNode>, node: NodeId) -> Option<String> {
    m.membership_config
        .membership()
        .get_node(&node)
        .map(|n| n.addr.clone())
}

/// True when `e` means the request never left this node (no connection
/// could be made), so sending it again cannot duplicate it.
fn not_sent(e: &NetError) -> bool {
    matches!(
        e,
        NetError::Connect { .. }
            | NetError::ConnectTimeout { .. }
            | NetError::Handshake { .. }
            | NetError::Refused { .. }
            | NetError::Backoff { .. }
    )
}

/// What a peer (or the local publisher) is told for a shard error.
fn refusal(e: &ClusterError) -> ForwardRefused {
    match e {
        ClusterError::NotLeader { leader, .. } => ForwardRefused::NotLeader { leader: *leader },
        ClusterError::Timeout { after, .. } => ForwardRefused::Timeout {
            after_ms: after.as_millis() as u64,
        },
        other => ForwardRefused::Unavailable(other.to_string()),
    }
}

/// Give each submission its share of `positions` (in batch order).
fn deliver(batch: Vec<Submission>, positions: Vec<Position>) {
    let mut rest = positions.into_iter();
    for b in batch {
        let mine: Vec<Position> = rest.by_ref().take(b.publishes.len()).collect();
        let _ = b.reply.send(Ok(mine));
    }
}

/// After this node lost the lead (or the commit timed out) with `batch` in
/// flight, the entry may or may not be committed by the next leader. Each
/// submission whose publishes all have ids goes back into the queue (the
/// idempotence window absorbs a copy if the first one is committed), until
/// its deadline; the others are told why they failed. A publish sent again
/// this way may be stored after publishes made later.
fn retry_or_fail(
    batch: Vec<Submission>,
    why: &ForwardRefused,
    queue: &mpsc::UnboundedSender<Submission>,
) {
    let now = Instant::now();
    let (again, failed): (Vec<_>, Vec<_>) = batch.into_iter().partition(|b| {
        b.deadline > now + RETRY_PAUSE && b.publishes.iter().all(|p| p.id.is_some())
    });
    fail(failed, why);
    for b in again {
        if let Err(mpsc::error::SendError(b)) = queue.send(b) {
            fail(vec![b], why);
        }
    }
}

/// Tell every submission of `batch` why it failed.
fn fail(batch: Vec<Submission>, why: &ForwardRefused) {
    for b in batch {
        let _ = b.reply.send(Err(why.clone()));
    }
}

/// The task of one shard's queue: gather what is waiting into a batch,
/// route it, repeat.
async fn run_queue(inner: Arc<Inner>, shard: usize, mut rx: mpsc::UnboundedReceiver<Submission>) {
    while let Some(first) = rx.recv().await {
        let mut count = first.publishes.len();
        let mut bytes: usize = first.publishes.iter().map(|p| p.payload.len()).sum();
        let mut batch = vec![first];
        while count < MAX_BATCH && bytes < MAX_BATCH_BYTES {
            let Ok(next) = rx.try_recv() else { break };
            count += next.publishes.len();
            bytes += next
                .publishes
                .iter()
                .map(|p| p.payload.len())
                .sum::<usize>();
            batch.push(next);
        }
        inner.route(shard as u32, batch).await;
    }
}

impl PeerService for Inner {
    fn raft(&self, shard: u32) -> Option<Raft> {
        self.shards.get(shard as usize).map(|s| s.raft().clone())
    }

    fn forward(
        &self,
        shard: u32,
        batch: Vec<Publish>,
    ) -> BoxFuture<'static, Result<Vec<Position>, ForwardRefused>> {
        if shard as usize >= self.shards.len() {
            let why = ForwardRefused::Invalid(format!("no shard {shard} on this node"));
            return Box::pin(async move { Err(why) });
        }
        let rx = self.enqueue(shard, batch, true);
        Box::pin(async move {
            rx.await
                .unwrap_or_else(|_| Err(ForwardRefused::Unavailable("node stopping".into())))
        })
    }

    fn status(&self) -> Value {
        serde_json::to_value(status(self)).unwrap_or_default()
    }

    fn change_membership(
        &self,
        change: MembershipChange,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Report, MembershipError>> {
        let membership = self.membership.clone();
        Box::pin(async move { membership.change(change, timeout).await })
    }

    fn change_shard_membership(
        &self,
        shard: u32,
        change: MembershipChange,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Outcome, ShardError>> {
        let membership = self.membership.clone();
        let deadline = tokio::time::Instant::now() + timeout;
        Box::pin(async move { membership.change_here(shard, &change, deadline).await })
    }

    fn read_records(
        &self,
        topic: String,
        from: Position,
    ) -> BoxFuture<'static, Result<Vec<FetchedRecord>, String>> {
        let log = self.log.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || transfer::read_records(&log, &topic, from))
                .await
                .map_err(|e| e.to_string())?
        })
    }
}

/// The node and each shard, as `wse cluster status` and the health report
/// show them.
fn status(inner: &Inner) -> ClusterStatus {
    let members = inner
        .shards
        .first()
        .map(|s| {
            s.metrics()
                .membership_config
                .membership()
                .nodes()
                .map(|(id, n)| (*id, n.addr.clone()))
                .collect()
        })
        .unwrap_or_default();
    ClusterStatus {
        node_id: inner.me,
        members,
        connected_peers: inner.peers.connected(),
        shards: inner
            .shards
            .iter()
            .map(|s| {
                let mut status = shard_status(s.id(), &s.metrics());
                status.lag_millis = inner.lag.lag_millis(s.id(), Instant::now());
                status.leader_changes = inner.lag.leader_changes(s.id());
                status
            })
            .collect(),
    }
}

/// Sample every shard's metrics for the lag tracker until the node is gone.
async fn sample_lag(inner: std::sync::Weak<Inner>) {
    let mut tick = tokio::time::interval(crate::lag::SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let now = Instant::now();
        for s in &inner.shards {
            inner.lag.sample(s.id(), &s.metrics(), now);
        }
    }
}

/// One shard's figures: who leads, term, last log and applied index (an
/// entry is applied only once committed), and on the leader how many
/// entries each follower lags and how long ago a quorum last answered.
fn shard_status(shard: u32, m: &RaftMetrics<NodeId, BasicNode>) -> ShardStatus {
    let last = m.last_log_index.unwrap_or(0);
    let lag = m.replication.as_ref().map(|r| {
        r.iter()
            .filter(|(id, _)| **id != m.id)
            .map(|(id, matched)| (*id, last.saturating_sub(matched.map_or(0, |l| l.index))))
            .collect()
    });
    let state = match m.state {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    };
    let (voters, learners) = membership::members_of(m);
    ShardStatus {
        shard,
        state: state.into(),
        voters,
        learners,
        leader: m.current_leader,
        term: m.current_term,
        last_log_index: m.last_log_index,
        applied: m.last_applied.map(|l| l.index),
        millis_since_quorum_ack: m.millis_since_quorum_ack,
        lag,
        ..ShardStatus::default()
    }
}

impl Replicator for ClusterNode {
    fn publish(&self, topic: &str, text: &str, id: Option<&str>) -> Commit {
        let shard = self.shard_of(topic);
        let mut publish = Publish::new(topic, Bytes::copy_from_slice(text.as_bytes()));
        publish.id = id.map(str::to_owned);
        let rx = self.inner.enqueue(shard, vec![publish], false);
        let topic = topic.to_owned();
        let timeout = self.inner.publish_timeout;
        Box::pin(async move { one_position(topic, rx.await, timeout) })
    }

    fn publish_presence(&self, topic: &str, stream: &str, op: Vec<u8>) -> Commit {
        let shard = self.shard_of(topic);
        let rx = self
            .inner
            .enqueue(shard, vec![Publish::presence(stream, op)], false);
        let topic = topic.to_owned();
        let timeout = self.inner.publish_timeout;
        Box::pin(async move { one_position(topic, rx.await, timeout) })
    }

    fn leader_for(&self, topic: &str) -> Option<Duration> {
        let shard = self.shard_of(topic) as usize;
        let (leader, term) = {
            let m = self.inner.shards.get(shard)?.raft().metrics();
            let m = m.borrow();
            (m.current_leader, m.current_term)
        };
        let mut since = self.inner.leading_since.get(shard)?.lock();
        if leader != Some(self.inner.me) {
            *since = None;
            return None;
        }
        match *since {
            Some((t, at)) if t == term => Some(at.elapsed()),
            _ => {
                // First seen leading in this term: counted from now, which
                // is never earlier than the term started.
                *since = Some((term, Instant::now()));
                Some(Duration::ZERO)
            }
        }
    }

    fn silent_for(&self, node: u64) -> Duration {
        self.inner.peers.silent_for(node)
    }

    fn node_id(&self) -> u64 {
        self.inner.me
    }

    fn add_node(
        &self,
        id: u64,
        addr: &str,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u32>, MembershipFailed>> {
        let node = self.clone();
        let addr = addr.to_owned();
        Box::pin(async move { changed(node.add_node(id, &addr, timeout).await) })
    }

    fn remove_node(
        &self,
        id: u64,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u32>, MembershipFailed>> {
        let node = self.clone();
        Box::pin(async move { changed(node.remove_node(id, timeout).await) })
    }

    fn status(&self) -> ClusterStatus {
        status(&self.inner)
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let listener = self.inner.listener.lock().take();
            if let Some(l) = listener {
                l.shutdown().await;
            }
            for s in &self.inner.shards {
                s.shutdown().await;
            }
        })
    }
}

/// A membership change's outcome as the server sees it.
fn changed(outcome: Result<Report, MembershipError>) -> Result<Vec<u32>, MembershipFailed> {
    outcome.map(|r| r.changed).map_err(|e| MembershipFailed {
        reason: e.to_string(),
    })
}

/// The outcome of a one-publish submission, as the server sees it.
fn one_position(
    topic: String,
    answer: Result<Result<Vec<Position>, ForwardRefused>, oneshot::error::RecvError>,
    timeout: Duration,
) -> Result<Position, PublishError> {
    match answer {
        Ok(Ok(mut positions)) if positions.len() == 1 => Ok(positions.remove(0)),
        Ok(Ok(_)) => Err(PublishError::Unavailable {
            topic,
            reason: "the commit answered without a position".into(),
        }),
        Ok(Err(why)) => Err(publish_error(topic, why, timeout)),
        Err(_) => Err(PublishError::Stopped),
    }
}

/// The server's error for a refused publish.
fn publish_error(topic: String, why: ForwardRefused, timeout: Duration) -> PublishError {
    match why {
        ForwardRefused::Timeout { .. } => PublishError::Timeout {
            topic,
            after_ms: timeout.as_millis() as u64,
        },
        other => PublishError::Unavailable {
            topic,
            reason: other.to_string(),
        },
    }
}
