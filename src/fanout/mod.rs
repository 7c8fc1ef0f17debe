//! Fan-out: from a record the log made visible to every subscriber's
//! socket.
//!
//! The log's writer thread tells the [`feed::Feed`] (the log's
//! `AppendListener`) which records of each topic became visible; the
//! fan-out thread then hands them to [`Fanout::deliver`]. For a topic with
//! subscribers, the records are framed once into the topic's
//! [`ring::FrameRing`], and each subscriber is signalled; its connection
//! task then writes everything between its cursor and the ring's head.
//! Queue-group members get their message pushed to their own queue.
//!
//! - [`feed`]: the hand-off from the writer thread to the fan-out thread.
//! - [`ring`]: the framed tail of a topic.
//! - [`channel`]: a topic's ring, subscribers and queue groups.
//! - [`patterns`]: pattern subscriptions, indexed by their literal ends.

pub mod channel;
pub(crate) mod feed;
pub(crate) mod patterns;
pub mod ring;

use std::sync::Arc;

use dashmap::DashMap;
use parking_lot::RwLock;
use wse_log::{Epoch, Record};

use crate::metrics::Metrics;

pub use channel::Channel;
use patterns::PatternIndex;

/// The server's side of every topic: channels and pattern subscriptions.
pub struct Fanout {
    /// Channels by topic name.
    pub channels: DashMap<Arc<str>, Arc<Channel>>,
    /// Pattern subscriptions (checked for topics without a channel).
    pub(crate) patterns: RwLock<PatternIndex>,
    /// Frames kept per topic.
    pub frames_per_topic: usize,
    /// Queued bytes past which a queue-group member is skipped.
    pub member_limit: usize,
    /// Where queue-group deliveries are counted (sealed, or dropped when
    /// every member's queue is full).
    pub metrics: Arc<Metrics>,
}

impl Fanout {
    /// An empty fan-out keeping `frames_per_topic` frames per topic.
    pub fn new(frames_per_topic: usize, member_limit: usize, metrics: Arc<Metrics>) -> Self {
        Self {
            channels: DashMap::new(),
            patterns: RwLock::new(PatternIndex::default()),
            frames_per_topic,
            member_limit,
            metrics,
        }
    }

    /// Run `f` on the channel of `topic` (created with its ring starting
    /// at `head()`, the topic's history and its next offset, and the
    /// subscribers of matching patterns attached, if it does not exist)
    /// while holding the channel map's lock for that topic, so an idle
    /// channel cannot be dropped under a subscriber that is joining it.
    pub fn with_channel<R>(
        &self,
        topic: &str,
        head: impl FnOnce() -> (Option<Epoch>, u64),
        f: impl FnOnce(&Arc<Channel>) -> R,
    ) -> R {
        let entry = self.channels.entry(Arc::from(topic)).or_insert_with(|| {
            let (epoch, head) = head();
            let created = Arc::new(Channel::for_history(
                Arc::from(topic),
                epoch,
                head,
                self.frames_per_topic,
                self.member_limit,
            ));
            // A pattern never reaches a topic the ACL denies.
            for conn in self.patterns.read().subscribers(topic) {
                if conn.allows(topic) {
                    created.subscribe(conn, true, channel::Start::Live { from: 0 });
                }
            }
            created
        });
        f(entry.value())
    }

    /// Drop `channel` if nobody uses it any more (its framed ring is
    /// memory); a later subscriber gets a new one.
    pub fn forget_if_idle(&self, channel: &Arc<Channel>) {
        if channel.is_idle() {
            self.channels.remove_if(&channel.topic, |_, c| {
                Arc::ptr_eq(c, channel) && c.is_idle()
            });
        }
    }

    /// Is there any pattern subscription matching `topic`?
    fn pattern_matches(&self, topic: &str) -> bool {
        self.patterns.read().any_matches(topic)
    }

    /// May anyone want `topic`'s records (a channel, or a matching
    /// pattern)? A channel created after a `false` starts at the log's
    /// head, past the records this answered for.
    pub(crate) fn is_wanted(&self, topic: &str) -> bool {
        self.channels.contains_key(topic) || self.pattern_matches(topic)
    }

    /// `topic`'s history was deleted: its channel, if any, forgets the
    /// frames (see `Channel::restart`).
    pub(crate) fn restart(&self, topic: &str) {
        if let Some(c) = self.channels.get(topic).map(|c| c.clone()) {
            c.restart();
        }
    }

    /// Fan out newly visible records of `topic` (consecutive, oldest
    /// first), on the fan-out thread.
    pub(crate) fn deliver(&self, topic: &str, records: &[Record]) {
        let Some(first) = records.first() else { return };
        let channel = match self.channels.get(topic) {
            Some(c) => c.clone(),
            None if self.pattern_matches(topic) => self.with_channel(
                topic,
                || (Some(first.position().epoch), first.offset()),
                Arc::clone,
            ),
            None => return,
        };
        channel.publish(first.offset(), records, &self.metrics);
    }
}
