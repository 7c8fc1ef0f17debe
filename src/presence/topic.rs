//! One topic's presence: the CRDT state plus the counters that make stats
//! O(1) and tell which users' presence or data an operation changed.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::crdt::{Op, PresenceState};

/// How an operation changed one user.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    /// The user.
    pub user: String,
    /// Present before the operation.
    pub was: bool,
    /// Present after it.
    pub now: bool,
    /// The user's data after it (the last known data when absent).
    pub data: Value,
    /// The data changed.
    pub data_changed: bool,
}

/// The presence of one topic.
#[derive(Default)]
pub struct TopicPresence {
    state: PresenceState,
    /// Entries per present user.
    counts: HashMap<String, usize>,
    /// Entries in all.
    connections: usize,
    /// Operations applied since the last snapshot.
    pub ops_since_snapshot: usize,
}

impl TopicPresence {
    /// The CRDT state.
    pub fn state(&self) -> &PresenceState {
        &self.state
    }

    /// (users, connections), in O(1).
    pub fn stats(&self) -> (usize, usize) {
        (self.counts.len(), self.connections)
    }

    /// Is `user` present?
    pub fn is_present(&self, user: &str) -> bool {
        self.counts.contains_key(user)
    }

    /// The user's current (or last known) data.
    pub fn data_of(&self, user: &str) -> Value {
        self.state
            .data
            .get(user)
            .map_or(Value::Null, |r| r.data.clone())
    }

    /// `{user: (connections, data)}` of the present users.
    pub fn members(&self) -> BTreeMap<String, (usize, Value)> {
        self.counts
            .iter()
            .map(|(u, n)| (u.clone(), (*n, self.data_of(u))))
            .collect()
    }

    /// Apply an operation and report the users it changed.
    pub fn apply(&mut self, op: &Op) -> Vec<Transition> {
        self.ops_since_snapshot += 1;
        let touched: Vec<String> = match op {
            Op::Join { entry, .. } => vec![entry.user.clone()],
            Op::Update { user, .. } => vec![user.clone()],
            Op::Leave { dots } => dots
                .iter()
                .filter_map(|d| self.state.entries.get(d).map(|e| e.user.clone()))
                .collect(),
            Op::Snapshot(s) => {
                let mut users: Vec<String> = self.counts.keys().cloned().collect();
                users.extend(s.entries.values().map(|e| e.user.clone()));
                users.extend(s.data.keys().cloned());
                users
            }
        };
        let before: Vec<(String, bool, Value)> = touched
            .iter()
            .map(|u| (u.clone(), self.is_present(u), self.data_of(u)))
            .collect();
        self.apply_counted(op);
        let mut seen = std::collections::HashSet::new();
        before
            .into_iter()
            .filter(|(u, _, _)| seen.insert(u.clone()))
            .filter_map(|(user, was, old)| {
                let now = self.is_present(&user);
                let data = self.data_of(&user);
                let data_changed = data != old;
                (was != now || data_changed).then_some(Transition {
                    user,
                    was,
                    now,
                    data,
                    data_changed,
                })
            })
            .collect()
    }

    /// Apply `op` to the state, keeping the counters in step (in O(1) per
    /// entry; a snapshot recounts).
    fn apply_counted(&mut self, op: &Op) {
        match op {
            Op::Join { dot, entry, .. } => {
                let had = self.state.entries.contains_key(dot);
                self.state.apply(op);
                if !had && self.state.entries.contains_key(dot) {
                    *self.counts.entry(entry.user.clone()).or_insert(0) += 1;
                    self.connections += 1;
                }
            }
            Op::Leave { dots } => {
                for d in dots {
                    if let Some(e) = self.state.entries.get(d) {
                        let user = e.user.clone();
                        if let Some(n) = self.counts.get_mut(&user) {
                            *n -= 1;
                            if *n == 0 {
                                self.counts.remove(&user);
                            }
                        }
                        self.connections -= 1;
                    }
                }
                self.state.apply(op);
            }
            Op::Update { .. } => self.state.apply(op),
            Op::Snapshot(_) => {
                self.state.apply(op);
                self.counts.clear();
                for e in self.state.entries.values() {
                    *self.counts.entry(e.user.clone()).or_insert(0) += 1;
                }
                self.connections = self.state.entries.len();
            }
        }
    }

    /// A snapshot of the live state (data of absent users dropped).
    pub fn snapshot(&mut self) -> PresenceState {
        self.state.compact();
        self.ops_since_snapshot = 0;
        self.state.clone()
    }
}
