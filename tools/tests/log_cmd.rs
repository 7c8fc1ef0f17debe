//! The `wse log` and `wse bench` commands, run as the built binary against
//! real data directories.

mod cli_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use cli_support::{append, data_dir, json_lines, path, run, stderr, stdout, wse};
use serde_json::Value;
use wse_log::{Durability, Log, LogConfig, RecordKind, Retention};

/// How long a test waits for a line from a following `tail` before failing
/// (a bound on a hang, not a sleep: the line normally comes within 100 ms).
const LINE_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn append_then_topics_inspect_and_dump_show_it() {
    let (_tmp, dir) = data_dir();
    let d = path(&dir);
    let o = run(
        &["log", "append", d, "chat", "--raw"],
        b"hello\n{\"a\":1}\n\xff\xfe\nlast",
    );
    assert!(o.status.success(), "append failed: {}", stderr(&o));
    let said = stdout(&o);
    assert!(
        said.starts_with("appended 4 records to chat: offsets 0..4, epoch "),
        "{said}"
    );
    let epoch = said
        .trim_end()
        .rsplit(' ')
        .next()
        .expect("epoch")
        .to_owned();
    assert_eq!(epoch.len(), 8);

    let o = run(&["log", "topics", d], b"");
    assert!(o.status.success(), "{}", stderr(&o));
    let line = stdout(&o)
        .lines()
        .find(|l| l.starts_with("chat "))
        .map(str::to_owned)
        .expect("a line for chat");
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cols[..5], ["chat", epoch.as_str(), "0..4", "4", "1"]);
    let o = run(&["log", "topics", d, "--json"], b"");
    let v: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["topics"][0]["name"], "chat");
    assert_eq!(v["topics"][0]["records"], 4);
    assert_eq!(v["topics"][0]["epoch"], epoch.as_str());

    let o = run(&["log", "inspect", d, "chat"], b"");
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for want in [
        format!("epoch:        {epoch}"),
        "first offset: 0".into(),
        "last offset:  3".into(),
        "records:      4".into(),
        "retention:    default".into(),
    ] {
        assert!(text.contains(&want), "{want:?} missing in:\n{text}");
    }
    let o = run(&["log", "inspect", d, "chat", "--json"], b"");
    let v: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["last_offset"], 3);
    assert_eq!(v["segments"][0]["end_offset"], 4);
    assert!(v["segments"][0]["first_time"].as_str().is_some());
    assert_eq!(v["retention"]["source"], "default");

    let o = run(&["log", "dump", d, "chat"], b"");
    assert!(o.status.success(), "{}", stderr(&o));
    let recs = json_lines(&o);
    assert_eq!(recs.len(), 4);
    assert_eq!(recs[0]["offset"], 0);
    assert_eq!(recs[0]["epoch"], epoch.as_str());
    assert_eq!(recs[0]["kind"], "message");
    // Text as a string, a JSON payload as JSON, other bytes as base64.
    assert_eq!(recs[0]["text"], "hello");
    assert_eq!(recs[1]["json"], serde_json::json!({"a": 1}));
    assert_eq!(recs[2]["base64"], "//4=");
    assert!(recs[2].get("text").is_none());
    assert_eq!(recs[3]["text"], "last");
    // RFC 3339 with microseconds, UTC.
    let ts = recs[0]["timestamp"].as_str().expect("timestamp");
    assert_eq!(ts.len(), "2025-01-31T12:00:00.123456Z".len(), "{ts}");
    assert!(ts.ends_with('Z'));

    let o = run(
        &[
            "log", "dump", d, "chat", "--format", "raw", "--from", "1", "--limit", "2",
        ],
        b"",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(o.stdout, b"{\"a\":1}\n\xff\xfe\n");
    let o = run(&["log", "dump", d, "chat", "--from", "3"], b"");
    let recs = json_lines(&o);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["offset"], 3);
}

#[test]
fn inspect_reads_retention_beside_a_running_writer() {
    let (_tmp, dir) = data_dir();
    let log = open_log(&dir);
    log.append("kept", RecordKind::Message, b"x")
        .expect("append");
    log.append("plain", RecordKind::Message, b"y")
        .expect("append");
    let retention = Retention {
        max_bytes: None,
        max_age: Some(Duration::from_secs(3600)),
        max_records: Some(100),
    };
    log.set_retention("kept", Some(retention))
        .expect("set retention");

    // The writer holds the sled metadata; inspect reads a copy of it.
    let o = run(&["log", "inspect", path(&dir), "kept"], b"");
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("retention:    max_bytes unlimited, max_age 1h, max_records 100"),
        "{text}"
    );
    let o = run(&["log", "inspect", path(&dir), "kept", "--json"], b"");
    let v: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["retention"]["source"], "override");
    assert_eq!(v["retention"]["retention"]["max_records"], 100);
    let o = run(&["log", "inspect", path(&dir), "plain"], b"");
    assert!(
        stdout(&o).contains("retention:    default"),
        "{}",
        stdout(&o)
    );

    // Without metadata the rest of the report still comes.
    drop(log);
    std::fs::remove_dir_all(dir.join("meta")).expect("remove meta");
    let o = run(&["log", "inspect", path(&dir), "kept"], b"");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("retention:    unavailable (no metadata directory"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn verify_is_clean_then_reports_a_flipped_byte() {
    let (_tmp, dir) = data_dir();
    let d = path(&dir);
    let lines: String = (0..200).map(|i| format!("record number {i}\n")).collect();
    append(&dir, "t", lines.as_bytes());
    let o = run(&["log", "verify", d], b"");
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("1 topics, 1 segments, 200 records"));

    let inspect = run(&["log", "inspect", d, "t", "--json"], b"");
    let v: Value = serde_json::from_slice(&inspect.stdout).expect("JSON");
    let seg = v["segments"][0]["path"].as_str().expect("segment path");
    let mut bytes = std::fs::read(seg).expect("read segment");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(seg, &bytes).expect("write segment");

    let o = run(&["log", "verify", d], b"");
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    assert!(text.lines().any(|l| l.starts_with(seg)), "{text}");
    let o = run(&["log", "verify", d, "--json"], b"");
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["clean"], false);
    assert_eq!(v["problems"][0]["path"], seg);
    // The damaged range: one record, readable again right after it.
    let damaged = v["damaged"].as_array().expect("damaged ranges");
    assert_eq!(damaged.len(), 1, "{damaged:?}");
    let bad = damaged[0]["first_missing"].as_u64().expect("first_missing");
    assert_eq!(damaged[0]["resume_at"].as_u64(), Some(bad + 1));
    assert_eq!(damaged[0]["topic"], "t");
    assert_eq!(damaged[0]["segment"], seg);
    assert!(damaged[0]["file_position"].as_u64().is_some());
    assert!(!damaged[0]["reason"].as_str().unwrap_or("").is_empty());
    let range = format!(
        "damaged: topic \"t\": offsets {bad}..{} unreadable",
        bad + 1
    );
    assert!(text.lines().any(|l| l.starts_with(&range)), "{text}");
    assert!(text.contains("1 damaged range"), "{text}");

    // dump prints what precedes the bad record, then names it; exit 1.
    let o = run(&["log", "dump", d, "t"], b"");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let printed = json_lines(&o);
    assert_eq!(printed.len() as u64, bad);
    let err = stderr(&o);
    let expected = format!("error: topic \"t\": offsets {bad}..{} unreadable", bad + 1);
    assert!(err.starts_with(&expected), "{err}");
    assert!(err.contains(seg), "{err}");
}

#[test]
fn verify_lists_every_damaged_range_with_its_resume_offset() {
    let (_tmp, dir) = data_dir();
    let d = path(&dir);
    let lines: String = (0..300).map(|i| format!("record number {i}\n")).collect();
    append(&dir, "t", lines.as_bytes());
    let inspect = run(&["log", "inspect", d, "t", "--json"], b"");
    let v: Value = serde_json::from_slice(&inspect.stdout).expect("JSON");
    let seg = v["segments"][0]["path"].as_str().expect("segment path");
    let mut bytes = std::fs::read(seg).expect("read segment");
    let n = bytes.len();
    for at in [n / 4, n / 2, 3 * n / 4] {
        bytes[at] ^= 0x20;
    }
    std::fs::write(seg, &bytes).expect("write segment");

    let o = run(&["log", "verify", d, "--json"], b"");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let damaged = v["damaged"].as_array().expect("damaged ranges");
    assert_eq!(damaged.len(), 3, "{damaged:?}");
    let mut previous = 0;
    for r in damaged {
        let first = r["first_missing"].as_u64().expect("first_missing");
        let resume = r["resume_at"].as_u64().expect("resume_at");
        assert!(first >= previous && resume > first, "{damaged:?}");
        assert_eq!(r["segment"], seg);
        previous = resume;
    }
    let o = run(&["log", "verify", d], b"");
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert_eq!(
        text.lines().filter(|l| l.starts_with("damaged: ")).count(),
        3,
        "{text}"
    );
    assert!(text.contains("3 damaged ranges"), "{text}");
}

#[test]
fn append_to_a_locked_directory_fails_with_exit_2() {
    let (_tmp, dir) = data_dir();
    let log = Log::open(&dir, LogConfig::default()).expect("open log");
    let o = run(&["log", "append", path(&dir), "t"], b"x\n");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("locked"), "{err}");
    assert!(err.contains("LOCK"), "{err}");
    drop(log);
}

#[test]
fn unknown_topic_and_missing_directory_exit_2() {
    let (_tmp, dir) = data_dir();
    append(&dir, "t", b"x\n");
    let o = run(&["log", "dump", path(&dir), "nope"], b"");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no topic \"nope\""), "{}", stderr(&o));
    assert!(o.stdout.is_empty());

    let missing = dir.join("missing");
    for cmd in ["topics", "verify"] {
        let o = run(&["log", cmd, path(&missing)], b"");
        assert_eq!(o.status.code(), Some(2), "{cmd}");
        assert!(stderr(&o).starts_with("error: "), "{}", stderr(&o));
    }
    let o = run(&["log", "tail", path(&missing), "t"], b"");
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn tail_prints_the_newest_records() {
    let (_tmp, dir) = data_dir();
    let lines: String = (0..20).map(|i| format!("m{i}\n")).collect();
    append(&dir, "t", lines.as_bytes());
    let o = run(&["log", "tail", path(&dir), "t", "-n", "3"], b"");
    assert!(o.status.success(), "{}", stderr(&o));
    let offsets: Vec<u64> = json_lines(&o)
        .iter()
        .map(|r| r["offset"].as_u64().expect("offset"))
        .collect();
    assert_eq!(offsets, [17, 18, 19]);
    let o = run(
        &["log", "tail", path(&dir), "t", "-n", "2", "--format", "raw"],
        b"",
    );
    assert_eq!(stdout(&o), "m18\nm19\n");
    // Asking for more than there is prints everything.
    let o = run(&["log", "tail", path(&dir), "t", "-n", "100"], b"");
    assert_eq!(json_lines(&o).len(), 20);
}

/// A `wse` process whose stdout lines arrive on a channel; killed on drop.
struct Follower {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Its stderr, shown when a line does not come.
    errors: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Follower {
    fn spawn(args: &[&str]) -> Self {
        let mut child = wse()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wse");
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        let errors = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = errors.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut e = sink.lock().unwrap_or_else(|p| p.into_inner());
                e.push_str(&line);
                e.push('\n');
            }
        });
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            errors,
        }
    }

    /// The next record printed, as raw text.
    fn next(&self) -> String {
        self.lines.recv_timeout(LINE_TIMEOUT).unwrap_or_else(|e| {
            let errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
            panic!("no line from wse log tail --follow ({e}); its stderr:\n{errors}")
        })
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn open_log(dir: &Path) -> Log {
    Log::open(
        dir,
        LogConfig {
            durability: Durability::Never,
            ..LogConfig::default()
        },
    )
    .expect("open log")
}

#[test]
fn tail_follow_prints_records_appended_after_it_started() {
    let (_tmp, dir) = data_dir();
    append(&dir, "t", b"old\n");
    let tail = Follower::spawn(&[
        "log",
        "tail",
        path(&dir),
        "t",
        "-n",
        "1",
        "--follow",
        "--format",
        "raw",
    ]);
    // The existing record first: the follower is running.
    assert_eq!(tail.next(), "old");

    // A server-like writer holds the directory meanwhile.
    let log = open_log(&dir);
    log.append("t", RecordKind::Message, b"new")
        .expect("append");
    assert_eq!(tail.next(), "new");

    // A new history (topic deleted and recreated) is followed from its start.
    log.delete_topic("t").expect("delete");
    log.append("t", RecordKind::Message, b"reborn")
        .expect("append");
    assert_eq!(tail.next(), "reborn");
}

#[test]
fn tail_follow_waits_for_a_topic_that_does_not_exist_yet() {
    let (_tmp, dir) = data_dir();
    let log = open_log(&dir);
    let tail = Follower::spawn(&["log", "tail", path(&dir), "later", "--follow"]);
    log.append("later", RecordKind::Presence, b"first")
        .expect("append");
    let v: Value = serde_json::from_str(&tail.next()).expect("JSON");
    assert_eq!(v["offset"], 0);
    assert_eq!(v["kind"], "presence");
    // Not a presence operation: shown as the text it is.
    assert_eq!(v["text"], "first");
}

#[test]
fn bench_log_smoke_run() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let o = run(
        &[
            "bench",
            "log",
            "--dir",
            path(tmp.path()),
            "--seconds",
            "1",
            "--sizes",
            "100",
            "--policies",
            "never",
            "--disk-mib",
            "4",
            "--read-records",
            "2000",
        ],
        b"",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("appends/s"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("100  never")),
        "{text}"
    );
    // The scratch directory is gone.
    let left: Vec<_> = std::fs::read_dir(tmp.path()).expect("read dir").collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn topic_names_with_control_and_bidi_characters_are_escaped() {
    // A client may name a topic anything the server accepts; an operator
    // listing topics must see what is there, not what it makes a terminal
    // do (colour escapes, right-to-left overrides).
    let (_tmp, dir) = data_dir();
    let d = path(&dir);
    {
        let log = open_log(&dir);
        for topic in ["evil\u{1b}[2Jx", "invoice\u{202e}fdp.exe", "plain"] {
            log.append(topic, RecordKind::Message, b"{}")
                .expect("append");
        }
        log.flush().expect("flush");
    }
    let o = run(&["log", "topics", d], b"");
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("evil\\u{001b}[2Jx "), "{text}");
    assert!(text.contains("invoice\\u{202e}fdp.exe "), "{text}");
    assert!(text.contains("plain "), "{text}");
    assert!(
        !text.contains(['\u{1b}', '\u{202e}']),
        "raw characters: {text:?}"
    );
    let o = run(&["log", "inspect", d, "invoice\u{202e}fdp.exe"], b"");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("topic:        invoice\\u{202e}fdp.exe\n"));
}
