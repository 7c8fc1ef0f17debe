//! 100,000 topics in one log, in a process limited to 1,024 open files.
//!
//! The limit is set with the shell's `ulimit` on a child process (this
//! test binary run again), so it applies to that process alone.

use std::process::Command;

use wse_log::{Durability, Log, LogConfig, Position, ReadLimits, RecordKind};

const CHILD_ENV: &str = "WSE_LOG_SCALE_CHILD_DIR";
const TOPICS: usize = 100_000;

fn config() -> LogConfig {
    LogConfig {
        durability: Durability::Never,
        max_open_files: 256,
        ..LogConfig::default()
    }
}

fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Runs only inside the child process started by the test below.
#[test]
fn scale_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let limit = String::from_utf8(
        Command::new("sh")
            .args(["-c", "ulimit -n"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(limit.trim(), "1024", "the child must run under the limit");
    {
        let log = Log::open(&dir, config()).unwrap();
        for i in 0..TOPICS {
            let t = format!("topic/{i}");
            log.append_with(&t, RecordKind::Message, 16, |p, b| {
                b.extend_from_slice(format!("{t}@{}", p.offset).as_bytes())
            })
            .unwrap();
        }
        log.flush().unwrap();
        assert!(open_files() < 1024, "{} files open", open_files());
        assert_eq!(log.stats().topics, TOPICS as u64);
        log.close().unwrap();
    }
    let log = Log::open(&dir, config()).unwrap();
    assert_eq!(log.open_report().topics, TOPICS);
    for i in (0..TOPICS).step_by(997) {
        let t = format!("topic/{i}");
        let pos = log.position(&t).unwrap();
        assert_eq!(pos.next_offset, 1);
        let b = log
            .read(&t, Position::new(pos.epoch, 0), ReadLimits::default())
            .unwrap();
        assert_eq!(&b.records[0].payload()[..], format!("{t}@0").as_bytes());
        log.append(&t, RecordKind::Message, b"more").unwrap();
    }
    assert!(open_files() < 1024);
    println!("SCALE-OK");
}

#[test]
fn one_hundred_thousand_topics_under_1024_open_files() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 1024 && exec \"$0\" scale_child --exact --nocapture --test-threads=1")
        .arg(&exe)
        .env(CHILD_ENV, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("SCALE-OK"),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
