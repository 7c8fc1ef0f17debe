//! `subscribe_with_recovery`: subscribe, and replay what a client missed
//! by starting its cursor at the first missed offset.
//!
//! Replay and live delivery are one stream: the subscription's cursor
//! starts at the first missed offset and moves forward through the framed
//! ring (or the log, for older history) exactly as it does for live
//! messages, so a publisher running meanwhile can cause neither a gap nor
//! a duplicate, and replayed frames are byte-identical to live ones. The
//! cursor is placed atomically with the subscription (see
//! `Channel::subscribe`), whichever thread asks. The whole missed range is
//! streamed, paced by the socket, unless it is larger than
//! `recovery_max_messages`, or crosses records the log cannot read
//! (damage on disk): then nothing is replayed and the answer is
//! not-recovered (all or nothing). The connection's own frames, the reply
//! among them, wait until the replay has been sent.

use std::sync::Arc;

use wse_log::{Epoch, Log, LogError, Position, ReadLimits};

use super::subscribe::{SubscriptionLimit, subscribe, subscribe_from};
use crate::conn::Conn;
use crate::fanout::channel::{Joined, Start};
use crate::metrics::Metrics;
use crate::state::ServerState;
use crate::topics::{is_pattern, is_valid_client_topic_with_limit};

/// The outcome for one topic.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TopicRecovery {
    /// The topic.
    pub topic: String,
    /// The topic's current epoch, or `None` when it has no history.
    pub epoch: Option<Epoch>,
    /// The newest offset (inclusive) the client holds once the replay has
    /// been sent (live messages follow it); for a topic not recovered, the
    /// newest offset; 0 when there is no history.
    pub offset: u64,
    /// The topic has history (and the connection may read it).
    pub recoverable: bool,
    /// Missed messages were (or are being) replayed.
    pub recovered: bool,
    /// Messages replayed by this request.
    pub count: u64,
    /// The whole gap is replayed (recovery is all or nothing, so this
    /// equals `recovered`; kept for apps that read it).
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
    let want = match (recover, epoch, offset) {
        (true, Some(e), Some(o)) => match e.parse::<Epoch>() {
            Ok(epoch) => Some((epoch, o)),
            Err(_) => {
                // As upstream: the live subscription is made, then the
                // error raised.
                subscribe(state, conn, topics, None)?;
                return Err(RecoveryError::InvalidEpoch(e.to_owned()));
            }
        },
        _ => None,
    };
    // Where each topic's history stands, and where its replay would start.
    let plans: Vec<Plan> = topics.iter().map(|t| plan(state, conn, t, want)).collect();
    let cap = state.config.recovery_max_messages.max(1);
    let joined = subscribe_from(state, conn, topics, None, |topic| {
        match plans.iter().find(|p| p.topic == topic) {
            Some(Plan {
                replay_from: Some(from),
                damaged,
                current,
                ..
            }) if state.log.position(topic).map(|p| p.epoch) == current.epoch => Start::Replay {
                from: *from,
                // A damaged range is answered like one over the cap: the
                // cursor at the head, the reply before any live message.
                cap: if *damaged { 0 } else { cap },
            },
            // Planned in a history deleted since (checked under the ring's
            // lock, see `Channel::subscribe_with`): nothing of it is
            // replayed.
            Some(Plan {
                replay_from: Some(_),
                ..
            }) => Start::Unrecoverable,
            _ => super::subscribe::live(state, topic),
        }
    })?;
    let mut report = RecoveryReport {
        recovered: want.is_some(),
        topics: Vec::with_capacity(topics.len()),
    };
    for plan in plans {
        let outcome = joined
            .iter()
            .find(|(t, _)| *t == plan.topic)
            .map(|(_, j)| *j);
        let entry = settle(state, plan, outcome, want.is_some());
        report.recovered &= entry.recovered;
        report.topics.push(entry);
    }
    if want.is_some() {
        conn.signal();
    }
    Ok(report)
}

/// What a topic's log says about a recovery request, before subscribing.
struct Plan {
    topic: String,
    /// The topic's state, when the connection may read it.
    current: TopicRecovery,
    /// The first missed offset, when the client's position is in this
    /// history and not removed.
    replay_from: Option<u64>,
    /// The missed range crosses records the log cannot read: the replay
    /// is refused (answered not-recovered), never sent with a hole in it.
    damaged: bool,
}

fn plan(state: &ServerState, conn: &Conn, topic: &str, want: Option<(Epoch, u64)>) -> Plan {
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
        return Plan {
            topic: topic.to_owned(),
            current: none,
            replay_from: None,
            damaged: false,
        };
    };
    let current = TopicRecovery {
        epoch: Some(pos.epoch),
        offset: pos.next_offset.saturating_sub(1),
        recoverable: true,
        ..none
    };
    let replay_from = want.and_then(|(epoch, last_seen)| {
        let from = last_seen.saturating_add(1);
        (epoch == pos.epoch && from >= pos.first_offset && from <= pos.next_offset).then_some(from)
    });
    let cap = state.config.recovery_max_messages.max(1);
    let damaged = replay_from.is_some_and(|from| {
        pos.next_offset - from <= cap
            && crosses_damage(&state.log, topic, pos.epoch, from, pos.next_offset)
    });
    Plan {
        topic: topic.to_owned(),
        current,
        replay_from,
        damaged,
    }
}

/// Does `from..to` of `topic` hold records the log cannot read? Reads the
/// range (at most `recovery_max_messages` records, mostly from the memory
/// tail; older ones from disk, which is why a client's recovery runs on
/// the blocking pool).
fn crosses_damage(log: &Log, topic: &str, epoch: Epoch, from: u64, to: u64) -> bool {
    let mut at = from;
    while at < to {
        let limits = ReadLimits {
            max_records: (to - at).min(1024) as usize,
            max_bytes: 8 << 20,
        };
        match log.read(topic, Position::new(epoch, at), limits) {
            Ok(batch) if batch.next_offset > at => at = batch.next_offset,
            Ok(_) => return false,
            Err(LogError::Damaged(d)) => {
                tracing::warn!(topic, damage = %d,
                    "recovery refused: the missed range crosses damaged records (`wse log verify` locates them)");
                return true;
            }
            // Removed meanwhile, or unreadable for another reason: the
            // subscription's own reads deal with it.
            Err(_) => return false,
        }
    }
    false
}

/// The report for one topic, from its plan and what subscribing did.
fn settle(state: &ServerState, plan: Plan, outcome: Option<Joined>, wanted: bool) -> TopicRecovery {
    let current = plan.current;
    match outcome {
        Some(Joined::Replaying {
            from,
            to,
            in_memory,
        }) => {
            let count = to.saturating_sub(from);
            match (count, in_memory) {
                (0, _) => {}
                (_, true) => Metrics::add(&state.metrics.recovery_from_memory, 1),
                (_, false) => Metrics::add(&state.metrics.recovery_from_disk, 1),
            }
            TopicRecovery {
                // The newest offset the client holds once the replay is
                // sent; what follows comes live.
                offset: from.max(to).saturating_sub(1),
                recovered: true,
                count,
                complete: true,
                ..current
            }
        }
        Some(Joined::TooFar { head }) => {
            Metrics::add(&state.metrics.recovery_not_recovered, 1);
            TopicRecovery {
                offset: head.saturating_sub(1),
                ..current
            }
        }
        _ => {
            if wanted && current.recoverable {
                Metrics::add(&state.metrics.recovery_not_recovered, 1);
            }
            current
        }
    }
}
