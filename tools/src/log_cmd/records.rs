//! How `dump` and `tail` print records, and the paged read both use.

use base64::Engine as _;
use serde::Serialize;
use wse_log::{DirReader, ReadLimits, Record, TopicSummary};

use crate::error::CliError;
use crate::output::{Out, rfc3339_us};

/// Records per read: bounds memory whatever the topic's size.
const PAGE: usize = 500;

/// The output format of records.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum RecordFormat {
    /// One JSON object per line: offset, epoch, timestamp, kind, payload.
    #[default]
    Json,
    /// The payload bytes followed by a newline.
    Raw,
}

/// A record as one line of JSON. The payload is a JSON string when it is
/// valid UTF-8 (`payload`), else standard base64 (`payload_base64`).
#[derive(Serialize)]
struct RecordJson<'a> {
    offset: u64,
    epoch: String,
    timestamp: String,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_base64: Option<String>,
}

impl<'a> RecordJson<'a> {
    fn new(r: &'a Record) -> Self {
        let bytes = r.payload_ref();
        let (payload, payload_base64) = match std::str::from_utf8(bytes) {
            Ok(s) => (Some(s), None),
            Err(_) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
            ),
        };
        Self {
            offset: r.offset(),
            epoch: r.epoch().to_string(),
            timestamp: rfc3339_us(r.timestamp_us()),
            kind: r.kind().as_str(),
            payload,
            payload_base64,
        }
    }
}

/// Print `record` in `format`.
pub fn print(out: &mut Out, record: &Record, format: RecordFormat) -> Result<(), CliError> {
    match format {
        RecordFormat::Json => out.json_line(&RecordJson::new(record)),
        RecordFormat::Raw => {
            out.bytes(record.payload_ref())?;
            out.bytes(b"\n")
        }
    }
}

/// Print the records of `topic` from `*next` up to (not including) `to`,
/// at most `limit` of them, reading [`PAGE`] records at a time. `*next`
/// follows the output: after an error it is the first offset not printed.
///
/// Damage ends the output with [`wse_log::LogError::Damaged`] after every
/// record before it was printed (the reader returns what it read before
/// the damage, and the error on the next read); `wse log verify` lists
/// every damaged range and where reading resumes.
pub fn print_range(
    out: &mut Out,
    reader: &DirReader,
    topic: &TopicSummary,
    next: &mut u64,
    to: u64,
    limit: Option<u64>,
    format: RecordFormat,
) -> Result<(), CliError> {
    let mut left = limit.unwrap_or(u64::MAX);
    while *next < to && left > 0 {
        let want = PAGE.min(usize::try_from(left).unwrap_or(PAGE));
        let page = reader.read(topic, *next, ReadLimits::records(want))?;
        if page.is_empty() {
            return Err(CliError::Removed {
                topic: topic.name.clone(),
                from: *next,
            });
        }
        let before = *next;
        for r in page.iter().take_while(|r| r.offset() < to).take(want) {
            print(out, r, format)?;
            *next = r.offset() + 1;
            left -= 1;
        }
        if *next == before {
            break; // nothing before `to`: never spin
        }
    }
    Ok(())
}
