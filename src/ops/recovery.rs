//! `subscribe_with_recovery`: subscribe, and replay what a client missed
//! by moving its cursor back.
//!
//! Replay and live delivery are one stream: the subscription's cursor goes
//! back to the first missed offset and moves forward through the framed
//! ring (or the log, for older history) exactly as it does for live
//! messages, so a publisher running meanwhile can cause neither a gap nor
//! a duplicate, and replayed frames are byte-identical to live ones. One
//! request replays at most `recovery_max_messages`; the reply says how far
//! it went, and the client asks again for the rest.

use std::sync::Arc;

use wse_log::Epoch;

use super::subscribe::{SubscriptionLimit, subscribe};
use crate::conn::Conn;
use crate::metrics::Metrics;
use crate::server::state::ServerState;
use crate::topics::{is_pattern, is_valid_client_topic_with_limit};

/// The outcome for one topic.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TopicRecovery {
    /// The topic.
    pub topic: String,
    /// The topic's current epoch, or `None` when it has no history.
    pub epoch: Option<Epoch>,
    /// The newest offset (inclusive) — or, for a replay cut at the cap,
    /// the last offset replayed; 0 when there is no history.
    pub offset: u64,
    /// The topic has history (and the connection may read it).
    pub recoverable: bool,
    /// Missed messages were (or are being) replayed.
    pub recovered: bool,
    /// Messages replayed by this request.
    pub count: u64,
    /// False when the gap was larger than one request replays.
    pub complete: bool,
}

/// The outcome of a request.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RecoveryReport {
    /// True only if recovery was asked for and every topic recovered.
    pub recovered: bool,
    /// Per topic, in the order asked.
    pub topics: Vec<TopicRecovery>,
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryError {
    /// The subscription limit was reached.
    #[error(transparent)]
    Limit(#[from] SubscriptionLimit),
    /// The epoch is not hex (raised after the subscription was made).
    #[error("Invalid epoch hex string: {0}")]
    InvalidEpoch(String),
}

/// Subscribe `conn` to `topics` and, when `recover` with an epoch and the
/// client's last offset, replay what it missed.
pub fn subscribe_with_recovery(
    state: &ServerState,
    conn: &Arc<Conn>,
    topics: &[String],
    recover: bool,
    epoch: Option<&str>,
    offset: Option<u64>,
) -> Result<RecoveryReport, RecoveryError> {
    subscribe(state, conn, topics, None)?;
    let want = match (recover, epoch, offset) {
        (true, Some(e), Some(o)) => Some((
            e.parse::<Epoch>()
                .map_err(|_| RecoveryError::InvalidEpoch(e.to_owned()))?,
            o,
        )),
        _ => None,
    };
    let mut report = RecoveryReport {
        recovered: want.is_some(),
        topics: Vec::with_capacity(topics.len()),
    };
    for topic in topics {
        let entry = recover_topic(state, conn, topic, want);
        report.recovered &= entry.recovered;
        report.topics.push(entry);
    }
    if want.is_some() {
        conn.signal();
    }
    Ok(report)
}

fn recover_topic(
    state: &ServerState,
    conn: &Arc<Conn>,
    topic: &str,
    want: Option<(Epoch, u64)>,
) -> TopicRecovery {
    let none = TopicRecovery {
        topic: topic.to_owned(),
        epoch: None,
        offset: 0,
        recoverable: false,
        recovered: false,
        count: 0,
        complete: false,
    };
    let allowed = conn.allows(topic)
        && is_valid_client_topic_with_limit(topic, state.config.max_topic_bytes)
        && !is_pattern(topic);
    let Some(pos) = allowed.then(|| state.log.position(topic)).flatten() else {
        return none;
    };
    let newest = pos.next_offset.saturating_sub(1);
    let current = TopicRecovery {
        epoch: Some(pos.epoch),
        offset: newest,
        recoverable: true,
        ..none
    };
    let Some((epoch, last_seen)) = want else {
        return current;
    };
    let from = last_seen.saturating_add(1);
    if epoch != pos.epoch || from < pos.first_offset || from > pos.next_offset {
        Metrics::add(&state.metrics.recovery_not_recovered, 1);
        return current;
    }
    let mut ob = conn.outbox.lock();
    let Some(sub) = ob.subs.get_mut(topic) else {
        return current;
    };
    let ring = sub.channel.ring.read();
    let head = ring.head();
    if from >= ring.first() {
        Metrics::add(&state.metrics.recovery_from_memory, 1);
    } else {
        Metrics::add(&state.metrics.recovery_from_disk, 1);
    }
    if from >= head {
        return TopicRecovery {
            offset: head.saturating_sub(1),
            recovered: true,
            complete: true,
            ..current
        };
    }
    let cap = state.config.recovery_max_messages.max(1);
    let gap = head - from;
    let (count, complete) = if gap > cap { (cap, false) } else { (gap, true) };
    sub.cursor = from;
    sub.replay = (!complete).then_some((from + cap, head));
    drop(ring);
    TopicRecovery {
        offset: from + count - 1,
        recovered: true,
        count,
        complete,
        ..current
    }
}
