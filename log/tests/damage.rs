//! Damage never looks like success: with real files over several segments,
//! a flipped byte, a segment cut short, a deleted segment and a damaged
//! segment header each hide exactly the offsets they hit. Reads before and
//! after stay intact, the read at the damage says which offsets are lost
//! and where reading resumes, `verify` lists the same range, and the head
//! never goes back.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use wse_log::record::HEADER_LEN;
use wse_log::{
    Damage, DirReader, Durability, Epoch, FaultRule, FaultyStorage, Finding, Log, LogConfig,
    LogError, Position, ReadLimits, RecordKind, SegmentSummary, StorageOp,
};

const TOPIC: &str = "chat/damage";
/// Records written by `build`.
const N: u64 = 120;
/// Payload bytes of every record: records have one size, so a record's
/// byte position follows from its offset.
const PAYLOAD: usize = 60;
const RECORD: u64 = (HEADER_LEN + PAYLOAD) as u64;

fn config() -> LogConfig {
    LogConfig {
        durability: Durability::Never,
        segment_max_bytes: 2048,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

fn payload(offset: u64) -> Vec<u8> {
    let mut p = format!("record {offset}:").into_bytes();
    p.resize(PAYLOAD, b'a' + (offset % 26) as u8);
    p
}

/// A closed log holding records `0..N` of `TOPIC` over several segments;
/// returns the epoch and the segments.
fn build(dir: &Path) -> (Epoch, Vec<SegmentSummary>) {
    let log = Log::open(dir, config()).unwrap();
    for o in 0..N {
        let p = log.append(TOPIC, RecordKind::Message, &payload(o)).unwrap();
        assert_eq!(p.offset, o);
    }
    log.close().unwrap();
    let t = DirReader::open(dir).unwrap().topic(TOPIC).unwrap().unwrap();
    assert!(t.segments.len() >= 5, "{} segments", t.segments.len());
    (t.epoch, t.segments)
}

/// Byte position of the record of `offset` in `seg`.
fn record_at(seg: &SegmentSummary, offset: u64) -> u64 {
    let header = seg.bytes - (seg.end_offset - seg.base_offset) * RECORD;
    header + (offset - seg.base_offset) * RECORD
}

fn flip(path: &Path, at: u64) {
    let mut b = fs::read(path).unwrap();
    b[at as usize] ^= 0x40;
    fs::write(path, b).unwrap();
}

fn cut(path: &Path, len: u64) {
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

fn read(log: &Log, epoch: Epoch, from: u64, n: usize) -> Result<Vec<u64>, LogError> {
    let b = log.read(TOPIC, Position::new(epoch, from), ReadLimits::records(n))?;
    for r in &b.records {
        assert_eq!(r.payload_ref(), &payload(r.offset())[..], "intact payload");
    }
    Ok(b.records.iter().map(|r| r.offset()).collect())
}

fn damaged(log: &Log, epoch: Epoch, from: u64) -> Damage {
    match read(log, epoch, from, 1000) {
        Err(LogError::Damaged(d)) => d,
        other => panic!("read at {from}: expected damage, got {other:?}"),
    }
}

/// Read the whole topic through, following `resume_at`: every offset of
/// `0..head` comes back intact except those in `lost`, and each damaged
/// range is met exactly as expected.
fn read_through(log: &Log, epoch: Epoch, head: u64, lost: &[(u64, Option<u64>)]) {
    let mut from = 0;
    let mut met = Vec::new();
    let mut got = Vec::new();
    while from < head {
        match read(log, epoch, from, 7) {
            Ok(offsets) => {
                assert!(!offsets.is_empty());
                from = offsets.last().unwrap() + 1;
                got.extend(offsets);
            }
            Err(LogError::Damaged(d)) => {
                met.push((d.first_missing, d.resume_at));
                from = d.resume_at.unwrap_or(head);
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(met, lost);
    let hidden = |o: u64| lost.iter().any(|(a, b)| o >= *a && o < b.unwrap_or(head));
    assert_eq!(got, (0..head).filter(|o| !hidden(*o)).collect::<Vec<_>>());
}

/// `verify` lists exactly these damaged ranges of `TOPIC`, and is not clean.
fn assert_verify_lists(dir: &Path, expected: &[Damage]) {
    let report = DirReader::open(dir).unwrap().verify().unwrap();
    assert!(!report.is_clean());
    assert_eq!(report.damaged, expected);
}

#[test]
fn a_flipped_byte_in_a_middle_segment_hides_one_record() {
    let dir = tempfile::tempdir().unwrap();
    let (epoch, segs) = build(dir.path());
    let seg = &segs[2];
    let bad = seg.base_offset + 3;
    let at = record_at(seg, bad);
    flip(&seg.path, at + HEADER_LEN as u64 + 10);

    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.position(TOPIC).unwrap().next_offset, N);
    // A batch stops right before the damage.
    let before = read(&log, epoch, 0, 1000).unwrap();
    assert_eq!(before, (0..bad).collect::<Vec<_>>());
    let d = damaged(&log, epoch, bad);
    let expected = Damage {
        topic: TOPIC.into(),
        segment: seg.path.clone(),
        file_position: at,
        first_missing: bad,
        resume_at: Some(bad + 1),
        reason: d.reason.clone(),
    };
    assert_eq!(d, expected);
    let text = d.to_string();
    for part in [
        TOPIC,
        &seg.path.display().to_string(),
        &format!("byte {at}"),
    ] {
        assert!(text.contains(part), "{text}");
    }
    assert!(
        text.contains(&format!("offsets {bad}..{}", bad + 1)),
        "{text}"
    );
    // Reading on from where it says: the intact records after the damage,
    // across the segment's index entry before the bad record.
    assert_eq!(
        read(&log, epoch, bad + 1, 1000).unwrap(),
        (bad + 1..N).collect::<Vec<_>>()
    );
    assert_eq!(log.stats().damaged_reads, 1);
    assert_eq!(damaged(&log, epoch, bad), expected, "answered again");
    assert_eq!(log.stats().damaged_reads, 2);
    read_through(&log, epoch, N, &[(bad, Some(bad + 1))]);
    log.close().unwrap();
    assert_verify_lists(dir.path(), &[expected]);
}

#[test]
fn the_read_only_reader_resumes_after_damage_too() {
    let dir = tempfile::tempdir().unwrap();
    let (_, segs) = build(dir.path());
    let bad = segs[1].base_offset + 1;
    flip(&segs[1].path, record_at(&segs[1], bad) + 2);
    let reader = DirReader::open(dir.path()).unwrap();
    let t = reader.topic(TOPIC).unwrap().unwrap();
    let recs = reader.read(&t, 0, ReadLimits::records(1000)).unwrap();
    assert_eq!(recs.len() as u64, bad);
    let d = match reader.read(&t, bad, ReadLimits::records(1000)) {
        Err(LogError::Damaged(d)) => d,
        other => panic!("{other:?}"),
    };
    assert_eq!((d.first_missing, d.resume_at), (bad, Some(bad + 1)));
    let after = reader.read(&t, bad + 1, ReadLimits::records(1000)).unwrap();
    assert_eq!(after.first().map(|r| r.offset()), Some(bad + 1));
    assert_eq!(after.last().map(|r| r.offset()), Some(N - 1));
}

#[test]
fn a_middle_segment_cut_mid_record_loses_only_its_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (epoch, segs) = build(dir.path());
    let seg = &segs[2];
    let bad = seg.base_offset + 4;
    let at = record_at(seg, bad);
    cut(&seg.path, at + 10);

    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.position(TOPIC).unwrap().next_offset, N);
    let d = damaged(&log, epoch, bad);
    assert_eq!(d.segment, seg.path);
    assert_eq!(d.file_position, at);
    assert_eq!(
        (d.first_missing, d.resume_at),
        (bad, Some(segs[3].base_offset))
    );
    // From inside the lost range too.
    let inside = damaged(&log, epoch, bad + 2);
    assert_eq!(
        (inside.first_missing, inside.resume_at),
        (bad, Some(segs[3].base_offset))
    );
    read_through(&log, epoch, N, &[(bad, Some(segs[3].base_offset))]);
    log.close().unwrap();
    assert_verify_lists(dir.path(), &[d]);
}

#[test]
fn a_deleted_middle_segment_is_a_gap_up_to_the_next_base() {
    let dir = tempfile::tempdir().unwrap();
    let (epoch, segs) = build(dir.path());
    let gone = &segs[2];
    fs::remove_file(&gone.path).unwrap();
    fs::remove_file(gone.path.with_extension("idx")).unwrap();

    let log = Log::open(dir.path(), config()).unwrap();
    assert!(log.open_report().new_epochs.is_empty());
    assert_eq!(log.position(TOPIC).unwrap().next_offset, N);
    let d = damaged(&log, epoch, gone.base_offset);
    // Found where the previous segment ends early.
    assert_eq!(d.segment, segs[1].path);
    assert_eq!(d.file_position, segs[1].bytes);
    assert_eq!(
        (d.first_missing, d.resume_at),
        (gone.base_offset, Some(segs[3].base_offset))
    );
    read_through(
        &log,
        epoch,
        N,
        &[(gone.base_offset, Some(segs[3].base_offset))],
    );
    log.close().unwrap();
    assert_verify_lists(dir.path(), &[d]);
}

/// The quarantine findings of an open report.
fn quarantined(log: &Log) -> Vec<(PathBuf, u64, u64, PathBuf)> {
    log.open_report()
        .findings
        .iter()
        .filter_map(|(_, f)| match f {
            Finding::BadHeader {
                segment,
                from,
                to,
                moved_to,
                ..
            } => Some((segment.clone(), *from, *to, moved_to.clone().unwrap())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_damaged_segment_header_quarantines_that_segment_only() {
    let dir = tempfile::tempdir().unwrap();
    let (epoch, segs) = build(dir.path());
    let seg = &segs[2];
    let original = fs::read(&seg.path).unwrap();
    flip(&seg.path, 20); // inside the base offset: the header CRC fails

    // Read-only, before any writer touched it: the same gap.
    let gap = (seg.base_offset, Some(segs[3].base_offset));
    let report = DirReader::open(dir.path()).unwrap().verify().unwrap();
    assert_eq!(report.damaged.len(), 1, "{:?}", report.damaged);
    assert_eq!(
        (report.damaged[0].first_missing, report.damaged[0].resume_at),
        gap
    );

    let log = Log::open(dir.path(), config()).unwrap();
    assert!(log.open_report().new_epochs.is_empty(), "the epoch is kept");
    let q = quarantined(&log);
    assert_eq!(q.len(), 1, "{:?}", log.open_report().findings);
    let (path, from, to, moved_to) = &q[0];
    assert_eq!((path, *from, *to), (&seg.path, gap.0, segs[3].base_offset));
    assert!(moved_to.starts_with(dir.path().join("lost+found")));
    let mut kept = original;
    kept[20] ^= 0x40;
    assert_eq!(
        fs::read(moved_to).unwrap(),
        kept,
        "the damaged file is kept aside"
    );

    let pos = log.position(TOPIC).unwrap();
    assert_eq!(
        (pos.epoch, pos.first_offset, pos.next_offset),
        (epoch, 0, N)
    );
    let d = damaged(&log, epoch, seg.base_offset);
    assert_eq!(d.segment, seg.path, "the empty segment left in its place");
    assert_eq!((d.first_missing, d.resume_at), gap);
    read_through(&log, epoch, N, &[gap]);
    let p = log.append(TOPIC, RecordKind::Message, &payload(N)).unwrap();
    assert_eq!(p, Position::new(epoch, N));
    log.close().unwrap();
    assert_verify_lists(dir.path(), std::slice::from_ref(&d));

    // After a restart: the same gap, nothing quarantined again.
    let log = Log::open(dir.path(), config()).unwrap();
    assert!(quarantined(&log).is_empty());
    assert_eq!(log.position(TOPIC).unwrap().next_offset, N + 1);
    assert_eq!(damaged(&log, epoch, seg.base_offset), d);
    read_through(&log, epoch, N + 1, &[gap]);
    log.close().unwrap();
}

#[test]
fn a_damaged_first_segment_header_keeps_its_offsets_damaged_not_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (epoch, segs) = build(dir.path());
    flip(&segs[0].path, 0);
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(quarantined(&log).len(), 1);
    let pos = log.position(TOPIC).unwrap();
    assert_eq!((pos.epoch, pos.first_offset), (epoch, 0));
    read_through(&log, epoch, N, &[(0, Some(segs[1].base_offset))]);
    log.close().unwrap();
}

#[test]
fn a_damaged_last_segment_header_never_moves_the_head_back() {
    let dir = tempfile::tempdir().unwrap();
    let (epoch, segs) = build(dir.path());
    let last = segs.last().unwrap();
    flip(&last.path, 9); // the format version: the header CRC fails

    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(quarantined(&log).len(), 1);
    let gap = (last.base_offset, None);
    assert_eq!(
        log.position(TOPIC).unwrap().next_offset,
        N,
        "recovered exactly"
    );
    read_through(&log, epoch, N, &[gap]);
    log.close().unwrap();

    // The head is on disk: a restart without appends keeps it.
    let log = Log::open(dir.path(), config()).unwrap();
    assert!(quarantined(&log).is_empty());
    assert_eq!(log.position(TOPIC).unwrap().next_offset, N);
    let p = log.append(TOPIC, RecordKind::Message, &payload(N)).unwrap();
    assert_eq!(p, Position::new(epoch, N), "past every acknowledged record");
    let d = damaged(&log, epoch, last.base_offset);
    assert_eq!((d.first_missing, d.resume_at), (last.base_offset, Some(N)));
    assert_eq!(read(&log, epoch, N, 10).unwrap(), vec![N], "from memory");
    log.close().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(read(&log, epoch, N, 10).unwrap(), vec![N], "from disk");
    read_through(&log, epoch, N + 1, &[(last.base_offset, Some(N))]);
    log.close().unwrap();
}

#[test]
fn a_damaged_last_segment_with_a_damaged_tail_errs_past_the_old_head() {
    let dir = tempfile::tempdir().unwrap();
    let (epoch, segs) = build(dir.path());
    let last = segs.last().unwrap();
    flip(&last.path, 9);
    // The newest record does not decode either: the head cannot be read
    // from it, so the log goes past what its bytes could have held.
    flip(&last.path, record_at(last, N - 1) + 40);

    let log = Log::open(dir.path(), config()).unwrap();
    let head = log.position(TOPIC).unwrap().next_offset;
    assert!(head >= N, "head {head} went back below {N}");
    let p = log
        .append(TOPIC, RecordKind::Message, &payload(head))
        .unwrap();
    assert_eq!(p.offset, head);
    let d = damaged(&log, epoch, last.base_offset);
    assert_eq!(
        (d.first_missing, d.resume_at),
        (last.base_offset, Some(head))
    );
    log.close().unwrap();
}

#[test]
fn every_damaged_range_is_listed_and_reads_resume_past_each() {
    let dir = tempfile::tempdir().unwrap();
    let (epoch, segs) = build(dir.path());
    let a = segs[1].base_offset + 2;
    flip(&segs[1].path, record_at(&segs[1], a) + 5);
    let b = segs[1].base_offset + 6;
    flip(&segs[1].path, record_at(&segs[1], b) + 35);
    fs::remove_file(&segs[3].path).unwrap();
    let report = DirReader::open(dir.path()).unwrap().verify().unwrap();
    let ranges: Vec<(u64, Option<u64>)> = report
        .damaged
        .iter()
        .map(|d| (d.first_missing, d.resume_at))
        .collect();
    let expected = [
        (a, Some(a + 1)),
        (b, Some(b + 1)),
        (segs[3].base_offset, Some(segs[4].base_offset)),
    ];
    assert_eq!(ranges, expected);
    assert!(report.damaged.iter().all(|d| d.topic == TOPIC));
    let log = Log::open(dir.path(), config()).unwrap();
    read_through(&log, epoch, N, &expected);
    log.close().unwrap();
}

#[test]
fn a_failed_read_is_an_io_error_not_damage() {
    let dir = tempfile::tempdir().unwrap();
    let (epoch, _) = build(dir.path());
    let storage = FaultyStorage::default();
    let log = Log::builder(dir.path())
        .config(config())
        .storage(Arc::new(storage.clone()))
        .open()
        .unwrap();
    storage.inject(FaultRule::fail(StorageOp::Read, wse_log::storage::EIO).path_contains(".seg"));
    match read(&log, epoch, 5, 10) {
        Err(LogError::Io { source, .. }) => {
            assert_eq!(source.raw_os_error(), Some(wse_log::storage::EIO));
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
    storage.clear();
    assert_eq!(
        read(&log, epoch, 5, 10).unwrap(),
        (5..15).collect::<Vec<_>>()
    );
    assert_eq!(log.stats().damaged_reads, 0);
    log.close().unwrap();
    let report = DirReader::open(dir.path()).unwrap().verify().unwrap();
    assert!(
        report.is_clean(),
        "{:?} {:?}",
        report.problems,
        report.damaged
    );
}

#[test]
fn any_one_bad_record_hides_exactly_itself_index_entries_included() {
    let base = tempfile::tempdir().unwrap();
    let (epoch, segs) = build(base.path());
    let seg = &segs[2];
    for bad in seg.base_offset..seg.end_offset {
        let dir = tempfile::tempdir().unwrap();
        for f in fs::read_dir(seg.path.parent().unwrap()).unwrap() {
            let f = f.unwrap().path();
            let to = dir.path().join(f.strip_prefix(base.path()).unwrap());
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            fs::copy(&f, &to).unwrap();
        }
        let path = dir.path().join(seg.path.strip_prefix(base.path()).unwrap());
        // Alternate between the CRC field and the payload.
        let inside = if bad % 2 == 0 {
            4
        } else {
            HEADER_LEN as u64 + 7
        };
        flip(&path, record_at(seg, bad) + inside);
        let log = Log::builder(dir.path())
            .config(config())
            .meta(wse_log::MemoryMeta::new())
            .open()
            .unwrap();
        read_through(&log, epoch, N, &[(bad, Some(bad + 1))]);
        // Every start inside the segment reads from there, or hits the one bad record.
        for from in seg.base_offset..seg.end_offset {
            match read(&log, epoch, from, 3) {
                Ok(offsets) => assert_eq!(offsets[0], from, "bad {bad}"),
                Err(LogError::Damaged(d)) => assert_eq!(from, bad, "{d}"),
                Err(e) => panic!("{e}"),
            }
        }
        log.close().unwrap();
        let report = DirReader::open(dir.path()).unwrap().verify().unwrap();
        let ranges: Vec<_> = report
            .damaged
            .iter()
            .map(|d| (d.first_missing, d.resume_at))
            .collect();
        assert_eq!(ranges, [(bad, Some(bad + 1))]);
    }
}
