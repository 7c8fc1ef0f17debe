//! A node's part of one shard: its Raft, log store and state machine, and
//! the operations the server needs (start, initialize, publish, metrics).

use crate::error::ClusterError;
use crate::log_store::LogStore;
use crate::state_machine::StateMachine;
use crate::transfer::{Fetch, NoFetch};
use crate::types::{NodeId, Publish, Raft, Request, TypeConfig};
use openraft::error::{ClientWriteError, Fatal, InitializeError, RaftError};
use openraft::{BasicNode, Config, RaftMetrics, RaftNetworkFactory, SnapshotPolicy};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use wse::cluster::RecordEncoder;
use wse_log::storage::{FsStorage, Storage};
use wse_log::{Log, Position};

/// How a shard's Raft runs.
#[derive(Clone)]
pub struct ShardOptions {
    /// Leader heartbeat period. Default 100 ms.
    pub heartbeat: Duration,
    /// A follower that hears no leader for a random time in this range
    /// starts an election. Default 300-600 ms: shorter fails over sooner,
    /// but a slow fsync or a busy machine then causes needless elections.
    pub election_timeout: (Duration, Duration),
    /// How long `publish` waits for the commit. Default 5 s.
    pub publish_timeout: Duration,
    /// Publish ids remembered per shard for the idempotent producer
    /// (default 10,000; 0: none).
    pub dedup_window: usize,
    /// How a committed publish becomes its record's bytes, given the
    /// position it gets. Default: the payload as it is. The server passes
    /// its own, which stamps the position into the message.
    pub encode: RecordEncoder,
    /// Applied entries between two snapshots (0: never snapshot, never
    /// purge the Raft log). Default 20,000; see
    /// `wse::config::ClusterConfig::snapshot_every` for the trade-off.
    pub snapshot_every: u64,
    /// Entries kept in the Raft log behind a snapshot, so a follower only
    /// slightly behind catches up from the log rather than by a snapshot
    /// and a record transfer. Default 1,000.
    pub snapshot_keep: u64,
    /// Where a node installing a snapshot fetches the records it lacks.
    /// Default: nowhere (such an install fails); a node passes its
    /// [`crate::Peers`], tests a [`crate::Loopback`].
    pub fetch: Arc<dyn Fetch>,
    /// The file operations of the Raft log file: real files by default;
    /// tests pass a [`wse_log::storage::FaultyStorage`] to make one
    /// node's disk slow or failing.
    pub storage: Arc<dyn Storage>,
}

impl std::fmt::Debug for ShardOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardOptions")
            .field("heartbeat", &self.heartbeat)
            .field("election_timeout", &self.election_timeout)
            .field("publish_timeout", &self.publish_timeout)
            .field("dedup_window", &self.dedup_window)
            .field("snapshot_every", &self.snapshot_every)
            .field("snapshot_keep", &self.snapshot_keep)
            .finish_non_exhaustive()
    }
}

/// The default encoding: a record holds the payload as it is.
pub fn verbatim() -> RecordEncoder {
    Arc::new(|_topic, payload, _position, buf| buf.extend_from_slice(payload))
}

impl Default for ShardOptions {
    fn default() -> Self {
        ShardOptions {
            heartbeat: Duration::from_millis(100),
            election_timeout: (Duration::from_millis(300), Duration::from_millis(600)),
            publish_timeout: Duration::from_secs(5),
            dedup_window: 10_000,
            encode: verbatim(),
            snapshot_every: 20_000,
            snapshot_keep: 1_000,
            fetch: Arc::new(NoFetch),
            storage: Arc::new(FsStorage),
        }
    }
}

impl ShardOptions {
    /// openraft's configuration for these options.
    fn raft_config(&self, shard: u32) -> Result<Config, ClusterError> {
        let ms = |d: Duration| d.as_millis() as u64;
        let config = Config {
            cluster_name: format!("wse-shard-{shard}"),
            heartbeat_interval: ms(self.heartbeat),
            election_timeout_min: ms(self.election_timeout.0),
            election_timeout_max: ms(self.election_timeout.1),
            // A snapshot is small (positions and ids, see `snapshot`), so
            // building one is cheap; the Raft log is purged behind it.
            snapshot_policy: match self.snapshot_every {
                0 => SnapshotPolicy::Never,
                n => SnapshotPolicy::LogsSinceLast(n),
            },
            max_in_snapshot_log_to_keep: match self.snapshot_every {
                0 => u64::MAX,
                _ => self.snapshot_keep,
            },
            // Entries per AppendEntries: an entry holds at most about 1 MiB
            // of publishes (one larger message goes alone), so a catch-up
            // message stays well under the peer link's 64 MiB frame limit.
            max_payload_entries: 32,
            ..Default::default()
        };
        config
            .validate()
            .map_err(|e| ClusterError::Config(Box::new(e)))
    }
}

/// One shard on one node.
pub struct Shard {
    /// Which shard, for errors and metrics.
    shard: u32,
    /// The running Raft of the shard.
    raft: Raft,
    /// The state machine, to read what it applied.
    state_machine: StateMachine,
    /// The Raft log, to report how much of it is held.
    log_store: LogStore,
    /// How long a publish waits for its commit.
    publish_timeout: Duration,
}

impl Shard {
    /// Start node `node`'s Raft of shard `shard`, with its Raft files in
    /// `dir` (kept across restarts), applying to `log`, talking through
    /// `network`.
    pub async fn start<N>(
        node: NodeId,
        shard: u32,
        dir: &Path,
        log: Arc<Log>,
        network: N,
        options: &ShardOptions,
    ) -> Result<Shard, ClusterError>
    where
        N: RaftNetworkFactory<TypeConfig>,
    {
        let storage = |source| ClusterError::Storage { shard, source };
        let log_store = LogStore::open_on(options.storage.clone(), dir).map_err(storage)?;
        let state_machine =
            StateMachine::open(dir, log, options.encode.clone(), options.dedup_window)
                .map_err(storage)?
                .with_fetch(options.fetch.clone());
        // The idempotence window is replicated state: rebuilt from the
        // latest snapshot and the applied entries after it, which the Raft
        // log keeps (it is purged only behind a snapshot).
        state_machine.rebuild_window(log_store.entries().iter());
        let config = Arc::new(options.raft_config(shard)?);
        let raft = Raft::new(
            node,
            config,
            network,
            log_store.clone(),
            state_machine.clone(),
        )
        .await
        .map_err(|source| ClusterError::Stopped {
            shard,
            source: Box::new(source),
        })?;
        state_machine.attach(raft.metrics());
        Ok(Shard {
            shard,
            raft,
            state_machine,
            log_store,
            publish_timeout: options.publish_timeout,
        })
    }

    /// Make `members` the first membership of the shard (once, on one node,
    /// at the cluster's first start).
    pub async fn initialize(
        &self,
        members: BTreeMap<NodeId, BasicNode>,
    ) -> Result<(), ClusterError> {
        let shard = self.shard;
        self.raft.initialize(members).await.map_err(|e| match e {
            RaftError::APIError(source) => ClusterError::Initialize {
                shard,
                source: Box::new(source),
            },
            RaftError::Fatal(source) => ClusterError::Stopped {
                shard,
                source: Box::new(source),
            },
        })
    }

    /// True when the shard has a log or a vote (it ran before, or was
    /// initialized, or a leader reached it).
    pub async fn is_initialized(&self) -> Result<bool, ClusterError> {
        let shard = self.shard;
        self.raft
            .is_initialized()
            .await
            .map_err(|source| ClusterError::Stopped {
                shard,
                source: Box::new(source),
            })
    }

    /// Make `members` the first membership of the shard unless it has
    /// one. Every node may call this with the same members at its first
    /// start (openraft allows identical initializations on several nodes:
    /// the vote decides); a node that has a log or a vote skips it.
    pub async fn initialize_if_new(
        &self,
        members: BTreeMap<NodeId, BasicNode>,
    ) -> Result<(), ClusterError> {
        if self.is_initialized().await? {
            return Ok(());
        }
        match self.initialize(members).await {
            // Raced with an entry from a leader: initialized after all.
            Err(ClusterError::Initialize { source, .. })
                if matches!(*source, InitializeError::NotAllowed(_)) =>
            {
                Ok(())
            }
            other => other,
        }
    }

    /// Publish `batch` as one Raft entry; returns each message's position
    /// once a majority has it and this node applied it. Only the leader
    /// accepts: elsewhere [`ClusterError::NotLeader`].
    pub async fn publish(&self, batch: Vec<Publish>) -> Result<Vec<Position>, ClusterError> {
        self.submit(batch).await?.await
    }

    /// Hand `batch` to the shard's Raft as one entry, and return what waits
    /// for its commit. Entries submitted one after another are in that
    /// order in the log (the submission is done when this returns), so a
    /// caller can pipeline: submit in order, wait in any order. The wait
    /// ends with [`ClusterError::NotLeader`] when this node does not lead,
    /// or [`ClusterError::Timeout`] after `publish_timeout`.
    pub async fn submit(
        &self,
        batch: Vec<Publish>,
    ) -> Result<
        impl Future<Output = Result<Vec<Position>, ClusterError>> + Send + 'static,
        ClusterError,
    > {
        let shard = self.shard;
        let timeout = self.publish_timeout;
        let responder = self
            .raft
            .client_write_ff(Request::new(batch))
            .await
            .map_err(|source| ClusterError::Stopped {
                shard,
                source: Box::new(source),
            })?;
        Ok(async move {
            let answer = tokio::time::timeout(timeout, responder)
                .await
                .map_err(|_| ClusterError::Timeout {
                    shard,
                    after: timeout,
                })?
                // The responder is dropped only when the Raft core stops.
                .map_err(|_| ClusterError::Stopped {
                    shard,
                    source: Box::new(Fatal::Stopped),
                })?;
            match answer {
                Ok(r) => Ok(r.data.positions),
                Err(ClientWriteError::ForwardToLeader(f)) => Err(ClusterError::NotLeader {
                    shard,
                    leader: f.leader_id,
                }),
                Err(source) => Err(ClusterError::Rejected {
                    shard,
                    source: Box::new(source),
                }),
            }
        })
    }

    /// The leader this node knows of (itself included), if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// Which shard this is.
    pub fn id(&self) -> u32 {
        self.shard
    }

    /// The shard's Raft figures now (leader, term, log and applied index).
    pub fn metrics(&self) -> RaftMetrics<NodeId, BasicNode> {
        self.raft.metrics().borrow().clone()
    }

    /// The openraft handle (to wait for metrics, or register it with a
    /// network).
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// What the state machine applied (last log id, topic offsets).
    pub fn applied(&self) -> crate::state_machine::Applied {
        self.state_machine.applied()
    }

    /// How many Raft log entries this node holds for the shard: in memory
    /// and in its `raft-log` file (they differ only during a write).
    pub fn raft_log_held(&self) -> (usize, usize) {
        self.log_store.held()
    }

    /// Stop the shard's Raft; its files stay for a restart.
    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(shard = self.shard, error = %e, "raft shutdown");
        }
    }
}
