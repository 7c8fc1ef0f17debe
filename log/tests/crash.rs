//! Crash test: a child process appends under `always` and prints every
//! acknowledged position; it is SIGKILLed at random moments, many times.
//! After each kill the log must reopen with every acknowledged record
//! present and intact, offsets dense and epochs unchanged.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use rand::Rng;
use wse_log::{Durability, Epoch, Log, LogConfig, Position, ReadLimits, RecordKind};

const CHILD_ENV: &str = "WSE_LOG_CRASH_CHILD_DIR";
const TOPICS: usize = 5;
const ROUNDS: usize = 30;

fn config() -> LogConfig {
    LogConfig {
        durability: Durability::Always,
        segment_max_bytes: 16 * 1024,
        index_interval_bytes: 512,
        ..LogConfig::default()
    }
}

/// The payload of a record is derived from where it went, so the parent
/// can check it without the child telling it.
fn payload(topic: &str, offset: u64) -> Vec<u8> {
    let len = 20 + (offset as usize * 37) % 300;
    let mut p = format!("{topic}@{offset}:").into_bytes();
    p.resize(len, b'a' + (offset % 26) as u8);
    p
}

/// Runs only inside the child process the parent test starts.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let log = Arc::new(Log::open(&dir, config()).unwrap());
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (log, out) = (log.clone(), out.clone());
            std::thread::spawn(move || {
                for i in 0.. {
                    let topic = format!("t{}", (t + i) % TOPICS);
                    let a = log
                        .append_with(&topic, RecordKind::Message, 64, |p, buf| {
                            buf.extend_from_slice(&payload(&topic, p.offset))
                        })
                        .unwrap();
                    a.wait().unwrap();
                    let mut o = out.lock().unwrap();
                    writeln!(o, "ACK {topic} {} {}", a.position.epoch, a.position.offset).unwrap();
                    o.flush().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn acknowledged_appends_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::rng();
    let mut epochs: HashMap<String, Epoch> = HashMap::new();
    let mut acked: HashMap<String, u64> = HashMap::new();
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let kill_after = rng.random_range(1..400);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut n = 0;
        while n < kill_after {
            let Some(line) = lines.next() else { break };
            let line = line.unwrap();
            let Some(ack) = line.strip_prefix("ACK ") else {
                continue;
            };
            let mut parts = ack.split(' ');
            let (topic, epoch, offset) = (
                parts.next().unwrap().to_owned(),
                parts.next().unwrap().parse::<Epoch>().unwrap(),
                parts.next().unwrap().parse::<u64>().unwrap(),
            );
            assert_eq!(
                *epochs.entry(topic.clone()).or_insert(epoch),
                epoch,
                "epoch changed"
            );
            let max = acked.entry(topic).or_insert(0);
            *max = (*max).max(offset + 1);
            n += 1;
        }
        child.kill().unwrap();
        child.wait().unwrap();

        let log = Log::open(dir.path(), config()).unwrap();
        let report = log.open_report();
        assert!(
            report.unclean_shutdown,
            "round {round}: the kill must look unclean"
        );
        assert!(
            report.new_epochs.is_empty(),
            "round {round}: {:?}",
            report.new_epochs
        );
        for (topic, &count) in &acked {
            let pos = log.position(topic).unwrap();
            assert_eq!(pos.epoch, epochs[topic], "round {round}: epoch of {topic}");
            assert!(
                pos.next_offset >= count,
                "round {round}: {topic} lost acked records"
            );
            let mut from = Position::new(pos.epoch, 0);
            while from.offset < pos.next_offset {
                let b = log.read(topic, from, ReadLimits::records(500)).unwrap();
                for (i, r) in b.records.iter().enumerate() {
                    let o = from.offset + i as u64;
                    assert_eq!(r.offset(), o, "round {round}: offsets dense");
                    assert_eq!(
                        r.payload_ref(),
                        &payload(topic, o)[..],
                        "round {round}: {topic}@{o}"
                    );
                }
                from.offset = b.next_offset;
            }
        }
        log.close().unwrap();
    }
    assert!(acked.values().sum::<u64>() > 0);
}
