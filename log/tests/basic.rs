//! Appends, reads, restarts, epochs, segments and retention through the
//! public API, on real files.

use std::time::Duration;

use wse_log::{
    Durability, Epoch, Log, LogConfig, LogError, ManualClock, NotRecoverableReason, Position,
    ReadLimits, RecordKind, Retention,
};

fn config() -> LogConfig {
    LogConfig {
        durability: Durability::Never,
        ..LogConfig::default()
    }
}

#[test]
fn offsets_are_dense_from_zero_and_reads_return_what_was_appended() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    let p0 = log.append("chat", RecordKind::Message, b"a").unwrap();
    let p1 = log.append("chat", RecordKind::Message, b"b").unwrap();
    let q0 = log.append("news", RecordKind::Presence, b"x").unwrap();
    assert_eq!((p0.offset, p1.offset, q0.offset), (0, 1, 0));
    assert_eq!(p0.epoch, p1.epoch);
    let batch = log.read("chat", p0, ReadLimits::default()).unwrap();
    assert_eq!(batch.records.len(), 2);
    assert!(batch.from_memory);
    assert_eq!(batch.head, 2);
    assert_eq!(&batch.records[1].payload()[..], b"b");
    assert_eq!(batch.records[1].kind(), RecordKind::Message);
    let pos = log.position("chat").unwrap();
    assert_eq!(
        (pos.first_offset, pos.next_offset, pos.last_offset()),
        (0, 2, Some(1))
    );
    assert_eq!(
        log.read("news", q0, ReadLimits::default()).unwrap().records[0].kind(),
        RecordKind::Presence
    );
    let names: Vec<String> = log.topics().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["chat", "news"]);
}

#[test]
fn a_clean_restart_keeps_epoch_offsets_and_data() {
    let dir = tempfile::tempdir().unwrap();
    let epoch;
    {
        let log = Log::open(dir.path(), config()).unwrap();
        for i in 0..100u32 {
            log.append("t", RecordKind::Message, &i.to_le_bytes())
                .unwrap();
        }
        epoch = log.position("t").unwrap().epoch;
        log.close().unwrap();
    }
    let log = Log::open(dir.path(), config()).unwrap();
    assert!(!log.open_report().unclean_shutdown);
    let pos = log.position("t").unwrap();
    assert_eq!(pos.epoch, epoch);
    assert_eq!(pos.next_offset, 100);
    let batch = log
        .read("t", Position::new(epoch, 40), ReadLimits::records(10))
        .unwrap();
    assert!(!batch.from_memory, "after a restart the tail is empty");
    assert_eq!(batch.records.len(), 10);
    assert_eq!(batch.records[0].offset(), 40);
    assert_eq!(&batch.records[0].payload()[..], &40u32.to_le_bytes());
    let next = log.append("t", RecordKind::Message, b"after").unwrap();
    assert_eq!(next, Position::new(epoch, 100));
}

#[test]
fn reads_outside_the_history_are_not_recoverable_with_the_current_state() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    let p = log.append("t", RecordKind::Message, b"a").unwrap();
    let other = Epoch(p.epoch.0.wrapping_add(1));
    match log.read("t", Position::new(other, 0), ReadLimits::default()) {
        Err(LogError::NotRecoverable(n)) => {
            assert_eq!(n.reason, NotRecoverableReason::EpochMismatch);
            assert_eq!(n.epoch, p.epoch);
            assert_eq!((n.first_offset, n.next_offset), (0, 1));
        }
        other => panic!("expected NotRecoverable, got {other:?}"),
    }
    match log.read("t", Position::new(p.epoch, 5), ReadLimits::default()) {
        Err(LogError::NotRecoverable(n)) => assert_eq!(n.reason, NotRecoverableReason::Ahead),
        other => panic!("expected NotRecoverable, got {other:?}"),
    }
    let at_head = log
        .read("t", Position::new(p.epoch, 1), ReadLimits::default())
        .unwrap();
    assert!(at_head.records.is_empty() && at_head.at_head());
    assert!(matches!(
        log.read("missing", p, ReadLimits::default()),
        Err(LogError::UnknownTopic(_))
    ));
}

#[test]
fn segments_roll_by_size_and_reads_cross_them_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_max_bytes: 8 * 1024,
        index_interval_bytes: 512,
        tail: wse_log::TailConfig {
            records_per_topic: 4,
            ..Default::default()
        },
        ..config()
    };
    let log = Log::open(dir.path(), cfg).unwrap();
    let payload = vec![7u8; 200];
    let mut first = None;
    for _ in 0..500 {
        let p = log.append("big", RecordKind::Message, &payload).unwrap();
        first.get_or_insert(p);
    }
    let info = log.topic_info("big").unwrap();
    assert!(
        info.segments > 10,
        "expected many segments, got {}",
        info.segments
    );
    let first = first.unwrap();
    let mut from = first;
    let mut seen = 0;
    loop {
        let b = log.read("big", from, ReadLimits::records(37)).unwrap();
        if b.records.is_empty() {
            break;
        }
        for (i, r) in b.records.iter().enumerate() {
            assert_eq!(r.offset(), from.offset + i as u64);
            assert_eq!(r.payload_len(), 200);
        }
        seen += b.records.len();
        from.offset = b.next_offset;
    }
    assert_eq!(seen, 500);
    assert!(log.stats().disk_reads > 0);
}

#[test]
fn retention_deletes_whole_old_segments_and_old_positions_become_not_recoverable() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_max_bytes: 4096,
        maintenance_interval: Duration::from_secs(3600),
        retention: Retention {
            max_records: Some(50),
            ..Retention::unlimited()
        },
        ..config()
    };
    let log = Log::open(dir.path(), cfg).unwrap();
    let mut epoch = None;
    for i in 0..300u32 {
        let p = log
            .append("t", RecordKind::Message, &[i as u8; 100])
            .unwrap();
        epoch = Some(p.epoch);
    }
    let epoch = epoch.unwrap();
    let deleted = log.enforce_retention("t").unwrap();
    assert!(deleted > 0);
    let pos = log.position("t").unwrap();
    assert!(pos.first_offset > 0);
    assert!(
        pos.next_offset - pos.first_offset >= 50,
        "keeps at least the limit"
    );
    match log.read("t", Position::new(epoch, 0), ReadLimits::default()) {
        Err(LogError::NotRecoverable(n)) => {
            assert_eq!(n.reason, NotRecoverableReason::Removed);
            assert_eq!(n.first_offset, pos.first_offset);
        }
        other => panic!("expected NotRecoverable, got {other:?}"),
    }
    let b = log
        .read(
            "t",
            Position::new(epoch, pos.first_offset),
            ReadLimits::records(1),
        )
        .unwrap();
    assert_eq!(b.records[0].offset(), pos.first_offset);
}

#[test]
fn age_retention_follows_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_700_000_000_000_000);
    let cfg = LogConfig {
        segment_max_bytes: 4096,
        segment_max_age: Duration::from_secs(60),
        maintenance_interval: Duration::from_secs(3600),
        retention: Retention {
            max_age: Some(Duration::from_secs(600)),
            ..Retention::unlimited()
        },
        ..config()
    };
    let log = Log::builder(dir.path())
        .config(cfg)
        .clock(clock.clone())
        .open()
        .unwrap();
    for _ in 0..10 {
        log.append("t", RecordKind::Message, b"old").unwrap();
    }
    clock.advance(Duration::from_secs(120));
    // Rolls the segment by age.
    log.append("t", RecordKind::Message, b"new").unwrap();
    assert_eq!(
        log.enforce_retention("t").unwrap(),
        0,
        "nothing is old enough yet"
    );
    clock.advance(Duration::from_secs(600));
    assert_eq!(log.enforce_retention("t").unwrap(), 1);
    assert_eq!(log.position("t").unwrap().first_offset, 10);
}

#[test]
fn deleting_a_topic_starts_a_new_history_with_a_new_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    let mut epochs = std::collections::HashSet::new();
    for _ in 0..20 {
        let p = log.append("t", RecordKind::Message, b"x").unwrap();
        assert_eq!(p.offset, 0);
        assert!(epochs.insert(p.epoch), "epoch {} reused", p.epoch);
        assert!(log.delete_topic("t").unwrap());
    }
    assert!(!log.delete_topic("t").unwrap());
    assert!(log.position("t").is_none());
}

#[test]
fn without_its_metadata_the_log_reopens_from_segments_with_the_same_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = {
        let log = Log::open(dir.path(), config()).unwrap();
        let a = log.append("a", RecordKind::Message, b"1").unwrap();
        let b = log.append("b/../c", RecordKind::Message, b"2").unwrap();
        log.close().unwrap();
        (a, b)
    };
    std::fs::remove_dir_all(dir.path().join("meta")).unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    assert!(log.open_report().new_epochs.is_empty());
    assert_eq!(log.position("a").unwrap().epoch, a.epoch);
    assert_eq!(log.position("b/../c").unwrap().epoch, b.epoch);
    assert_eq!(
        &log.read("b/../c", b, ReadLimits::default())
            .unwrap()
            .records[0]
            .payload()[..],
        b"2"
    );
}

#[test]
fn hostile_topic_names_are_stored_safely_or_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    for name in ["../../etc", "a/b", "con", "/abs", "..", "\\windows\\", "é"] {
        let p = log
            .append(name, RecordKind::Message, name.as_bytes())
            .unwrap();
        let r = log.read(name, p, ReadLimits::default()).unwrap();
        assert_eq!(&r.records[0].payload()[..], name.as_bytes());
    }
    for bad in ["", "a\0b"] {
        assert!(matches!(
            log.append(bad, RecordKind::Message, b"x"),
            Err(LogError::InvalidTopic(_))
        ));
    }
    let long = "x".repeat(10_000);
    let err = log.append(&long, RecordKind::Message, b"x").unwrap_err();
    assert!(err.to_string().contains("256"), "{err}");
    // Nothing escaped the data directory.
    assert!(
        !dir.path()
            .join("../../etc")
            .join("00000000000000000000.seg")
            .exists()
    );
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            ["LOCK", "RUNNING", "meta", "topics"].contains(&name.as_str()),
            "{name}"
        );
    }
}

#[test]
fn a_second_writer_is_refused_while_the_first_runs() {
    let dir = tempfile::tempdir().unwrap();
    let _log = Log::open(dir.path(), config()).unwrap();
    assert!(matches!(
        Log::open(dir.path(), config()),
        Err(LogError::Locked { .. })
    ));
}

#[test]
fn oversized_records_are_refused_without_consuming_an_offset() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        max_record_bytes: 1000,
        ..config()
    };
    let log = Log::open(dir.path(), cfg).unwrap();
    assert!(matches!(
        log.append("t", RecordKind::Message, &[0; 1001]),
        Err(LogError::RecordTooLarge {
            size: 1001,
            limit: 1000
        })
    ));
    assert_eq!(
        log.append("t", RecordKind::Message, &[0; 1000])
            .unwrap()
            .offset,
        0
    );
}

#[test]
fn append_with_builds_the_payload_from_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    let a = log
        .append_with("t", RecordKind::Message, 32, |p, buf| {
            buf.extend_from_slice(format!("{}:{}", p.epoch, p.offset).as_bytes())
        })
        .unwrap();
    a.wait().unwrap();
    assert_eq!(
        &a.record.payload()[..],
        format!("{}:0", a.position.epoch).as_bytes()
    );
}

#[tokio::test]
async fn watchers_and_listeners_see_each_record_once_visible() {
    use std::sync::{Arc, Mutex};
    struct Seen(Mutex<Vec<(String, u64)>>);
    impl wse_log::AppendListener for Seen {
        fn on_visible(&self, topic: &str, _epoch: Epoch, records: &[wse_log::Record]) {
            let mut s = self.0.lock().unwrap();
            s.extend(records.iter().map(|r| (topic.to_owned(), r.offset())));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Seen(Mutex::new(Vec::new())));
    let log = Arc::new(
        Log::builder(dir.path())
            .config(config())
            .listener(seen.clone())
            .open()
            .unwrap(),
    );
    log.append("t", RecordKind::Message, b"0").unwrap();
    let mut w = log.watch("t").unwrap();
    assert_eq!(w.head(), 1);
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            for i in 1..50u8 {
                log.append_with("t", RecordKind::Message, 1, |_, b| {
                    b.extend_from_slice(&[i])
                })
                .unwrap();
            }
        })
    };
    assert!(w.wait_beyond(48).await.unwrap() >= 50);
    writer.join().unwrap();
    log.flush().unwrap();
    let s = seen.0.lock().unwrap();
    let offsets: Vec<u64> = s.iter().map(|(_, o)| *o).collect();
    assert_eq!(offsets, (0..50).collect::<Vec<_>>());
}

#[test]
fn a_topic_created_with_a_given_epoch_keeps_it_and_never_takes_a_retired_one() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    let epoch = Epoch(0x00c0ffee);
    assert!(log.create_topic("t", epoch).unwrap(), "created");
    assert!(
        !log.create_topic("t", epoch).unwrap(),
        "already so: a no-op"
    );
    let p = log.append("t", RecordKind::Message, b"a").unwrap();
    assert_eq!((p.epoch, p.offset), (epoch, 0));
    assert!(matches!(
        log.create_topic("t", Epoch(7)),
        Err(LogError::EpochConflict { existing: Some(e), .. }) if e == epoch
    ));
    log.close().unwrap();

    // The epoch survives a restart; once deleted, the history never
    // comes back under its old epoch.
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.position("t").unwrap().epoch, epoch);
    assert!(log.delete_topic("t").unwrap());
    assert!(matches!(
        log.create_topic("t", epoch),
        Err(LogError::EpochConflict { existing: None, .. })
    ));
    assert!(log.create_topic("t", Epoch(0x0badcafe)).unwrap());
    assert_eq!(log.position("t").unwrap().epoch, Epoch(0x0badcafe));
}

#[test]
fn a_history_restored_record_by_record_keeps_epoch_offsets_and_times() {
    let dir = tempfile::tempdir().unwrap();
    let epoch = Epoch(0x6b23_8eba);
    {
        let log = Log::open(dir.path(), config()).unwrap();
        assert!(log.create_topic_at("t", epoch, 100).unwrap());
        for i in 0..10u64 {
            let at = Position::new(epoch, 100 + i);
            let a = log
                .append_exact(
                    "t",
                    at,
                    1_000 + i,
                    RecordKind::Message,
                    format!("r{i}").as_bytes(),
                )
                .unwrap();
            assert_eq!(a.position, at);
        }
        // A gap, a duplicate and another history are refused; nothing lands.
        for wrong in [
            Position::new(epoch, 111),
            Position::new(epoch, 109),
            Position::new(Epoch(1), 110),
        ] {
            let e = log
                .append_exact("t", wrong, 5, RecordKind::Message, b"x")
                .err()
                .unwrap();
            assert!(
                matches!(e, LogError::PositionConflict { requested, next, .. }
                    if requested == wrong && next == Position::new(epoch, 110)),
                "{e}"
            );
        }
        assert!(matches!(
            log.append_exact(
                "absent",
                Position::new(epoch, 0),
                5,
                RecordKind::Message,
                b"x"
            ),
            Err(LogError::UnknownTopic(_))
        ));
        assert!(
            !log.create_topic_at("t", epoch, 0).unwrap(),
            "exists: left as it is"
        );
        log.close().unwrap();
    }
    let log = Log::open(dir.path(), config()).unwrap();
    let pos = log.position("t").unwrap();
    assert_eq!(
        (pos.epoch, pos.first_offset, pos.next_offset),
        (epoch, 100, 110)
    );
    let batch = log
        .read("t", Position::new(epoch, 100), ReadLimits::default())
        .unwrap();
    let got: Vec<(u64, u64, Vec<u8>)> = batch
        .records
        .iter()
        .map(|r| (r.offset(), r.timestamp_us(), r.payload_ref().to_vec()))
        .collect();
    let want: Vec<(u64, u64, Vec<u8>)> = (0..10u64)
        .map(|i| (100 + i, 1_000 + i, format!("r{i}").into_bytes()))
        .collect();
    assert_eq!(got, want);
    // Appends go on after the restored history.
    let next = log.append("t", RecordKind::Message, b"live").unwrap();
    assert_eq!(next, Position::new(epoch, 110));
}

#[test]
fn the_offset_at_a_time_is_the_first_record_appended_then_or_later() {
    let dir = tempfile::tempdir().unwrap();
    let start = 1_700_000_000_000_000u64;
    let clock = ManualClock::new(start);
    let cfg = LogConfig {
        segment_max_bytes: 4096,
        ..config()
    };
    let log = Log::builder(dir.path())
        .config(cfg)
        .clock(clock.clone())
        .open()
        .unwrap();
    // 300 records one second apart, over many segments.
    for i in 0..300u32 {
        log.append("t", RecordKind::Message, format!("{i:040}").as_bytes())
            .unwrap();
        clock.advance(Duration::from_secs(1));
    }
    log.flush().unwrap();
    let reader = wse_log::DirReader::open(dir.path()).unwrap();
    let t = reader.topic("t").unwrap().unwrap();
    assert!(t.segments.len() > 3, "{} segments", t.segments.len());
    let s = 1_000_000u64;
    assert_eq!(reader.offset_at_time(&t, 0).unwrap(), 0);
    assert_eq!(reader.offset_at_time(&t, start).unwrap(), 0);
    assert_eq!(reader.offset_at_time(&t, start + 1).unwrap(), 1);
    assert_eq!(reader.offset_at_time(&t, start + 150 * s).unwrap(), 150);
    assert_eq!(reader.offset_at_time(&t, start + 150 * s + 1).unwrap(), 151);
    assert_eq!(reader.offset_at_time(&t, start + 299 * s).unwrap(), 299);
    assert_eq!(reader.offset_at_time(&t, start + 299 * s + 1).unwrap(), 300);
}
