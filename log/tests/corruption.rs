//! Bit flips and torn writes: `verify` finds every flipped byte, reads
//! never return a corrupt payload and resume after damage, torn tails are
//! cut on open without touching acknowledged records, and damaged indexes
//! are rebuilt. (`damage.rs` checks the damaged ranges exactly.)

use std::fs;
use std::path::{Path, PathBuf};

use wse_log::{
    DirReader, Durability, Finding, Log, LogConfig, LogError, Position, ReadLimits, RecordKind,
};

fn config() -> LogConfig {
    LogConfig {
        durability: Durability::Never,
        segment_max_bytes: 2048,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

fn payload(topic: &str, offset: u64) -> Vec<u8> {
    let mut p = format!("{topic}:{offset}:").into_bytes();
    p.resize(30 + (offset as usize % 7) * 11, b'z');
    p
}

/// A closed log with two topics over several segments.
fn build(dir: &Path) -> Vec<(String, u64)> {
    let log = Log::open(dir, config()).unwrap();
    let topics = [("alpha", 60u64), ("beta", 25)];
    for (t, n) in topics {
        for o in 0..n {
            log.append(t, RecordKind::Message, &payload(t, o)).unwrap();
        }
    }
    log.close().unwrap();
    topics.iter().map(|(t, n)| (t.to_string(), *n)).collect()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn data_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in walk(&dir.join("topics")) {
        if e.extension().is_some_and(|x| x == "seg" || x == "idx") {
            out.push(e);
        }
    }
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Every record readable through the read-only reader is intact, reading
/// on past each damaged range; every offset is either read or inside a
/// range that verify lists too. Returns how many offsets were unreadable.
fn assert_reads_are_intact(dir: &Path) -> u64 {
    let reader = DirReader::open(dir).unwrap();
    let (topics, _) = reader.topics().unwrap();
    let listed = reader.verify().unwrap().damaged;
    let mut lost = 0;
    for t in topics {
        let mut from = t.first_offset;
        while from < t.next_offset {
            match reader.read(&t, from, ReadLimits::records(16)) {
                Ok(recs) if recs.is_empty() => break,
                Ok(recs) => {
                    for (i, r) in recs.iter().enumerate() {
                        assert_eq!(r.offset(), from + i as u64, "consecutive");
                        assert_eq!(r.payload_ref(), &payload(&t.name, r.offset())[..]);
                    }
                    from = recs.last().unwrap().offset() + 1;
                }
                Err(LogError::Damaged(d)) => {
                    assert!(d.first_missing <= from, "{d}");
                    assert!(listed.contains(&d), "{d} not listed by verify: {listed:?}");
                    let end = d.resume_at.unwrap_or(t.next_offset);
                    assert!(end > from, "{d}: no progress");
                    lost += end - from;
                    from = end;
                }
                Err(e) => panic!("unexpected read error {e}"),
            }
        }
    }
    lost
}

#[test]
fn verify_is_clean_on_an_intact_directory() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let report = DirReader::open(dir.path()).unwrap().verify().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(report.records, 85);
    assert!(report.segments >= 4);
}

#[test]
fn verify_finds_every_flipped_byte_and_reads_stay_intact() {
    let base = tempfile::tempdir().unwrap();
    build(base.path());
    let files = data_files(base.path());
    // One whole segment and one whole index, byte by byte; a sample of the rest.
    let seg = files
        .iter()
        .find(|p| p.extension().unwrap() == "seg")
        .unwrap()
        .clone();
    let idx = files
        .iter()
        .find(|p| p.extension().unwrap() == "idx")
        .unwrap()
        .clone();
    let mut targets: Vec<(PathBuf, u64)> = Vec::new();
    for f in [&seg, &idx] {
        let len = fs::metadata(f).unwrap().len();
        targets.extend((0..len).map(|i| (f.clone(), i)));
    }
    for f in &files {
        let len = fs::metadata(f).unwrap().len();
        targets.extend((0..len).step_by(31).map(|i| (f.clone(), i)));
    }
    let work = tempfile::tempdir().unwrap();
    for (n, (file, at)) in targets.iter().enumerate() {
        let copy = work.path().join(n.to_string());
        copy_dir(base.path(), &copy);
        let rel = file.strip_prefix(base.path()).unwrap();
        let target = copy.join(rel);
        let mut bytes = fs::read(&target).unwrap();
        bytes[*at as usize] ^= 0x10;
        fs::write(&target, &bytes).unwrap();
        let report = DirReader::open(&copy).unwrap().verify().unwrap();
        assert!(
            report.problems.iter().any(|p| p.path == target),
            "flip at {}:{at} not reported: {:?}",
            rel.display(),
            report.problems
        );
        assert_reads_are_intact(&copy);
        fs::remove_dir_all(&copy).unwrap();
    }
}

#[test]
fn a_flipped_byte_is_never_served_by_the_writer_either() {
    let base = tempfile::tempdir().unwrap();
    let topics = build(base.path());
    let seg = data_files(base.path())
        .into_iter()
        .find(|p| p.extension().unwrap() == "seg")
        .unwrap();
    let len = fs::metadata(&seg).unwrap().len();
    for at in (0..len).step_by(7) {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(base.path(), copy.path());
        let target = copy.path().join(seg.strip_prefix(base.path()).unwrap());
        let mut bytes = fs::read(&target).unwrap();
        bytes[at as usize] ^= 0x01;
        fs::write(&target, &bytes).unwrap();
        let log = Log::builder(copy.path())
            .config(config())
            .meta(wse_log::MemoryMeta::new())
            .open()
            .unwrap();
        let mut lost = 0;
        for (t, _) in &topics {
            let Some(pos) = log.position(t) else { continue };
            let mut from = Position::new(pos.epoch, pos.first_offset);
            while from.offset < pos.next_offset {
                match log.read(t, from, ReadLimits::records(8)) {
                    Ok(b) => {
                        for r in &b.records {
                            assert_eq!(r.payload_ref(), &payload(t, r.offset())[..]);
                        }
                        from.offset = b.next_offset;
                    }
                    Err(LogError::Damaged(d)) => {
                        let end = d.resume_at.unwrap_or(pos.next_offset);
                        assert!(end > from.offset, "{d}");
                        lost += end - from.offset;
                        from.offset = end;
                    }
                    Err(e) => panic!("unexpected error {e}"),
                }
            }
        }
        // A flipped byte costs one record, or one segment when it hits a
        // header; never the topic's whole history.
        assert!(lost < 25, "flip at {at}: {lost} offsets lost");
        assert!(log.open_report().new_epochs.is_empty(), "flip at {at}");
        log.close().unwrap();
    }
}

#[test]
fn torn_tails_are_cut_on_open_and_appends_continue() {
    let base = tempfile::tempdir().unwrap();
    build(base.path());
    let (epoch, active, end) = {
        let r = DirReader::open(base.path()).unwrap();
        let t = r.topic("alpha").unwrap().unwrap();
        let seg = t.segments.last().unwrap().clone();
        (t.epoch, seg.path, seg.bytes)
    };
    // Cut the last record at every length, and append zeroed blocks.
    let last_len = payload("alpha", 59).len() as u64 + 29;
    // Cut the last record short by 1.. bytes (Some), or append a zeroed
    // block as a crash during file extension leaves (None).
    let mut cases: Vec<Option<u64>> = (1..last_len).map(Some).collect();
    cases.push(None);
    for (i, case) in cases.iter().enumerate() {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(base.path(), copy.path());
        let target = copy.path().join(active.strip_prefix(base.path()).unwrap());
        match case {
            Some(cut) => {
                let f = fs::OpenOptions::new().write(true).open(&target).unwrap();
                f.set_len(end - cut).unwrap();
            }
            None => {
                let mut b = fs::read(&target).unwrap();
                b.extend_from_slice(&[0u8; 4096]);
                fs::write(&target, b).unwrap();
            }
        }
        let torn = !DirReader::open(copy.path())
            .unwrap()
            .verify()
            .unwrap()
            .is_clean();
        assert!(torn, "case {i}: verify must report the torn tail");
        let log = Log::open(copy.path(), config()).unwrap();
        let cut = log
            .open_report()
            .findings
            .iter()
            .any(|(t, f)| t == "alpha" && matches!(f, Finding::TornTail { .. }));
        assert!(cut, "case {i}: {:?}", log.open_report().findings);
        assert!(log.open_report().new_epochs.is_empty());
        let pos = log.position("alpha").unwrap();
        assert_eq!(pos.epoch, epoch);
        let expected_next = if i == cases.len() - 1 { 60 } else { 59 };
        assert_eq!(pos.next_offset, expected_next, "case {i}");
        let p = log
            .append(
                "alpha",
                RecordKind::Message,
                &payload("alpha", expected_next),
            )
            .unwrap();
        assert_eq!(p, Position::new(epoch, expected_next));
        log.close().unwrap();
        let report = DirReader::open(copy.path()).unwrap().verify().unwrap();
        assert!(report.is_clean(), "case {i}: {:?}", report.problems);
        assert_reads_are_intact(copy.path());
    }
}

#[test]
fn corruption_inside_the_active_segment_keeps_the_epoch_and_moves_on() {
    let dir = tempfile::tempdir().unwrap();
    // No index entry: the scan at open covers the whole active segment.
    let cfg = LogConfig {
        segment_max_bytes: 1 << 20,
        index_interval_bytes: 1 << 20,
        ..config()
    };
    let epoch = {
        let log = Log::open(dir.path(), cfg.clone()).unwrap();
        for o in 0..20 {
            log.append("t", RecordKind::Message, &payload("t", o))
                .unwrap();
        }
        let e = log.position("t").unwrap().epoch;
        log.close().unwrap();
        e
    };
    let reader = DirReader::open(dir.path()).unwrap();
    let seg = reader.topic("t").unwrap().unwrap().segments[0].path.clone();
    let mut bytes = fs::read(&seg).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&seg, &bytes).unwrap();

    let log = Log::open(dir.path(), cfg).unwrap();
    assert!(
        log.open_report()
            .findings
            .iter()
            .any(|(_, f)| matches!(f, Finding::Corruption { .. }))
    );
    let pos = log.position("t").unwrap();
    assert_eq!(pos.epoch, epoch);
    assert_eq!(pos.next_offset, 20, "records after the bad one are kept");
    let p = log
        .append("t", RecordKind::Message, &payload("t", 20))
        .unwrap();
    assert_eq!(p.offset, 20);
    let b = log.read("t", p, ReadLimits::default()).unwrap();
    assert_eq!(b.records[0].payload_ref(), &payload("t", 20)[..]);
    let first = log
        .read("t", Position::new(epoch, 0), ReadLimits::records(100))
        .unwrap();
    assert!(!first.records.is_empty() && first.records.len() < 20);
    let hole = Position::new(epoch, first.next_offset);
    let d = match log.read("t", hole, ReadLimits::default()) {
        Err(LogError::Damaged(d)) => d,
        other => panic!("expected damage, got {other:?}"),
    };
    assert_eq!(d.first_missing, hole.offset);
    let resume = d.resume_at.expect("intact records follow");
    assert!(resume > hole.offset && resume < 20, "{d}");
    let after = log
        .read("t", Position::new(epoch, resume), ReadLimits::records(100))
        .unwrap();
    let offsets: Vec<u64> = after.records.iter().map(|r| r.offset()).collect();
    assert_eq!(offsets, (resume..21).collect::<Vec<_>>());
    for r in &after.records {
        assert_eq!(r.payload_ref(), &payload("t", r.offset())[..]);
    }
}

#[test]
fn damaged_or_missing_indexes_are_rebuilt() {
    let base = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_max_bytes: 1 << 20,
        ..config()
    };
    {
        let log = Log::open(base.path(), cfg.clone()).unwrap();
        for o in 0..200 {
            log.append("t", RecordKind::Message, &payload("t", o))
                .unwrap();
        }
        log.close().unwrap();
    }
    let idx = data_files(base.path())
        .into_iter()
        .find(|p| p.extension().unwrap() == "idx")
        .unwrap();
    for damage in ["delete", "garbage", "flip"] {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(base.path(), copy.path());
        let target = copy.path().join(idx.strip_prefix(base.path()).unwrap());
        match damage {
            "delete" => fs::remove_file(&target).unwrap(),
            "garbage" => fs::write(&target, b"not an index at all, just words").unwrap(),
            _ => {
                let mut b = fs::read(&target).unwrap();
                let n = b.len();
                b[n - 3] ^= 0x40;
                fs::write(&target, b).unwrap();
            }
        }
        let log = Log::open(copy.path(), cfg.clone()).unwrap();
        let pos = log.position("t").unwrap();
        assert_eq!(pos.next_offset, 200, "{damage}");
        for o in [0u64, 57, 150, 199] {
            let b = log
                .read("t", Position::new(pos.epoch, o), ReadLimits::records(1))
                .unwrap();
            assert_eq!(
                b.records[0].payload_ref(),
                &payload("t", o)[..],
                "{damage} @{o}"
            );
        }
        log.close().unwrap();
        let report = DirReader::open(copy.path()).unwrap().verify().unwrap();
        assert!(report.is_clean(), "{damage}: {:?}", report.problems);
    }
}
