//! The presence CRDT: who is in a topic, with what data.
//!
//! Membership is an observed-remove set with a causal context (an
//! "optimized OR-Set"): every join adds an entry under a fresh *dot*
//! `(replica, counter)`; a leave removes the dots it observed. The
//! *context* records every dot ever seen, so a removed dot is simply one in
//! the context without an entry — no tombstone per removal, and a join that
//! arrives after its own leave (reordered, duplicated) stays removed.
//!
//! Each user's data is a last-writer-wins register stamped with a hybrid
//! logical clock and the writer's replica id. Data never creates
//! membership: an update merged after (or concurrently with) the user's
//! last leave changes a register of an absent user and resurrects no one,
//! whatever the clocks say.
//!
//! State, join, leave and update are all elements of one join-semilattice
//! and applying an operation is merging it: merge is commutative,
//! associative and idempotent, so replicas that saw the same operations in
//! any order, with duplicates, hold the same state (property-tested).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A replica: one run of one server node. Each run gets its own, so a
/// node can recognise the entries its previous runs left behind.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Replica {
    /// The node (stable across runs).
    pub node: u64,
    /// The run of that node.
    pub run: u32,
}

/// A unique event id: the `counter`-th dot of `replica`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dot {
    /// Who made it.
    pub replica: Replica,
    /// Its number at that replica (from 1).
    pub counter: u64,
}

/// One membership entry: a connection of a user.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Entry {
    /// The user.
    pub user: String,
    /// The connection (unique per replica).
    pub conn: String,
}

/// A user's data with its write stamp.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Register {
    /// Hybrid logical clock of the write.
    pub hlc: u64,
    /// Writer (tie-break for equal clocks).
    pub replica: Replica,
    /// The data.
    pub data: Value,
}

impl Register {
    fn stamp(&self) -> (u64, Replica) {
        (self.hlc, self.replica)
    }
}

/// Every dot seen: a contiguous prefix per replica plus the dots seen out
/// of order (the "cloud").
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// `replica → n`: dots 1..=n were all seen.
    pub prefix: BTreeMap<Replica, u64>,
    /// Dots seen beyond a replica's prefix.
    pub cloud: BTreeSet<Dot>,
}

impl Context {
    /// Has `dot` been seen?
    pub fn contains(&self, dot: &Dot) -> bool {
        self.prefix
            .get(&dot.replica)
            .is_some_and(|n| dot.counter <= *n)
            || self.cloud.contains(dot)
    }

    /// Record `dot` as seen.
    pub fn insert(&mut self, dot: Dot) {
        if !self.contains(&dot) {
            self.cloud.insert(dot);
            self.compact();
        }
    }

    /// Union with another context.
    pub fn merge(&mut self, other: &Context) {
        for (r, n) in &other.prefix {
            let mine = self.prefix.entry(*r).or_insert(0);
            *mine = (*mine).max(*n);
        }
        self.cloud.extend(other.cloud.iter().copied());
        self.compact();
    }

    /// Move dots that continue a prefix out of the cloud.
    fn compact(&mut self) {
        let cloud = std::mem::take(&mut self.cloud);
        for d in cloud {
            let n = self.prefix.entry(d.replica).or_insert(0);
            if d.counter == *n + 1 {
                *n += 1;
            } else if d.counter > *n {
                self.cloud.insert(d);
            }
        }
        // A dot that became contiguous may let later cloud dots follow.
        loop {
            let mut moved = false;
            let cloud: Vec<Dot> = self.cloud.iter().copied().collect();
            for d in cloud {
                let n = self.prefix.entry(d.replica).or_insert(0);
                if d.counter <= *n {
                    self.cloud.remove(&d);
                } else if d.counter == *n + 1 {
                    *n += 1;
                    self.cloud.remove(&d);
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
    }
}

/// The presence of one topic.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PresenceState {
    /// Live entries by dot.
    pub entries: BTreeMap<Dot, Entry>,
    /// Every dot ever seen (removed ones are those without an entry).
    pub context: Context,
    /// Each user's data (kept while the user has entries; see `compact`).
    pub data: BTreeMap<String, Register>,
}

/// An operation on presence; applying one is merging its delta state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// A connection of `entry.user` joined, with `data`.
    Join {
        /// The new entry's dot.
        dot: Dot,
        /// The entry.
        entry: Entry,
        /// The user's data at the join.
        data: Register,
    },
    /// Entries went away: the dots their remover had observed.
    Leave {
        /// The removed dots.
        dots: Vec<Dot>,
    },
    /// A user's data changed.
    Update {
        /// The user.
        user: String,
        /// The new data.
        data: Register,
    },
    /// A whole state (a snapshot compacting the stream before it).
    Snapshot(PresenceState),
}

impl PresenceState {
    /// Merge another state into this one (the semilattice join).
    pub fn merge(&mut self, other: &PresenceState) {
        let mut entries = BTreeMap::new();
        for (d, e) in &self.entries {
            if other.entries.contains_key(d) || !other.context.contains(d) {
                entries.insert(*d, e.clone());
            }
        }
        for (d, e) in &other.entries {
            if !self.context.contains(d) {
                entries.insert(*d, e.clone());
            }
        }
        self.entries = entries;
        self.context.merge(&other.context);
        for (user, reg) in &other.data {
            self.merge_register(user, reg);
        }
    }

    fn merge_register(&mut self, user: &str, reg: &Register) {
        match self.data.get(user) {
            Some(mine) if mine.stamp() >= reg.stamp() => {}
            _ => {
                self.data.insert(user.to_owned(), reg.clone());
            }
        }
    }

    /// Apply an operation (merge its delta).
    pub fn apply(&mut self, op: &Op) {
        match op {
            Op::Join { dot, entry, data } => {
                if !self.context.contains(dot) {
                    self.entries.insert(*dot, entry.clone());
                    self.context.insert(*dot);
                }
                self.merge_register(&entry.user, data);
            }
            Op::Leave { dots } => {
                for d in dots {
                    self.entries.remove(d);
                    self.context.insert(*d);
                }
            }
            Op::Update { user, data } => self.merge_register(user, data),
            Op::Snapshot(s) => self.merge(s),
        }
    }

    /// Users present, each with its data and number of entries.
    pub fn users(&self) -> BTreeMap<&str, (usize, Option<&Value>)> {
        let mut out: BTreeMap<&str, (usize, Option<&Value>)> = BTreeMap::new();
        for e in self.entries.values() {
            out.entry(&e.user).or_insert((0, None)).0 += 1;
        }
        for (user, v) in out.iter_mut() {
            v.1 = self.data.get(*user).map(|r| &r.data);
        }
        out
    }

    /// Is `user` present?
    pub fn is_present(&self, user: &str) -> bool {
        self.entries.values().any(|e| e.user == user)
    }

    /// Dots of the entries of `replica`s for which `pred` holds.
    pub fn dots_of(&self, pred: impl Fn(&Replica) -> bool) -> Vec<Dot> {
        self.entries
            .keys()
            .filter(|d| pred(&d.replica))
            .copied()
            .collect()
    }

    /// Drop the data of users who are no longer present. Only done when a
    /// snapshot is taken: the snapshot then holds exactly the live state.
    pub fn compact(&mut self) {
        let present: BTreeSet<&str> = self.entries.values().map(|e| e.user.as_str()).collect();
        self.data.retain(|u, _| present.contains(u.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rep(node: u64) -> Replica {
        Replica { node, run: 1 }
    }

    fn dot(node: u64, counter: u64) -> Dot {
        Dot {
            replica: rep(node),
            counter,
        }
    }

    fn reg(hlc: u64, node: u64, v: i64) -> Register {
        Register {
            hlc,
            replica: rep(node),
            data: Value::from(v),
        }
    }

    fn join(node: u64, counter: u64, user: &str, hlc: u64) -> Op {
        Op::Join {
            dot: dot(node, counter),
            entry: Entry {
                user: user.into(),
                conn: format!("c{node}-{counter}"),
            },
            data: reg(hlc, node, hlc as i64),
        }
    }

    fn state_of(ops: &[Op]) -> PresenceState {
        let mut s = PresenceState::default();
        for op in ops {
            s.apply(op);
        }
        s
    }

    /// A plausible history on replicas `base..base + 3`: they join users,
    /// later remove the entries they observed, and update data. Histories
    /// on distinct bases never mint the same dot.
    fn history_on(base: u64) -> impl Strategy<Value = Vec<Op>> {
        prop::collection::vec((0u64..3, 0usize..4, 0u8..3, 0u64..50), 1..40).prop_map(
            move |steps| {
                let mut ops = Vec::new();
                let mut counters = [0u64; 3];
                let mut live: Vec<Dot> = Vec::new();
                let users = ["ann", "bob", "cy", "dee"];
                // A replica never stamps two writes alike (its clock moves on).
                for (i, (node, user, kind, hlc)) in steps.into_iter().enumerate() {
                    let hlc = hlc * 1000 + i as u64;
                    match kind {
                        0 => {
                            counters[node as usize] += 1;
                            let op = join(base + node, counters[node as usize], users[user], hlc);
                            if let Op::Join { dot, .. } = &op {
                                live.push(*dot);
                            }
                            ops.push(op);
                        }
                        1 if !live.is_empty() => {
                            let d = live.remove(user % live.len());
                            ops.push(Op::Leave { dots: vec![d] });
                        }
                        _ => ops.push(Op::Update {
                            user: users[user].into(),
                            data: reg(hlc, base + node, -(hlc as i64)),
                        }),
                    }
                }
                ops
            },
        )
    }

    fn history() -> impl Strategy<Value = Vec<Op>> {
        history_on(0)
    }

    proptest! {
        #[test]
        fn any_order_with_duplicates_converges(ops in history(), seed in any::<u64>()) {
            let expected = state_of(&ops);
            let mut shuffled = ops.clone();
            shuffled.extend(ops.iter().take(ops.len() / 2).cloned());
            let mut rng = seed;
            for i in (1..shuffled.len()).rev() {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.swap(i, (rng >> 33) as usize % (i + 1));
            }
            prop_assert_eq!(state_of(&shuffled), expected);
        }

        #[test]
        fn merge_is_commutative_associative_and_idempotent(a in history_on(0), b in history_on(10), c in history_on(20)) {
            let (sa, sb, sc) = (state_of(&a), state_of(&b), state_of(&c));
            let mut ab = sa.clone(); ab.merge(&sb);
            let mut ba = sb.clone(); ba.merge(&sa);
            prop_assert_eq!(&ab, &ba);
            let mut ab_c = ab.clone(); ab_c.merge(&sc);
            let mut bc = sb.clone(); bc.merge(&sc);
            let mut a_bc = sa.clone(); a_bc.merge(&bc);
            prop_assert_eq!(&ab_c, &a_bc);
            let mut aa = sa.clone(); aa.merge(&sa);
            prop_assert_eq!(&aa, &sa);
        }

        #[test]
        fn merging_states_equals_applying_all_ops(a in history_on(0), b in history_on(10)) {
            let mut merged = state_of(&a);
            merged.merge(&state_of(&b));
            let mut all = a;
            all.extend(b);
            prop_assert_eq!(merged, state_of(&all));
        }
    }

    #[test]
    fn a_leave_concurrent_with_an_update_leaves_no_ghost() {
        let j = join(1, 1, "ann", 10);
        let leave = Op::Leave {
            dots: vec![dot(1, 1)],
        };
        // An update from another replica, with a clock far in the future.
        let update = Op::Update {
            user: "ann".into(),
            data: reg(1_000_000, 2, 7),
        };
        for order in [
            vec![&j, &leave, &update],
            vec![&j, &update, &leave],
            vec![&update, &j, &leave],
            vec![&leave, &update, &j],
        ] {
            let mut s = PresenceState::default();
            for op in order {
                s.apply(op);
            }
            assert!(!s.is_present("ann"));
            assert!(s.users().is_empty());
        }
    }

    #[test]
    fn a_join_delivered_after_its_leave_stays_removed() {
        let mut s = PresenceState::default();
        s.apply(&Op::Leave {
            dots: vec![dot(1, 2)],
        });
        s.apply(&join(1, 2, "bob", 1));
        assert!(!s.is_present("bob"));
        // Another connection of the same user is a new dot and counts.
        s.apply(&join(1, 3, "bob", 2));
        assert!(s.is_present("bob"));
        assert_eq!(s.users()["bob"].0, 1);
    }

    #[test]
    fn data_is_last_writer_wins_and_compaction_keeps_present_users() {
        let mut s = state_of(&[join(1, 1, "ann", 5), join(2, 1, "bob", 1)]);
        s.apply(&Op::Update {
            user: "ann".into(),
            data: reg(4, 3, 99),
        });
        assert_eq!(
            s.users()["ann"].1,
            Some(&Value::from(5)),
            "older write loses"
        );
        s.apply(&Op::Update {
            user: "ann".into(),
            data: reg(6, 3, 42),
        });
        assert_eq!(s.users()["ann"].1, Some(&Value::from(42)));
        s.apply(&Op::Leave {
            dots: vec![dot(2, 1)],
        });
        s.compact();
        assert!(s.data.contains_key("ann") && !s.data.contains_key("bob"));
        assert_eq!(
            s.context.prefix[&rep(2)],
            1,
            "the context remembers the removal"
        );
    }

    #[test]
    fn the_context_compacts_contiguous_dots() {
        let mut c = Context::default();
        for n in [3, 1, 2, 5] {
            c.insert(dot(1, n));
        }
        assert_eq!(c.prefix[&rep(1)], 3);
        assert_eq!(c.cloud.len(), 1);
        c.insert(dot(1, 4));
        assert_eq!(c.prefix[&rep(1)], 5);
        assert!(c.cloud.is_empty());
        assert!(c.contains(&dot(1, 2)) && !c.contains(&dot(1, 6)));
    }
}
