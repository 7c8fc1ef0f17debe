//! Presence in a cluster: its operations are replicated records.
//!
//! On a single node presence applies an operation and appends it to the
//! topic's presence stream itself. In a cluster the presence stream is
//! replicated like the topic's messages, in the topic's shard: an operation
//! is handed to the cluster (`Replicator::publish_presence`), and every
//! node, this one included, folds it into its presence only once it is
//! committed and reaches the node's log. Every node folds the same stream
//! in the same order, so presence is the same everywhere (the CRDT would
//! converge in any order; the log makes it durable, and one order).
//!
//! What a node knows for sure is local: which of its own connections track
//! presence in which topic. Once per [`RECONCILE_EVERY`] it compares the
//! replicated state with that, and with who in the cluster is alive, and
//! sends what is missing ([`Presence::sync`]):
//!
//! - entries this node made that no connection of it owns (a leave that
//!   failed to commit, or the entries of an earlier run of this node, gone
//!   with a crash) are removed;
//! - a connection whose entry is missing (a join that failed to commit, or
//!   an entry a leader removed while this node was cut off) joins again,
//!   with a new dot;
//! - on the leader of a topic's shard, the entries of a node that has not
//!   answered for `cluster.node_timeout` are removed: a dead node's users
//!   leave on every node. The leader judges only once it has led the shard
//!   that long itself, so every live member has answered its heartbeats;
//! - on the leader, a snapshot of the topic's presence is written every
//!   `SNAPSHOT_EVERY` operations; each node trims its stream before the
//!   previous snapshot when it folds the next.
//!
//! An operation sent is not sent again for `cluster.publish_timeout`: by
//! then it was committed or it failed. Sending one twice is harmless:
//! applying a CRDT operation twice changes nothing.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;
use wse_log::{AppendListener, Epoch, Log, LogError, Position, Record};

use super::crdt::{Dot, Entry, Op};
use super::stream;
use super::topic::{TopicPresence, Transition};
use super::tracker::{Presence, SNAPSHOT_EVERY};
use crate::cluster::Replicator;
use crate::config::ClusterConfig;
use crate::conn::ConnId;
use crate::state::ServerState;

/// How often a node reconciles the replicated presence with its own
/// connections and with the cluster's liveness.
const RECONCILE_EVERY: Duration = Duration::from_secs(1);

/// The log listener that notes which presence streams got records: the
/// presence tick folds those.
#[derive(Default)]
pub(crate) struct StreamWatch {
    streams: Mutex<HashSet<String>>,
}

impl StreamWatch {
    /// The streams noted since the last call.
    fn take(&self) -> HashSet<String> {
        std::mem::take(&mut *self.streams.lock())
    }
}

impl AppendListener for StreamWatch {
    /// On the log's writer thread: note the stream's name, nothing more.
    fn on_visible(&self, topic: &str, _epoch: Epoch, records: &[Record]) {
        if !records.is_empty() && stream::topic_of(topic).is_some() {
            self.streams.lock().insert(topic.to_owned());
        }
    }
}

/// A cluster node's part of presence: the streams' fold positions and the
/// operations in flight.
pub(crate) struct Replicated {
    /// This node's id in the cluster (its presence replica's node).
    node: u64,
    /// Streams with records not folded yet.
    watch: Arc<StreamWatch>,
    /// Per topic, the position of the next record of its stream to fold.
    cursors: Mutex<HashMap<Arc<str>, Position>>,
    /// Dots joined or removed by an operation sent, and when it was sent.
    sent: Mutex<HashMap<Dot, Instant>>,
    /// When the last reconciliation ran.
    reconciled: Mutex<Option<Instant>>,
    /// `cluster.node_timeout`.
    node_timeout: Duration,
    /// `cluster.publish_timeout`: an operation sent this long ago has been
    /// committed or has failed.
    resend_after: Duration,
}

impl Replicated {
    /// Presence for a node of the cluster `config` describes; `None` for a
    /// single node.
    pub(crate) fn new(config: &ClusterConfig) -> Option<Replicated> {
        Some(Replicated {
            node: config.node_id?,
            watch: Arc::new(StreamWatch::default()),
            cursors: Mutex::new(HashMap::new()),
            sent: Mutex::new(HashMap::new()),
            reconciled: Mutex::new(None),
            node_timeout: config.node_timeout,
            resend_after: config.publish_timeout,
        })
    }

    /// The listener to give the log, so the tick knows what to fold.
    pub(crate) fn watch(&self) -> Arc<StreamWatch> {
        self.watch.clone()
    }

    /// This node's id.
    pub(super) fn node(&self) -> u64 {
        self.node
    }

    /// `topic`'s stream is folded up to `next`.
    pub(super) fn folded(&self, topic: &Arc<str>, next: Position) {
        self.cursors.lock().insert(topic.clone(), next);
    }

    /// Hand `op` on `topic` to the cluster, and remember the dots it
    /// touches as sent.
    pub(super) fn submit(&self, cluster: &dyn Replicator, topic: &str, op: &Op) {
        let now = Instant::now();
        {
            let mut sent = self.sent.lock();
            match op {
                Op::Join { dot, .. } => {
                    sent.insert(*dot, now);
                }
                Op::Leave { dots } => sent.extend(dots.iter().map(|d| (*d, now))),
                Op::Update { .. } | Op::Snapshot(_) => {}
            }
        }
        // Fire and forget: the commit goes on when its future is dropped,
        // and the reconciliation sends again what never arrives.
        drop(cluster.publish_presence(topic, &stream::stream_name(topic), stream::encode(op)));
    }

    /// Was an operation on `dot` sent too recently to send another?
    fn sent_recently(&self, dot: &Dot, now: Instant) -> bool {
        self.sent
            .lock()
            .get(dot)
            .is_some_and(|at| now.duration_since(*at) < self.resend_after)
    }

    /// Is a reconciliation due? Marks it done when it is.
    fn reconcile_due(&self, now: Instant) -> bool {
        let mut last = self.reconciled.lock();
        if last.is_some_and(|at| now.duration_since(at) < RECONCILE_EVERY) {
            return false;
        }
        *last = Some(now);
        true
    }
}

impl Presence {
    /// In a cluster: fold the records the presence streams got since the
    /// last call, and reconcile when it is due (see the module doc). Does
    /// nothing on a single node. Blocking: it reads the log.
    pub(crate) fn sync(&self, state: &ServerState) {
        let (Some(r), Some(cluster)) = (&self.replicated, &state.cluster) else {
            return;
        };
        for name in r.watch.take() {
            if let Some(topic) = stream::topic_of(&name)
                && let Err(e) = self.fold(&state.log, r, topic)
            {
                tracing::warn!(topic, error = %e, "presence stream not folded");
            }
        }
        let now = Instant::now();
        if r.reconcile_due(now) {
            self.reconcile(cluster.as_ref(), r, now);
        }
    }

    /// Is presence replicated (this node is in a cluster)?
    pub(crate) fn is_replicated(&self) -> bool {
        self.replicated.is_some()
    }

    /// Fold what `topic`'s stream holds past its cursor. A stream that
    /// started a new epoch (a forced membership deleted the shard's
    /// topics) is folded from its start into an empty state: every user
    /// of the old history leaves.
    fn fold(&self, log: &Log, r: &Replicated, topic: &str) -> Result<(), LogError> {
        let topic: Arc<str> = Arc::from(topic);
        let start = stream::start(log, &topic);
        let cursor = r.cursors.lock().get(&topic).copied();
        let (from, restart) = match cursor {
            Some(c) if c.epoch == start.epoch => (c, false),
            Some(_) => (start, true),
            None => (start, false),
        };
        let (ops, next) = stream::read_since(log, &topic, from)?;
        let tp = self.topic(&topic);
        let mut guard = tp.lock();
        let mut transitions = Vec::new();
        if restart {
            transitions.extend(
                guard
                    .members()
                    .into_iter()
                    .map(|(user, (_, data))| Transition {
                        user,
                        was: true,
                        now: false,
                        data,
                        data_changed: false,
                    }),
            );
            *guard = TopicPresence::default();
        }
        for (offset, op) in &ops {
            self.observe(op);
            transitions.extend(guard.apply(op));
            if let Op::Snapshot(_) = op {
                self.snapshot_at(&topic, *offset);
            }
        }
        drop(guard);
        r.folded(&topic, next);
        self.note(&topic, transitions);
        Ok(())
    }

    /// Compare the replicated presence with this node's connections and
    /// the cluster's liveness, and send what is missing.
    fn reconcile(&self, cluster: &dyn Replicator, r: &Replicated, now: Instant) {
        let me = self.replica;
        let mut owned: HashMap<Arc<str>, Vec<(ConnId, Dot)>> = HashMap::new();
        for o in self.owned.iter() {
            for (topic, dot) in &o.dots {
                owned
                    .entry(topic.clone())
                    .or_default()
                    .push((*o.key(), *dot));
            }
        }
        let mut dead: HashMap<u64, bool> = HashMap::new();
        let mut is_dead = |node: u64| {
            *dead
                .entry(node)
                .or_insert_with(|| cluster.silent_for(node) >= r.node_timeout)
        };
        let topics: Vec<_> = self
            .topics
            .iter()
            .map(|t| (t.key().clone(), t.value().clone()))
            .collect();
        let mut sends = Vec::new();
        let mut rejoins = Vec::new();
        for (topic, tp) in topics {
            let leading = cluster.leader_for(&topic);
            let judges = leading.is_some_and(|d| d >= r.node_timeout);
            let mine = owned.get(&topic).map(Vec::as_slice).unwrap_or_default();
            let mine_dots: HashSet<&Dot> = mine.iter().map(|(_, d)| d).collect();
            let mut guard = tp.lock();
            let entries = &guard.state().entries;
            let leaves: Vec<Dot> = entries
                .keys()
                .filter(|d| {
                    if d.replica.node == me.node {
                        // Entries of an earlier run are never owned.
                        !mine_dots.contains(d)
                    } else {
                        judges && is_dead(d.replica.node)
                    }
                })
                .filter(|d| !r.sent_recently(d, now))
                .copied()
                .collect();
            for (conn, dot) in mine {
                if !entries.contains_key(dot) && !r.sent_recently(dot, now) {
                    rejoins.push((topic.clone(), *conn, *dot));
                }
            }
            if !leaves.is_empty() {
                sends.push((topic.clone(), Op::Leave { dots: leaves }));
            }
            if leading.is_some() && guard.ops_since_snapshot >= SNAPSHOT_EVERY {
                let mut snapshot = guard.state().clone();
                snapshot.compact();
                guard.ops_since_snapshot = 0;
                sends.push((topic.clone(), Op::Snapshot(snapshot)));
            }
        }
        for (topic, conn, old) in rejoins {
            if let Some(op) = self.rejoin(&topic, conn, old) {
                sends.push((topic, op));
            }
        }
        for (topic, op) in &sends {
            r.submit(cluster, topic, op);
        }
        r.sent
            .lock()
            .retain(|_, at| now.duration_since(*at) < r.resend_after);
    }

    /// A Join giving `conn` a new entry in `topic` in place of `old`, which
    /// is not (or no longer) in the replicated state; `None` when the
    /// connection left meanwhile. The user's data is the register the
    /// state holds, stamp and all, so the join overrides no newer write.
    fn rejoin(&self, topic: &Arc<str>, conn: ConnId, old: Dot) -> Option<Op> {
        let (user, dot) = {
            let mut o = self.owned.get_mut(&conn)?;
            let user = o.user.clone();
            let slot = o.dots.get_mut(topic)?;
            if *slot != old {
                return None;
            }
            *slot = self.next_dot();
            (user, *slot)
        };
        let data = self
            .topic(topic)
            .lock()
            .state()
            .data
            .get(&user)
            .cloned()
            .unwrap_or_else(|| self.register(&Value::Null));
        Some(Op::Join {
            dot,
            entry: Entry {
                user,
                conn: conn.to_string(),
            },
            data,
        })
    }
}
