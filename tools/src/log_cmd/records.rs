//! How `dump` and `tail` print records, and the paged read both use.

use base64::Engine as _;
use wse_log::{DirReader, ReadLimits, Record, RecordKind, TopicSummary};

use super::archive::embeddable_json;

use crate::error::CliError;
use crate::output::{Out, rfc3339_us};

/// Records per read: bounds memory whatever the topic's size.
const PAGE: usize = 500;

/// The output format of records.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum RecordFormat {
    /// One JSON object per line: offset, epoch, timestamp, kind, and the
    /// payload as `json` (a JSON payload as it is), `presence` (decoded),
    /// `text` or `base64`.
    #[default]
    Json,
    /// The payload bytes followed by a newline.
    Raw,
}

/// `record` as one line of JSON: offset, epoch, timestamp, kind, and the
/// payload in the first of these forms that fits it:
///
/// - `json`: a JSON payload on one line, embedded as it is (its bytes);
/// - `presence`: a presence record, decoded;
/// - `text`: other UTF-8, as a JSON string;
/// - `base64`: anything else, standard base64.
fn json_line(record: &Record) -> Result<String, CliError> {
    let bytes = record.payload_ref();
    let mut line = format!(
        "{{\"offset\":{},\"epoch\":\"{}\",\"timestamp\":\"{}\",\"kind\":\"{}\",",
        record.offset(),
        record.epoch(),
        rfc3339_us(record.timestamp_us()),
        record.kind().as_str()
    );
    let presence = (record.kind() == RecordKind::Presence)
        .then(|| wse::presence::stream::decode(bytes))
        .flatten()
        .and_then(|op| serde_json::to_string(&op).ok());
    let encode = |e: serde_json::Error| CliError::io("encode JSON", std::io::Error::other(e));
    if let Some(op) = presence {
        line.push_str("\"presence\":");
        line.push_str(&op);
    } else if let Some(json) = embeddable_json(bytes) {
        line.push_str("\"json\":");
        line.push_str(json);
    } else if let Ok(text) = std::str::from_utf8(bytes) {
        line.push_str("\"text\":");
        line.push_str(&serde_json::to_string(text).map_err(encode)?);
    } else {
        line.push_str("\"base64\":\"");
        line.push_str(&base64::engine::general_purpose::STANDARD.encode(bytes));
        line.push('"');
    }
    line.push('}');
    Ok(line)
}

/// Print `record` in `format`.
pub fn print(out: &mut Out, record: &Record, format: RecordFormat) -> Result<(), CliError> {
    match format {
        RecordFormat::Json => out.line(format_args!("{}", json_line(record)?)),
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
