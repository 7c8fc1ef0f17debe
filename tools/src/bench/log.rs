//! `wse bench log`: throughput of the log's append and read paths.
//!
//! For each payload size and durability policy, T threads append to one
//! topic for S seconds. Under `always` each appender waits for its record
//! (group commit: concurrent appends share an fsync), and a baseline of one
//! thread waiting for every append (one fsync per append) shows what group
//! commit buys. Under `interval`/`never` appenders do not wait and the
//! writer batches; the run ends with [`Log::flush`], whose time counts.
//! Reads are measured over a filled topic, once from the memory tail and
//! once from segment files (page cache warm: this is the CPU cost of
//! decoding and validating, not the disk's read speed).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use wse_log::record::HEADER_LEN;
use wse_log::{Durability, Log, LogConfig, Position, ReadLimits, RecordKind, TailConfig};

use super::Machine;
use super::disk::{self, DiskBandwidth};
use crate::Run;
use crate::error::CliError;
use crate::output::Out;

/// The topic every run appends to.
const TOPIC: &str = "bench";

/// Measure append and read throughput of the log, and the disk's
/// sequential write bandwidth to compare with.
#[derive(Debug, clap::Args)]
pub struct LogBenchArgs {
    /// Where to create the scratch directory (removed afterwards). Default:
    /// the current directory, whose disk a server started here would use
    /// (/tmp is often another disk, or memory).
    #[arg(long, value_name = "D")]
    dir: Option<PathBuf>,
    /// Seconds per append run.
    #[arg(long, value_name = "S", default_value_t = 3.0)]
    seconds: f64,
    /// Concurrent appenders (default: 64 under always, 2 otherwise).
    #[arg(long, value_name = "T")]
    threads: Option<usize>,
    /// What the appenders are: `tasks` on a 2-thread Tokio runtime (how
    /// the server appends) or OS `threads` (each blocked in its wait).
    #[arg(long, value_name = "KIND", default_value = "tasks", value_parser = ["tasks", "threads"])]
    appenders: String,
    /// Payload sizes in bytes.
    #[arg(long, value_delimiter = ',', default_value = "100,4096")]
    sizes: Vec<usize>,
    /// Durability policies: always, interval[:<ms>], never.
    #[arg(long, value_delimiter = ',', default_value = "interval,always,never",
          value_parser = Durability::parse)]
    policies: Vec<Durability>,
    /// Records of the topic the read runs read, per size (0: skip reads).
    #[arg(long, value_name = "N", default_value_t = 200_000)]
    read_records: u64,
    /// MiB written to measure the disk's bandwidth (0: skip).
    #[arg(long, value_name = "MIB", default_value_t = 512)]
    disk_mib: usize,
    /// Print one JSON document at the end instead of tables.
    #[arg(long)]
    json: bool,
}

/// Throughput of one append run.
#[derive(Clone, Debug, Serialize)]
struct Figures {
    threads: usize,
    appends: u64,
    seconds: f64,
    appends_per_sec: f64,
    /// Payload bytes per second / 10^6.
    mb_per_sec: f64,
    fsyncs: u64,
}

/// One size × policy.
#[derive(Clone, Debug, Serialize)]
struct AppendRow {
    size: usize,
    policy: &'static str,
    figures: Figures,
    /// `mb_per_sec` as a percentage of the disk's sequential bandwidth.
    disk_percent: Option<f64>,
    /// Under `always`: one thread, one fsync per append.
    baseline: Option<Figures>,
    /// `appends_per_sec` over the baseline's.
    group_commit_speedup: Option<f64>,
}

/// One read run.
#[derive(Clone, Debug, Serialize)]
struct ReadRow {
    size: usize,
    /// `memory` (the tail holds every record) or `disk` (a 1-record tail).
    from: &'static str,
    records: u64,
    seconds: f64,
    records_per_sec: f64,
    mb_per_sec: f64,
    /// Share of the reads the log answered from memory.
    memory_share: f64,
}

/// Everything `--json` prints.
#[derive(Serialize)]
struct Report {
    machine: Machine,
    seconds_per_run: f64,
    disk: Option<DiskBandwidth>,
    appends: Vec<AppendRow>,
    reads: Vec<ReadRow>,
}

impl Run for LogBenchArgs {
    fn run(self) -> Result<u8, CliError> {
        let run_time = self.validate()?;
        let base = self.dir.clone().unwrap_or_else(|| PathBuf::from("."));
        let scratch = tempfile::Builder::new()
            .prefix("wse-bench-")
            .tempdir_in(&base)
            .map_err(|e| CliError::io(format!("create a directory in {}", base.display()), e))?;
        let mut out = Out::stdout();
        let text = !self.json;
        let mut report = Report {
            machine: Machine::detect(),
            seconds_per_run: self.seconds,
            disk: None,
            appends: Vec::new(),
            reads: Vec::new(),
        };
        if text {
            out.line(format_args!("machine: {}", report.machine))?;
            out.line(format_args!(
                "scratch directory: {} (removed afterwards)",
                scratch.path().display()
            ))?;
            out.flush()?;
        }
        if self.disk_mib > 0 {
            let d = disk::measure(scratch.path(), self.disk_mib)?;
            if text {
                out.line(format_args!(
                    "disk: sequential write of {} MiB + fdatasync: {:.1} MB/s ({:.2} s)",
                    self.disk_mib, d.mb_per_sec, d.seconds
                ))?;
            }
            report.disk = Some(d);
        }

        if text {
            out.line(format_args!(
                "\nappend: one topic, {} s per run, MB/s of payload",
                self.seconds
            ))?;
            out.line(format_args!(
                "{:>6}  {:<10} {:>7}  {:>12}  {:>9}  {:>8}  {:>9}",
                "size", "policy", "threads", "appends/s", "MB/s", "fsyncs", "% of disk"
            ))?;
            out.flush()?;
        }
        for &size in &self.sizes {
            for &policy in &self.policies {
                let row = self.append_row(scratch.path(), size, policy, run_time, &report)?;
                if text {
                    print_append(&mut out, &row)?;
                }
                report.appends.push(row);
            }
        }
        if text {
            print_disk_share(&mut out, &report)?;
        }
        if self.read_records > 0 {
            self.read_section(&mut out, scratch.path(), &mut report)?;
        }
        if self.json {
            out.json_pretty(&report)?;
        }
        out.flush()?;
        let path = scratch.path().to_owned();
        scratch
            .close()
            .map_err(|e| CliError::io(format!("remove {}", path.display()), e))?;
        Ok(0)
    }
}

impl LogBenchArgs {
    /// The read runs, one per size.
    fn read_section(
        &self,
        out: &mut Out,
        scratch: &Path,
        report: &mut Report,
    ) -> Result<(), CliError> {
        let text = !self.json;
        if text {
            out.line(format_args!(
                "\nread: {} records per size, page cache warm",
                self.read_records
            ))?;
            out.line(format_args!(
                "{:>6}  {:<7} {:>12}  {:>9}",
                "size", "from", "records/s", "MB/s"
            ))?;
            out.flush()?;
        }
        for &size in &self.sizes {
            let dir = scratch.join(format!("read-{size}"));
            for row in read_rows(&dir, size, self.read_records)? {
                if text {
                    out.line(format_args!(
                        "{:>6}  {:<7} {:>12.0}  {:>9.1}",
                        row.size, row.from, row.records_per_sec, row.mb_per_sec
                    ))?;
                    out.flush()?;
                }
                report.reads.push(row);
            }
            remove(&dir)?;
        }
        Ok(())
    }

    /// Reject values the runs cannot work with; the duration of a run.
    fn validate(&self) -> Result<Duration, CliError> {
        let run_time = Duration::try_from_secs_f64(self.seconds)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                CliError::Usage(format!("--seconds must be positive, got {}", self.seconds))
            })?;
        if self.threads == Some(0) {
            return Err(CliError::Usage("--threads must be at least 1".into()));
        }
        let max = LogConfig::default().max_record_bytes;
        if let Some(size) = self.sizes.iter().find(|&&s| s > max) {
            return Err(CliError::Usage(format!(
                "--sizes: {size} bytes exceeds the largest record ({max} bytes)"
            )));
        }
        if self.sizes.is_empty() || self.policies.is_empty() {
            return Err(CliError::Usage(
                "--sizes and --policies need at least one value".into(),
            ));
        }
        Ok(run_time)
    }

    /// Run `size` × `policy` (and its baseline under `always`).
    fn append_row(
        &self,
        scratch: &Path,
        size: usize,
        policy: Durability,
        run_time: Duration,
        report: &Report,
    ) -> Result<AppendRow, CliError> {
        let always = policy == Durability::Always;
        let threads = self.threads.unwrap_or(if always { 64 } else { 2 });
        let dir = scratch.join(format!("append-{size}-{}", policy.name()));
        let tasks = self.appenders == "tasks";
        let figures = if tasks {
            append_run_tasks(&dir, size, policy, threads, always, run_time)?
        } else {
            append_run(&dir, size, policy, threads, always, run_time)?
        };
        remove(&dir)?;
        let baseline = if always {
            let dir = scratch.join(format!("append-{size}-baseline"));
            let b = append_run(&dir, size, policy, 1, true, run_time)?;
            remove(&dir)?;
            Some(b)
        } else {
            None
        };
        Ok(AppendRow {
            size,
            policy: policy.name(),
            disk_percent: report
                .disk
                .as_ref()
                .map(|d| 100.0 * figures.mb_per_sec / d.mb_per_sec.max(1e-9)),
            group_commit_speedup: baseline
                .as_ref()
                .map(|b| figures.appends_per_sec / b.appends_per_sec.max(1e-9)),
            baseline,
            figures,
        })
    }
}

/// `tasks` appenders on a 2-worker Tokio runtime, on a fresh log in `dir`
/// for `run_time`; each awaits its every append's visibility when
/// `wait_each` (as the server's sessions would), and otherwise yields now
/// and then so the others run.
fn append_run_tasks(
    dir: &Path,
    size: usize,
    durability: Durability,
    tasks: usize,
    wait_each: bool,
    run_time: Duration,
) -> Result<Figures, CliError> {
    let log = Arc::new(Log::open(
        dir,
        LogConfig {
            durability,
            ..LogConfig::default()
        },
    )?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::io("start the benchmark runtime", e))?;
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let (log, stop) = (log.clone(), stop.clone());
            let payload = vec![b'x'; size];
            runtime.spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let a = log.append_with(TOPIC, RecordKind::Message, size, |_, buf| {
                        buf.extend_from_slice(&payload)
                    })?;
                    if wait_each {
                        a.visible().await?;
                    } else if n.is_multiple_of(64) {
                        tokio::task::yield_now().await;
                    }
                    n += 1;
                }
                Ok::<u64, CliError>(n)
            })
        })
        .collect();
    std::thread::sleep(run_time);
    stop.store(true, Ordering::Relaxed);
    let counts = runtime.block_on(async {
        let mut counts = Vec::with_capacity(handles.len());
        for h in handles {
            counts.push(
                h.await
                    .map_err(|_| CliError::Bench("an appender task panicked".into()))??,
            );
        }
        Ok::<_, CliError>(counts)
    })?;
    finish_run(&log, start, &counts, size)
}

/// `threads` appenders on a fresh log in `dir` for `run_time`; each waits
/// for its every append when `wait_each`. The time includes the final
/// flush (records still queued for the writer count as not yet done).
fn append_run(
    dir: &Path,
    size: usize,
    durability: Durability,
    threads: usize,
    wait_each: bool,
    run_time: Duration,
) -> Result<Figures, CliError> {
    let log = Log::open(
        dir,
        LogConfig {
            durability,
            ..LogConfig::default()
        },
    )?;
    let payload = vec![b'x'; size];
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let counts = std::thread::scope(|s| {
        let appender = || -> Result<u64, CliError> {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let a = log.append_with(TOPIC, RecordKind::Message, size, |_, buf| {
                    buf.extend_from_slice(&payload)
                })?;
                if wait_each {
                    a.wait()?;
                }
                n += 1;
            }
            Ok(n)
        };
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(appender)).collect();
        std::thread::sleep(run_time);
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(CliError::Bench("an appender thread panicked".into())))
            })
            .collect::<Result<Vec<u64>, CliError>>()
    })?;
    finish_run(&log, start, &counts, size)
}

/// Flush and close the log of a run that started at `start` and whose
/// appenders made `counts` appends of `size` bytes each; the run's figures.
/// The time includes the flush: records still queued count as not done.
fn finish_run(log: &Log, start: Instant, counts: &[u64], size: usize) -> Result<Figures, CliError> {
    log.flush()?;
    let seconds = start.elapsed().as_secs_f64();
    let fsyncs = log.stats().fsyncs;
    log.close()?;
    let appends: u64 = counts.iter().sum();
    Ok(Figures {
        threads: counts.len(),
        appends,
        seconds,
        appends_per_sec: appends as f64 / seconds,
        mb_per_sec: (appends as f64 * size as f64) / seconds / 1e6,
        fsyncs,
    })
}

/// Fill a topic in `dir` with `records` records of `size` bytes, read it
/// all from the memory tail, then reopen with a 1-record tail and read it
/// all from the segment files.
fn read_rows(dir: &Path, size: usize, records: u64) -> Result<[ReadRow; 2], CliError> {
    let n = usize::try_from(records)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| CliError::Usage(format!("--read-records {records} is not usable")))?;
    let memory = fill_and_read_memory(dir, size, n)?;
    let disk = read_disk(dir, size)?;
    Ok([memory, disk])
}

/// Fill the topic with `n` records, with a tail that holds them all, and
/// read them back from memory. The log is closed and dropped (its lock
/// released) when this returns.
fn fill_and_read_memory(dir: &Path, size: usize, n: usize) -> Result<ReadRow, CliError> {
    let per_record = size + HEADER_LEN + 64; // + the tail's own bookkeeping
    let tail = TailConfig {
        records_per_topic: n,
        memory_budget: n
            .saturating_mul(per_record)
            .max(TailConfig::default().memory_budget),
        ..TailConfig::default()
    };
    let log = Log::open(dir, read_config(tail))?;
    let payload = vec![b'y'; size];
    let mut last = None;
    for _ in 0..n {
        last = Some(log.append_with(TOPIC, RecordKind::Message, size, |_, b| {
            b.extend_from_slice(&payload)
        })?);
    }
    if let Some(a) = last {
        a.wait()?;
    }
    log.flush()?;
    let row = read_all(&log, size, "memory")?;
    log.close()?;
    Ok(row)
}

/// Reopen the filled topic with a 1-record tail and read it from disk.
fn read_disk(dir: &Path, size: usize) -> Result<ReadRow, CliError> {
    let log = Log::open(
        dir,
        read_config(TailConfig {
            records_per_topic: 1,
            ..TailConfig::default()
        }),
    )?;
    let row = read_all(&log, size, "disk")?;
    log.close()?;
    Ok(row)
}

fn read_config(tail: TailConfig) -> LogConfig {
    LogConfig {
        durability: Durability::Never,
        tail,
        ..LogConfig::default()
    }
}

/// Read every record of the bench topic, in pages of the default limits.
fn read_all(log: &Log, size: usize, from: &'static str) -> Result<ReadRow, CliError> {
    let pos = log
        .position(TOPIC)
        .ok_or_else(|| CliError::Bench(format!("topic {TOPIC:?} missing after filling it")))?;
    let before = log.stats();
    let start = Instant::now();
    let mut offset = pos.first_offset;
    let mut records = 0u64;
    while offset < pos.next_offset {
        let batch = log.read(
            TOPIC,
            Position::new(pos.epoch, offset),
            ReadLimits::default(),
        )?;
        if batch.records.is_empty() {
            break;
        }
        records += batch.records.len() as u64;
        offset = batch.next_offset;
    }
    let seconds = start.elapsed().as_secs_f64().max(1e-9);
    let after = log.stats();
    let tail_reads = after.tail_reads - before.tail_reads;
    let disk_reads = after.disk_reads - before.disk_reads;
    Ok(ReadRow {
        size,
        from,
        records,
        seconds,
        records_per_sec: records as f64 / seconds,
        mb_per_sec: (records * size as u64) as f64 / seconds / 1e6,
        memory_share: tail_reads as f64 / (tail_reads + disk_reads).max(1) as f64,
    })
}

fn remove(dir: &Path) -> Result<(), CliError> {
    std::fs::remove_dir_all(dir).map_err(|e| CliError::io(format!("remove {}", dir.display()), e))
}

fn print_append(out: &mut Out, row: &AppendRow) -> Result<(), CliError> {
    let f = &row.figures;
    let share = row
        .disk_percent
        .map_or_else(|| "-".to_owned(), |p| format!("{p:.1}%"));
    out.line(format_args!(
        "{:>6}  {:<10} {:>7}  {:>12.0}  {:>9.1}  {:>8}  {:>9}",
        row.size, row.policy, f.threads, f.appends_per_sec, f.mb_per_sec, f.fsyncs, share
    ))?;
    if let (Some(b), Some(x)) = (&row.baseline, row.group_commit_speedup) {
        out.line(format_args!(
            "{:>6}  {:<10} {:>7}  {:>12.0}  {:>9.1}  {:>8}  group commit: {x:.1}x the baseline",
            "", "baseline", b.threads, b.appends_per_sec, b.mb_per_sec, b.fsyncs
        ))?;
    }
    out.flush()
}

/// The 4 KiB rows against the disk's bandwidth, the headline figure.
fn print_disk_share(out: &mut Out, report: &Report) -> Result<(), CliError> {
    let shares: Vec<String> = report
        .appends
        .iter()
        .filter(|r| r.size == 4096)
        .filter_map(|r| r.disk_percent.map(|p| format!("{} {p:.1}%", r.policy)))
        .collect();
    if let Some(d) = &report.disk
        && !shares.is_empty()
    {
        out.line(format_args!(
            "4 KiB appends vs the disk's {:.1} MB/s sequential write: {}",
            d.mb_per_sec,
            shares.join(", ")
        ))?;
    }
    Ok(())
}
