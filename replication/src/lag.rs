//! Figures openraft's metrics do not keep, sampled from them: how long
//! each follower of a shard this node leads has been behind, and how many
//! times the shard's leader changed.
//!
//! A follower's lag in time is how long ago it last held every entry of
//! the leader's log (Kafka judges its in-sync replicas the same way): a
//! follower that keeps up under load is near 0 even when some entries are
//! always in flight to it, one that stopped grows by a second a second.
//! The sampler reads each shard's metrics every [`SAMPLE_EVERY`], so the
//! figures are as fine as that.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use openraft::{BasicNode, RaftMetrics};
use parking_lot::Mutex;

use crate::types::NodeId;

/// How often the shards' metrics are sampled.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// The sampled figures of every shard of this node.
#[derive(Default)]
pub(crate) struct LagTracker {
    shards: Mutex<HashMap<u32, Track>>,
}

/// One shard's sampled figures.
#[derive(Default)]
struct Track {
    /// The last leader seen.
    leader: Option<NodeId>,
    /// Times the leader seen became another node.
    leader_changes: u64,
    /// While this node leads: per follower, when it last held the whole log.
    caught_up: HashMap<NodeId, Instant>,
}

impl LagTracker {
    /// Take one sample of `shard`'s metrics, at `now`.
    pub(crate) fn sample(&self, shard: u32, m: &RaftMetrics<NodeId, BasicNode>, now: Instant) {
        let mut shards = self.shards.lock();
        let t = shards.entry(shard).or_default();
        if let Some(leader) = m.current_leader
            && t.leader != Some(leader)
        {
            if t.leader.is_some() {
                t.leader_changes += 1;
            }
            t.leader = Some(leader);
        }
        let Some(replication) = &m.replication else {
            t.caught_up.clear();
            return;
        };
        let last = m.last_log_index;
        for (id, matched) in replication.iter().filter(|(id, _)| **id != m.id) {
            if matched.map(|l| l.index) >= last {
                t.caught_up.insert(*id, now);
            } else {
                // First seen behind: counted from now.
                t.caught_up.entry(*id).or_insert(now);
            }
        }
    }

    /// On the leader of `shard`: per follower, milliseconds since it last
    /// held the whole log (`None` where this node does not lead).
    pub(crate) fn lag_millis(&self, shard: u32, now: Instant) -> Option<BTreeMap<NodeId, u64>> {
        let shards = self.shards.lock();
        let t = shards.get(&shard)?;
        if t.caught_up.is_empty() {
            return None;
        }
        Some(
            t.caught_up
                .iter()
                .map(|(id, at)| (*id, now.saturating_duration_since(*at).as_millis() as u64))
                .collect(),
        )
    }

    /// Times this node saw `shard`'s leader change.
    pub(crate) fn leader_changes(&self, shard: u32) -> u64 {
        self.shards
            .lock()
            .get(&shard)
            .map_or(0, |t| t.leader_changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, LogId};

    fn log_id(index: u64) -> Option<LogId<NodeId>> {
        Some(LogId::new(CommittedLeaderId::new(1, 1), index))
    }

    fn leader_metrics(last: u64, matched: &[(NodeId, u64)]) -> RaftMetrics<NodeId, BasicNode> {
        let mut m = RaftMetrics::new_initial(1);
        m.current_leader = Some(1);
        m.last_log_index = Some(last);
        m.replication = Some(matched.iter().map(|(id, i)| (*id, log_id(*i))).collect());
        m
    }

    #[test]
    fn a_follower_that_stops_lags_by_the_time_since_it_last_held_the_log() {
        let t = LagTracker::default();
        let start = Instant::now();
        t.sample(0, &leader_metrics(10, &[(1, 10), (2, 10), (3, 10)]), start);
        let later = start + Duration::from_secs(5);
        // Node 2 keeps up; node 3 stopped at 10 while the log grew.
        t.sample(0, &leader_metrics(50, &[(1, 50), (2, 50), (3, 10)]), later);
        let lag = t.lag_millis(0, later).unwrap();
        assert_eq!(lag, BTreeMap::from([(2, 0), (3, 5000)]));
        // Not the leader any more: no figures.
        let mut follower = RaftMetrics::new_initial(1);
        follower.current_leader = Some(2);
        t.sample(0, &follower, later);
        assert_eq!(t.lag_millis(0, later), None);
        assert_eq!(t.leader_changes(0), 1);
    }
}
