//! Presence in the log: each topic's operations are records of kind
//! `presence` in a stream of their own (so they never mix with the topic's
//! message offsets), and each server run records which replica it is.

use wse_log::{Log, LogError, Position, ReadLimits, RecordKind};

use super::crdt::{Op, Replica};

/// Prefix of presence streams. Client topics cannot contain control
/// characters, so no client topic can collide with a presence stream.
const PRESENCE_PREFIX: &str = "\u{1}presence:";
/// The stream recording each run of this node.
const NODE_STREAM: &str = "\u{1}node";

/// The log stream holding the presence of `topic`.
pub fn stream_name(topic: &str) -> String {
    format!("{PRESENCE_PREFIX}{topic}")
}

/// The topic a presence stream belongs to, if `name` is one.
pub fn topic_of(name: &str) -> Option<&str> {
    name.strip_prefix(PRESENCE_PREFIX)
}

/// Bytes a presence stream name adds to a topic name.
pub const NAME_OVERHEAD: usize = PRESENCE_PREFIX.len();

/// Encode an operation as a record payload (msgpack).
pub fn encode(op: &Op) -> Vec<u8> {
    rmp_serde::to_vec_named(op).expect("presence operations always serialise")
}

/// A record that changes nothing (a leave of no entry). A cluster node
/// that installs a snapshot fills with it the offsets of a presence stream
/// its source had trimmed, so its offsets stay those of its peers.
pub fn filler() -> Vec<u8> {
    encode(&Op::Leave { dots: Vec::new() })
}

/// Decode a record payload; `None` for bytes that are not an operation.
pub fn decode(payload: &[u8]) -> Option<Op> {
    rmp_serde::from_slice(payload).ok()
}

/// The first position of `topic`'s presence stream (offset 0 of no epoch
/// when it has none).
pub fn start(log: &Log, topic: &str) -> Position {
    log.position(&stream_name(topic))
        .map_or(Position::new(wse_log::Epoch(0), 0), |p| {
            Position::new(p.epoch, p.first_offset)
        })
}

/// Every operation stored for `topic`, oldest first.
pub fn read_all(log: &Log, topic: &str) -> Result<Vec<Op>, LogError> {
    Ok(read_since(log, topic, start(log, topic))?
        .0
        .into_iter()
        .map(|(_, op)| op)
        .collect())
}

/// The operations stored for `topic` from `from` on, each with its
/// offset, and the position after the last one. Unreadable records are
/// skipped with a warning.
pub fn read_since(
    log: &Log,
    topic: &str,
    mut from: Position,
) -> Result<(Vec<(u64, Op)>, Position), LogError> {
    let stream = stream_name(topic);
    let mut ops = Vec::new();
    let Some(pos) = log.position(&stream) else {
        return Ok((ops, from));
    };
    while from.offset < pos.next_offset {
        let batch = log.read(&stream, from, ReadLimits::records(1024))?;
        if batch.records.is_empty() {
            break;
        }
        for r in &batch.records {
            match decode(r.payload_ref()) {
                Some(op) => ops.push((r.offset(), op)),
                None => tracing::warn!(
                    topic,
                    offset = r.offset(),
                    "unreadable presence record skipped"
                ),
            }
        }
        from.offset = batch.next_offset;
    }
    Ok((ops, from))
}

/// The replica of this run: the node id recorded by earlier runs (a new
/// random one for a new data directory) and the next run number, recorded
/// in the log before it is used.
///
/// A cluster node is replica `cluster_node` instead, so a shard leader
/// knows which entries a dead node made. Its first run number is random:
/// a node whose data directory was lost must not make the dots its
/// earlier life made, which the other nodes have seen (and removed).
pub fn next_replica(log: &Log, cluster_node: Option<u64>) -> Result<Replica, LogError> {
    let last = match log.position(NODE_STREAM) {
        Some(pos) if pos.next_offset > 0 => {
            let at = Position::new(pos.epoch, pos.next_offset - 1);
            log.read(NODE_STREAM, at, ReadLimits::records(1))?
                .records
                .first()
                .and_then(|r| rmp_serde::from_slice::<Replica>(r.payload_ref()).ok())
        }
        _ => None,
    };
    let replica = match (last, cluster_node) {
        (Some(r), node) => Replica {
            node: node.unwrap_or(r.node),
            run: r.run.wrapping_add(1),
        },
        (None, Some(node)) => Replica {
            node,
            run: rand::random(),
        },
        (None, None) => Replica {
            node: rand::random(),
            run: 1,
        },
    };
    let bytes = rmp_serde::to_vec(&replica).expect("a replica serialises");
    log.append(NODE_STREAM, RecordKind::Control, &bytes)?;
    Ok(replica)
}

/// Every topic with a presence stream in the log.
pub fn topics(log: &Log) -> Vec<String> {
    log.topics()
        .into_iter()
        .filter_map(|t| topic_of(&t.name).map(str::to_owned))
        .collect()
}
