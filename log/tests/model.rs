//! Model-based property test: random appends, reads, restarts, retention
//! and deletions against an in-memory model of what the log must hold.

use std::collections::HashMap;

use proptest::prelude::*;
use wse_log::{
    Durability, Epoch, Log, LogConfig, LogError, MemoryMeta, NotRecoverableReason, Position,
    ReadLimits, RecordKind, Retention, TailConfig,
};

const TOPICS: [&str; 3] = ["a", "b/../c", "presence:x"];
const KEEP: u64 = 20;

#[derive(Clone, Debug)]
enum Op {
    Append {
        topic: usize,
        len: usize,
        seed: u8,
    },
    Read {
        topic: usize,
        delta: i64,
        same_epoch: bool,
        limit: usize,
    },
    Restart,
    Retention {
        topic: usize,
    },
    Delete {
        topic: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        30 => (0..3usize, 0..300usize, any::<u8>()).prop_map(|(topic, len, seed)| Op::Append { topic, len, seed }),
        15 => (0..3usize, -3i64..60, prop::bool::weighted(0.9), 1..40usize)
            .prop_map(|(topic, delta, same_epoch, limit)| Op::Read { topic, delta, same_epoch, limit }),
        2 => Just(Op::Restart),
        3 => (0..3usize).prop_map(|topic| Op::Retention { topic }),
        1 => (0..3usize).prop_map(|topic| Op::Delete { topic }),
    ]
}

/// What one topic must hold.
#[derive(Default)]
struct ModelTopic {
    epoch: Option<Epoch>,
    first: u64,
    payloads: Vec<Vec<u8>>, // index = offset
}

fn config() -> LogConfig {
    LogConfig {
        durability: Durability::Never,
        segment_max_bytes: 2048,
        index_interval_bytes: 256,
        maintenance_interval: std::time::Duration::from_secs(3600),
        retention: Retention {
            max_records: Some(KEEP),
            ..Retention::unlimited()
        },
        tail: TailConfig {
            records_per_topic: 8,
            ..TailConfig::default()
        },
        ..LogConfig::default()
    }
}

fn open(dir: &std::path::Path, meta: &MemoryMeta) -> Log {
    Log::builder(dir)
        .config(config())
        .meta(meta.clone())
        .open()
        .unwrap()
}

fn payload(len: usize, seed: u8, offset: u64) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_add(i as u8).wrapping_add(offset as u8))
        .collect()
}

fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let meta = MemoryMeta::new();
    let mut log = open(dir.path(), &meta);
    let mut model: HashMap<usize, ModelTopic> = HashMap::new();
    let mut retired: HashMap<usize, Vec<Epoch>> = HashMap::new();
    for op in ops {
        match op {
            Op::Append { topic, len, seed } => {
                let m = model.entry(topic).or_default();
                let offset = m.payloads.len() as u64;
                let data = payload(len, seed, offset);
                let p = log
                    .append(TOPICS[topic], RecordKind::Message, &data)
                    .unwrap();
                assert_eq!(p.offset, offset);
                match m.epoch {
                    Some(e) => assert_eq!(p.epoch, e),
                    None => {
                        assert!(
                            !retired.get(&topic).is_some_and(|r| r.contains(&p.epoch)),
                            "epoch reused"
                        );
                        m.epoch = Some(p.epoch);
                    }
                }
                m.payloads.push(data);
            }
            Op::Read {
                topic,
                delta,
                same_epoch,
                limit,
            } => {
                let Some(m) = model.get(&topic).filter(|m| m.epoch.is_some()) else {
                    continue;
                };
                let epoch = m.epoch.unwrap();
                let next = m.payloads.len() as u64;
                let from = (m.first as i64 + delta).max(0) as u64;
                let asked = if same_epoch {
                    epoch
                } else {
                    Epoch(epoch.0 ^ 0x8000_0001)
                };
                let res = log.read(
                    TOPICS[topic],
                    Position::new(asked, from),
                    ReadLimits::records(limit),
                );
                let expect_reason = if !same_epoch {
                    Some(NotRecoverableReason::EpochMismatch)
                } else if from > next {
                    Some(NotRecoverableReason::Ahead)
                } else if from < m.first {
                    Some(NotRecoverableReason::Removed)
                } else {
                    None
                };
                match (res, expect_reason) {
                    (Err(LogError::NotRecoverable(n)), Some(reason)) => {
                        assert_eq!(n.reason, reason);
                        assert_eq!(
                            (n.epoch, n.first_offset, n.next_offset),
                            (epoch, m.first, next)
                        );
                    }
                    (Ok(batch), None) => {
                        let end = (from + limit as u64).min(next);
                        assert_eq!(batch.records.len() as u64, end - from, "read {from}..{end}");
                        for (i, r) in batch.records.iter().enumerate() {
                            let o = from + i as u64;
                            assert_eq!(r.offset(), o);
                            assert_eq!(r.epoch(), epoch);
                            assert_eq!(r.payload_ref(), &m.payloads[o as usize][..]);
                        }
                        assert_eq!(batch.next_offset, end);
                    }
                    (other, want) => panic!("read {from} of {topic}: got {other:?}, want {want:?}"),
                }
            }
            Op::Restart => {
                log.close().unwrap();
                log = open(dir.path(), &meta);
                assert!(log.open_report().new_epochs.is_empty());
                assert!(
                    log.open_report().findings.is_empty(),
                    "{:?}",
                    log.open_report().findings
                );
            }
            Op::Retention { topic } => {
                if model.get(&topic).is_none_or(|m| m.epoch.is_none()) {
                    continue;
                }
                log.enforce_retention(TOPICS[topic]).unwrap();
                let m = model.get_mut(&topic).unwrap();
                let first = log.position(TOPICS[topic]).unwrap().first_offset;
                assert!(first >= m.first, "retention never brings records back");
                let next = m.payloads.len() as u64;
                assert!(
                    first == m.first || next - first >= KEEP,
                    "kept {} < {KEEP}",
                    next - first
                );
                m.first = first;
            }
            Op::Delete { topic } => {
                let existed = model.get(&topic).is_some_and(|m| m.epoch.is_some());
                assert_eq!(log.delete_topic(TOPICS[topic]).unwrap(), existed);
                if let Some(e) = model.remove(&topic).and_then(|m| m.epoch) {
                    retired.entry(topic).or_default().push(e);
                }
            }
        }
        for (t, m) in &model {
            let Some(epoch) = m.epoch else { continue };
            let pos = log.position(TOPICS[*t]).unwrap();
            assert_eq!(
                (pos.epoch, pos.first_offset, pos.next_offset),
                (epoch, m.first, m.payloads.len() as u64)
            );
        }
    }
    log.close().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, max_shrink_iters: 200, ..ProptestConfig::default() })]
    #[test]
    fn the_log_behaves_like_the_model(ops in prop::collection::vec(op(), 1..160)) {
        run(ops);
    }
}
