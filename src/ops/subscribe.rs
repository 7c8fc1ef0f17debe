//! Subscriptions: topics by name, patterns, queue groups, ACLs and limits.

use std::sync::Arc;

use crate::conn::Conn;
use crate::fanout::Channel;
use crate::fanout::channel::{Joined, Start};
use crate::metrics::Metrics;
use crate::state::ServerState;
use crate::topics::{TopicPattern, is_pattern, is_valid_client_topic_with_limit};

/// `max_subscriptions_per_connection` (or, for patterns,
/// `max_patterns_per_connection`) would be exceeded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Connection {conn} reached max {what} ({max})")]
pub struct SubscriptionLimit {
    /// The connection.
    pub conn: String,
    /// `subscriptions` or `patterns`.
    pub what: &'static str,
    /// The limit.
    pub max: usize,
}

/// Run `f` on the channel of `topic` (created at the log's current head
/// if needed), under the channel map's lock (see `Fanout::with_channel`).
pub fn with_channel<R>(state: &ServerState, topic: &str, f: impl FnOnce(&Arc<Channel>) -> R) -> R {
    state.fanout.with_channel(
        topic,
        || {
            state
                .log
                .position(topic)
                .map_or((None, 0), |p| (Some(p.epoch), p.next_offset))
        },
        f,
    )
}

/// Subscribe `conn` to `topics` (or, with `group`, join that queue group
/// of each). Topics the ACL denies and invalid names are skipped; with a
/// subscription limit, the list is cut to the free slots, and an error
/// returned when none is free. Returns the topics subscribed (including
/// ones the connection already had).
pub fn subscribe(
    state: &ServerState,
    conn: &Arc<Conn>,
    topics: &[String],
    group: Option<&str>,
) -> Result<Vec<String>, SubscriptionLimit> {
    subscribe_with_presence(state, conn, topics, group, None)
}

/// Where a live subscription to `topic` starts: at the log's head now.
/// Read under the channel's ring lock (`Channel::subscribe_with`), so the
/// head is one of the ring's history.
pub(crate) fn live(state: &ServerState, topic: &str) -> Start {
    Start::Live {
        from: state.log.position(topic).map_or(0, |p| p.next_offset),
    }
}

/// `subscribe`, and with `presence` data (and presence enabled) track the
/// connection's user in each topic subscribed by name. A join presence
/// refuses (data over `presence_max_data_size`, topic full) leaves that
/// topic subscribed without presence, as upstream, with a warning and the
/// `presence_refused` counter.
pub fn subscribe_with_presence(
    state: &ServerState,
    conn: &Arc<Conn>,
    topics: &[String],
    group: Option<&str>,
    presence: Option<&serde_json::Value>,
) -> Result<Vec<String>, SubscriptionLimit> {
    let done: Vec<String> = subscribe_from(state, conn, topics, group, |t| live(state, t))?
        .into_iter()
        .map(|(topic, _)| topic)
        .collect();
    if let (Some(data), Some(p), None) = (presence, &state.presence, group) {
        for topic in done.iter().filter(|t| !is_pattern(t)) {
            if let Err(e) = p.join(state, conn, topic, data) {
                Metrics::add(&state.metrics.presence_refused, 1);
                tracing::warn!(conn = %conn.id_str, topic, error = %e,
                    "subscribed without presence");
            }
        }
    }
    Ok(done)
}

/// `subscribe`, each topic subscribed by name starting where `start` says
/// (recovery replays from the client's position). Returns each topic
/// subscribed with what its channel did (`Joined::New` for patterns and
/// queue groups).
pub(crate) fn subscribe_from(
    state: &ServerState,
    conn: &Arc<Conn>,
    topics: &[String],
    group: Option<&str>,
    start: impl Fn(&str) -> Start,
) -> Result<Vec<(String, Joined)>, SubscriptionLimit> {
    let max_len = state.config.max_topic_bytes;
    let mut wanted: Vec<&String> = topics
        .iter()
        .filter(|t| is_valid_client_topic_with_limit(t, max_len) && conn.allows(t))
        .collect();
    let max = state.config.max_subscriptions_per_connection;
    if max > 0 {
        let used = conn.outbox.lock().subscription_count();
        let free = max.saturating_sub(used);
        if free == 0 && !wanted.is_empty() {
            return Err(SubscriptionLimit {
                conn: conn.id_str.clone(),
                what: "subscriptions",
                max,
            });
        }
        wanted.truncate(free);
    }
    let max_patterns = state.config.max_patterns_per_connection;
    if max_patterns > 0 && group.is_none() && wanted.iter().any(|t| is_pattern(t)) {
        let ob = conn.outbox.lock();
        let mut free = max_patterns.saturating_sub(ob.patterns.len());
        let asked = wanted.len();
        // A pattern the connection holds already takes no new place.
        wanted.retain(|t| {
            if !is_pattern(t) || ob.patterns.contains_key(t.as_str()) {
                return true;
            }
            let fits = free > 0;
            free = free.saturating_sub(1);
            fits
        });
        drop(ob);
        if wanted.is_empty() && asked > 0 {
            return Err(SubscriptionLimit {
                conn: conn.id_str.clone(),
                what: "patterns",
                max: max_patterns,
            });
        }
    }
    let mut done = Vec::with_capacity(wanted.len());
    for topic in wanted {
        let joined = match group {
            Some(g) => {
                with_channel(state, topic, |c| c.join_group(g, conn));
                Joined::New
            }
            None if is_pattern(topic) => {
                subscribe_pattern(state, conn, topic);
                Joined::New
            }
            None => with_channel(state, topic, |c| {
                c.subscribe_with(conn, false, || start(topic))
            }),
        };
        done.push((topic.clone(), joined));
    }
    conn.signal();
    Ok(done)
}

/// Subscribe `conn` to a pattern: now to every existing matching channel,
/// later to channels created for matching topics.
fn subscribe_pattern(state: &ServerState, conn: &Arc<Conn>, pattern: &str) {
    {
        let mut ob = conn.outbox.lock();
        if ob.closed || ob.patterns.contains_key(pattern) {
            return;
        }
        ob.patterns
            .insert(pattern.into(), TopicPattern::new(pattern));
    }
    let compiled = TopicPattern::new(pattern);
    state.fanout.patterns.write().insert(&compiled, conn);
    let matching: Vec<Arc<str>> = state
        .fanout
        .channels
        .iter()
        .filter(|c| compiled.matches(c.key()) && conn.allows(c.key()))
        .map(|c| c.key().clone())
        .collect();
    for topic in matching {
        with_channel(state, &topic, |c| {
            c.subscribe_with(conn, true, || live(state, &topic))
        });
    }
    if conn.outbox.lock().closed {
        // The connection went away meanwhile; its cleanup may have run
        // before the pattern was registered.
        drop_pattern(state, conn, pattern);
    }
}

/// Unsubscribe `conn` from `topics` (names, patterns; also leaves their
/// queue groups).
pub fn unsubscribe(state: &ServerState, conn: &Arc<Conn>, topics: &[String]) {
    if let Some(p) = &state.presence {
        p.leave(state, conn.id, Some(topics));
    }
    for topic in topics {
        let mut ob = conn.outbox.lock();
        let groups: Vec<String> = ob
            .groups
            .iter()
            .filter(|(t, _)| &**t == topic.as_str())
            .map(|(_, g)| g.clone())
            .collect();
        ob.groups.retain(|(t, _)| &**t != topic.as_str());
        let had_pattern = ob.patterns.remove(topic.as_str()).is_some();
        let named = ob.subs.get(topic.as_str()).is_some_and(|s| !s.via_pattern);
        let still_matches = ob.patterns.values().any(|p| p.matches(topic));
        let removed = if named && !still_matches {
            ob.subs.remove(topic.as_str())
        } else {
            if named && let Some(s) = ob.subs.get_mut(topic.as_str()) {
                s.via_pattern = true;
            }
            None
        };
        drop(ob);
        if let Some(sub) = removed {
            sub.channel.remove_subscriber(conn.id);
            forget_if_idle(state, &sub.channel);
        }
        for g in groups {
            if let Some(c) = state.fanout.channels.get(topic.as_str()).map(|c| c.clone()) {
                c.leave_group(&g, conn.id);
                forget_if_idle(state, &c);
            }
        }
        if had_pattern {
            drop_pattern(state, conn, topic);
        }
    }
}

/// Remove `conn` from a pattern, and the subscriptions only it made.
fn drop_pattern(state: &ServerState, conn: &Arc<Conn>, pattern: &str) {
    state.fanout.patterns.write().remove(pattern, conn.id);
    let gone: Vec<Arc<Channel>> = {
        let mut ob = conn.outbox.lock();
        let keep = &ob.patterns;
        let stale: Vec<Arc<str>> = ob
            .subs
            .iter()
            .filter(|(t, s)| s.via_pattern && !keep.values().any(|p| p.matches(t)))
            .map(|(t, _)| t.clone())
            .collect();
        stale
            .into_iter()
            .filter_map(|t| ob.subs.remove(&t))
            .map(|s| s.channel)
            .collect()
    };
    for c in gone {
        c.remove_subscriber(conn.id);
        forget_if_idle(state, &c);
    }
}

/// Everything `conn` holds: topics, patterns, groups (`unsubscribe(None)`
/// and disconnect).
pub fn unsubscribe_all(state: &ServerState, conn: &Arc<Conn>) {
    if let Some(p) = &state.presence {
        // The leaves go out now, before the connection's `disconnect`.
        let touched = p.leave(state, conn.id, None);
        p.flush(state, Some(&touched));
    }
    let (subs, patterns, groups) = {
        let mut ob = conn.outbox.lock();
        ob.closed = true;
        (
            std::mem::take(&mut ob.subs),
            std::mem::take(&mut ob.patterns),
            std::mem::take(&mut ob.groups),
        )
    };
    for (_, sub) in subs {
        sub.channel.remove_subscriber(conn.id);
        forget_if_idle(state, &sub.channel);
    }
    if !patterns.is_empty() {
        let mut all = state.fanout.patterns.write();
        for source in patterns.keys() {
            all.remove(source, conn.id);
        }
    }
    for (topic, g) in groups {
        if let Some(c) = state.fanout.channels.get(&topic).map(|c| c.clone()) {
            c.leave_group(&g, conn.id);
            forget_if_idle(state, &c);
        }
    }
}

fn forget_if_idle(state: &ServerState, channel: &Arc<Channel>) {
    state.fanout.forget_if_idle(channel);
}
