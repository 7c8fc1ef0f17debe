//! What is published for a stored record, and under which id.
//!
//! A server with recovery on stores a message stamped with its position
//! (`{"tp":"chat","e":"6b238eba","o":7,` + the original members). The
//! destination stamps what it stores with its own position, so the replay
//! publishes the text without the stamp ([`wse::protocol::read_stamp`]
//! inverts it exactly). A message stored without a stamp (recovery off) is
//! published as it is. Presence and control records belong to the
//! server's own machinery and are skipped; so is a message a publish
//! cannot carry (not a JSON object, not UTF-8) when the destination is a
//! server.
//!
//! Every published message carries a publish id made of the run and the
//! source position, `replay:<run>:<epoch>:<offset>`, so a record sent again
//! (a retried request, a resumed run) is stored once by a destination whose
//! dedup window still holds its first copy. The run id comes from the
//! checkpoint when resuming; a fresh run gets a new one, so replaying a
//! range twice on purpose is not mistaken for a retry.

use serde_json::value::RawValue;
use wse_log::RecordKind;

use super::source::SourceRecord;

/// A record to publish.
#[derive(Clone, Debug)]
pub(crate) struct Item {
    /// Its source offset.
    pub(crate) offset: u64,
    /// Its append time at the source, microseconds since the Unix epoch.
    pub(crate) timestamp_us: u64,
    /// Its publish id.
    pub(crate) id: String,
    /// The text to publish: the stored message without its stamp.
    pub(crate) text: String,
}

/// Why a record is not published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Skip {
    /// A presence or control record.
    NotMessage,
    /// A message a publish cannot carry (not a JSON object, not UTF-8).
    NotPublishable,
}

/// How stored records become published ones.
#[derive(Clone, Debug)]
pub(crate) struct Converter {
    /// `replay:<run>:<epoch>:` — the id of offset `o` is this and `o`.
    id_prefix: String,
    /// Only JSON objects are publishable (a server destination); a file
    /// or stdout takes any UTF-8 text.
    objects_only: bool,
}

impl Converter {
    /// Ids of run `run` over source epoch `epoch`; `objects_only` for a
    /// server destination.
    pub(crate) fn new(run: &str, epoch: &str, objects_only: bool) -> Self {
        Self {
            id_prefix: format!("replay:{run}:{epoch}:"),
            objects_only,
        }
    }

    /// What to publish for `r`, or why nothing.
    pub(crate) fn convert(&self, r: SourceRecord) -> Result<Item, Skip> {
        if r.kind != RecordKind::Message {
            return Err(Skip::NotMessage);
        }
        let stored = r.text.ok_or(Skip::NotPublishable)?;
        let text = match wse::protocol::read_stamp(&stored) {
            Some((_, unstamped)) => unstamped,
            None => stored,
        };
        if self.objects_only && !is_object(&text) {
            return Err(Skip::NotPublishable);
        }
        Ok(Item {
            offset: r.offset,
            timestamp_us: r.timestamp_us,
            id: format!("{}{}", self.id_prefix, r.offset),
            text,
        })
    }
}

/// Is `text` one JSON object (what a publish carries)?
fn is_object(text: &str) -> bool {
    serde_json::from_str::<&RawValue>(text).is_ok_and(|v| v.get().starts_with('{'))
}

/// A fresh run id: 8 hex digits.
pub(crate) fn new_run_id() -> String {
    format!("{:08x}", rand::random::<u32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: RecordKind, text: &str) -> SourceRecord {
        SourceRecord {
            offset: 7,
            timestamp_us: 1,
            kind,
            text: Some(text.to_owned()),
        }
    }

    #[test]
    fn stamps_come_off_and_other_records_are_skipped() {
        let c = Converter::new("0000abcd", "6b238eba", true);
        let stamped = r#"{"tp":"chat","e":"6b238eba","o":7,"c":"U","t":"m","p":{"z":1,"a":2}}"#;
        let item = c.convert(record(RecordKind::Message, stamped)).unwrap();
        assert_eq!(item.text, r#"{"c":"U","t":"m","p":{"z":1,"a":2}}"#);
        assert_eq!(item.id, "replay:0000abcd:6b238eba:7");
        let plain = r#"{"t":"m"}"#;
        assert_eq!(
            c.convert(record(RecordKind::Message, plain)).unwrap().text,
            plain
        );
        assert_eq!(
            c.convert(record(RecordKind::Presence, "{}")).unwrap_err(),
            Skip::NotMessage
        );
        assert_eq!(
            c.convert(record(RecordKind::Message, "hello")).unwrap_err(),
            Skip::NotPublishable
        );
        let lines = Converter::new("r", "e", false);
        assert_eq!(
            lines
                .convert(record(RecordKind::Message, "hello"))
                .unwrap()
                .text,
            "hello"
        );
    }
}
