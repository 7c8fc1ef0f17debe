//! The server's presence: which connection holds which entry, limits,
//! the presence streams in the log, and the coalescing tick that turns
//! changes into `presence_join` / `presence_leave` / `presence_update`
//! frames and application events.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use parking_lot::Mutex;
use serde_json::{Value, json};
use wse_log::{Log, LogError, RecordKind};

use super::clock::Hlc;
use super::crdt::{Dot, Entry, Op, Register, Replica};
use super::replicated::Replicated;
use super::stream;
use super::topic::{TopicPresence, Transition};
use crate::conn::{Conn, ConnId};
use crate::events::AppEvent;
use crate::state::ServerState;

/// Operations on a topic between two snapshots.
pub(super) const SNAPSHOT_EVERY: usize = 1024;

/// Why presence refused something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresenceError {
    /// The data's JSON is larger than `presence_max_data_size`.
    #[error("presence data of {size} bytes exceeds presence_max_data_size ({limit})")]
    DataTooLarge {
        /// Size of the JSON.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The topic has `presence_max_members` users already.
    #[error("topic {topic:?} is full ({limit} members)")]
    TopicFull {
        /// The topic.
        topic: String,
        /// The limit.
        limit: usize,
    },
    /// The connection is unknown or tracks no presence.
    #[error("Failed to update presence data (size limit or unknown connection)")]
    NotTracked,
}

/// A leave caused by removing a previous run's entries at startup.
pub type Cleanup = (Arc<str>, Transition);

/// The entries one connection owns.
pub(super) struct Owned {
    pub(super) user: String,
    pub(super) dots: HashMap<Arc<str>, Dot>,
}

/// A user's net change since the last tick.
struct Pending {
    was: bool,
    now: bool,
    data: Value,
    data_changed: bool,
}

/// Presence of every topic on this server.
pub struct Presence {
    /// This run's replica.
    pub replica: Replica,
    counter: AtomicU64,
    pub(super) hlc: Hlc,
    pub(super) topics: DashMap<Arc<str>, Arc<Mutex<TopicPresence>>>,
    pub(super) owned: DashMap<ConnId, Owned>,
    pending: Mutex<HashMap<(Arc<str>, String), Pending>>,
    /// Offset of each topic's last snapshot (the next one trims before it).
    snapshots: DashMap<Arc<str>, u64>,
    /// Presence streams to trim before an offset: deleting segment files
    /// is disk work, done by the presence tick on the blocking pool
    /// ([`Presence::trim`]), not under a topic's lock on whichever thread
    /// recorded the snapshot.
    trims: Mutex<HashMap<String, u64>>,
    /// In a cluster: what folds the replicated streams and reconciles them
    /// with this node's connections (see [`super::replicated`]).
    pub(super) replicated: Option<Replicated>,
}

impl Presence {
    /// Load every presence stream from the log, and remove the entries
    /// that earlier runs of this node left (their connections are gone).
    /// Returns the presence and the leaves that removal caused.
    ///
    /// In a cluster (`cluster` is `Some`) the streams are replicated: the
    /// entries of earlier runs are removed through the cluster once it
    /// runs, by the reconciliation, not here.
    pub fn load(log: &Log, cluster: Option<Replicated>) -> Result<(Self, Vec<Cleanup>), LogError> {
        let node = cluster.as_ref().map(Replicated::node);
        let replica = stream::next_replica(log, node)?;
        let me = Self {
            replica,
            counter: AtomicU64::new(0),
            hlc: Hlc::new(),
            topics: DashMap::new(),
            owned: DashMap::new(),
            pending: Mutex::new(HashMap::new()),
            snapshots: DashMap::new(),
            trims: Mutex::new(HashMap::new()),
            replicated: cluster,
        };
        let mut cleanup = Vec::new();
        for topic in stream::topics(log) {
            let topic: Arc<str> = Arc::from(topic.as_str());
            let mut tp = TopicPresence::default();
            let (ops, next) = stream::read_since(log, &topic, stream::start(log, &topic))?;
            for (_, op) in ops {
                me.observe(&op);
                tp.apply(&op);
            }
            if let Some(r) = &me.replicated {
                r.folded(&topic, next);
                me.topics.insert(topic, Arc::new(Mutex::new(tp)));
                continue;
            }
            let stale = tp
                .state()
                .dots_of(|r| r.node == replica.node && *r != replica);
            if !stale.is_empty() {
                let op = Op::Leave { dots: stale };
                for t in tp.apply(&op) {
                    cleanup.push((topic.clone(), t));
                }
                append(log, &topic, &op);
            }
            me.topics.insert(topic, Arc::new(Mutex::new(tp)));
        }
        Ok((me, cleanup))
    }

    /// Move the clock past the stamp of an operation seen.
    pub(super) fn observe(&self, op: &Op) {
        if let Op::Join { data, .. } | Op::Update { data, .. } = op {
            self.hlc.observe(data.hlc);
        }
    }

    pub(super) fn next_dot(&self) -> Dot {
        Dot {
            replica: self.replica,
            counter: self.counter.fetch_add(1, Ordering::Relaxed) + 1,
        }
    }

    pub(super) fn register(&self, data: &Value) -> Register {
        Register {
            hlc: self.hlc.now(),
            replica: self.replica,
            data: data.clone(),
        }
    }

    pub(super) fn topic(&self, topic: &str) -> Arc<Mutex<TopicPresence>> {
        if let Some(t) = self.topics.get(topic) {
            return t.clone();
        }
        self.topics
            .entry(Arc::from(topic))
            .or_insert_with(|| Arc::new(Mutex::new(TopicPresence::default())))
            .clone()
    }

    /// Track `conn`'s user in `topic` with `data` (a join when it is the
    /// user's first connection there; a data update when the connection
    /// already has an entry).
    pub fn join(
        &self,
        state: &ServerState,
        conn: &Conn,
        topic: &str,
        data: &Value,
    ) -> Result<(), PresenceError> {
        let size = data.to_string().len();
        let limit = state.config.presence_max_data_size;
        if size > limit {
            return Err(PresenceError::DataTooLarge { size, limit });
        }
        let user = user_of(conn);
        let topic: Arc<str> = Arc::from(topic);
        let existing = self
            .owned
            .get(&conn.id)
            .and_then(|o| o.dots.get(&topic).copied());
        if existing.is_some() {
            let op = Op::Update {
                user,
                data: self.register(data),
            };
            self.record(state, &topic, &op);
            return Ok(());
        }
        let tp = self.topic(&topic);
        let max = state.config.presence_max_members;
        let op = {
            let guard = tp.lock();
            let (users, _) = guard.stats();
            if max > 0 && users >= max && !guard.is_present(&user) {
                return Err(PresenceError::TopicFull {
                    topic: topic.to_string(),
                    limit: max,
                });
            }
            Op::Join {
                dot: self.next_dot(),
                entry: Entry {
                    user: user.clone(),
                    conn: conn.id_str.clone(),
                },
                data: self.register(data),
            }
        };
        if let Op::Join { dot, .. } = &op {
            self.owned
                .entry(conn.id)
                .or_insert_with(|| Owned {
                    user,
                    dots: HashMap::new(),
                })
                .dots
                .insert(topic.clone(), *dot);
        }
        self.record(state, &topic, &op);
        Ok(())
    }

    /// Remove `conn`'s entries in `topics` (all of them with `None`).
    /// Returns the (topic, user) pairs touched.
    pub fn leave(
        &self,
        state: &ServerState,
        conn: ConnId,
        topics: Option<&[String]>,
    ) -> Vec<(Arc<str>, String)> {
        let removed: Vec<(Arc<str>, Dot, String)> = {
            let Some(mut owned) = self.owned.get_mut(&conn) else {
                return Vec::new();
            };
            let user = owned.user.clone();
            let keys: Vec<Arc<str>> = match topics {
                None => owned.dots.keys().cloned().collect(),
                Some(t) => owned
                    .dots
                    .keys()
                    .filter(|k| t.iter().any(|x| x.as_str() == &***k))
                    .cloned()
                    .collect(),
            };
            keys.into_iter()
                .filter_map(|k| owned.dots.remove(&k).map(|d| (k, d, user.clone())))
                .collect()
        };
        self.owned.remove_if(&conn, |_, o| o.dots.is_empty());
        let mut touched = Vec::new();
        for (topic, dot, user) in removed {
            self.record(state, &topic, &Op::Leave { dots: vec![dot] });
            touched.push((topic, user));
        }
        touched
    }

    /// Set the data of `conn`'s user in every topic where the connection
    /// has presence.
    pub fn update(
        &self,
        state: &ServerState,
        conn: &Conn,
        data: &Value,
    ) -> Result<(), PresenceError> {
        let size = data.to_string().len();
        if size > state.config.presence_max_data_size {
            return Err(PresenceError::NotTracked);
        }
        let topics: Vec<Arc<str>> = match self.owned.get(&conn.id) {
            Some(o) => o.dots.keys().cloned().collect(),
            None => return Err(PresenceError::NotTracked),
        };
        let user = user_of(conn);
        for topic in topics {
            let op = Op::Update {
                user: user.clone(),
                data: self.register(data),
            };
            self.record(state, &topic, &op);
        }
        Ok(())
    }

    /// Apply a local operation, store it, and note what it changed. In a
    /// cluster, hand it to the cluster instead: it is applied here as on
    /// every node once committed.
    fn record(&self, state: &ServerState, topic: &Arc<str>, op: &Op) {
        if let (Some(r), Some(cluster)) = (&self.replicated, &state.cluster) {
            r.submit(cluster.as_ref(), topic, op);
            return;
        }
        let tp = self.topic(topic);
        let mut guard = tp.lock();
        let transitions = guard.apply(op);
        append(&state.log, topic, op);
        if guard.ops_since_snapshot >= SNAPSHOT_EVERY {
            let snap = Op::Snapshot(guard.snapshot());
            if let Some(offset) = append(&state.log, topic, &snap) {
                // The previous snapshot is long visible: everything before
                // it is redundant.
                self.snapshot_at(topic, offset);
            }
        }
        drop(guard);
        self.note(topic, transitions);
    }

    /// Are presence streams waiting to be trimmed?
    pub(crate) fn wants_trim(&self) -> bool {
        !self.trims.lock().is_empty()
    }

    /// A snapshot at `offset` of `topic`'s presence stream was written:
    /// everything before the previous one is redundant.
    pub(super) fn snapshot_at(&self, topic: &Arc<str>, offset: u64) {
        if let Some(prev) = self.snapshots.insert(topic.clone(), offset) {
            self.trims.lock().insert(stream::stream_name(topic), prev);
        }
    }

    /// Drop what the latest snapshots made redundant from the presence
    /// streams. Blocking (it deletes segment files).
    pub(crate) fn trim(&self, log: &Log) {
        let trims = std::mem::take(&mut *self.trims.lock());
        for (stream, before) in trims {
            if let Err(e) = log.trim_before(&stream, before) {
                tracing::warn!(stream, error = %e, "presence stream not trimmed");
            }
        }
    }

    /// Fold transitions into the changes waiting for the next tick.
    pub(super) fn note(&self, topic: &Arc<str>, transitions: Vec<Transition>) {
        if transitions.is_empty() {
            return;
        }
        let mut pending = self.pending.lock();
        for t in transitions {
            pending
                .entry((topic.clone(), t.user.clone()))
                .and_modify(|p| {
                    p.now = t.now;
                    p.data = t.data.clone();
                    p.data_changed |= t.data_changed;
                })
                .or_insert(Pending {
                    was: t.was,
                    now: t.now,
                    data: t.data,
                    data_changed: t.data_changed,
                });
        }
    }

    /// Note transitions that happened outside `record` (startup cleanup).
    pub fn note_external(&self, topic: &Arc<str>, transitions: Vec<Transition>) {
        self.note(topic, transitions);
    }

    /// Send what changed since the last tick: per user at most one join,
    /// leave or update (a join and a leave within the tick cancel out;
    /// repeated updates send only the latest). With `only`, just those
    /// (topic, user) pairs (a disconnecting connection's leaves go out
    /// before its `disconnect` event).
    pub fn flush(&self, state: &ServerState, only: Option<&[(Arc<str>, String)]>) {
        let changes: Vec<((Arc<str>, String), Pending)> = {
            let mut pending = self.pending.lock();
            match only {
                None => pending.drain().collect(),
                Some(keys) => keys
                    .iter()
                    .filter_map(|k| pending.remove_entry(k))
                    .collect(),
            }
        };
        if changes.is_empty() {
            return;
        }
        let mut frames: BTreeMap<Arc<str>, Vec<String>> = BTreeMap::new();
        for ((topic, user), p) in changes {
            let kind = match (p.was, p.now) {
                (false, true) => "presence_join",
                (true, false) => "presence_leave",
                (true, true) if p.data_changed => "presence_update",
                _ => continue,
            };
            let frame = json!({"c": "WSE", "p": {"data": p.data, "user_id": user}, "t": kind});
            frames
                .entry(topic.clone())
                .or_default()
                .push(frame.to_string());
            if state.config.event_delivery == crate::config::EventDelivery::Queue {
                let (topic, user_id, data) = (topic.to_string(), user, p.data);
                state.events.push_lifecycle(match kind {
                    "presence_join" => AppEvent::PresenceJoin {
                        topic,
                        user_id,
                        data,
                    },
                    "presence_leave" => AppEvent::PresenceLeave {
                        topic,
                        user_id,
                        data,
                    },
                    _ => AppEvent::PresenceUpdate {
                        topic,
                        user_id,
                        data,
                    },
                });
            }
        }
        for (topic, frames) in frames {
            if let Some(c) = state.fanout.channels.get(&topic).map(|c| c.clone()) {
                c.publish_presence(frames.iter().map(String::as_bytes));
            }
        }
    }

    /// `{user: (connections, data)}` of a topic.
    pub fn members(&self, topic: &str) -> BTreeMap<String, (usize, Value)> {
        self.topics
            .get(topic)
            .map(|t| t.lock().members())
            .unwrap_or_default()
    }

    /// (users, connections) of a topic, in O(1).
    pub fn stats(&self, topic: &str) -> (usize, usize) {
        self.topics.get(topic).map_or((0, 0), |t| t.lock().stats())
    }

    /// (topics with presence state, users summed over topics).
    pub fn totals(&self) -> (usize, usize) {
        let mut users = 0;
        for t in self.topics.iter() {
            users += t.lock().stats().0;
        }
        (self.topics.len(), users)
    }
}

/// The presence user of a connection: its JWT `sub`, or without JWT the
/// connection itself.
fn user_of(conn: &Conn) -> String {
    conn.user_id.clone().unwrap_or_else(|| conn.id_str.clone())
}

/// Append an operation to the topic's presence stream; its offset.
fn append(log: &Log, topic: &str, op: &Op) -> Option<u64> {
    let bytes = stream::encode(op);
    match log.append_with(
        &stream::stream_name(topic),
        RecordKind::Presence,
        bytes.len(),
        |_, b| b.extend_from_slice(&bytes),
    ) {
        Ok(a) => Some(a.position.offset),
        Err(e) => {
            tracing::warn!(topic, error = %e, "presence operation not stored");
            None
        }
    }
}
