//! The state a running server shares, as a few handles, each owning one
//! concept: the options, the log, topics and their fan-out, the
//! connections, the application's event queue, presence, the counters, the
//! server's lifecycle and the `send_event` ledger. Code takes the
//! `ServerState` only where it coordinates several of them; a part that
//! needs one takes that handle (the catch-up reader takes the `Log`, a
//! channel its `Metrics`).

pub(crate) mod connections;
pub(crate) mod handshakes;
pub(crate) mod lifecycle;

use std::sync::Arc;

use wse_log::Log;

use crate::budget::MemoryBudget;
use crate::cluster::Replicator;
use crate::config::ServerConfig;
use crate::conn::{Conn, ConnId};
use crate::events::InboundQueue;
use crate::fanout::Fanout;
use crate::fanout::feed::Feed;
use crate::metrics::Metrics;
use crate::ops::ledger::SendLedger;
use crate::ops::publish_ids::PublishIds;
use crate::presence::Presence;
use connections::Connections;
use lifecycle::Lifecycle;

/// Everything a running server shares.
pub(crate) struct ServerState {
    /// The options (validated; `max_connections` clamped to the fd limit).
    pub(crate) config: ServerConfig,
    /// The log every broadcast goes to.
    pub(crate) log: Arc<Log>,
    /// Topic channels and pattern subscriptions.
    pub(crate) fanout: Arc<Fanout>,
    /// The fan-out thread, fed by the log's writer thread.
    pub(crate) feed: Arc<Feed>,
    /// Registered connections and the admission of new ones.
    pub(crate) conns: Connections,
    /// Events for the application.
    pub(crate) events: Arc<InboundQueue>,
    /// Counters.
    pub(crate) metrics: Arc<Metrics>,
    /// The count of the bytes the connections' queues and read buffers
    /// hold, against `queue_memory_budget`.
    pub(crate) budget: Arc<MemoryBudget>,
    /// Since when the server runs, and whether it drains or stops.
    pub(crate) life: Lifecycle,
    /// `send_event` deduplication and sequence numbers.
    pub(crate) sends: SendLedger,
    /// On a single node, each topic's recent publish ids, so a publish sent
    /// again is stored once (in a cluster the shards keep theirs).
    pub(crate) publish_ids: PublishIds,
    /// Presence, when enabled.
    pub(crate) presence: Option<Presence>,
    /// The cluster broadcasts are replicated through (none: a single node).
    pub(crate) cluster: Option<Arc<dyn Replicator>>,
    /// TLS on the client port, when configured.
    pub(crate) tls: Option<Arc<crate::tls::Tls>>,
}

impl ServerState {
    /// Milliseconds since start (the time base of activity stamps).
    pub(crate) fn now_ms(&self) -> u64 {
        self.life.now_ms()
    }

    /// The connection with `id`, if registered.
    pub(crate) fn conn(&self, id: ConnId) -> Option<Arc<Conn>> {
        self.conns.get(id)
    }
}
