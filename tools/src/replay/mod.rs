//! `wse replay`: publish a range of one topic's history again, into a live
//! server (HTTP or WebSocket), stdout or a file.
//!
//! A [`source::Source`] (a data directory, or a server's HTTP API) gives
//! the topic's records from the range's start; [`message::Converter`]
//! turns each into the text to publish (the recovery stamp taken off) and
//! its publish id, or skips it; [`pacing::Pacer`] says when it may go; the
//! records travel in [`destination::Batch`]es to a
//! [`destination::Destination`], which reports the batches it
//! acknowledged. Acknowledged batches move the checkpoint and the progress
//! display. Reading runs as a task of its own, ahead of the destination by
//! at most `--in-flight` batches, so reading and sending overlap.
//!
//! # Layout
//!
//! - this file: the command's flags and the loop that joins the parts.
//! - `range`: `--from/--to` and `--since/--until`, resolved to offsets.
//! - `source`: a data directory or a server's records endpoint.
//! - `message`: stored record -> published text and id, or a skip.
//! - `pacing`: `--speed` and `--max-rate`.
//! - `destination`: HTTP batches, WebSocket publishes, JSON lines.
//! - `checkpoint`: `--checkpoint`/`--resume`, written atomically.
//! - `progress`: the progress bar or lines, on stderr.
//! - `http`: the HTTP client of the source and the destination.
//! - `error`: [`ReplayError`].

mod checkpoint;
mod destination;
mod error;
mod http;
mod message;
mod pacing;
mod progress;
mod range;
mod source;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::time::Instant;

pub use error::ReplayError;

use checkpoint::{Checkpoint, CheckpointWriter};
use destination::{Acked, Batch, Destination, Lines, ToHttp, ToWs};
use message::{Converter, Item};
use pacing::Pacer;
use progress::{Counts, Progress};
use range::{Bound, Range, TimeArg};
use source::{Source, SourceTopic};

use crate::Run;
use crate::error::CliError;

/// Publish a range of a topic's history again: into a live server (its
/// HTTP batch API, or a WebSocket client connection), or as JSON lines on
/// stdout (the default) or in a file.
///
/// Stored messages are published without the recovery stamp a server put
/// on them (the destination stamps its own position); presence and control
/// records are skipped and counted. Every message carries a publish id
/// derived from its source position (`replay:<run>:<epoch>:<offset>`), so a
/// destination server stores it once even when it is sent again (a retry,
/// or a `--resume` after a crash) while its first copy is in the server's
/// dedup window (`cluster.dedup_window` ids per topic on a single node).
#[derive(Debug, clap::Args)]
pub(crate) struct ReplayArgs {
    /// The topic to replay.
    topic: String,

    /// Read from this data directory (safe beside the server running on
    /// it: no lock is taken).
    #[arg(long, value_name = "DIR", required_unless_present = "source_http")]
    data_dir: Option<PathBuf>,
    /// Read from a running server's HTTP API instead (http://host:port).
    #[arg(long, value_name = "URL", conflicts_with = "data_dir")]
    source_http: Option<String>,
    /// The source server's admin token.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "WSE_SOURCE_TOKEN",
        hide_env_values = true
    )]
    source_token: Option<String>,

    /// First offset to replay [default: the oldest stored].
    #[arg(long, value_name = "OFFSET", conflicts_with = "since")]
    from: Option<u64>,
    /// Offset to stop before (excluded, as in first..next) [default: the
    /// topic's next offset when the replay starts].
    #[arg(long, value_name = "OFFSET", conflicts_with = "until")]
    to: Option<u64>,
    /// Start at the first record appended at or after this time: RFC 3339
    /// (2026-01-31T12:00:00Z) or a duration before now (1h, 30m, 90s).
    #[arg(long, value_name = "TIME")]
    since: Option<TimeArg>,
    /// Stop before the first record appended at or after this time (same
    /// forms as --since).
    #[arg(long, value_name = "TIME")]
    until: Option<TimeArg>,

    /// Publish into a server through its HTTP batch API (http://host:port).
    #[arg(long, value_name = "URL", group = "destination")]
    to_http: Option<String>,
    /// The destination server's admin token (--to-http).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "WSE_ADMIN_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// Publish as a WebSocket client (ws://host:port/path); the server must
    /// let clients publish (--client-publish).
    #[arg(long, value_name = "URL", group = "destination")]
    to_ws: Option<String>,
    /// A JWT for --to-ws (sent as Authorization: Bearer).
    #[arg(long, value_name = "JWT", env = "WSE_WS_TOKEN", hide_env_values = true)]
    ws_token: Option<String>,
    /// Write JSON lines to stdout (the default destination).
    #[arg(long, group = "destination")]
    to_stdout: bool,
    /// Append JSON lines to this file.
    #[arg(long, value_name = "PATH", group = "destination")]
    to_file: Option<PathBuf>,
    /// The destination topic [default: the source topic].
    #[arg(long, value_name = "TOPIC")]
    to_topic: Option<String>,

    /// Replay with the original timing between records, this many times
    /// faster (10: ten times faster, 0.5: half speed) [default: as fast as
    /// the destination acknowledges].
    #[arg(long, value_name = "X")]
    speed: Option<f64>,
    /// Records per second at most.
    #[arg(long, value_name = "N")]
    max_rate: Option<f64>,
    /// Records per batch (one HTTP request, or one group of publishes).
    #[arg(long, value_name = "N", default_value_t = 500)]
    batch: usize,
    /// Bytes of message text per batch at most (keep it under the
    /// destination's http_max_body).
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 20)]
    batch_bytes: usize,
    /// Batches read ahead of the destination, and with --to-ws sent and
    /// not yet acknowledged. Keep --batch x --in-flight below the
    /// destination's dedup window (cluster.dedup_window, 10,000 by
    /// default): what was in flight at a crash is sent again on --resume.
    #[arg(long, value_name = "N", default_value_t = 4)]
    in_flight: usize,

    /// Record the last acknowledged source offset in this file (atomic
    /// writes), for --resume.
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// Continue the replay recorded in --checkpoint (its range, run id and
    /// destination topic), from its first unacknowledged offset.
    #[arg(
        long,
        requires = "checkpoint",
        conflicts_with_all = ["from", "to", "since", "until"]
    )]
    resume: bool,
    /// No progress display (the summary line stays).
    #[arg(long, short)]
    quiet: bool,
}

/// What the run does, resolved from the flags and the source.
struct Plan {
    /// The source topic's history.
    topic: SourceTopic,
    /// The whole range (a resumed run: the first run's).
    range: Range,
    /// The first offset this run reads.
    next: u64,
    /// The run id in publish ids.
    run: String,
    /// The destination topic.
    to_topic: String,
}

// Boxed in the command enum: the flags make a large variant.
impl Run for Box<ReplayArgs> {
    fn run(self) -> Result<u8, CliError> {
        self.check()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("wse-replay")
            .enable_all()
            .build()
            .map_err(|e| CliError::io("start the runtime", e))?;
        runtime.block_on((*self).replay())
    }
}

impl ReplayArgs {
    /// Refuse values clap cannot.
    fn check(&self) -> Result<(), CliError> {
        let usage = |m: &str| Err(CliError::Usage(m.to_owned()));
        if self.speed.is_some_and(|s| !(s > 0.0 && s.is_finite())) {
            return usage("--speed must be a number above 0");
        }
        if self.max_rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
            return usage("--max-rate must be a number above 0");
        }
        if self.batch == 0 || self.in_flight == 0 || self.batch_bytes == 0 {
            return usage("--batch, --batch-bytes and --in-flight must be at least 1");
        }
        if self.to_http.is_some() && self.token.is_none() {
            return usage("--to-http needs the server's admin token: --token (or WSE_ADMIN_TOKEN)");
        }
        if self.source_http.is_some() && self.source_token.is_none() {
            return usage(
                "--source-http needs the server's admin token: --source-token (or WSE_SOURCE_TOKEN)",
            );
        }
        Ok(())
    }

    /// The destination as the checkpoint names it.
    fn destination_name(&self) -> String {
        if let Some(u) = &self.to_http {
            u.clone()
        } else if let Some(u) = &self.to_ws {
            u.clone()
        } else if let Some(p) = &self.to_file {
            format!("file:{}", p.display())
        } else {
            "stdout".into()
        }
    }

    async fn replay(self) -> Result<u8, CliError> {
        let mut source = match (&self.data_dir, &self.source_http) {
            (Some(dir), _) => Source::dir(dir.clone())?,
            (None, Some(url)) => Source::http(url, self.source_token.as_deref())?,
            (None, None) => return Err(CliError::Usage("--data-dir or --source-http".into())),
        };
        let topic = source.topic(&self.topic).await?;
        let plan = self.plan(&mut source, topic).await?;
        if plan.next >= plan.range.to {
            eprintln!(
                "replay: nothing left: offsets {}..{} of {:?} are all acknowledged",
                plan.range.from, plan.range.to, plan.topic.name
            );
            return Ok(0);
        }
        let mut dest = self.open_destination(&plan.to_topic).await?;
        let writer = match &self.checkpoint {
            Some(path) => Some(CheckpointWriter::start(
                path.clone(),
                self.checkpoint_of(&plan, &source),
            )?),
            None => None,
        };
        let converter = Converter::new(&plan.run, &plan.topic.epoch, dest.objects_only());
        let (tx, rx) = mpsc::channel(self.in_flight);
        let reader = Reader {
            source,
            topic: plan.topic.clone(),
            next: plan.next,
            to: plan.range.to,
            converter,
            pacer: Pacer::new(self.speed, self.max_rate),
            batch: self.batch,
            batch_bytes: self.batch_bytes,
            tx,
        };
        let reading = tokio::spawn(reader.run());
        let sent = self.send_all(rx, &mut dest, writer.as_ref(), &plan).await;
        // The destination's failure first: the reader only stopped for it.
        let (counts, elapsed) = match sent {
            Ok(done) => done,
            Err(e) => {
                reading.abort();
                if let Some(w) = writer {
                    let _ = w.finish().await;
                }
                return Err(e);
            }
        };
        let read = reading
            .await
            .map_err(|e| CliError::io("read the source", std::io::Error::other(e)))?;
        if let Some(w) = writer {
            w.finish().await?;
        }
        read?;
        self.summary(&plan, counts, elapsed);
        Ok(0)
    }

    /// The range, run id and starting offset: from the checkpoint when
    /// resuming (checked against the source), else from the flags.
    async fn plan(&self, source: &mut Source, topic: SourceTopic) -> Result<Plan, CliError> {
        let to_topic = self.to_topic.clone().unwrap_or_else(|| self.topic.clone());
        let path = self.checkpoint.as_deref();
        if self.resume {
            let path = path.unwrap_or_else(|| std::path::Path::new(""));
            let c = Checkpoint::load(path)?;
            let mismatch = |what: &str, was: &str, now: &str| {
                CliError::from(ReplayError::Checkpoint {
                    path: path.to_owned(),
                    why: format!("it is for {what} {was:?}, not {now:?}"),
                })
            };
            if c.topic != topic.name {
                return Err(mismatch("topic", &c.topic, &topic.name));
            }
            if c.destination != self.destination_name() {
                return Err(mismatch(
                    "destination",
                    &c.destination,
                    &self.destination_name(),
                ));
            }
            if self.to_topic.as_ref().is_some_and(|t| *t != c.to_topic) {
                return Err(mismatch("destination topic", &c.to_topic, &to_topic));
            }
            if c.epoch != topic.epoch {
                return Err(ReplayError::HistoryChanged {
                    topic: topic.name,
                    was: c.epoch,
                    now: topic.epoch,
                }
                .into());
            }
            if c.next < topic.first_offset && c.next < c.to {
                return Err(ReplayError::BeforeRetention {
                    topic: topic.name,
                    from: c.next,
                    first: topic.first_offset,
                }
                .into());
            }
            return Ok(Plan {
                topic,
                range: Range {
                    from: c.from,
                    to: c.to,
                },
                next: c.next,
                run: c.run,
                to_topic: c.to_topic,
            });
        }
        if let Some(p) = path.filter(|p| p.exists()) {
            return Err(ReplayError::Checkpoint {
                path: p.to_owned(),
                why: "exists already: continue it with --resume, or remove it to start over".into(),
            }
            .into());
        }
        let start = self.from.map(Bound::Offset).or(self.since.map(Bound::Time));
        let end = self.to.map(Bound::Offset).or(self.until.map(Bound::Time));
        let range = range::resolve(source, &topic, start, end, SystemTime::now()).await?;
        Ok(Plan {
            topic,
            range,
            next: range.from,
            run: message::new_run_id(),
            to_topic,
        })
    }

    /// The checkpoint of `plan` before anything is sent.
    fn checkpoint_of(&self, plan: &Plan, source: &Source) -> Checkpoint {
        Checkpoint {
            version: 1,
            source: source.name(),
            topic: plan.topic.name.clone(),
            epoch: plan.topic.epoch.clone(),
            destination: self.destination_name(),
            to_topic: plan.to_topic.clone(),
            run: plan.run.clone(),
            from: plan.range.from,
            to: plan.range.to,
            next: plan.next,
        }
    }

    async fn open_destination(&self, to_topic: &str) -> Result<Destination, CliError> {
        if let Some(url) = &self.to_http {
            return Ok(Destination::Http(
                ToHttp::connect(url, self.token.as_deref(), to_topic).await?,
            ));
        }
        if let Some(url) = &self.to_ws {
            let ws = ToWs::connect(url, self.ws_token.as_deref(), to_topic, self.in_flight).await?;
            return Ok(Destination::Ws(Box::new(ws)));
        }
        if let Some(path) = &self.to_file {
            return Ok(Destination::Lines(Lines::file(
                path,
                to_topic,
                self.checkpoint.is_some(),
            )?));
        }
        Ok(Destination::Lines(Lines::stdout(to_topic)))
    }

    /// Hand every batch to `dest` and account for what it acknowledges;
    /// the counts and the time from the first record to the last ack.
    async fn send_all(
        &self,
        mut rx: mpsc::Receiver<Batch>,
        dest: &mut Destination,
        writer: Option<&CheckpointWriter>,
        plan: &Plan,
    ) -> Result<(Counts, Duration), CliError> {
        let mut progress = Progress::new(plan.range.to - plan.next, self.quiet);
        let mut counts = Counts::default();
        let mut acked = Vec::new();
        let mut first: Option<Instant> = None;
        let mut account = |acked: &mut Vec<Acked>, progress: &mut Progress| {
            let Some(last) = acked.last() else { return };
            if let Some(w) = writer {
                w.advance(last.end);
            }
            for a in acked.drain(..) {
                counts.published += a.published;
                counts.not_messages += a.not_messages;
                counts.not_publishable += a.not_publishable;
            }
            progress.update(counts, self.quiet);
        };
        let result = async {
            while let Some(batch) = rx.recv().await {
                first.get_or_insert_with(Instant::now);
                dest.submit(batch, &mut acked).await?;
                account(&mut acked, &mut progress);
            }
            dest.finish(&mut acked).await?;
            account(&mut acked, &mut progress);
            Ok::<_, CliError>(())
        }
        .await;
        progress.finish();
        result?;
        let elapsed = first.map_or(Duration::ZERO, |t| t.elapsed());
        Ok((counts, elapsed))
    }

    /// The last line: what was replayed, where, how fast.
    fn summary(&self, plan: &Plan, counts: Counts, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        eprintln!(
            "replay: {} records of {:?} (offsets {}..{}, epoch {}) to {} topic {:?}: \
             {} published, {} presence/control skipped, {} not publishable skipped, \
             in {secs:.3} s ({:.0} records/s)",
            counts.done(),
            plan.topic.name,
            plan.next,
            plan.range.to,
            plan.topic.epoch,
            self.destination_name(),
            plan.to_topic,
            counts.published,
            counts.not_messages,
            counts.not_publishable,
            counts.done() as f64 / secs.max(1e-9),
        );
    }
}

/// The reading side: source records to paced batches, ahead of the
/// destination by at most the channel's capacity.
struct Reader {
    /// Where records come from.
    source: Source,
    /// The topic's history being read.
    topic: SourceTopic,
    /// The next offset to read.
    next: u64,
    /// The offset to stop before.
    to: u64,
    /// Record -> item or skip.
    converter: Converter,
    /// When each record may go.
    pacer: Pacer,
    /// Records per batch at most.
    batch: usize,
    /// Text bytes per batch at most.
    batch_bytes: usize,
    /// To the destination's side.
    tx: mpsc::Sender<Batch>,
}

impl Reader {
    /// Read `next..to` into batches. Ends early, without error, when the
    /// destination's side is gone (it reports its own error).
    async fn run(mut self) -> Result<(), CliError> {
        let mut batch = Batch::default();
        while self.next < self.to {
            let page = self.source.read(&self.topic, self.next).await?;
            if page.first().is_none_or(|r| r.offset != self.next) {
                // Retention removed them, or damage the reader skipped.
                return Err(CliError::Removed {
                    topic: self.topic.name.clone(),
                    from: self.next,
                });
            }
            for r in page {
                if r.offset >= self.to {
                    break;
                }
                let offset = r.offset;
                match self.converter.convert(r) {
                    Ok(item) => {
                        if !self.add(&mut batch, item).await {
                            return Ok(());
                        }
                    }
                    Err(message::Skip::NotMessage) => batch.not_messages += 1,
                    Err(message::Skip::NotPublishable) => batch.not_publishable += 1,
                }
                batch.end = offset + 1;
                self.next = offset + 1;
            }
        }
        if batch.end > 0 {
            let _ = self.tx.send(batch).await;
        }
        Ok(())
    }

    /// Add `item` to `batch` when it is due, sending the batch first when
    /// it is full or the item must wait. False when the receiver is gone.
    async fn add(&mut self, batch: &mut Batch, item: Item) -> bool {
        let mut due = None;
        if self.pacer.is_paced() {
            let at = self.pacer.due(item.timestamp_us, Instant::now());
            due = (at > Instant::now()).then_some(at);
        }
        let full = batch.items.len() >= self.batch
            || (!batch.items.is_empty() && batch.bytes + item.text.len() > self.batch_bytes);
        let has_any = !batch.items.is_empty() || batch.not_messages + batch.not_publishable > 0;
        if (full || due.is_some()) && has_any && self.tx.send(std::mem::take(batch)).await.is_err()
        {
            return false;
        }
        if let Some(at) = due {
            tokio::time::sleep_until(at).await;
        }
        batch.bytes += item.text.len();
        batch.items.push(item);
        true
    }
}
