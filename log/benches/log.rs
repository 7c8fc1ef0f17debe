//! Micro-benchmarks of the log's hot paths: appending (no fsync, so the
//! CPU cost is measured, not the disk), and reading from the memory tail
//! and from segment files. Throughput under each durability policy, with
//! many threads, is measured by `wse bench log`.

use criterion::{Criterion, Throughput, criterion_main};
use wse_log::{
    Durability, Log, LogConfig, MemoryMeta, Position, ReadLimits, RecordKind, TailConfig,
};

fn open(dir: &std::path::Path, tail: usize) -> Log {
    Log::builder(dir)
        .config(LogConfig {
            durability: Durability::Never,
            tail: TailConfig {
                records_per_topic: tail,
                ..TailConfig::default()
            },
            ..LogConfig::default()
        })
        .meta(MemoryMeta::new())
        .open()
        .expect("open log")
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    for size in [100usize, 4096] {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = open(dir.path(), 1024);
        let payload = vec![b'x'; size];
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("{size}B"), |b| {
            b.iter(|| {
                log.append_with("bench", RecordKind::Message, size, |_, buf| {
                    buf.extend_from_slice(&payload)
                })
                .expect("append")
            })
        });
        log.flush().expect("flush");
    }
    g.finish();
}

fn read(c: &mut Criterion) {
    let mut g = c.benchmark_group("read_100_records");
    for (name, tail) in [("tail", 4096usize), ("disk", 1)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = open(dir.path(), tail);
        let mut first = None;
        for _ in 0..4000 {
            let p = log
                .append("bench", RecordKind::Message, &[b'y'; 100])
                .expect("append");
            first.get_or_insert(p);
        }
        let epoch = first.expect("appended").epoch;
        g.throughput(Throughput::Elements(100));
        let mut from = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                let batch = log
                    .read(
                        "bench",
                        Position::new(epoch, from),
                        ReadLimits::records(100),
                    )
                    .expect("read");
                from = (from + 100) % 3900;
                batch
            })
        });
    }
    g.finish();
}

/// The benchmark group (criterion's macro makes an undocumented function).
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::append, super::read);
}
criterion_main!(group::benches);
