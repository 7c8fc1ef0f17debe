//! The export format: a range of one topic's history, written by `wse log
//! export` and read by `wse log import`, in two forms with one header.
//!
//! Both forms carry everything a record is (offset, append time, kind,
//! payload bytes), so an import recreates the history exactly: the same
//! epoch, offsets, timestamps and bytes. Both end with a trailer holding
//! the record count, the offset after the last record and a CRC-32 of every
//! byte before the trailer, so a truncated or altered file is refused
//! before anything is imported. docs/OPERATIONS.md ("Export and import")
//! documents the format for other tools.
//!
//! - **JSON lines** (for people and scripts): a header line, one line per
//!   record, a trailer line. A payload that is a JSON document on one line
//!   is embedded as it is (`"json"`, its bytes unchanged); other UTF-8 is a
//!   string (`"text"`), anything else base64 (`"base64"`).
//! - **Binary** (for speed): the magic `WSEXPORT`, a version, the header as
//!   JSON, then length-prefixed records and the trailer, little-endian.
//!
//! Readers take the form from the first bytes, and refuse a version they
//! do not know (a newer exporter's file is not half understood).

use std::io::{self, BufRead, Read, Write};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use wse_log::{Epoch, Record, RecordKind};

/// The format version this code writes and reads.
pub const VERSION: u32 = 1;
/// The first bytes of the binary form.
const MAGIC: &[u8; 8] = b"WSEXPORT";
/// The `format` member of the header in both forms.
const FORMAT_NAME: &str = "wse-export";
/// Largest header the binary reader accepts: a header is a topic name and
/// a few numbers.
const MAX_HEADER: u32 = 64 * 1024;
/// Binary record tags.
const TAG_RECORD: u8 = 1;
const TAG_END: u8 = 0;

/// Which form a file has.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Form {
    /// JSON lines.
    #[default]
    Jsonl,
    /// The compact binary form.
    Binary,
}

/// What an export holds: which history, from where, made when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always `wse-export`.
    pub format: String,
    /// The format version ([`VERSION`]).
    pub version: u32,
    /// The topic.
    pub topic: String,
    /// The history's epoch, 8 lowercase hex digits as clients see it.
    #[serde(with = "epoch_hex")]
    pub epoch: Epoch,
    /// Offset of the first record (of the range exported).
    pub first_offset: u64,
    /// When the export was made, RFC 3339.
    pub created_at: String,
}

impl Header {
    /// A header for `topic` at `epoch` from `first_offset`, made now.
    pub fn new(topic: &str, epoch: Epoch, first_offset: u64, created_at: String) -> Self {
        Self {
            format: FORMAT_NAME.to_owned(),
            version: VERSION,
            topic: topic.to_owned(),
            epoch,
            first_offset,
            created_at,
        }
    }

    fn check(self) -> Result<Self, ArchiveError> {
        if self.format != FORMAT_NAME {
            return Err(ArchiveError::NotAnExport(format!(
                "header names format {:?}",
                self.format
            )));
        }
        if self.version != VERSION {
            return Err(ArchiveError::Version(self.version));
        }
        Ok(self)
    }
}

/// An epoch as clients see it: 8 lowercase hex digits.
mod epoch_hex {
    use serde::{Deserialize, Deserializer, Serializer};
    use wse_log::Epoch;

    pub fn serialize<S: Serializer>(e: &Epoch, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(e)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Epoch, D::Error> {
        let text = <&str>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One record as an export carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchivedRecord {
    /// Its offset.
    pub offset: u64,
    /// Its append time, microseconds since the Unix epoch.
    pub timestamp_us: u64,
    /// What it carries.
    pub kind: RecordKind,
    /// Its payload, unchanged.
    pub payload: Vec<u8>,
}

/// The end of an export: what a reader checks the body against.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Trailer {
    /// Always true: tells the trailer line from a record line.
    end: bool,
    records: u64,
    next_offset: u64,
    /// CRC-32 (IEEE) of every byte before the trailer, 8 hex digits.
    crc32: String,
}

/// Why an export could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Reading or writing the file failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The file is not an export at all.
    #[error("not a WSE export: {0}")]
    NotAnExport(String),
    /// An export of a format version this build does not read.
    #[error("export format version {0} is not supported (this build reads version {VERSION})")]
    Version(u32),
    /// The file is an export, but damaged or cut short.
    #[error("damaged export: {0}")]
    Damaged(String),
}

fn damaged(what: impl Into<String>) -> ArchiveError {
    ArchiveError::Damaged(what.into())
}

/// A writer that keeps the CRC-32 of everything written through it.
struct Summed<W> {
    inner: W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Summed<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.crc.update(bytes);
        self.inner.write_all(bytes)
    }
}

/// Writes an export record by record.
pub struct ArchiveWriter<W: Write> {
    out: Summed<W>,
    form: Form,
    records: u64,
    next_offset: u64,
    line: Vec<u8>,
}

impl<W: Write> ArchiveWriter<W> {
    /// Start an export in `form` with `header`.
    pub fn new(inner: W, form: Form, header: &Header) -> Result<Self, ArchiveError> {
        let mut out = Summed {
            inner,
            crc: crc32fast::Hasher::new(),
        };
        let json = serde_json::to_vec(header).map_err(io::Error::other)?;
        match form {
            Form::Jsonl => {
                out.put(&json)?;
                out.put(b"\n")?;
            }
            Form::Binary => {
                out.put(MAGIC)?;
                out.put(&VERSION.to_le_bytes())?;
                out.put(&(json.len() as u32).to_le_bytes())?;
                out.put(&json)?;
            }
        }
        Ok(Self {
            out,
            form,
            records: 0,
            next_offset: header.first_offset,
            line: Vec::new(),
        })
    }

    /// Add the next record (offsets are dense: the caller writes them in
    /// order).
    pub fn record(&mut self, r: &Record) -> Result<(), ArchiveError> {
        let payload = r.payload_ref();
        match self.form {
            Form::Jsonl => {
                self.line.clear();
                write!(
                    self.line,
                    "{{\"offset\":{},\"timestamp_us\":{},\"kind\":\"{}\",",
                    r.offset(),
                    r.timestamp_us(),
                    r.kind().as_str()
                )?;
                match embeddable_json(payload) {
                    Some(json) => {
                        self.line.extend_from_slice(b"\"json\":");
                        self.line.extend_from_slice(json.as_bytes());
                    }
                    None => match std::str::from_utf8(payload) {
                        Ok(text) => {
                            self.line.extend_from_slice(b"\"text\":");
                            serde_json::to_writer(&mut self.line, text)
                                .map_err(io::Error::other)?;
                        }
                        Err(_) => {
                            self.line.extend_from_slice(b"\"base64\":\"");
                            let b64 = base64::engine::general_purpose::STANDARD.encode(payload);
                            self.line.extend_from_slice(b64.as_bytes());
                            self.line.push(b'"');
                        }
                    },
                }
                self.line.extend_from_slice(b"}\n");
                self.out.put(&self.line)?;
            }
            Form::Binary => {
                let mut head = [0u8; 22];
                head[0] = TAG_RECORD;
                head[1..9].copy_from_slice(&r.offset().to_le_bytes());
                head[9..17].copy_from_slice(&r.timestamp_us().to_le_bytes());
                head[17] = r.kind() as u8;
                head[18..22].copy_from_slice(&(payload.len() as u32).to_le_bytes());
                self.out.put(&head)?;
                self.out.put(payload)?;
            }
        }
        self.records += 1;
        self.next_offset = r.offset() + 1;
        Ok(())
    }

    /// Write the trailer; returns the inner writer (not flushed) and the
    /// number of records written.
    pub fn finish(self) -> Result<(W, u64), ArchiveError> {
        let Self {
            mut out,
            form,
            records,
            next_offset,
            ..
        } = self;
        let crc = out.crc.clone().finalize();
        match form {
            Form::Jsonl => {
                let trailer = Trailer {
                    end: true,
                    records,
                    next_offset,
                    crc32: format!("{crc:08x}"),
                };
                let mut line = serde_json::to_vec(&trailer).map_err(io::Error::other)?;
                line.push(b'\n');
                out.inner.write_all(&line)?;
            }
            Form::Binary => {
                let mut end = [0u8; 21];
                end[0] = TAG_END;
                end[1..9].copy_from_slice(&records.to_le_bytes());
                end[9..17].copy_from_slice(&next_offset.to_le_bytes());
                end[17..21].copy_from_slice(&crc.to_le_bytes());
                out.inner.write_all(&end)?;
            }
        }
        Ok((out.inner, records))
    }
}

/// `payload` as a JSON document that can stand in a JSON line as it is:
/// valid JSON, no line break, no surrounding whitespace (which the embedded
/// form would not keep).
pub(super) fn embeddable_json(payload: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(payload).ok()?;
    if text.is_empty() || text.contains(['\n', '\r']) || text.trim() != text {
        return None;
    }
    serde_json::from_str::<&RawValue>(text)
        .ok()
        .filter(|raw| raw.get() == text)
        .map(|_| text)
}

/// A record line of the JSON lines form, as read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordLine<'a> {
    offset: u64,
    timestamp_us: u64,
    kind: String,
    #[serde(borrow, default)]
    json: Option<&'a RawValue>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    base64: Option<String>,
}

/// Reads an export, checking it as it goes; the caller learns it is whole
/// only when [`ArchiveReader::next_record`] returns `Ok(None)`.
pub struct ArchiveReader<R: BufRead> {
    input: R,
    form: Form,
    header: Header,
    crc: crc32fast::Hasher,
    records: u64,
    next_offset: u64,
    done: bool,
    line: Vec<u8>,
}

impl<R: BufRead> ArchiveReader<R> {
    /// Read the header of an export in either form.
    pub fn open(mut input: R) -> Result<Self, ArchiveError> {
        let mut crc = crc32fast::Hasher::new();
        let starts_binary = input.fill_buf()?.starts_with(MAGIC);
        let (form, header) = if starts_binary {
            let mut fixed = [0u8; 16];
            input.read_exact(&mut fixed)?;
            crc.update(&fixed);
            let version = u32::from_le_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]);
            if version != VERSION {
                return Err(ArchiveError::Version(version));
            }
            let len = u32::from_le_bytes([fixed[12], fixed[13], fixed[14], fixed[15]]);
            if len > MAX_HEADER {
                return Err(damaged(format!("header of {len} bytes")));
            }
            let mut json = vec![0u8; len as usize];
            input.read_exact(&mut json).map_err(cut_short)?;
            crc.update(&json);
            let header: Header =
                serde_json::from_slice(&json).map_err(|e| damaged(format!("header: {e}")))?;
            (Form::Binary, header)
        } else {
            let mut line = Vec::new();
            input
                .by_ref()
                .take(u64::from(MAX_HEADER))
                .read_until(b'\n', &mut line)?;
            if !line.ends_with(b"\n") {
                return Err(ArchiveError::NotAnExport(
                    "no header line (an export starts with a JSON header or WSEXPORT)".into(),
                ));
            }
            crc.update(&line);
            let header: Header = serde_json::from_slice(&line).map_err(|e| {
                ArchiveError::NotAnExport(format!("the first line is not an export header: {e}"))
            })?;
            (Form::Jsonl, header)
        };
        let header = header.check()?;
        Ok(Self {
            input,
            form,
            next_offset: header.first_offset,
            header,
            crc,
            records: 0,
            done: false,
            line: Vec::new(),
        })
    }

    /// The export's header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The next record, or `None` after a trailer that matches what was
    /// read (count, next offset, checksum). Records must be dense from the
    /// header's first offset.
    pub fn next_record(&mut self) -> Result<Option<ArchivedRecord>, ArchiveError> {
        if self.done {
            return Ok(None);
        }
        let record = match self.form {
            Form::Jsonl => self.next_line()?,
            Form::Binary => self.next_binary()?,
        };
        let Some(record) = record else {
            self.done = true;
            return Ok(None);
        };
        if record.offset != self.next_offset {
            return Err(damaged(format!(
                "record {} holds offset {} where {} was expected",
                self.records, record.offset, self.next_offset
            )));
        }
        self.records += 1;
        self.next_offset += 1;
        Ok(Some(record))
    }

    fn next_line(&mut self) -> Result<Option<ArchivedRecord>, ArchiveError> {
        self.line.clear();
        self.input.read_until(b'\n', &mut self.line)?;
        if !self.line.ends_with(b"\n") {
            return Err(damaged("cut short: no trailer line"));
        }
        let text = std::str::from_utf8(&self.line)
            .map_err(|_| damaged(format!("line {} is not UTF-8", self.records + 2)))?;
        if text.starts_with("{\"end\"") {
            let trailer: Trailer =
                serde_json::from_str(text).map_err(|e| damaged(format!("trailer: {e}")))?;
            self.check_trailer(trailer.records, trailer.next_offset, &trailer.crc32)?;
            self.expect_eof()?;
            return Ok(None);
        }
        let line: RecordLine<'_> = serde_json::from_str(text)
            .map_err(|e| damaged(format!("line {}: {e}", self.records + 2)))?;
        let kind: RecordKind = line.kind.parse().map_err(damaged)?;
        let payload = match (line.json, line.text, line.base64) {
            (Some(raw), None, None) => raw.get().as_bytes().to_vec(),
            (None, Some(text), None) => text.into_bytes(),
            (None, None, Some(b64)) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| damaged(format!("line {}: base64: {e}", self.records + 2)))?,
            _ => {
                return Err(damaged(format!(
                    "line {}: a record has exactly one of json, text, base64",
                    self.records + 2
                )));
            }
        };
        let record = ArchivedRecord {
            offset: line.offset,
            timestamp_us: line.timestamp_us,
            kind,
            payload,
        };
        self.crc.update(&self.line);
        Ok(Some(record))
    }

    fn next_binary(&mut self) -> Result<Option<ArchivedRecord>, ArchiveError> {
        let mut tag = [0u8; 1];
        self.input.read_exact(&mut tag).map_err(cut_short)?;
        match tag[0] {
            TAG_RECORD => {
                let mut head = [0u8; 21];
                self.input.read_exact(&mut head).map_err(cut_short)?;
                let offset = u64::from_le_bytes(head[0..8].try_into().unwrap_or_default());
                let timestamp_us = u64::from_le_bytes(head[8..16].try_into().unwrap_or_default());
                let kind = RecordKind::from_byte(head[16])
                    .ok_or_else(|| damaged(format!("record kind byte {}", head[16])))?;
                let len = u32::from_le_bytes(head[17..21].try_into().unwrap_or_default());
                if len as usize > wse_log::LogConfig::default().max_record_bytes {
                    return Err(damaged(format!("a record of {len} bytes")));
                }
                let mut payload = vec![0u8; len as usize];
                self.input.read_exact(&mut payload).map_err(cut_short)?;
                self.crc.update(&tag);
                self.crc.update(&head);
                self.crc.update(&payload);
                Ok(Some(ArchivedRecord {
                    offset,
                    timestamp_us,
                    kind,
                    payload,
                }))
            }
            TAG_END => {
                let mut end = [0u8; 20];
                self.input.read_exact(&mut end).map_err(cut_short)?;
                let records = u64::from_le_bytes(end[0..8].try_into().unwrap_or_default());
                let next = u64::from_le_bytes(end[8..16].try_into().unwrap_or_default());
                let crc = u32::from_le_bytes(end[16..20].try_into().unwrap_or_default());
                self.check_trailer(records, next, &format!("{crc:08x}"))?;
                self.expect_eof()?;
                Ok(None)
            }
            other => Err(damaged(format!("unknown tag byte {other}"))),
        }
    }

    fn check_trailer(&self, records: u64, next: u64, crc32: &str) -> Result<(), ArchiveError> {
        let sum = format!("{:08x}", self.crc.clone().finalize());
        if records != self.records || next != self.next_offset {
            return Err(damaged(format!(
                "the trailer counts {records} records up to offset {next}; the file holds {} up to {}",
                self.records, self.next_offset
            )));
        }
        if crc32 != sum {
            return Err(damaged(format!(
                "checksum {sum} where the trailer says {crc32}"
            )));
        }
        Ok(())
    }

    fn expect_eof(&mut self) -> Result<(), ArchiveError> {
        if self.input.fill_buf()?.is_empty() {
            Ok(())
        } else {
            Err(damaged("bytes after the trailer"))
        }
    }
}

fn cut_short(e: io::Error) -> ArchiveError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        damaged("cut short")
    } else {
        ArchiveError::Io(e)
    }
}
