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

/// Decode a record payload; `None` for bytes that are not an operation.
pub fn decode(payload: &[u8]) -> Option<Op> {
    rmp_serde::from_slice(payload).ok()
}

/// Every operation stored for `topic`, oldest first.
pub fn read_all(log: &Log, topic: &str) -> Result<Vec<Op>, LogError> {
    let stream = stream_name(topic);
    let Some(pos) = log.position(&stream) else {
        return Ok(Vec::new());
    };
    let mut ops = Vec::new();
    let mut from = Position::new(pos.epoch, pos.first_offset);
    while from.offset < pos.next_offset {
        let batch = log.read(&stream, from, ReadLimits::records(1024))?;
        if batch.records.is_empty() {
            break;
        }
        for r in &batch.records {
            match decode(r.payload_ref()) {
                Some(op) => ops.push(op),
                None => tracing::warn!(
                    topic,
                    offset = r.offset(),
                    "unreadable presence record skipped"
                ),
            }
        }
        from.offset = batch.next_offset;
    }
    Ok(ops)
}

/// The replica of this run: the node id recorded by earlier runs (a new
/// random one for a new data directory) and the next run number, recorded
/// in the log before it is used.
pub fn next_replica(log: &Log) -> Result<Replica, LogError> {
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
    let replica = match last {
        Some(r) => Replica {
            node: r.node,
            run: r.run + 1,
        },
        None => Replica {
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
