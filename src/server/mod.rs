//! The server handle: start and stop, and every operation an application
//! performs on a running server (PYTHON_API.md §2, in Rust).
//!
//! `start` binds synchronously (a bind failure is an error, not a silent
//! no-op) and runs everything on its own Tokio runtime; every method may
//! be called from any thread, and none holds a lock while it waits, so
//! `stop` works while another thread is blocked in `drain_events`.
//!
//! `launch` holds the start sequence (bind, log, presence, cluster node,
//! tasks); `accept` the accept loop; `ticker` pings, idle checks and the
//! presence tick.

pub(crate) mod accept;

mod history;
mod launch;

mod fd_limit;

pub(crate) mod ticker;
mod tls_reload;

use std::net::SocketAddr;
use std::sync::Arc;

use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{Map, Value};

use wse_log::{LogError, Position};

use crate::cluster::{ClusterStarter, PublishError};
use crate::config::{ConfigError, ServerConfig};
use crate::conn::{CloseRequest, Conn, ConnId};
use crate::events::{AppEvent, InboundQueue};
use crate::metrics::{self, Health, Metrics};
use crate::ops;
use crate::ops::broadcast::Broadcast;
use crate::ops::recovery::{RecoveryError, RecoveryReport};
use crate::ops::subscribe::SubscriptionLimit;
use crate::state::ServerState;
use crate::topics::TopicAcl;
use crate::ws::frame::close_code;
use launch::wait_on;

/// How much longer than a membership change's own timeout the caller
/// waits: the change ends itself at its timeout, this only covers a
/// runtime that stopped answering.
const MEMBERSHIP_SLACK: Duration = Duration::from_secs(5);

/// Why a server operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// `start` on a running server.
    #[error("Server is already running")]
    AlreadyRunning,
    /// An operation that needs a running server.
    #[error("Not running")]
    NotRunning,
    /// The address could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The subscription limit was reached.
    #[error(transparent)]
    Limit(#[from] SubscriptionLimit),
    /// A recovery request is malformed.
    #[error(transparent)]
    Recovery(#[from] RecoveryError),
    /// A wait ended at its deadline.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// Presence refused a join or an update.
    #[error(transparent)]
    Presence(crate::presence::PresenceError),
    /// A publish was taken but not acknowledged (the cluster had no
    /// majority, or did not commit in time).
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// An app's frame could never be sent to the connection.
    #[error(transparent)]
    Send(#[from] ops::send::SendError),
    /// The cluster could not start, or the options ask for a cluster and
    /// none was plugged in.
    #[error("cluster: {0}")]
    Cluster(String),
    /// The TLS certificate or key could not be taken.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// `reload_tls` on a server without TLS.
    #[error("this server has no TLS (no tls_cert and tls_key)")]
    NoTls,
    /// An operation on this node's log alone that a cluster would not
    /// replicate (deleting a topic, its retention): refused on a cluster
    /// node, where the replicas would then disagree.
    #[error("{0} is not replicated, so a cluster node refuses it")]
    NotReplicated(&'static str),
}

/// The state and the connection an operation addresses.
type Target = (Arc<ServerState>, Arc<Conn>);

/// What a started server owns.
struct Running {
    state: Arc<ServerState>,
    runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
    /// Where the HTTP API listens, once started (`crate::http::start`).
    http_addr: Option<SocketAddr>,
    /// The temporary data directory when none was configured.
    _tempdir: Option<tempfile::TempDir>,
}

/// A WSE server.
pub struct Server {
    config: ServerConfig,
    events: Arc<InboundQueue>,
    running: Mutex<Option<Running>>,
    /// The file operations of the log (real files unless a test injects
    /// faults through [`Server::with_log_storage`]).
    log_storage: Option<Arc<dyn wse_log::Storage>>,
    /// What starts this node's part of a cluster, when the options name one.
    cluster: Option<Arc<dyn ClusterStarter>>,
}

impl Server {
    /// A server with `config` (validated; nothing runs until `start`).
    pub fn new(config: ServerConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            events: Arc::new(InboundQueue::new(
                config.max_inbound_queue,
                config.max_inbound_queue_bytes,
            )),
            config,
            running: Mutex::new(None),
            log_storage: None,
            cluster: None,
        })
    }

    /// Replicate broadcasts through the cluster `starter` starts (the
    /// `wse-replication` crate provides one) when `config.cluster` names
    /// this node. Without it a clustered configuration does not start.
    pub fn with_cluster(mut self, starter: Arc<dyn ClusterStarter>) -> Self {
        self.cluster = Some(starter);
        self
    }

    /// Open the log through `storage` instead of real files directly (the
    /// seam where tests inject ENOSPC, EMFILE, EIO and short writes).
    pub fn with_log_storage(mut self, storage: Arc<dyn wse_log::Storage>) -> Self {
        self.log_storage = Some(storage);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Bind, open the log and start serving. Returns the bound address.
    pub fn start(&self) -> Result<SocketAddr, ServerError> {
        let mut running = self.running.lock();
        if running.is_some() {
            return Err(ServerError::AlreadyRunning);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.config.worker_threads)
            .thread_name("wse-worker")
            .enable_all()
            .build()
            .map_err(ServerError::Runtime)?;
        match self.launch(&runtime) {
            Ok((state, addr, tempdir)) => {
                *running = Some(Running {
                    state,
                    runtime,
                    addr,
                    http_addr: None,
                    _tempdir: tempdir,
                });
                Ok(addr)
            }
            Err(e) => {
                // Dropping a runtime may block, which async callers forbid.
                runtime.shutdown_background();
                Err(e)
            }
        }
    }

    /// Stop: no new connections, every client gets Close 1012 (service
    /// restart: clients reconnect later and recover), the log is flushed
    /// and closed. Waits at most about 3 seconds. A no-op when stopped.
    pub fn stop(&self) -> Result<(), ServerError> {
        let Some(run) = self.running.lock().take() else {
            return Ok(());
        };
        let state = run.state.clone();
        state.life.stop();
        state.conns.close_all(&CloseRequest {
            code: Some(close_code::SERVICE_RESTART),
            reason: "server restarting".into(),
            flush: true,
        });
        self.events.close();
        state
            .conns
            .wait_all_gone(Instant::now() + Duration::from_secs(3));
        if let Some(cluster) = &state.cluster {
            // Before the log closes: the shards stop applying to it.
            let c = cluster.clone();
            let stopped = async move { c.shutdown().await };
            if wait_on(run.runtime.handle(), stopped, Some(Duration::from_secs(3))).is_none() {
                tracing::warn!("the cluster did not stop within 3 s");
            }
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            // Called from async code (a test, an app's event loop): the
            // runtime cannot block here; its tasks are done or abandoned.
            run.runtime.shutdown_background();
        } else {
            run.runtime.shutdown_timeout(Duration::from_secs(1));
        }
        let closed = state.log.close();
        // The log tells the fan-out thread nothing more once closed.
        state.feed.stop();
        drop(run._tempdir);
        tracing::info!("WSE server stopped");
        match closed {
            // Storage failing at the last fsync does not keep the server
            // from stopping: nothing unacknowledged was promised, and what
            // was acknowledged was durable when it was acknowledged.
            Err(e @ LogError::Unavailable { .. }) => {
                tracing::error!(error = %e, "the log's final fsync failed at stop");
                Ok(())
            }
            other => other.map_err(ServerError::from),
        }
    }

    /// Stop accepting, and close every client with `code`/`reason`; a
    /// background task waits up to `timeout` for them to go. Call `stop`
    /// afterwards.
    pub fn drain(&self, code: u16, reason: &str, timeout: Duration) -> Result<(), ServerError> {
        let state = self.state()?;
        state.life.drain();
        state.conns.close_all(&CloseRequest {
            code: Some(code),
            reason: reason.to_owned(),
            flush: true,
        });
        if let Some(r) = self.running.lock().as_ref() {
            let waiter = state;
            r.runtime.spawn(async move {
                let deadline = tokio::time::Instant::now() + timeout;
                if !waiter.conns.all_gone_by(deadline).await {
                    tracing::warn!(
                        remaining = waiter.conns.in_use(),
                        "drain timed out with connections left"
                    );
                }
            });
        }
        Ok(())
    }

    /// True between a successful `start` and `stop`.
    pub fn is_running(&self) -> bool {
        self.running.lock().is_some()
    }

    /// Where the HTTP API listens, when running with one.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.running.lock().as_ref().and_then(|r| r.http_addr)
    }

    /// Note where the HTTP API of this run listens.
    pub(crate) fn set_http_addr(&self, addr: SocketAddr) {
        if let Some(r) = self.running.lock().as_mut() {
            r.http_addr = Some(addr);
        }
    }

    /// The bound address, when running.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.running.lock().as_ref().map(|r| r.addr)
    }

    pub(crate) fn state(&self) -> Result<Arc<ServerState>, ServerError> {
        self.running
            .lock()
            .as_ref()
            .map(|r| r.state.clone())
            .ok_or(ServerError::NotRunning)
    }

    fn conn(&self, id: &str) -> Result<Option<Target>, ServerError> {
        let state = self.state()?;
        let conn = id.parse::<ConnId>().ok().and_then(|id| state.conn(id));
        Ok(conn.map(|c| (state, c)))
    }

    // ---- events ----------------------------------------------------------

    /// Up to `max` events, waiting up to `timeout` for the first (empty at
    /// once when stopped).
    pub fn drain_events(&self, max: usize, timeout: Duration) -> Vec<AppEvent> {
        self.events.drain(max, timeout)
    }

    /// Events waiting.
    pub fn inbound_queue_depth(&self) -> usize {
        self.events.depth()
    }

    /// Events lost (only events arriving while stopped).
    pub fn inbound_dropped_count(&self) -> u64 {
        self.events.dropped()
    }

    // ---- sending ---------------------------------------------------------

    /// Text frame to one connection (unknown id: nothing happens). A
    /// frame larger than `max_outbound_bytes` is refused
    /// ([`ServerError::Send`]); one that does not fit behind what the
    /// client has not read yet meets the slow-consumer policy.
    pub fn send(&self, conn: &str, text: &str) -> Result<(), ServerError> {
        if let Some((s, c)) = self.conn(conn)? {
            ops::send::send_app_text(&s, &c, text)?;
        }
        Ok(())
    }

    /// Binary frame to one connection (as [`Server::send`]).
    pub fn send_bytes(&self, conn: &str, data: &[u8]) -> Result<(), ServerError> {
        if let Some((s, c)) = self.conn(conn)? {
            ops::send::send_app_binary(&s, &c, data)?;
        }
        Ok(())
    }

    /// The `send_event` pipeline; returns the frame body's size, 0 when
    /// deduplicated or rate limited.
    pub fn send_event(
        &self,
        conn: &str,
        event: &Map<String, Value>,
        compression_threshold: usize,
    ) -> Result<usize, ServerError> {
        let state = self.state()?;
        let id = conn.parse::<ConnId>().unwrap_or(ConnId(0));
        let c = state.conn(id);
        Ok(ops::send::send_event(
            &state,
            c.as_ref(),
            id,
            event,
            compression_threshold,
        ))
    }

    /// Text to every connection.
    pub fn broadcast_all(&self, text: &str) -> Result<(), ServerError> {
        let state = self.state()?;
        ops::send::broadcast_all(&state, text);
        Ok(())
    }

    /// Bytes to every connection.
    pub fn broadcast_all_bytes(&self, data: &[u8]) -> Result<(), ServerError> {
        let state = self.state()?;
        ops::send::broadcast_all_bytes(&state, data);
        Ok(())
    }

    /// Publish on `topic` and wait until the record is acknowledged:
    /// durable by the log's policy (`always`: covered by an fsync;
    /// `interval`/`never`: written to its file, so a crash of this process
    /// cannot take it back), and in a cluster committed by a majority of
    /// the topic's shard and applied by its leader. Returns the record's
    /// position. Blocks the
    /// calling thread (concurrent publishers share the log's fsyncs); an
    /// error means the record is not acknowledged and will not be
    /// delivered.
    pub fn publish(&self, topic: &str, text: &str) -> Result<Position, ServerError> {
        self.publish_with_id(topic, text, None)
    }

    /// [`Server::publish`] with an idempotence key: a publish whose `id` is
    /// already stored on `topic` (within `cluster.dedup_window` identified
    /// publishes: of the topic's shard in a cluster, of the topic on a
    /// single node) is not stored again, and this returns the first copy's
    /// position. So a publish that failed with a timeout, or whose answer
    /// was lost with its publisher, can be sent again with the same id
    /// without being stored twice. A single node's window is in memory: a
    /// restart forgets it.
    pub fn publish_with_id(
        &self,
        topic: &str,
        text: &str,
        id: Option<&str>,
    ) -> Result<Position, ServerError> {
        let state = self.state()?;
        let taken = ops::broadcast::broadcast(&state, topic, text, id)?;
        if let Some(local) = taken.wait_local() {
            return Ok(local?);
        }
        let Broadcast::Replicating(commit) = taken else {
            return Err(ServerError::NotRunning); // wait_local answers the rest
        };
        let handle = self.runtime_handle()?;
        Ok(wait_on(&handle, commit, None).ok_or(ServerError::NotRunning)??)
    }

    /// The runtime of the running server.
    pub(crate) fn runtime_handle(&self) -> Result<tokio::runtime::Handle, ServerError> {
        match self.running.lock().as_ref() {
            Some(r) => Ok(r.runtime.handle().clone()),
            None => Err(ServerError::NotRunning),
        }
    }

    /// Wait until everything published or broadcast before this call is
    /// acknowledged (and, under `interval`, fsynced as well), at most
    /// `timeout` (`None`: as long as it takes).
    pub fn flush(&self, timeout: Option<Duration>) -> Result<(), ServerError> {
        let (log, runtime) = match self.running.lock().as_ref() {
            Some(r) => (r.state.log.clone(), r.runtime.handle().clone()),
            None => return Err(ServerError::NotRunning),
        };
        // The log's flush blocks; a thread of the runtime's blocking pool
        // runs it so the caller can give up at its deadline.
        let (tx, rx) = std::sync::mpsc::channel();
        runtime.spawn_blocking(move || {
            let _ = tx.send(log.flush());
        });
        let result = match timeout {
            Some(t) => rx.recv_timeout(t).map_err(|_| ServerError::Timeout(t))?,
            None => rx.recv().map_err(|_| ServerError::NotRunning)?,
        };
        Ok(result?)
    }

    /// Publish on `topic` without waiting (fire-and-forget, as upstream's
    /// `broadcast_local`): the record has its position and is delivered
    /// once durable, but a crash in the next moments, or a storage fault,
    /// can still lose it. Returns the position; `None` when the server is
    /// not running, and in a cluster (the position is given at commit).
    /// Use [`Server::publish`] (or [`Server::flush`]) for an
    /// acknowledgement.
    pub fn broadcast_local(
        &self,
        topic: &str,
        text: &str,
    ) -> Result<Option<Position>, ServerError> {
        let Ok(state) = self.state() else {
            return Ok(None);
        };
        // In a cluster the position is given at commit: `None` here, and
        // dropping the commit does not cancel the publish.
        Ok(ops::broadcast::broadcast(&state, topic, text, None)?.position())
    }

    // ---- connections -----------------------------------------------------

    /// Registered connections.
    pub fn connection_count(&self) -> usize {
        self.running
            .lock()
            .as_ref()
            .map_or(0, |r| r.state.conns.len())
    }

    /// Ids of the registered connections.
    pub fn connections(&self) -> Result<Vec<String>, ServerError> {
        Ok(self
            .state()?
            .conns
            .all()
            .iter()
            .map(|c| c.id_str.clone())
            .collect())
    }

    /// Close a connection (Close without status, as upstream).
    pub fn disconnect(&self, conn: &str) -> Result<(), ServerError> {
        if let Some((_, c)) = self.conn(conn)? {
            c.request_close(CloseRequest {
                code: None,
                reason: String::new(),
                flush: true,
            });
        }
        Ok(())
    }

    // ---- subscriptions ---------------------------------------------------

    /// Replace a connection's topic ACL (unknown ids are ignored).
    pub fn set_topic_acl(&self, conn: &str, acl: TopicAcl) -> Result<(), ServerError> {
        if let Some((_, c)) = self.conn(conn)? {
            *c.acl.write() = Some(acl);
        }
        Ok(())
    }

    /// Subscribe a connection to topics (or join a queue group of each).
    /// Unknown connection or not running: nothing happens.
    pub fn subscribe(
        &self,
        conn: &str,
        topics: &[String],
        group: Option<&str>,
    ) -> Result<(), ServerError> {
        let Ok(Some((s, c))) = self.conn(conn) else {
            return Ok(());
        };
        ops::subscribe::subscribe(&s, &c, topics, group)?;
        Ok(())
    }

    /// `subscribe`, and with `presence` data (presence enabled) track the
    /// connection's user in each topic. A join presence refuses (data too
    /// large, topic full) subscribes without presence, as upstream, with a
    /// warning and the `presence_refused` counter.
    pub fn subscribe_with_presence(
        &self,
        conn: &str,
        topics: &[String],
        group: Option<&str>,
        presence: Option<&Value>,
    ) -> Result<(), ServerError> {
        let Ok(Some((s, c))) = self.conn(conn) else {
            return Ok(());
        };
        ops::subscribe::subscribe_with_presence(&s, &c, topics, group, presence)?;
        Ok(())
    }

    // ---- presence --------------------------------------------------------

    /// `{user: (connections, data)}` of a topic (empty when presence is off).
    pub fn presence(&self, topic: &str) -> std::collections::BTreeMap<String, (usize, Value)> {
        self.state()
            .ok()
            .and_then(|s| s.presence.as_ref().map(|p| p.members(topic)))
            .unwrap_or_default()
    }

    /// `(users, connections)` of a topic, in O(1) (zeros when off).
    pub fn presence_stats(&self, topic: &str) -> (usize, usize) {
        self.state()
            .ok()
            .and_then(|s| s.presence.as_ref().map(|p| p.stats(topic)))
            .unwrap_or((0, 0))
    }

    /// Set the data of a connection's user in every topic where it has
    /// presence. A no-op when presence is off; an error for an unknown
    /// connection or data over the size limit.
    pub fn update_presence(&self, conn: &str, data: &Value) -> Result<(), ServerError> {
        let state = self.state()?;
        let Some(p) = &state.presence else {
            return Ok(());
        };
        let c = conn
            .parse::<ConnId>()
            .ok()
            .and_then(|id| state.conn(id))
            .ok_or(ServerError::Presence(
                crate::presence::PresenceError::NotTracked,
            ))?;
        p.update(&state, &c, data).map_err(ServerError::Presence)
    }

    /// Unsubscribe from `topics`, or from everything with `None`.
    pub fn unsubscribe(&self, conn: &str, topics: Option<&[String]>) -> Result<(), ServerError> {
        let Ok(Some((s, c))) = self.conn(conn) else {
            return Ok(());
        };
        match topics {
            Some(t) => ops::subscribe::unsubscribe(&s, &c, t),
            None => ops::subscribe::unsubscribe_all(&s, &c),
        }
        Ok(())
    }

    /// Fan-out subscribers of exactly `topic`.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.state()
            .ok()
            .and_then(|s| s.fanout.channels.get(topic).map(|c| c.subscriber_count()))
            .unwrap_or(0)
    }

    /// `{group: members}` of `topic`.
    pub fn queue_group_info(&self, topic: &str) -> std::collections::BTreeMap<String, usize> {
        self.state()
            .ok()
            .and_then(|s| s.fanout.channels.get(topic).map(|c| c.group_info()))
            .unwrap_or_default()
    }

    /// Subscribe and replay what the client missed since `(epoch, offset)`.
    pub fn subscribe_with_recovery(
        &self,
        conn: &str,
        topics: &[String],
        recover: bool,
        epoch: Option<&str>,
        offset: Option<u64>,
    ) -> Result<RecoveryReport, ServerError> {
        let state = self.state()?;
        match conn.parse::<ConnId>().ok().and_then(|id| state.conn(id)) {
            Some(c) => Ok(ops::recovery::subscribe_with_recovery(
                &state, &c, topics, recover, epoch, offset,
            )?),
            None => Ok(RecoveryReport {
                recovered: false,
                topics: Vec::new(),
            }),
        }
    }

    // ---- monitoring ------------------------------------------------------

    /// The health snapshot.
    pub fn health(&self) -> Health {
        let recovery = self.config.recovery_enabled;
        let presence = self.config.presence_enabled;
        let base = Health {
            inbound_queue_depth: self.events.depth() as u64,
            inbound_dropped: self.events.dropped(),
            recovery_enabled: recovery,
            presence_enabled: presence,
            ..Health::default()
        };
        let Ok(state) = self.state() else {
            return Health {
                presence_topics: presence.then_some(0),
                presence_total_users: presence.then_some(0),
                log_tail_hit_ratio: 1.0,
                ..base
            };
        };
        let log = state.log.stats();
        let presence_totals = state.presence.as_ref().map(|p| p.totals());
        let peers = state
            .cluster
            .as_ref()
            .map_or(0, |c| c.status().connected_peers.len() as u64);
        Health {
            cluster_connected: peers > 0,
            cluster_peer_count: peers,
            connections: state.conns.len() as u64,
            uptime_secs: state.life.started().elapsed().as_secs_f64(),
            recovery_topic_count: if recovery { log.topics } else { 0 },
            recovery_total_bytes: if recovery { log.tail_bytes } else { 0 },
            presence_topics: presence_totals.map(|(topics, _)| topics as u64),
            presence_total_users: presence_totals.map(|(_, users)| users as u64),
            log_tail_hit_ratio: log.tail_hit_ratio(),
            log_appends: log.appends,
            log_append_bytes: log.append_bytes,
            log_fsyncs: log.fsyncs,
            log_write_failures: log.write_failures,
            log_disk_reads: log.disk_reads,
            log_damaged_reads: log.damaged_reads,
            topics: state.fanout.channels.len() as u64,
            queue_memory_bytes: state.budget.used() as u64,
            ..base
        }
        .with_counters(&state.metrics)
    }

    /// Prometheus text.
    pub fn prometheus_metrics(&self) -> String {
        let h = self.health();
        match self.state() {
            Ok(s) => {
                let mut out = metrics::prometheus(&s.metrics, &h);
                if let Some(cluster) = &s.cluster {
                    crate::cluster::write_prometheus(&mut out, &cluster.status());
                }
                out
            }
            Err(_) => metrics::prometheus(&Metrics::default(), &h),
        }
    }

    /// This node's view of its cluster (`None`: not running, or a single
    /// node).
    pub fn cluster_status(&self) -> Option<crate::cluster::ClusterStatus> {
        self.state().ok()?.cluster.as_ref().map(|c| c.status())
    }

    /// Make node `id`, whose peer listener is at `addr`, a voter of every
    /// shard of this node's cluster (see `Replicator::add_node`). Blocks
    /// up to `timeout`; returns the shards whose membership changed.
    pub fn add_node(
        &self,
        id: u64,
        addr: &str,
        timeout: Duration,
    ) -> Result<Vec<u32>, ServerError> {
        let cluster = self.replicator()?;
        let handle = self.runtime_handle()?;
        let change = cluster.add_node(id, addr, timeout);
        Self::membership_outcome(
            wait_on(&handle, change, Some(timeout + MEMBERSHIP_SLACK)),
            timeout,
        )
    }

    /// Take node `id` out of every shard's membership (see
    /// `Replicator::remove_node`). Blocks up to `timeout`.
    pub fn remove_node(&self, id: u64, timeout: Duration) -> Result<Vec<u32>, ServerError> {
        let cluster = self.replicator()?;
        let handle = self.runtime_handle()?;
        let change = cluster.remove_node(id, timeout);
        Self::membership_outcome(
            wait_on(&handle, change, Some(timeout + MEMBERSHIP_SLACK)),
            timeout,
        )
    }

    /// The cluster of the running server; an error on a single node.
    fn replicator(&self) -> Result<Arc<dyn crate::cluster::Replicator>, ServerError> {
        self.state()?
            .cluster
            .clone()
            .ok_or_else(|| ServerError::Cluster("this server is not a cluster node".into()))
    }

    fn membership_outcome(
        outcome: Option<Result<Vec<u32>, crate::cluster::MembershipFailed>>,
        timeout: Duration,
    ) -> Result<Vec<u32>, ServerError> {
        match outcome {
            Some(Ok(changed)) => Ok(changed),
            Some(Err(e)) => Err(ServerError::Cluster(e.to_string())),
            None => Err(ServerError::Timeout(timeout)),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::warn!(error = %e, "stopping the server failed");
        }
    }
}
