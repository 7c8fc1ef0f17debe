//! Storage faults against a model: random appends (from one thread, and
//! from several at once) interleaved with injected faults. Every
//! acknowledged record must be read back, at the offset it was given,
//! during the run and after a reopen; a record that failed must never be
//! seen by a reader; offsets stay dense.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use proptest::prelude::*;
use wse_log::storage::{EIO, EMFILE, ENOSPC};
use wse_log::{
    DirReader, Durability, FaultAction, FaultRule, FaultyStorage, Log, LogConfig, LogError,
    MemoryMeta, Position, ReadLimits, RecordKind, StorageOp,
};

const TOPICS: [&str; 3] = ["a", "b", "c"];

fn config(durability: Durability) -> LogConfig {
    LogConfig {
        durability,
        segment_max_bytes: 2048,
        index_interval_bytes: 200,
        fault_retry_min: Duration::from_millis(1),
        fault_retry_max: Duration::from_millis(4),
        ..LogConfig::default()
    }
}

fn interval() -> Durability {
    Durability::Interval {
        max_delay: Duration::from_millis(1),
        max_bytes: 1 << 20,
    }
}

/// Every record of `topic` the log serves now, by offset.
fn read_all(log: &Log, topic: &str) -> Vec<Vec<u8>> {
    let Some(pos) = log.position(topic) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut at = 0;
    while at < pos.next_offset {
        let b = log
            .read(topic, Position::new(pos.epoch, at), ReadLimits::default())
            .unwrap();
        for r in &b.records {
            assert_eq!(r.offset(), out.len() as u64, "dense reads");
            out.push(r.payload().to_vec());
        }
        at = b.next_offset;
    }
    out
}

/// Reopen on real files and compare with `acked`; `verify` is clean.
fn reopen_and_compare(
    dir: &std::path::Path,
    meta: &MemoryMeta,
    acked: &HashMap<&str, Vec<Vec<u8>>>,
) {
    let log = Log::builder(dir)
        .config(config(Durability::Never))
        .meta(meta.clone())
        .open()
        .unwrap();
    for t in TOPICS {
        let want = acked.get(t).cloned().unwrap_or_default();
        assert!(read_all(&log, t) == want, "topic {t} after reopen");
    }
    log.close().unwrap();
    let report = DirReader::open(dir).unwrap().verify().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}

fn is_unavailable(e: &LogError) -> bool {
    matches!(e, LogError::Unavailable { source, .. }
        if [Some(ENOSPC), Some(EIO), Some(EMFILE)].contains(&source.raw_os_error()))
}

#[derive(Clone, Debug)]
enum Op {
    Append { topic: usize, len: usize },
    Fault { rule: usize, times: u64 },
    Clear,
}

fn rule(i: usize) -> FaultRule {
    match i {
        0 => FaultRule::fail(StorageOp::Write, ENOSPC),
        1 => FaultRule::fail(StorageOp::Sync, EIO),
        2 => FaultRule::fail(StorageOp::Create, EMFILE),
        3 => FaultRule::new(StorageOp::Write, FaultAction::Short { bytes: 5 }),
        4 => FaultRule::fail(StorageOp::SyncDir, EIO),
        _ => FaultRule::fail(StorageOp::SetLen, EIO),
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        20 => (0..3usize, 0..400usize).prop_map(|(topic, len)| Op::Append { topic, len }),
        3 => (0..6usize, 1..4u64).prop_map(|(rule, times)| Op::Fault { rule, times }),
        2 => Just(Op::Clear),
    ]
}

fn run_model(durability: Durability, ops: &[Op]) {
    let dir = tempfile::tempdir().unwrap();
    let meta = MemoryMeta::new();
    let storage = FaultyStorage::default();
    let log = Log::builder(dir.path())
        .config(config(durability))
        .meta(meta.clone())
        .storage(Arc::new(storage.clone()))
        .open()
        .unwrap();
    let mut acked: HashMap<&str, Vec<Vec<u8>>> = HashMap::new();
    for (n, op) in ops.iter().enumerate() {
        match op {
            Op::Append { topic, len } => {
                let t = TOPICS[*topic];
                let mut p = format!("{n}:").into_bytes();
                p.resize(p.len().max(*len), b'x');
                match log.append(t, RecordKind::Message, &p) {
                    Ok(pos) => {
                        let a = acked.entry(t).or_default();
                        assert_eq!(pos.offset, a.len() as u64, "dense offsets");
                        a.push(p);
                    }
                    Err(e) => assert!(is_unavailable(&e), "{e:?}"),
                }
                let want = acked.get(t).cloned().unwrap_or_default();
                assert!(
                    read_all(&log, t) == want,
                    "topic {t} serves exactly what was acked"
                );
            }
            Op::Fault { rule: r, times } => storage.inject(rule(*r).times(*times)),
            Op::Clear => storage.clear(),
        }
    }
    storage.clear();
    let deadline = Instant::now() + Duration::from_secs(5);
    // The log resumes by itself.
    loop {
        match log.append(TOPICS[0], RecordKind::Message, b"last") {
            Ok(pos) => {
                let a = acked.entry(TOPICS[0]).or_default();
                assert_eq!(pos.offset, a.len() as u64);
                a.push(b"last".to_vec());
                break;
            }
            Err(e) => assert!(is_unavailable(&e) && Instant::now() < deadline, "{e:?}"),
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    log.close().unwrap();
    reopen_and_compare(dir.path(), &meta, &acked);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn faults_never_lose_or_invent_records(
        always in any::<bool>(),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        run_model(if always { Durability::Always } else { interval() }, &ops);
    }
}

/// Acknowledged payloads by (topic, offset).
type Acked = HashMap<(usize, u64), Vec<u8>>;
/// A record a reader saw: topic, offset, payload.
type Seen = (usize, u64, Vec<u8>);

/// Several appenders per topic while faults come and go: the records of a
/// failed batch, and those appended behind them before the rollback, all
/// fail; whatever a reader saw at any time was acknowledged at that offset.
#[test]
fn concurrent_appenders_and_readers_across_faults() {
    for durability in [Durability::Always, interval()] {
        let dir = tempfile::tempdir().unwrap();
        let meta = MemoryMeta::new();
        let storage = FaultyStorage::default();
        let log = Arc::new(
            Log::builder(dir.path())
                .config(config(durability))
                .meta(meta.clone())
                .storage(Arc::new(storage.clone()))
                .open()
                .unwrap(),
        );
        let acked: Arc<Mutex<Acked>> = Arc::default();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let failures = Arc::new(AtomicUsize::new(0));
        let mut threads = Vec::new();
        for w in 0..4 {
            let (log, acked, failures, stop) =
                (log.clone(), acked.clone(), failures.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    // A burst, then its waits: records queue up behind a
                    // batch that may fail.
                    let mut burst = Vec::new();
                    for _ in 0..4 {
                        i += 1;
                        let topic = (w + i) % 2;
                        let p = format!("w{w}-{i}").into_bytes();
                        match log.append_with(
                            TOPICS[topic],
                            RecordKind::Message,
                            p.len(),
                            |_, b| b.extend_from_slice(&p),
                        ) {
                            Ok(a) => burst.push((topic, p, a)),
                            Err(e) => {
                                assert!(is_unavailable(&e), "{e:?}");
                                failures.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    let mut all_ok = true;
                    for (topic, p, a) in burst {
                        match a.wait() {
                            Ok(()) => {
                                let prev = acked.lock().insert((topic, a.position.offset), p);
                                assert!(prev.is_none(), "an offset acknowledged twice");
                            }
                            Err(e) => {
                                assert!(is_unavailable(&e), "{e:?}");
                                failures.fetch_add(1, Ordering::Relaxed);
                                all_ok = false;
                            }
                        }
                    }
                    if !all_ok {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
            }));
        }
        {
            let (log, seen, stop) = (log.clone(), seen.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for (topic, name) in TOPICS[..2].iter().enumerate() {
                        let mut s = seen.lock();
                        for (o, p) in read_all(&log, name).into_iter().enumerate() {
                            s.push((topic, o as u64, p));
                        }
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            }));
        }
        let rules = [
            FaultRule::fail(StorageOp::Write, ENOSPC),
            FaultRule::fail(StorageOp::Sync, EIO),
            FaultRule::new(StorageOp::Write, FaultAction::Short { bytes: 3 }).times(2),
            FaultRule::fail(StorageOp::Create, EMFILE),
        ];
        for i in 0..24 {
            storage.inject(rules[i % rules.len()].clone());
            std::thread::sleep(Duration::from_millis(3));
            storage.clear();
            std::thread::sleep(Duration::from_millis(6));
        }
        std::thread::sleep(Duration::from_millis(20));
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
        let acked = acked.lock().clone();
        for (topic, o, p) in seen.lock().iter() {
            assert_eq!(
                acked.get(&(*topic, *o)),
                Some(p),
                "a reader saw an unacknowledged record"
            );
        }
        let mut want: HashMap<&str, Vec<Vec<u8>>> = HashMap::new();
        for (topic, name) in TOPICS[..2].iter().enumerate() {
            let n = acked.keys().filter(|(t, _)| *t == topic).count() as u64;
            let v = (0..n).map(|o| acked[&(topic, o)].clone()).collect();
            want.insert(name, v);
        }
        assert!(log.stats().write_failures > 0);
        let failed = failures.load(Ordering::Relaxed);
        assert!(
            failed > 0 && acked.len() > 100,
            "{failed} failed, {} acked",
            acked.len()
        );
        log.close().unwrap();
        drop(log);
        reopen_and_compare(dir.path(), &meta, &want);
    }
}
