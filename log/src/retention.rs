//! Retention and memory limits: deleting whole sealed segments that the
//! retention settings no longer require, and dropping memory tails that are
//! idle or over the memory budget.
//!
//! A segment is deleted only while what remains still satisfies every
//! limit, and the active segment is never deleted. Readers that ask for a
//! deleted offset get `NotRecoverable`, never a partial or stale record.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::error::{LogError, Result};
use crate::segment::index_path;
use crate::shared::Shared;
use crate::stats::Counters;
use crate::topic::{Topic, TopicStore};

/// Apply retention to every topic.
pub fn run(shared: &Shared) -> Result<()> {
    let topics: Vec<Arc<Topic>> = shared.topics.iter().map(|t| t.value().clone()).collect();
    for t in topics {
        enforce(shared, &t)?;
    }
    Ok(())
}

/// Apply retention to one topic; returns how many segments were deleted.
pub fn enforce(shared: &Shared, topic: &Topic) -> Result<usize> {
    let now = shared.now_us();
    delete_oldest_while(shared, topic, |store| {
        if store.deleted {
            return false;
        }
        let r = store.retention.unwrap_or(shared.config.retention);
        let total_bytes = store.bytes();
        let total_records =
            store.segments.last().map_or(0, |s| s.end_offset) - store.first_offset();
        let oldest = &store.segments[0];
        let by_bytes = r
            .max_bytes
            .is_some_and(|m| total_bytes - oldest.bytes() >= m);
        let by_records = r
            .max_records
            .is_some_and(|m| total_records - oldest.records() >= m);
        let by_age = r.max_age.is_some_and(|age| {
            oldest.last_ts_us != 0 && now.saturating_sub(oldest.last_ts_us) > age.as_micros() as u64
        });
        by_bytes || by_records || by_age
    })
}

/// Delete the sealed segments of `topic` that hold only offsets below
/// `offset` (a compaction point: a snapshot at `offset` makes them
/// redundant). Returns how many segments went.
pub fn trim_before(shared: &Shared, topic: &Topic, offset: u64) -> Result<usize> {
    delete_oldest_while(shared, topic, |store| {
        store.segments[0].end_offset <= offset
    })
}

/// Delete the oldest sealed segment (never the active one) while `more`
/// says so, then drop the memory tail's records below the new first
/// offset. Returns how many segments went.
fn delete_oldest_while(
    shared: &Shared,
    topic: &Topic,
    mut more: impl FnMut(&TopicStore) -> bool,
) -> Result<usize> {
    let mut deleted = 0;
    let first = {
        let mut store = topic.store_mut();
        while store.segments.len() >= 2 && more(&store) {
            let seg = store.segments.remove(0);
            shared.files.forget(&seg.path);
            remove_if_present(shared, &seg.path)?;
            remove_if_present(shared, &index_path(&topic.dir, seg.base))?;
            shared.files.mark_dir_dirty(&topic.dir);
            Counters::add(&shared.counters.segments_deleted, 1);
            deleted += 1;
        }
        store.first_offset()
    };
    if deleted > 0 {
        let freed = topic.state.lock().tail.trim_before(first);
        shared.add_tail_bytes(-(freed as isize));
    }
    Ok(deleted)
}

fn remove_if_present(shared: &Shared, path: &std::path::Path) -> Result<()> {
    crate::storage::remove_if_present(shared.files.storage(), path)
        .map_err(|e| LogError::io("remove", path, e))
}

/// Drop the tails of topics idle for longer than the tail TTL.
pub fn expire_idle_tails(shared: &Shared) {
    let ttl_ms = shared.config.tail.idle_ttl.as_millis() as u64;
    let now = shared.now_ms();
    for t in shared.topics.iter() {
        let idle = now.saturating_sub(t.last_access_ms.load(Ordering::Relaxed)) > ttl_ms;
        if idle {
            drop_tail(shared, &t);
        }
    }
}

/// Drop tails, least recently used topics first, until the total is at most
/// 90% of the budget (the margin keeps this from running on every batch).
pub fn evict_tails_over_budget(shared: &Shared) {
    let budget = shared.config.tail.memory_budget;
    let target = budget - budget / 10;
    let mut candidates: Vec<(u64, Arc<Topic>)> = shared
        .topics
        .iter()
        .map(|t| (t.last_access_ms.load(Ordering::Relaxed), t.value().clone()))
        .collect();
    candidates.sort_by_key(|(at, _)| *at);
    for (_, t) in candidates {
        if shared.tail_bytes.load(Ordering::Relaxed) <= target {
            break;
        }
        drop_tail(shared, &t);
    }
}

fn drop_tail(shared: &Shared, topic: &Topic) {
    let freed = topic.state.lock().tail.clear();
    if freed > 0 {
        shared.add_tail_bytes(-(freed as isize));
        Counters::add(&shared.counters.tails_evicted, 1);
    }
}
