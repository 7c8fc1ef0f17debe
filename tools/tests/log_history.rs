//! Moving history with the `wse log` commands, run as the built binary on
//! real directories: export and import (both forms, byte for byte, and what
//! import refuses), append storing records as the server does, and the
//! commands telling the truth about what a directory holds.

mod cli_support;

use std::path::Path;
use std::time::Duration;

use cli_support::{data_dir, json_lines, path, run, run_ok, stderr, stdout};
use serde_json::{Value, json};
use wse::presence::crdt::{Dot, Entry, Op, Register, Replica};
use wse_log::{Durability, Log, LogConfig, ManualClock, Position, ReadLimits, RecordKind};

/// Every record of `topic` in `dir`: (epoch, offset, time, kind, payload).
type Row = (String, u64, u64, RecordKind, Vec<u8>);

fn records(dir: &Path, topic: &str) -> Vec<Row> {
    let reader = wse_log::DirReader::open(dir).expect("open");
    let t = reader.topic(topic).expect("topic").expect("stored");
    let mut out = Vec::new();
    let mut next = t.first_offset;
    while next < t.next_offset {
        let page = reader.read(&t, next, ReadLimits::default()).expect("read");
        for r in &page {
            out.push((
                r.epoch().to_string(),
                r.offset(),
                r.timestamp_us(),
                r.kind(),
                r.payload_ref().to_vec(),
            ));
        }
        next = page.last().expect("records").offset() + 1;
    }
    out
}

fn presence_join() -> Vec<u8> {
    let replica = Replica { node: 1, run: 2 };
    wse::presence::stream::encode(&Op::Join {
        dot: Dot {
            replica,
            counter: 1,
        },
        entry: Entry {
            user: "ann".into(),
            conn: "c1".into(),
        },
        data: Register {
            hlc: 7,
            replica,
            data: json!({"status": "online"}),
        },
    })
}

/// A source directory: topic `chat` whose oldest records were removed
/// (its first offset is above 0 and at most 20), with every kind of payload, one second apart; and a
/// presence stream.
fn source(dir: &Path) {
    let clock = ManualClock::new(1_800_000_000_000_000);
    let log = Log::builder(dir)
        .config(LogConfig {
            durability: Durability::Never,
            segment_max_bytes: 1024,
            ..LogConfig::default()
        })
        .clock(clock.clone())
        .open()
        .expect("open");
    let mut payloads: Vec<(RecordKind, Vec<u8>)> = Vec::new();
    for i in 0..40 {
        payloads.push((
            RecordKind::Message,
            format!(r#"{{"tp":"chat","e":"00000000","o":{i},"t":"m","p":{{"n":{i}}}}}"#)
                .into_bytes(),
        ));
    }
    payloads.push((
        RecordKind::Message,
        b"plain text with \"quotes\"\nand a newline".to_vec(),
    ));
    payloads.push((RecordKind::Message, b"{ \"spaced\" : true }".to_vec()));
    payloads.push((RecordKind::Message, b" [1,2] ".to_vec()));
    payloads.push((RecordKind::Message, vec![0xff, 0x00, 0xfe]));
    payloads.push((RecordKind::Control, b"".to_vec()));
    payloads.push((RecordKind::Presence, presence_join()));
    for (kind, p) in &payloads {
        log.append("chat", *kind, p).expect("append");
        clock.advance(Duration::from_secs(1));
    }
    log.append("\u{1}presence:chat", RecordKind::Presence, &presence_join())
        .expect("append");
    // Whole segments go: the first offset becomes a segment's base.
    assert!(log.trim_before("chat", 20).expect("trim") > 0);
    log.close().expect("close");
}

#[test]
fn export_then_import_recreates_the_history_byte_for_byte_in_both_forms() {
    let (tmp, src) = data_dir();
    source(&src);
    let want = records(&src, "chat");
    let first = want[0].1;
    assert!(first > 0, "retention removed the oldest records");
    for form in ["jsonl", "binary"] {
        let file = tmp.path().join(format!("chat.{form}"));
        let o = run_ok(
            &[
                "log",
                "export",
                path(&src),
                "chat",
                "--format",
                form,
                "-o",
                path(&file),
            ],
            b"",
        );
        assert!(
            stderr(&o).contains(&format!("exported {} records", want.len())),
            "{}",
            stderr(&o)
        );
        let dest = tmp.path().join(format!("imported-{form}"));
        let o = run_ok(&["log", "import", path(&dest), path(&file)], b"");
        assert!(stdout(&o).starts_with(&format!("imported {} records into chat", want.len())));
        assert_eq!(records(&dest, "chat"), want, "{form}");
        // A second export of the copy is the same file but for its date.
        let again = tmp.path().join(format!("again.{form}"));
        run_ok(
            &[
                "log",
                "export",
                path(&dest),
                "chat",
                "--format",
                form,
                "-o",
                path(&again),
            ],
            b"",
        );
        let (a, b) = (
            std::fs::read(&file).expect("read"),
            std::fs::read(&again).expect("read"),
        );
        assert_eq!(a.len(), b.len(), "{form}");
        let differing = a.iter().zip(&b).filter(|(x, y)| x != y).count();
        assert!(
            differing <= 16,
            "{form}: {differing} bytes differ (only created_at may)"
        );
        // Appends go on after the imported history, in its epoch.
        let log = Log::open(&dest, LogConfig::default()).expect("open");
        let pos = log
            .append("chat", RecordKind::Message, b"next")
            .expect("append");
        assert_eq!(
            pos,
            Position::new(
                want[0].0.parse().expect("epoch"),
                want.last().expect("r").1 + 1
            )
        );
    }
}

#[test]
fn the_json_lines_form_is_readable_and_documented_field_by_field() {
    let (tmp, src) = data_dir();
    source(&src);
    let o = run_ok(&["log", "export", path(&src), "chat", "--from", "40"], b"");
    let lines = json_lines(&o);
    let header = &lines[0];
    assert_eq!(header["format"], "wse-export");
    assert_eq!(header["version"], 1);
    assert_eq!(header["topic"], "chat");
    assert_eq!(header["first_offset"], 40);
    assert_eq!(header["epoch"].as_str().map(str::len), Some(8));
    assert!(
        header["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert_eq!(
        lines[1]["text"],
        "plain text with \"quotes\"\nand a newline"
    );
    // Inner whitespace is part of the embedded text; surrounding whitespace
    // would not survive embedding, so such a payload stays text.
    assert_eq!(lines[2]["json"], json!({"spaced": true}));
    assert_eq!(lines[3]["text"], " [1,2] ");
    assert_eq!(lines[4]["base64"], "/wD+");
    assert_eq!(lines[5]["kind"], "control");
    assert_eq!(lines[7]["end"], true);
    assert_eq!(lines[7]["records"], 6);
    assert_eq!(lines[7]["next_offset"], 46);
    // A JSON payload on one line is embedded as JSON.
    let o = run_ok(
        &[
            "log",
            "export",
            path(&src),
            "chat",
            "--from",
            "30",
            "--to",
            "31",
        ],
        b"",
    );
    let lines = json_lines(&o);
    assert_eq!(lines[1]["json"]["p"], json!({"n": 30}));
    drop(tmp);
}

#[test]
fn ranges_by_offset_and_by_time_select_the_same_records() {
    let (_tmp, src) = data_dir();
    source(&src);
    let chat = records(&src, "chat");
    let at = |i: usize| -> String {
        humantime::format_rfc3339_micros(std::time::UNIX_EPOCH + Duration::from_micros(chat[i].2))
            .to_string()
    };
    let by_offset = run_ok(
        &[
            "log",
            "dump",
            path(&src),
            "chat",
            "--from",
            &chat[3].1.to_string(),
            "--to",
            &chat[9].1.to_string(),
        ],
        b"",
    );
    let by_time = run_ok(
        &[
            "log",
            "dump",
            path(&src),
            "chat",
            "--since",
            &at(3),
            "--until",
            &at(9),
        ],
        b"",
    );
    assert_eq!(json_lines(&by_offset).len(), 6);
    assert_eq!(stdout(&by_offset), stdout(&by_time));
    let o = run_ok(
        &[
            "log",
            "tail",
            path(&src),
            "chat",
            "--since",
            &at(chat.len() - 3),
        ],
        b"",
    );
    assert_eq!(json_lines(&o).len(), 3);
    let o = run(&["log", "dump", path(&src), "chat", "--from", "0"], b"");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("removed by retention"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn import_refuses_gaps_duplicates_other_histories_damage_and_a_running_server() {
    let (tmp, src) = data_dir();
    source(&src);
    let file = |name: &str, args: &[&str]| {
        let f = tmp.path().join(name);
        let mut all = vec!["log", "export", path(&src), "chat", "-o", path(&f)];
        all.extend_from_slice(args);
        run_ok(&all, b"");
        f
    };
    let head = file("head", &["--to", "20"]);
    let tail = file("tail", &["--from", "20"]);
    let late = file("late", &["--from", "30"]);
    let dest = tmp.path().join("dest");

    let refused = |f: &Path, why: &str| {
        let o = run(&["log", "import", path(&dest), path(f)], b"");
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains(why), "{why:?} not in {}", stderr(&o));
    };
    run_ok(&["log", "import", path(&dest), path(&head)], b"");
    refused(&late, "would leave a gap");
    refused(&head, "would store offsets twice");
    run_ok(&["log", "import", path(&dest), path(&tail)], b"");
    assert_eq!(records(&dest, "chat"), records(&src, "chat"));

    // Another history of the same topic.
    let other = tmp.path().join("other");
    cli_support::append(&other, "chat", b"x\n");
    let other_file = tmp.path().join("other.jsonl");
    run_ok(
        &[
            "log",
            "export",
            path(&other),
            "chat",
            "-o",
            path(&other_file),
        ],
        b"",
    );
    refused(&other_file, "two histories are never mixed");

    // Damage: a flipped byte, a file cut short. Nothing of them lands.
    let fresh = tmp.path().join("fresh");
    for form in ["jsonl", "binary"] {
        let f = file(&format!("whole.{form}"), &["--format", form]);
        let bytes = std::fs::read(&f).expect("read");
        let mut flipped = bytes.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x01;
        let bad = tmp.path().join(format!("flipped.{form}"));
        std::fs::write(&bad, &flipped).expect("write");
        let cut = tmp.path().join(format!("cut.{form}"));
        std::fs::write(&cut, &bytes[..bytes.len() - 30]).expect("write");
        for f in [&bad, &cut] {
            let o = run(&["log", "import", path(&fresh), path(f)], b"");
            assert_eq!(o.status.code(), Some(1), "{form}: {}", stderr(&o));
            assert!(stderr(&o).contains("damaged export"), "{}", stderr(&o));
            assert!(!fresh.join("topics").exists(), "nothing imported");
        }
    }
    let o = run(&["log", "import", path(&fresh), "/dev/null"], b"");
    assert!(stderr(&o).contains("not a WSE export"), "{}", stderr(&o));

    // A directory held by a writer (a running server) is refused.
    let _held = Log::open(&dest, LogConfig::default()).expect("open");
    refused(&head, "locked");
}

#[test]
fn append_stores_messages_as_the_server_does_and_a_raw_dump_fed_back_is_the_same() {
    let (tmp, dir) = data_dir();
    let said = cli_support::append(
        &dir,
        "chat",
        b"{\"t\":\"chat_message\",\"p\":{\"text\":\"hi\"}}\nplain\n{}\n",
    );
    let epoch = said
        .trim_end()
        .rsplit(' ')
        .next()
        .expect("epoch")
        .to_owned();
    let dump = run_ok(&["log", "dump", path(&dir), "chat", "--format", "raw"], b"");
    assert_eq!(
        stdout(&dump),
        format!(
            "{{\"tp\":\"chat\",\"e\":\"{epoch}\",\"o\":0,\"c\":\"U\",\"t\":\"chat_message\",\"p\":{{\"text\":\"hi\"}}}}\nplain\n{{\"tp\":\"chat\",\"e\":\"{epoch}\",\"o\":2}}\n"
        )
    );
    // Fed back into an empty directory: the same history, byte for byte.
    let copy = tmp.path().join("copy");
    run_ok(&["log", "append", path(&copy), "chat"], &dump.stdout);
    let again = run_ok(
        &["log", "dump", path(&copy), "chat", "--format", "raw"],
        b"",
    );
    assert_eq!(stdout(&again), stdout(&dump));
    // Fed into another topic: stamped again with the new positions.
    run_ok(&["log", "append", path(&copy), "other"], &dump.stdout);
    let moved = json_lines(&run_ok(&["log", "dump", path(&copy), "other"], b""));
    assert_eq!(moved[0]["json"]["tp"], "other");
    assert_eq!(moved[0]["json"]["p"]["text"], "hi");
    assert_ne!(moved[0]["json"]["e"], Value::from(epoch));

    for (input, why) in [
        (&b"ok\n\xff\n"[..], "line 2 is not UTF-8"),
        (
            &b"{\"a\":1}\n{\"broken\":\n"[..],
            "line 2 starts a JSON object but is not one",
        ),
    ] {
        let o = run(&["log", "append", path(&dir), "bad"], input);
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains(why), "{why:?} not in {}", stderr(&o));
    }
    let o = run_ok(
        &["log", "append", path(&dir), "raw", "--raw"],
        b"\xff\n{\"broken\":\n",
    );
    assert!(stdout(&o).starts_with("appended 2 records"));
}

#[test]
fn a_directory_that_is_not_a_data_directory_is_an_error_and_an_empty_one_has_no_topics() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("passwd"), "root:x:0:0").expect("write");
    for cmd in [
        &["topics"][..],
        &["verify"],
        &["dump", "t"],
        &["export", "t"],
    ] {
        let mut args = vec!["log", cmd[0], path(tmp.path())];
        args.extend_from_slice(&cmd[1..]);
        let o = run(&args, b"");
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&o).contains("is not a WSE data directory"),
            "{}",
            stderr(&o)
        );
    }
    let (_t, dir) = data_dir();
    Log::open(&dir, LogConfig::default())
        .expect("open")
        .close()
        .expect("close");
    let o = run_ok(&["log", "topics", path(&dir)], b"");
    assert!(o.stdout.is_empty());
    assert!(stderr(&o).contains("no topics in"), "{}", stderr(&o));
}

#[test]
fn internal_streams_are_hidden_unless_asked_for_and_shown_by_readable_names() {
    let (_tmp, src) = data_dir();
    source(&src);
    let o = run_ok(&["log", "topics", path(&src)], b"");
    let text = stdout(&o);
    assert!(text.contains("\nchat "), "{text}");
    assert!(!text.contains("presence"), "{text}");
    assert!(
        stderr(&o).contains("1 internal stream not shown"),
        "{}",
        stderr(&o)
    );

    let o = run_ok(&["log", "topics", path(&src), "--all"], b"");
    let text = stdout(&o);
    let row = text
        .lines()
        .find(|l| l.starts_with("presence:chat "))
        .expect("readable name");
    assert!(row.ends_with("  internal"), "{row}");
    assert!(
        !text.contains('\u{1}') && !text.contains("\\u{0001}"),
        "{text}"
    );
    let v: Value = serde_json::from_slice(
        &run_ok(&["log", "topics", path(&src), "--json", "--all"], b"").stdout,
    )
    .expect("JSON");
    let internal = v["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .find(|t| t["internal"] == true)
        .expect("one");
    assert_eq!(internal["name"], "\u{1}presence:chat");
    assert_eq!(internal["display_name"], "presence:chat");

    // Presence records are shown decoded, by the stream's readable name.
    let o = run_ok(
        &["log", "dump", path(&src), "presence:chat", "--internal"],
        b"",
    );
    let recs = json_lines(&o);
    assert_eq!(recs[0]["kind"], "presence");
    assert_eq!(recs[0]["presence"]["Join"]["entry"]["user"], "ann");
    assert_eq!(
        recs[0]["presence"]["Join"]["data"]["data"]["status"],
        "online"
    );
    let o = run(&["log", "dump", path(&src), "presence:chat"], b"");
    assert_eq!(
        o.status.code(),
        Some(2),
        "without --internal it is a client topic name"
    );
}

#[test]
fn a_backup_taken_while_a_publisher_writes_restores_every_record_at_its_position() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, mpsc};
    use wse_log::{MetaStore, Retention, SledMeta};

    let (tmp, src) = data_dir();
    let log = Arc::new(
        Log::open(
            &src,
            LogConfig {
                durability: Durability::Never,
                segment_max_bytes: 4096,
                ..LogConfig::default()
            },
        )
        .expect("open"),
    );
    // Metadata a backup must keep: a retired epoch, a retention override.
    let gone = log
        .append("gone", RecordKind::Message, b"x")
        .expect("append")
        .epoch;
    log.delete_topic("gone").expect("delete");
    log.append("chat", RecordKind::Message, b"first")
        .expect("append");
    let kept = Retention {
        max_records: Some(1_000_000),
        ..Retention::unlimited()
    };
    log.set_retention("chat", Some(kept)).expect("retention");

    let stop = Arc::new(AtomicBool::new(false));
    let (started, running) = mpsc::channel();
    let writer = {
        let (log, stop) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for topic in ["chat", "news"] {
                    let body = format!(r#"{{"n":{i},"pad":"{}"}}"#, "x".repeat((i % 200) as usize));
                    // Stamped as the server stores a publish.
                    let appended = log
                        .append_with(topic, RecordKind::Message, body.len() + 64, |pos, b| {
                            wse::protocol::write_stored_message(
                                b,
                                true,
                                &body,
                                topic,
                                pos.epoch.0,
                                pos.offset,
                            )
                        })
                        .expect("append");
                    // Once the 500th record of each topic is in its file
                    // (visible), the backup may start: it must find them.
                    if i == 499 {
                        appended.wait().expect("visible");
                    }
                }
                i += 1;
                if i == 500 {
                    let _ = started.send(());
                }
            }
        })
    };
    running.recv().expect("the writer runs");
    let backup = tmp.path().join("backup");
    let o = run_ok(&["log", "backup", path(&src), path(&backup)], b"");
    assert!(
        stderr(&o).starts_with("backed up 2 topics"),
        "{}",
        stderr(&o)
    );
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    log.flush().expect("flush");

    let restored = tmp.path().join("restored");
    let o = run_ok(&["log", "restore", path(&backup), path(&restored)], b"");
    assert!(
        stdout(&o).contains("restored chat (epoch "),
        "{}",
        stdout(&o)
    );
    for topic in ["chat", "news"] {
        let copy = records(&restored, topic);
        let source = records(&src, topic);
        assert!(
            copy.len() >= 500,
            "{topic}: {} records restored",
            copy.len()
        );
        assert!(copy.len() <= source.len());
        assert_eq!(
            copy[..],
            source[..copy.len()],
            "{topic}: every restored record is the source's"
        );
    }
    drop(log);
    let meta = SledMeta::open(&restored.join("meta")).expect("meta");
    assert!(
        meta.get("gone")
            .expect("get")
            .expect("entry")
            .has_used(gone.0)
    );
    assert_eq!(
        meta.get("chat").expect("get").expect("entry").retention,
        Some(kept)
    );
    meta.close().expect("close");

    // With new epochs: the same offsets, times and messages, in a history
    // no client has seen (stamps name it).
    let renewed = tmp.path().join("renewed");
    run_ok(
        &[
            "log",
            "restore",
            path(&backup),
            path(&renewed),
            "--new-epochs",
        ],
        b"",
    );
    let (before, after) = (records(&restored, "news"), records(&renewed, "news"));
    assert_eq!(before.len(), after.len());
    assert_ne!(before[0].0, after[0].0, "a new epoch");
    for (b, a) in before.iter().zip(&after) {
        assert_eq!((b.1, b.2, b.3), (a.1, a.2, a.3));
        let (bv, av): (Value, Value) = (
            serde_json::from_slice(&b.4).expect("JSON"),
            serde_json::from_slice(&a.4).expect("JSON"),
        );
        assert_eq!(av["e"], Value::from(a.0.clone()));
        assert_eq!(av["o"], a.1);
        assert_eq!(
            (&av["n"], &av["pad"], &av["tp"]),
            (&bv["n"], &bv["pad"], &bv["tp"])
        );
    }

    // Restore refuses a directory that is not empty, and a damaged backup.
    let o = run(&["log", "restore", path(&backup), path(&restored)], b"");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("is not empty"), "{}", stderr(&o));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(backup.join("wse-backup.json")).expect("manifest"))
            .expect("JSON");
    let seg = backup.join(
        manifest["topics"][0]["segments"][0]["file"]
            .as_str()
            .expect("file"),
    );
    let mut bytes = std::fs::read(&seg).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x20;
    std::fs::write(&seg, bytes).expect("write");
    let elsewhere = tmp.path().join("elsewhere");
    let o = run(&["log", "restore", path(&backup), path(&elsewhere)], b"");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("damaged backup"), "{}", stderr(&o));
    assert!(!elsewhere.join("topics").exists(), "nothing restored");
}
