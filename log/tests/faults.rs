//! Storage faults: ENOSPC, EMFILE, EIO and short writes injected through
//! the storage seam (`FaultyStorage` over real files). Whatever fails, the
//! appends of the failed batch get `LogError::Unavailable` with the cause,
//! acknowledged records stay readable and intact, nothing unacknowledged
//! is ever served, offsets stay dense, the log resumes by itself once the
//! fault clears, and a reopen (and `verify`) finds exactly what was
//! acknowledged.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wse_log::storage::{EIO, EMFILE, ENOSPC};
use wse_log::{
    DirReader, Durability, FaultAction, FaultRule, FaultyStorage, Log, LogConfig, LogError,
    MemoryMeta, Position, ReadLimits, RecordKind, StorageOp,
};

const TOPIC: &str = "chat/room";

fn config(durability: Durability) -> LogConfig {
    LogConfig {
        durability,
        segment_max_bytes: 4096,
        index_interval_bytes: 256,
        fault_retry_min: Duration::from_millis(2),
        fault_retry_max: Duration::from_millis(20),
        ..LogConfig::default()
    }
}

fn interval() -> Durability {
    Durability::Interval {
        max_delay: Duration::from_millis(2),
        max_bytes: 1 << 20,
    }
}

fn open(dir: &Path, durability: Durability, meta: &MemoryMeta, storage: &FaultyStorage) -> Log {
    Log::builder(dir)
        .config(config(durability))
        .meta(meta.clone())
        .storage(Arc::new(storage.clone()))
        .open()
        .unwrap()
}

/// A payload no other append of the test has: attempt `n`.
fn payload(n: usize) -> Vec<u8> {
    let mut p = format!("attempt {n}:").into_bytes();
    p.resize(40 + (n * 53) % 300, b'a' + (n % 26) as u8);
    p
}

/// The OS error behind an `Unavailable`, or a panic for anything else.
fn errno(e: &LogError) -> Option<i32> {
    match e {
        LogError::Unavailable { source, .. } => source.raw_os_error(),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

/// Appends and what the log acknowledged, checked as they go.
struct Publisher {
    acked: Vec<Vec<u8>>,
    attempts: usize,
}

impl Publisher {
    fn new() -> Self {
        Self {
            acked: Vec::new(),
            attempts: 0,
        }
    }

    /// One append; an acknowledged one must get the next dense offset.
    fn append(&mut self, log: &Log) -> Result<Position, LogError> {
        self.attempts += 1;
        let p = payload(self.attempts);
        let r = log.append(TOPIC, RecordKind::Message, &p);
        if let Ok(pos) = &r {
            assert_eq!(pos.offset, self.acked.len() as u64, "offsets stay dense");
            self.acked.push(p);
        }
        r
    }

    /// Append until one fails (the fault may first hit a later operation:
    /// the next file creation, or under `interval` the background fsync);
    /// returns its error.
    fn append_until_failure(&mut self, log: &Log) -> LogError {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Err(e) = self.append(log) {
                return e;
            }
            if self.attempts.is_multiple_of(50) {
                // Let a due background fsync run.
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        panic!("no append failed");
    }

    /// Append until one succeeds again (the log retries by itself).
    fn append_until_success(&mut self, log: &Log) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.append(log) {
                Ok(_) => return,
                Err(e) => {
                    errno(&e);
                    assert!(Instant::now() < deadline, "the log did not resume: {e}");
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }

    /// Exactly the acknowledged records are readable, in order.
    fn check(&self, log: &Log) {
        let epoch = log.position(TOPIC).unwrap().epoch;
        let mut got = Vec::new();
        let mut at = 0;
        loop {
            let b = log
                .read(TOPIC, Position::new(epoch, at), ReadLimits::default())
                .unwrap();
            got.extend(b.records.iter().map(|r| r.payload().to_vec()));
            at = b.next_offset;
            if b.at_head() {
                break;
            }
        }
        assert_eq!(
            got.len(),
            self.acked.len(),
            "exactly the acknowledged records"
        );
        assert!(got == self.acked, "acknowledged records read back intact");
        assert_eq!(
            log.position(TOPIC).unwrap().next_offset,
            self.acked.len() as u64
        );
    }
}

/// The segment files hold exactly the acknowledged records, and nothing
/// after them.
fn assert_files_hold(dir: &Path, p: &Publisher) {
    let report = DirReader::open(dir).unwrap().verify().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(report.records, p.acked.len() as u64);
}

/// Reopen with real files: exactly the acknowledged records, and `verify`
/// finds nothing wrong.
fn reopen_and_check(dir: &Path, meta: &MemoryMeta, p: &Publisher) {
    let log = Log::builder(dir)
        .config(config(Durability::Always))
        .meta(meta.clone())
        .open()
        .unwrap();
    p.check(&log);
    log.close().unwrap();
    assert_files_hold(dir, p);
}

/// The whole story for one fault: acknowledged appends, the fault, failing
/// appends with the typed cause, the fault cleared, appends again without
/// reopening, close, reopen.
fn survive(durability: Durability, rules: &[FaultRule], expect_errno: i32) {
    let dir = tempfile::tempdir().unwrap();
    let meta = MemoryMeta::new();
    let storage = FaultyStorage::default();
    let log = open(dir.path(), durability, &meta, &storage);
    let mut p = Publisher::new();
    for _ in 0..30 {
        p.append(&log).unwrap();
    }
    for r in rules {
        storage.inject(r.clone());
    }
    let e = p.append_until_failure(&log);
    assert_eq!(errno(&e), Some(expect_errno), "{e}");
    assert!(log.stats().write_failures >= 1);
    // While the fault lasts appends keep failing, each promptly.
    for _ in 0..5 {
        let t = Instant::now();
        let e = p.append(&log).unwrap_err();
        assert_eq!(errno(&e), Some(expect_errno));
        assert!(t.elapsed() < Duration::from_millis(500));
    }
    assert!(log.flush().is_err(), "flush reports the fault");
    p.check(&log);
    // On disk too: the failed batches were cut off (read beside the log).
    assert_files_hold(dir.path(), &p);
    storage.clear();
    p.append_until_success(&log);
    for _ in 0..30 {
        p.append(&log).unwrap();
    }
    p.check(&log);
    log.flush().unwrap();
    log.close().unwrap();
    reopen_and_check(dir.path(), &meta, &p);
}

fn fail(op: StorageOp, errno: i32) -> FaultRule {
    FaultRule::fail(op, errno)
}

#[test]
fn enospc_on_write_is_survived() {
    for d in [Durability::Always, interval(), Durability::Never] {
        survive(d, &[fail(StorageOp::Write, ENOSPC)], ENOSPC);
    }
}

#[test]
fn eio_on_write_is_survived() {
    for d in [Durability::Always, interval()] {
        survive(d, &[fail(StorageOp::Write, EIO)], EIO);
    }
}

#[test]
fn emfile_on_open_and_create_is_survived() {
    for d in [Durability::Always, interval()] {
        survive(
            d,
            &[
                fail(StorageOp::Open, EMFILE),
                fail(StorageOp::Create, EMFILE),
            ],
            EMFILE,
        );
    }
}

#[test]
fn a_failed_fsync_under_always_fails_its_batch() {
    for errno in [EIO, ENOSPC] {
        survive(Durability::Always, &[fail(StorageOp::Sync, errno)], errno);
    }
}

#[test]
fn a_failed_directory_fsync_under_always_fails_its_batch() {
    // Directory fsyncs happen when a segment is created.
    survive(Durability::Always, &[fail(StorageOp::SyncDir, EIO)], EIO);
}

#[test]
fn a_failed_fsync_under_interval_stops_appends_until_it_succeeds() {
    for errno in [EIO, ENOSPC] {
        survive(interval(), &[fail(StorageOp::Sync, errno)], errno);
    }
}

#[test]
fn a_short_write_then_enospc_is_cut_back() {
    let rules = [
        FaultRule::new(StorageOp::Write, FaultAction::Short { bytes: 10 })
            .path_contains(".seg")
            .times(1),
        fail(StorageOp::Write, ENOSPC),
    ];
    for d in [Durability::Always, interval()] {
        survive(d, &rules, ENOSPC);
    }
}

#[test]
fn a_short_write_alone_is_completed() {
    let dir = tempfile::tempdir().unwrap();
    let meta = MemoryMeta::new();
    let storage = FaultyStorage::default();
    let log = open(dir.path(), Durability::Always, &meta, &storage);
    let mut p = Publisher::new();
    storage.inject(
        FaultRule::new(StorageOp::Write, FaultAction::Short { bytes: 7 })
            .path_contains(".seg")
            .times(20),
    );
    for _ in 0..40 {
        p.append(&log).unwrap();
    }
    assert!(storage.injected() >= 20);
    assert_eq!(log.stats().write_failures, 0);
    p.check(&log);
    log.close().unwrap();
    reopen_and_check(dir.path(), &meta, &p);
}

#[test]
fn a_truncation_that_fails_too_is_retried_before_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let meta = MemoryMeta::new();
    let storage = FaultyStorage::default();
    let log = open(dir.path(), Durability::Always, &meta, &storage);
    let mut p = Publisher::new();
    for _ in 0..10 {
        p.append(&log).unwrap();
    }
    // Half a record reaches the file, then the disk fails entirely: the
    // cut back fails as well.
    storage.inject(
        FaultRule::new(StorageOp::Write, FaultAction::Short { bytes: 10 })
            .path_contains(".seg")
            .times(1),
    );
    storage.inject(fail(StorageOp::Write, EIO));
    storage.inject(fail(StorageOp::SetLen, EIO));
    let e = p.append_until_failure(&log);
    assert_eq!(errno(&e), Some(EIO));
    for _ in 0..3 {
        assert!(p.append(&log).is_err());
    }
    p.check(&log);
    storage.clear();
    p.append_until_success(&log);
    p.append(&log).unwrap();
    p.check(&log);
    log.close().unwrap();
    reopen_and_check(dir.path(), &meta, &p);
}

#[test]
fn a_topic_deleted_while_its_cut_is_owed_does_not_keep_the_log_down() {
    let dir = tempfile::tempdir().unwrap();
    let meta = MemoryMeta::new();
    let storage = FaultyStorage::default();
    let log = open(dir.path(), Durability::Always, &meta, &storage);
    log.append("doomed", RecordKind::Message, b"kept until deleted")
        .unwrap();
    storage.inject(
        FaultRule::new(StorageOp::Write, FaultAction::Short { bytes: 10 })
            .path_contains(".seg")
            .times(1),
    );
    storage.inject(fail(StorageOp::Write, EIO));
    storage.inject(fail(StorageOp::SetLen, EIO));
    let e = log
        .append("doomed", RecordKind::Message, b"half written")
        .unwrap_err();
    assert_eq!(errno(&e), Some(EIO));
    assert!(log.delete_topic("doomed").unwrap());
    storage.clear();
    let mut p = Publisher::new();
    p.append_until_success(&log);
    p.check(&log);
    log.close().unwrap();
    reopen_and_check(dir.path(), &meta, &p);
}

#[test]
fn a_persisting_fault_fails_appends_fast_and_close_returns() {
    for (d, rule) in [
        (Durability::Always, fail(StorageOp::Write, ENOSPC)),
        (Durability::Always, fail(StorageOp::Sync, EIO)),
        (interval(), fail(StorageOp::Sync, EIO)),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let meta = MemoryMeta::new();
        let storage = FaultyStorage::default();
        let log = Log::builder(dir.path())
            .config(LogConfig {
                // The defaults: 10 ms doubling to 1 s.
                fault_retry_min: LogConfig::default().fault_retry_min,
                fault_retry_max: LogConfig::default().fault_retry_max,
                ..config(d)
            })
            .meta(meta.clone())
            .storage(Arc::new(storage.clone()))
            .open()
            .unwrap();
        let mut p = Publisher::new();
        for _ in 0..10 {
            p.append(&log).unwrap();
        }
        storage.inject(rule.clone());
        p.append_until_failure(&log);
        let until = Instant::now() + Duration::from_millis(300);
        let mut failed = 0;
        while Instant::now() < until {
            let t = Instant::now();
            let e = match p.append(&log) {
                Ok(pos) => panic!("{d:?} {rule:?}: an append succeeded at {pos:?}"),
                Err(e) => e,
            };
            errno(&e);
            assert!(t.elapsed() < Duration::from_millis(200), "fail fast");
            failed += 1;
        }
        assert!(failed > 10);
        p.check(&log);
        let t = Instant::now();
        match log.close() {
            Ok(()) => {}
            Err(e) => {
                errno(&e);
            }
        }
        assert!(t.elapsed() < Duration::from_secs(2), "close returns");
        assert!(matches!(
            log.append(TOPIC, RecordKind::Message, b"x"),
            Err(LogError::Closed)
        ));
        drop(log);
        reopen_and_check(dir.path(), &meta, &p);
    }
}

#[test]
fn appenders_waiting_for_room_get_the_error_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FaultyStorage::default();
    let log = Arc::new(
        Log::builder(dir.path())
            .config(LogConfig {
                // Every few records the next appender waits for room.
                max_pending_bytes: 1024,
                fault_retry_min: Duration::from_millis(10),
                fault_retry_max: Duration::from_millis(1000),
                ..config(Durability::Always)
            })
            .meta(MemoryMeta::new())
            .storage(Arc::new(storage.clone()))
            .open()
            .unwrap(),
    );
    storage.inject(fail(StorageOp::Write, ENOSPC));
    let started = Instant::now();
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut handles = Vec::new();
                let mut failed = 0;
                for _ in 0..100 {
                    match log.append_with(TOPIC, RecordKind::Message, 300, |_, b| {
                        b.extend_from_slice(&[b'x'; 300])
                    }) {
                        Ok(a) => handles.push(a),
                        Err(e) => {
                            assert_eq!(errno(&e), Some(ENOSPC));
                            failed += 1;
                        }
                    }
                }
                for a in handles {
                    assert_eq!(errno(&a.wait().unwrap_err()), Some(ENOSPC));
                }
                failed
            })
        })
        .collect();
    let failed: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(failed > 0);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(log.stats().pending_bytes, 0);
    storage.clear();
    let mut p = Publisher::new();
    p.append_until_success(&log);
    p.check(&log);
}

#[test]
fn the_error_says_what_failed_and_keeps_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FaultyStorage::default();
    let log = open(dir.path(), Durability::Always, &MemoryMeta::new(), &storage);
    log.append(TOPIC, RecordKind::Message, b"ok").unwrap();
    storage.inject(fail(StorageOp::Write, ENOSPC));
    let e = log.append(TOPIC, RecordKind::Message, b"no").unwrap_err();
    let LogError::Unavailable { op, path, source } = &e else {
        panic!("{e:?}");
    };
    assert_eq!(*op, "write");
    assert!(
        path.to_string_lossy().ends_with(".seg"),
        "{}",
        path.display()
    );
    assert_eq!(source.kind(), io::ErrorKind::StorageFull);
    let cause = std::error::Error::source(&e).expect("a source");
    assert!(cause.to_string().contains("No space left"), "{cause}");
    assert!(e.to_string().contains("write"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_waiters_learn_that_their_record_failed() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FaultyStorage::default();
    let log = open(dir.path(), Durability::Always, &MemoryMeta::new(), &storage);
    let ok = log
        .append_with(TOPIC, RecordKind::Message, 2, |_, b| {
            b.extend_from_slice(b"ok")
        })
        .unwrap();
    ok.visible().await.unwrap();
    storage.inject(fail(StorageOp::Sync, EIO));
    let bad = log
        .append_with(TOPIC, RecordKind::Message, 2, |_, b| {
            b.extend_from_slice(b"no")
        })
        .unwrap();
    let e = bad.visible().await.unwrap_err();
    assert_eq!(errno(&e), Some(EIO));
    assert!(!bad.is_visible());
    assert!(bad.wait().is_err());
    storage.clear();
    // The failed offset is reused; the failed record still reports failure.
    let deadline = Instant::now() + Duration::from_secs(5);
    let again = loop {
        match log.append_with(TOPIC, RecordKind::Message, 5, |_, b| {
            b.extend_from_slice(b"again")
        }) {
            Ok(a) => match a.visible().await {
                Ok(()) => break a,
                Err(e) => errno(&e),
            },
            Err(e) => errno(&e),
        };
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    assert_eq!(again.position.offset, bad.position.offset);
    assert!(bad.visible().await.is_err() && !bad.is_visible());
    assert!(ok.is_visible());
    log.close().unwrap();
}
