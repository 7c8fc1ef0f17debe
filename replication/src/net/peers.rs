//! The outgoing side of the transport: one connection per peer, shared by
//! every shard of this node, opened when first needed and again after it
//! broke.
//!
//! A connection attempt runs in its own task, so a caller that gives up
//! (openraft drops an RPC at its deadline) does not abort it halfway, and
//! callers that arrive meanwhile wait for the same attempt. After a failed
//! attempt the peer is reported unreachable without a new one until
//! [`NetOptions::reconnect_backoff`] has passed since it started: a dead
//! peer costs one connect per backoff, not one per RPC of every shard.

use super::NetOptions;
use super::error::{ForwardError, NetError};
use super::message::{PeerRequest, PeerResponse};
use super::outbound::Connection;
use super::raft_network::ShardNetwork;
use crate::transfer::{Fetch, FetchRequest, FetchedRecord};
use crate::types::{NodeId, Publish};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use wse_log::Position;

/// This node's connections to its peers. Cheap to clone (one shared set).
#[derive(Clone)]
pub struct Peers {
    inner: Arc<Inner>,
}

struct Inner {
    /// Our node id, sent in each handshake.
    me: NodeId,
    /// Timeouts, limits, cluster name.
    options: Arc<NetOptions>,
    /// Each peer's connection state, by node id.
    peers: Mutex<HashMap<NodeId, Arc<Peer>>>,
    /// When each peer last answered a call (any answer, Raft heartbeats
    /// included): how long a node has been silent, see [`Peers::silent_for`].
    answered: Mutex<HashMap<NodeId, Instant>>,
    /// When these connections were made: a peer that never answered has
    /// been silent since then.
    created: Instant,
}

/// The outcome of a connection attempt, once it has one.
type Outcome = Option<Result<Arc<Connection>, Arc<NetError>>>;

/// One peer: its address and its latest connection attempt.
struct Peer {
    /// Where the peer listens ("host:port").
    addr: String,
    /// The latest attempt; `None` before the first.
    attempt: Mutex<Option<Attempt>>,
}

/// One connection attempt: when it started and, once known, its outcome.
struct Attempt {
    /// For the backoff between attempts.
    started: Instant,
    /// Set once by the attempt's task.
    outcome: watch::Receiver<Outcome>,
}

impl Peers {
    /// The peer connections of node `me`; none is opened yet.
    pub fn new(me: NodeId, options: NetOptions) -> Peers {
        Peers {
            inner: Arc::new(Inner {
                me,
                options: Arc::new(options),
                peers: Mutex::new(HashMap::new()),
                answered: Mutex::new(HashMap::new()),
                created: Instant::now(),
            }),
        }
    }

    /// The openraft network of shard `shard` of this node.
    pub fn network(&self, shard: u32) -> ShardNetwork {
        ShardNetwork::new(self.clone(), shard)
    }

    /// The options the connections use.
    pub(crate) fn options(&self) -> &NetOptions {
        &self.inner.options
    }

    /// The peers this node has an open connection to now.
    pub fn connected(&self) -> Vec<NodeId> {
        let peers = self.inner.peers.lock();
        let mut ids: Vec<NodeId> = peers
            .iter()
            .filter(|(_, p)| {
                p.attempt
                    .lock()
                    .as_ref()
                    .is_some_and(|a| matches!(&*a.outcome.borrow(), Some(Ok(c)) if c.is_open()))
            })
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// How long node `node` has not answered this node: since its last
    /// answer, or since these connections were made when it never
    /// answered; zero for this node. A shard leader calls every member at
    /// least once per heartbeat, so on a leader this is how long a member
    /// has been dead, paused or cut off.
    pub fn silent_for(&self, node: NodeId) -> Duration {
        if node == self.inner.me {
            return Duration::ZERO;
        }
        let since = self
            .inner
            .answered
            .lock()
            .get(&node)
            .copied()
            .unwrap_or(self.inner.created);
        since.elapsed()
    }

    /// Our node id.
    pub(crate) fn me(&self) -> NodeId {
        self.inner.me
    }

    /// Send `batch` for `shard` to node `to` at `addr` (its leader) and
    /// wait up to `timeout` for the positions it got. Batches sent one
    /// after another to the same node reach its service in that order.
    pub async fn forward(
        &self,
        to: NodeId,
        addr: &str,
        shard: u32,
        batch: Vec<Publish>,
        timeout: Duration,
    ) -> Result<Vec<Position>, ForwardError> {
        let request = PeerRequest::Forward(shard, batch);
        match self.call(to, addr, &request, timeout).await {
            Ok(PeerResponse::Forward(Ok(positions))) => Ok(positions),
            Ok(PeerResponse::Forward(Err(refused))) => Err(ForwardError::Refused(refused)),
            Ok(PeerResponse::Failed(reason)) => {
                Err(ForwardError::Unreachable(NetError::Failed(reason)))
            }
            Ok(_) => Err(ForwardError::Unreachable(NetError::Unexpected("forward"))),
            Err(NetError::Timeout(_)) => Err(ForwardError::Timeout(timeout)),
            Err(e) => Err(ForwardError::Unreachable(e)),
        }
    }

    /// Read records of `topic` from `from` out of node `to`'s log (at
    /// `addr`), waiting up to `timeout`.
    pub async fn read_records(
        &self,
        to: NodeId,
        addr: &str,
        topic: String,
        from: Position,
        timeout: Duration,
    ) -> Result<Vec<FetchedRecord>, String> {
        let request = PeerRequest::ReadRecords { topic, from };
        match self.call(to, addr, &request, timeout).await {
            Ok(PeerResponse::Records(answer)) => answer,
            Ok(PeerResponse::Failed(reason)) => Err(reason),
            Ok(_) => Err(NetError::Unexpected("read records").to_string()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Send `request` to node `to` at `addr` and wait up to `timeout` for
    /// its answer, connecting first if needed.
    pub(crate) async fn call(
        &self,
        to: NodeId,
        addr: &str,
        request: &PeerRequest,
        timeout: Duration,
    ) -> Result<PeerResponse, NetError> {
        let deadline = Instant::now() + timeout;
        let connection = self.peer(to, addr).connection(self, deadline).await?;
        let answer = connection.call(request, deadline).await?;
        self.inner.answered.lock().insert(to, Instant::now());
        Ok(answer)
    }

    /// Node `to`'s entry, replaced if it moved to another address.
    fn peer(&self, to: NodeId, addr: &str) -> Arc<Peer> {
        let mut peers = self.inner.peers.lock();
        let peer = peers.entry(to).or_insert_with(|| Peer::new(addr));
        if peer.addr != addr {
            *peer = Peer::new(addr);
        }
        peer.clone()
    }
}

/// How long one record fetch may take: a full batch is 4 MiB, read from
/// disk on the source.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

impl Fetch for Peers {
    fn fetch(
        &self,
        request: FetchRequest,
    ) -> super::BoxFuture<'static, Result<Vec<FetchedRecord>, String>> {
        let peers = self.clone();
        Box::pin(async move {
            let FetchRequest {
                source,
                addr,
                topic,
                from,
                ..
            } = request;
            peers
                .read_records(source, &addr, topic, from, FETCH_TIMEOUT)
                .await
        })
    }
}

impl Peer {
    fn new(addr: &str) -> Arc<Peer> {
        Arc::new(Peer {
            addr: addr.to_owned(),
            attempt: Mutex::new(None),
        })
    }

    /// An open connection: the current one, or the outcome of a new (or
    /// running) attempt, waited for until `deadline`.
    async fn connection(
        &self,
        peers: &Peers,
        deadline: Instant,
    ) -> Result<Arc<Connection>, NetError> {
        let started = Instant::now();
        let mut outcome = self.current_attempt(peers)?;
        let waited = tokio::time::timeout_at(deadline, outcome.wait_for(Option::is_some)).await;
        // The attempt's task ended without an outcome (the runtime is
        // shutting down).
        let abandoned = || NetError::Lost {
            addr: self.addr.clone(),
            reason: "connection attempt abandoned".to_owned(),
        };
        match waited {
            Err(_) => Err(NetError::ConnectTimeout {
                addr: self.addr.clone(),
                after: started.elapsed(),
            }),
            Ok(Err(_)) => Err(abandoned()),
            Ok(Ok(done)) => match &*done {
                Some(Ok(connection)) => Ok(connection.clone()),
                Some(Err(e)) => Err(NetError::Backoff {
                    addr: self.addr.clone(),
                    last: e.clone(),
                }),
                None => Err(abandoned()),
            },
        }
    }

    /// The attempt to wait on: the latest one if it is running or gave an
    /// open connection; a new one if it failed (or its connection broke)
    /// at least a backoff ago; otherwise the peer is unreachable for now.
    fn current_attempt(&self, peers: &Peers) -> Result<watch::Receiver<Outcome>, NetError> {
        let mut attempt = self.attempt.lock();
        if let Some(a) = attempt.as_ref() {
            let last = match &*a.outcome.borrow() {
                None => return Ok(a.outcome.clone()),
                Some(Ok(c)) if c.is_open() => return Ok(a.outcome.clone()),
                Some(Ok(_)) => None,
                Some(Err(e)) => Some(e.clone()),
            };
            if a.started.elapsed() < peers.options().reconnect_backoff {
                return Err(match last {
                    Some(last) => NetError::Backoff {
                        addr: self.addr.clone(),
                        last,
                    },
                    None => NetError::Lost {
                        addr: self.addr.clone(),
                        reason: "reconnecting after the backoff".to_owned(),
                    },
                });
            }
        }
        let fresh = Attempt::start(self.addr.clone(), peers);
        let outcome = fresh.outcome.clone();
        *attempt = Some(fresh);
        Ok(outcome)
    }
}

impl Attempt {
    /// Spawn a connection attempt to `addr`.
    fn start(addr: String, peers: &Peers) -> Attempt {
        let (tx, outcome) = watch::channel(None);
        let me = peers.me();
        let options = peers.inner.options.clone();
        tokio::spawn(async move {
            let result = open(&addr, me, &options).await;
            if let Err(e) = &result {
                tracing::debug!(%addr, error = %e, "peer connection attempt failed");
            }
            let _ = tx.send(Some(result.map(Arc::new).map_err(Arc::new)));
        });
        Attempt {
            started: Instant::now(),
            outcome,
        }
    }
}

/// A connection to `addr` within the connect timeout.
async fn open(addr: &str, me: NodeId, options: &NetOptions) -> Result<Connection, NetError> {
    tokio::time::timeout(options.connect_timeout, Connection::open(addr, me, options))
        .await
        .unwrap_or_else(|_| {
            Err(NetError::ConnectTimeout {
                addr: addr.to_owned(),
                after: options.connect_timeout,
            })
        })
}

/// Ask the node at `addr` for its status (what `wse cluster status`
/// shows).
pub async fn query_status(
    addr: &str,
    options: &NetOptions,
    timeout: Duration,
) -> Result<serde_json::Value, NetError> {
    match call_as_tool(addr, &PeerRequest::Status, options, timeout).await? {
        PeerResponse::Status(status) => Ok(status),
        PeerResponse::Failed(reason) => Err(NetError::Failed(reason)),
        _ => Err(NetError::Unexpected("status")),
    }
}

/// Send `request` to the node at `addr` over a connection of its own that
/// is closed afterwards, and wait up to `timeout` for the answer. We
/// introduce ourselves as node 0: a tool, not a node.
pub(crate) async fn call_as_tool(
    addr: &str,
    request: &PeerRequest,
    options: &NetOptions,
    timeout: Duration,
) -> Result<PeerResponse, NetError> {
    let deadline = Instant::now() + timeout;
    let connection = tokio::time::timeout_at(deadline, Connection::open(addr, 0, options))
        .await
        .map_err(|_| NetError::ConnectTimeout {
            addr: addr.to_owned(),
            after: timeout,
        })??;
    connection.call(request, deadline).await
}
