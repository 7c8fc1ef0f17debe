//! A topic's channel: its framed ring, its subscribers (cursors live in
//! each connection's outbox) and its queue groups.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use wse_log::{Epoch, Record};

use super::ring::FrameRing;
use crate::conn::{Conn, ConnId, Pushed, Sub};
use crate::metrics::Metrics;
use crate::ws::frame;

/// Where a new subscription's cursor starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// Live messages only: at `from` (the log's head when the caller
    /// looked) or the ring's head, whichever is later. The ring may trail
    /// the log while the fan-out thread catches up; starting at the log's
    /// head keeps records published before the subscription out of it.
    Live {
        /// The first offset the subscriber may get.
        from: u64,
    },
    /// At `from` (the first offset the client missed), replaying up to
    /// the head, unless more than `cap` messages lie between: then at the
    /// head, and nothing is replayed (all or nothing).
    Replay {
        /// The first offset to send.
        from: u64,
        /// Most messages replayed.
        cap: u64,
    },
    /// A recovery whose history was deleted after it was planned: at the
    /// head, nothing replayed, answered not-recovered.
    Unrecoverable,
}

/// What [`Channel::subscribe`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Joined {
    /// Subscribed now, at the head.
    New,
    /// Was already subscribed; the cursor is untouched.
    Already,
    /// The cursor is at `from`; offsets `from..to` are replayed before
    /// anything else this connection receives (`from >= to`: nothing to
    /// replay, the client is up to date).
    Replaying {
        /// The first offset sent.
        from: u64,
        /// The head when the replay began (the first live offset).
        to: u64,
        /// The replay starts in the framed ring (else: read from the log).
        in_memory: bool,
    },
    /// More than the cap was missed: subscribed at the head, nothing
    /// replayed.
    TooFar {
        /// The head.
        head: u64,
    },
    /// The connection is gone.
    Refused,
}

/// A queue group: one member gets each message, in turn.
#[derive(Default)]
struct Group {
    members: Vec<Arc<Conn>>,
    next: usize,
}

/// The server's state for one topic.
pub struct Channel {
    /// The topic.
    pub topic: Arc<str>,
    /// Its newest messages, framed.
    pub ring: RwLock<FrameRing>,
    /// Its newest presence events, framed (not messages: no offsets in the
    /// topic's log, never replayed).
    pub presence: RwLock<FrameRing>,
    subscribers: Mutex<Vec<Arc<Conn>>>,
    groups: Mutex<BTreeMap<String, Group>>,
    /// Queued bytes past which a queue-group member is skipped.
    member_limit: usize,
}

impl Channel {
    /// A channel whose next message has offset `head` (tests).
    #[cfg(test)]
    pub fn new(topic: Arc<str>, head: u64, frames: usize, member_limit: usize) -> Self {
        Self::for_history(topic, None, head, frames, member_limit)
    }

    /// A channel whose next message has offset `head` in history `epoch`
    /// (`None`: the topic has none yet).
    pub fn for_history(
        topic: Arc<str>,
        epoch: Option<Epoch>,
        head: u64,
        frames: usize,
        member_limit: usize,
    ) -> Self {
        Self {
            topic,
            ring: RwLock::new(FrameRing::for_history(epoch, head, frames)),
            presence: RwLock::new(FrameRing::new(0, frames)),
            subscribers: Mutex::new(Vec::new()),
            groups: Mutex::new(BTreeMap::new()),
            member_limit,
        }
    }

    /// Frame newly visible records, wake the subscribers, and hand each
    /// record to one member of every queue group (counted in `metrics`).
    /// Records older than the ring's head (the channel was created after
    /// them) are neither framed nor given to a group.
    pub fn publish(&self, first: u64, records: &[Record], metrics: &Metrics) {
        debug_assert_eq!(
            records.last().map(Record::offset),
            Some(first + records.len() as u64 - 1),
            "records of a publish are consecutive"
        );
        let Some(epoch) = records.first().map(|r| r.position().epoch) else {
            return;
        };
        let known = {
            let mut ring = self.ring.write();
            ring.admit(epoch);
            let known = ring.head().saturating_sub(first) as usize;
            ring.push_text(first, records.iter().map(Record::payload_ref));
            known
        };
        for c in self.subscribers.lock().iter() {
            c.signal();
        }
        let mut groups = self.groups.lock();
        if groups.is_empty() {
            return;
        }
        for r in records.iter().skip(known) {
            let f: Bytes = frame::text(r.payload_ref());
            for g in groups.values_mut() {
                deliver_to_one(g, &f, self.member_limit).count(metrics);
            }
        }
    }

    /// The topic's history was deleted: forget its frames, and wake the
    /// subscribers, whose cursors (of the old generation) then start the
    /// next history from its beginning.
    pub fn restart(&self) {
        self.ring.write().restart();
        for c in self.subscribers.lock().iter() {
            c.signal();
        }
    }

    /// Frame presence events once and wake the subscribers.
    pub fn publish_presence<'a>(&self, events: impl Iterator<Item = &'a [u8]>) {
        {
            let mut ring = self.presence.write();
            let head = ring.head();
            ring.push_text(head, events);
        }
        for c in self.subscribers.lock().iter() {
            c.signal();
        }
    }

    /// Subscribe `conn`, its cursor at the live head, or for a recovery
    /// (`Start::Replay`) at the first missed offset. The cursor is placed
    /// under the connection's outbox lock and the ring's lock, so neither
    /// a publish nor the connection's own task can slip between the
    /// subscription and the rewind: replayed records precede live ones by
    /// construction.
    pub fn subscribe(
        self: &Arc<Self>,
        conn: &Arc<Conn>,
        via_pattern: bool,
        start: Start,
    ) -> Joined {
        self.subscribe_with(conn, via_pattern, || start)
    }

    /// [`Channel::subscribe`], where the start is decided by `start`
    /// while the ring's lock is held. A start read from the log (its head,
    /// its epoch) is then of the ring's generation: a deletion restarts
    /// the ring before the next history can exist, and not while this
    /// lock is held, so an offset read here cannot be one of a history the
    /// ring has not restarted for, nor of one it already left.
    pub fn subscribe_with(
        self: &Arc<Self>,
        conn: &Arc<Conn>,
        via_pattern: bool,
        start: impl FnOnce() -> Start,
    ) -> Joined {
        let mut ob = conn.outbox.lock();
        if ob.closed {
            return Joined::Refused;
        }
        let ring = self.ring.read();
        let head = ring.head();
        let generation = ring.generation();
        let start = start();
        let replay = match start {
            Start::Live { .. } => None,
            Start::Replay { from, .. } if from >= head => Some((from, head)),
            Start::Replay { from, cap } if head - from <= cap => Some((from, head)),
            Start::Replay { .. } | Start::Unrecoverable => {
                return self.refuse_replay(ob, conn, via_pattern, head, generation);
            }
        };
        let in_memory = replay.is_some_and(|(from, _)| from >= ring.first());
        if let Some(sub) = ob.subs.get_mut(&self.topic) {
            // A pattern-made subscription becomes a named one.
            sub.via_pattern &= via_pattern;
            return match replay {
                Some((from, to)) => {
                    sub.cursor = from;
                    sub.generation = generation;
                    sub.replay_until = Some(to);
                    Joined::Replaying {
                        from,
                        to,
                        in_memory,
                    }
                }
                None => Joined::Already,
            };
        }
        let presence_cursor = self.presence.read().head();
        self.subscribers.lock().push(conn.clone());
        drop(ring);
        let (cursor, joined) = match replay {
            Some((from, to)) => (
                from,
                Joined::Replaying {
                    from,
                    to,
                    in_memory,
                },
            ),
            None => match start {
                Start::Live { from } => (from.max(head), Joined::New),
                Start::Replay { .. } | Start::Unrecoverable => (head, Joined::New),
            },
        };
        ob.subs.insert(
            self.topic.clone(),
            Sub {
                channel: self.clone(),
                cursor,
                generation,
                presence_cursor,
                // A recovery, even with nothing to replay, ends at the
                // head: its reply goes before any live message.
                replay_until: replay.map(|(_, to)| to),
                via_pattern,
            },
        );
        joined
    }

    /// A replay over the cap: subscribe at the head (or keep the cursor of
    /// an existing subscription) and say how far the topic is.
    fn refuse_replay(
        self: &Arc<Self>,
        mut ob: parking_lot::MutexGuard<'_, crate::conn::Outbox>,
        conn: &Arc<Conn>,
        via_pattern: bool,
        head: u64,
        generation: u64,
    ) -> Joined {
        if let Some(sub) = ob.subs.get_mut(&self.topic) {
            sub.via_pattern &= via_pattern;
            return Joined::TooFar { head };
        }
        // Not recovered: the reply still goes before any live message.
        let presence_cursor = self.presence.read().head();
        self.subscribers.lock().push(conn.clone());
        ob.subs.insert(
            self.topic.clone(),
            Sub {
                channel: self.clone(),
                cursor: head,
                generation,
                presence_cursor,
                replay_until: Some(head),
                via_pattern,
            },
        );
        Joined::TooFar { head }
    }

    /// Remove `conn` from the subscribers (its outbox entry is the
    /// caller's business).
    pub fn remove_subscriber(&self, conn: ConnId) {
        let mut subs = self.subscribers.lock();
        if let Some(i) = subs.iter().position(|c| c.id == conn) {
            subs.swap_remove(i);
        }
    }

    /// Fan-out subscribers (queue-group members not counted).
    pub fn subscriber_count(&self) -> usize {
        self.subscribers.lock().len()
    }

    /// Add `conn` to queue group `group` (and record it in the connection's
    /// outbox). Returns false when it already was, or the connection is
    /// gone.
    ///
    /// Lock order: a publish holds the groups lock while it pushes to a
    /// member's outbox, so the groups lock is never taken under an outbox
    /// lock here. The membership is recorded in the outbox afterwards; a
    /// connection that closed meanwhile is taken out of the group again
    /// (its cleanup, which runs after `closed` is set, may not have seen
    /// the membership).
    pub fn join_group(&self, group: &str, conn: &Arc<Conn>) -> bool {
        if conn.outbox.lock().closed {
            return false;
        }
        {
            let mut groups = self.groups.lock();
            let g = groups.entry(group.to_owned()).or_default();
            if g.members.iter().any(|c| c.id == conn.id) {
                return false;
            }
            g.members.push(conn.clone());
        }
        let mut ob = conn.outbox.lock();
        if ob.closed {
            drop(ob);
            self.leave_group(group, conn.id);
            return false;
        }
        ob.groups.push((self.topic.clone(), group.to_owned()));
        true
    }

    /// Remove `conn` from queue group `group`.
    pub fn leave_group(&self, group: &str, conn: ConnId) {
        let mut groups = self.groups.lock();
        if let Some(g) = groups.get_mut(group) {
            g.members.retain(|c| c.id != conn);
            if g.members.is_empty() {
                groups.remove(group);
            }
        }
    }

    /// `{group: members}`.
    pub fn group_info(&self) -> BTreeMap<String, usize> {
        self.groups
            .lock()
            .iter()
            .map(|(k, g)| (k.clone(), g.members.len()))
            .collect()
    }

    /// True when nobody subscribes and no group exists (the channel can go).
    pub fn is_idle(&self) -> bool {
        self.subscribers.lock().is_empty() && self.groups.lock().is_empty()
    }
}

/// Give the frame to the next member that can take it (closing members
/// and members whose queue is full are skipped); `Refused` when none can.
fn deliver_to_one(g: &mut Group, f: &Bytes, limit: usize) -> Pushed {
    let n = g.members.len();
    for i in 0..n {
        let idx = (g.next + i) % n;
        let pushed = g.members[idx].push_data(f.clone(), limit);
        if pushed != Pushed::Refused {
            g.next = (idx + 1) % n;
            return pushed;
        }
    }
    Pushed::Refused
}
