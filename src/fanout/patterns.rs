//! Pattern subscriptions, indexed by their literal ends.
//!
//! # Why an index
//!
//! A pattern subscription is checked against every topic that gets records
//! and has no channel yet (on the fan-out thread, which every connection's
//! deliveries go through) and against every topic whose channel is
//! created. Kept in a list, that costs one match per pattern of every
//! connection: tens of thousands of patterns from one client made every
//! publish to an unsubscribed topic slow for everyone.
//!
//! Every topic a glob matches starts with the glob's literal prefix (the
//! text before its first wildcard) and ends with its literal suffix. So
//! patterns are filed under their prefix, or, when it is empty, under
//! their suffix; only the few with neither (`*`, `*x*`, `?`) are tried
//! for every topic. Looking a topic up costs one hash lookup per distinct
//! prefix (and suffix) length in use, at most the longest topic name
//! each, plus a match per pattern filed under that topic's own prefix or
//! suffix. Patterns of other connections cost nothing unless their
//! literal ends are the topic's. Equal patterns are one entry with many
//! subscribers.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::conn::{Conn, ConnId};
use crate::topics::TopicPattern;

/// One pattern and the connections subscribed to it.
struct Entry {
    pattern: TopicPattern,
    conns: HashMap<ConnId, Arc<Conn>>,
}

/// Where a pattern is filed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Filed {
    Prefix,
    Suffix,
    Floating,
}

impl Filed {
    fn of(pattern: &TopicPattern) -> (Self, &str) {
        let prefix = pattern.literal_prefix();
        if !prefix.is_empty() {
            return (Self::Prefix, prefix);
        }
        let suffix = pattern.literal_suffix();
        if !suffix.is_empty() {
            return (Self::Suffix, suffix);
        }
        (Self::Floating, "")
    }
}

/// Patterns under one kind of literal end, by that end's text.
#[derive(Default)]
struct Ends {
    /// Pattern sources by literal end.
    by_text: HashMap<Box<str>, Vec<Box<str>>>,
    /// How many distinct literal ends have each length (bytes), so a
    /// lookup tries only lengths in use.
    lengths: BTreeMap<usize, usize>,
}

impl Ends {
    fn insert(&mut self, end: &str, source: &str) {
        let list = self.by_text.entry(end.into()).or_insert_with(|| {
            *self.lengths.entry(end.len()).or_default() += 1;
            Vec::new()
        });
        list.push(source.into());
    }

    fn remove(&mut self, end: &str, source: &str) {
        let Some(list) = self.by_text.get_mut(end) else {
            return;
        };
        list.retain(|s| &**s != source);
        if list.is_empty() {
            self.by_text.remove(end);
            if let Some(n) = self.lengths.get_mut(&end.len()) {
                *n -= 1;
                if *n == 0 {
                    self.lengths.remove(&end.len());
                }
            }
        }
    }

    /// The sources filed under an end `topic` has: its prefixes
    /// (`from_start`) or its suffixes.
    fn candidates<'a>(
        &'a self,
        topic: &'a str,
        from_start: bool,
    ) -> impl Iterator<Item = &'a Box<str>> + 'a {
        self.lengths
            .keys()
            .take_while(move |&&len| len <= topic.len())
            .filter_map(move |&len| {
                let end = if from_start {
                    topic.get(..len)
                } else {
                    topic.get(topic.len() - len..)
                };
                end.and_then(|e| self.by_text.get(e))
            })
            .flatten()
    }
}

/// Every pattern subscription of the server.
#[derive(Default)]
pub(crate) struct PatternIndex {
    entries: HashMap<Box<str>, Entry>,
    prefixes: Ends,
    suffixes: Ends,
    floating: Vec<Box<str>>,
}

impl PatternIndex {
    /// Subscribe `conn` to `pattern` (once; again is no change).
    pub(crate) fn insert(&mut self, pattern: &TopicPattern, conn: &Arc<Conn>) {
        let source = pattern.as_str();
        if !self.entries.contains_key(source) {
            match Filed::of(pattern) {
                (Filed::Prefix, end) => self.prefixes.insert(end, source),
                (Filed::Suffix, end) => self.suffixes.insert(end, source),
                (Filed::Floating, _) => self.floating.push(source.into()),
            }
            self.entries.insert(
                source.into(),
                Entry {
                    pattern: pattern.clone(),
                    conns: HashMap::new(),
                },
            );
        }
        if let Some(e) = self.entries.get_mut(source) {
            e.conns.insert(conn.id, conn.clone());
        }
    }

    /// Unsubscribe `conn` from the pattern written `source`; the pattern
    /// goes when its last subscriber does.
    pub(crate) fn remove(&mut self, source: &str, conn: ConnId) {
        let Some(e) = self.entries.get_mut(source) else {
            return;
        };
        e.conns.remove(&conn);
        if !e.conns.is_empty() {
            return;
        }
        if let Some(e) = self.entries.remove(source) {
            match Filed::of(&e.pattern) {
                (Filed::Prefix, end) => self.prefixes.remove(end, source),
                (Filed::Suffix, end) => self.suffixes.remove(end, source),
                (Filed::Floating, _) => self.floating.retain(|s| &**s != source),
            }
        }
    }

    /// No pattern subscription at all (the common case: one check).
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The subscribers of every pattern matching `topic`, each pattern's
    /// in turn (a connection on two matching patterns comes twice).
    pub(crate) fn subscribers<'a>(&'a self, topic: &'a str) -> impl Iterator<Item = &'a Arc<Conn>> {
        self.matching(topic).flat_map(|e| e.conns.values())
    }

    /// Does any pattern match `topic`?
    pub(crate) fn any_matches(&self, topic: &str) -> bool {
        !self.is_empty() && self.matching(topic).next().is_some()
    }

    fn matching<'a>(&'a self, topic: &'a str) -> impl Iterator<Item = &'a Entry> {
        self.prefixes
            .candidates(topic, true)
            .chain(self.suffixes.candidates(topic, false))
            .chain(self.floating.iter())
            .filter_map(|source| self.entries.get(source))
            .filter(move |e| e.pattern.matches(topic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate_limit::TokenBucket;

    fn conn(n: u128) -> Arc<Conn> {
        Arc::new(Conn::new(
            ConnId(n),
            None,
            false,
            None,
            TokenBucket::new(1.0, 1.0),
            0,
            crate::budget::MemoryBudget::unlimited(),
        ))
    }

    fn ids(index: &PatternIndex, topic: &str) -> Vec<u128> {
        let mut v: Vec<u128> = index.subscribers(topic).map(|c| c.id.0).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn finds_the_patterns_filed_under_each_literal_end() {
        let mut index = PatternIndex::default();
        let (a, b, c, d) = (conn(1), conn(2), conn(3), conn(4));
        index.insert(&TopicPattern::new("chat.*"), &a);
        index.insert(&TopicPattern::new("chat.room?"), &b);
        index.insert(&TopicPattern::new("*.alerts"), &c);
        index.insert(&TopicPattern::new("*"), &d);
        assert_eq!(ids(&index, "chat.room1"), [1, 2, 4]);
        assert_eq!(ids(&index, "chat.alerts"), [1, 3, 4]);
        assert_eq!(ids(&index, "ops.alerts"), [3, 4]);
        assert_eq!(ids(&index, "chat"), [4]);
        assert!(index.any_matches("x"));
        // Multi-byte names: a length that would split a character is skipped.
        index.insert(&TopicPattern::new("é*"), &a);
        assert_eq!(ids(&index, "éa"), [1, 4]);
        assert_eq!(ids(&index, "ée"), [1, 4]);
    }

    #[test]
    fn equal_patterns_share_an_entry_and_go_with_their_last_subscriber() {
        let mut index = PatternIndex::default();
        let (a, b) = (conn(1), conn(2));
        let p = TopicPattern::new("t.*");
        index.insert(&p, &a);
        index.insert(&p, &a);
        index.insert(&p, &b);
        assert_eq!(ids(&index, "t.x"), [1, 2]);
        index.remove("t.*", a.id);
        assert_eq!(ids(&index, "t.x"), [2]);
        index.remove("t.*", b.id);
        assert!(index.is_empty());
        assert!(!index.any_matches("t.x"));
        assert!(index.prefixes.lengths.is_empty() && index.prefixes.by_text.is_empty());
    }

    #[test]
    fn many_patterns_of_other_prefixes_are_not_tried() {
        let mut index = PatternIndex::default();
        let c = conn(1);
        for i in 0..50_000 {
            index.insert(&TopicPattern::new(&format!("user.{i}.*")), &c);
        }
        index.insert(&TopicPattern::new("room.*"), &c);
        // Candidates for "room.1": only what is filed under its prefixes.
        let tried = index.prefixes.candidates("room.1", true).count();
        assert_eq!(tried, 1);
        assert!(index.any_matches("room.1"));
        assert!(!index.any_matches("other"));
        assert!(index.any_matches("user.49999.x"));
    }
}
