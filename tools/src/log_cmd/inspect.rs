//! `wse log inspect DIR TOPIC [--json]`: one topic in detail.

use serde::Serialize;
use wse_log::{Retention, SegmentSummary, TopicSummary};

use super::meta_snapshot::{self, RetentionSetting};
use super::{DirArg, find_topic, open_reader, record_count};
use crate::Run;
use crate::error::CliError;
use crate::output::{Out, escaped, rfc3339_us_opt};

/// Show a topic: epoch, first and last offset, record count, each segment
/// (offsets, bytes, record times, corruption), total bytes, retention, and
/// what loading it found (torn tails, corruption).
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    #[command(flatten)]
    dir: DirArg,
    /// The topic name.
    topic: String,
    /// TOPIC names one of WSE's own streams, as `topics --all` shows it
    /// (`presence:lobby`, `node`).
    #[arg(long)]
    internal: bool,
    /// One JSON document.
    #[arg(long)]
    json: bool,
}

/// The topic as `inspect --json` prints it.
#[derive(Serialize)]
struct InspectJson {
    name: String,
    epoch: String,
    first_offset: u64,
    /// `None` when the topic holds no record.
    last_offset: Option<u64>,
    next_offset: u64,
    records: u64,
    bytes: u64,
    dir: String,
    segments: Vec<SegmentJson>,
    retention: RetentionSetting,
    /// Torn tails and corruption found while loading (not repaired).
    findings: Vec<String>,
}

/// One segment as `inspect --json` prints it.
#[derive(Serialize)]
struct SegmentJson {
    path: String,
    base_offset: u64,
    end_offset: u64,
    records: u64,
    bytes: u64,
    first_time: Option<String>,
    last_time: Option<String>,
    corrupt_at: Option<u64>,
}

impl From<&SegmentSummary> for SegmentJson {
    fn from(s: &SegmentSummary) -> Self {
        Self {
            path: s.path.display().to_string(),
            base_offset: s.base_offset,
            end_offset: s.end_offset,
            records: s.end_offset.saturating_sub(s.base_offset),
            bytes: s.bytes,
            first_time: rfc3339_us_opt(s.first_ts_us),
            last_time: rfc3339_us_opt(s.last_ts_us),
            corrupt_at: s.corrupt_at,
        }
    }
}

impl InspectJson {
    fn new(t: &TopicSummary, retention: RetentionSetting) -> Self {
        Self {
            name: t.name.clone(),
            epoch: t.epoch.to_string(),
            first_offset: t.first_offset,
            last_offset: t.next_offset.checked_sub(1),
            next_offset: t.next_offset,
            records: record_count(t),
            bytes: t.bytes,
            dir: t.dir.display().to_string(),
            segments: t.segments.iter().map(SegmentJson::from).collect(),
            retention,
            findings: t.findings.iter().map(ToString::to_string).collect(),
        }
    }
}

impl Run for InspectArgs {
    fn run(mut self) -> Result<u8, CliError> {
        self.topic = super::stored_name(&self.topic, self.internal);
        let reader = open_reader(&self.dir.dir)?;
        let topic = find_topic(&reader, &self.dir.dir, &self.topic)?;
        let retention = meta_snapshot::topic_retention(&self.dir.dir, &self.topic);
        let view = InspectJson::new(&topic, retention);
        let mut out = Out::stdout();
        if self.json {
            out.json_pretty(&view)?;
        } else {
            print_text(&mut out, &view)?;
        }
        out.flush()?;
        Ok(0)
    }
}

fn print_text(out: &mut Out, v: &InspectJson) -> Result<(), CliError> {
    let last = v
        .last_offset
        .map_or_else(|| "none".to_owned(), |o| o.to_string());
    out.line(format_args!("topic:        {}", escaped(&v.name)))?;
    out.line(format_args!("directory:    {}", v.dir))?;
    out.line(format_args!("epoch:        {}", v.epoch))?;
    out.line(format_args!("first offset: {}", v.first_offset))?;
    out.line(format_args!("last offset:  {last}"))?;
    out.line(format_args!("records:      {}", v.records))?;
    out.line(format_args!("bytes:        {}", v.bytes))?;
    out.line(format_args!(
        "retention:    {}",
        retention_text(&v.retention)
    ))?;
    out.line(format_args!("segments:     {}", v.segments.len()))?;
    for s in &v.segments {
        let corrupt = s
            .corrupt_at
            .map(|at| format!("  CORRUPT at byte {at}"))
            .unwrap_or_default();
        out.line(format_args!(
            "  base {:>10}  end {:>10}  bytes {:>11}  first {}  last {}{corrupt}",
            s.base_offset,
            s.end_offset,
            s.bytes,
            s.first_time.as_deref().unwrap_or("-"),
            s.last_time.as_deref().unwrap_or("-"),
        ))?;
    }
    if !v.findings.is_empty() {
        out.line(format_args!("findings:"))?;
        for f in &v.findings {
            out.line(format_args!("  {f}"))?;
        }
    }
    Ok(())
}

fn retention_text(r: &RetentionSetting) -> String {
    match r {
        RetentionSetting::Default => "default".to_owned(),
        RetentionSetting::Unavailable { reason } => format!("unavailable ({reason})"),
        RetentionSetting::Override { retention } => limits_text(retention),
    }
}

/// `max_bytes 1073741824, max_age 7days, max_records unlimited`.
fn limits_text(r: &Retention) -> String {
    let bytes = r
        .max_bytes
        .map_or_else(|| "unlimited".to_owned(), |b| b.to_string());
    let age = r.max_age.map_or_else(
        || "unlimited".to_owned(),
        |d| humantime::format_duration(d).to_string(),
    );
    let records = r
        .max_records
        .map_or_else(|| "unlimited".to_owned(), |n| n.to_string());
    format!("max_bytes {bytes}, max_age {age}, max_records {records}")
}
