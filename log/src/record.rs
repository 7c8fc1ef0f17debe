//! The record encoding: one byte layout on disk, in the memory tail and on
//! the peer wire, so a record is encoded once and shipped as it is.
//!
//! ```text
//! /* crc       */ 4   CRC-32 (IEEE, crc32fast) of every byte after this field
//! /* len       */ 4   bytes after this field: BODY_FIXED + payload length
//! /* offset    */ 8   the record's offset in its topic
//! /* epoch     */ 4   the history the record belongs to
//! /* timestamp */ 8   append time, microseconds since the Unix epoch
//! /* kind      */ 1   1 message, 2 presence, 3 control
//! /* payload   */ len - BODY_FIXED
//! ```
//!
//! All integers are little-endian. A record is valid only when its length
//! is plausible, its CRC matches and its kind is known; anything else is a
//! torn write or corruption and is never returned as data.

use bytes::{BufMut, Bytes, BytesMut};

use crate::position::{Epoch, Position};

/// Bytes before the payload: crc + len + offset + epoch + timestamp + kind.
pub const HEADER_LEN: usize = 4 + 4 + 8 + 4 + 8 + 1;
/// Bytes the `len` field counts besides the payload.
const BODY_FIXED: usize = 8 + 4 + 8 + 1;
/// Bytes that precede the part the `len` field counts.
const PREFIX: usize = 4 + 4;

/// What a record carries, so readers can tell the streams of a topic apart.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RecordKind {
    /// An application message (a topic broadcast).
    Message = 1,
    /// A presence operation.
    Presence = 2,
    /// A control record (markers written by WSE itself).
    Control = 3,
}

impl RecordKind {
    /// The kind for its on-disk byte, if known.
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Message),
            2 => Some(Self::Presence),
            3 => Some(Self::Control),
            _ => None,
        }
    }

    /// The kind's name as the tools print it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::Presence => "presence",
            Self::Control => "control",
        }
    }
}

impl std::str::FromStr for RecordKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "message" => Ok(Self::Message),
            "presence" => Ok(Self::Presence),
            "control" => Ok(Self::Control),
            other => Err(format!(
                "unknown record kind {other:?} (message, presence, control)"
            )),
        }
    }
}

/// One encoded record, shared without copying (`Bytes`).
///
/// Cloning a record is a reference-count increment; the payload is a view
/// into the same allocation.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    bytes: Bytes,
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("offset", &self.offset())
            .field("epoch", &self.epoch())
            .field("kind", &self.kind())
            .field("payload_len", &self.payload_len())
            .finish()
    }
}

impl Record {
    /// The record's offset in its topic.
    pub fn offset(&self) -> u64 {
        read_u64(&self.bytes, 8)
    }

    /// The history the record belongs to.
    pub fn epoch(&self) -> Epoch {
        Epoch(read_u32(&self.bytes, 16))
    }

    /// The record's position (epoch and offset).
    pub fn position(&self) -> Position {
        Position::new(self.epoch(), self.offset())
    }

    /// Append time in microseconds since the Unix epoch.
    pub fn timestamp_us(&self) -> u64 {
        read_u64(&self.bytes, 20)
    }

    /// What the record carries.
    pub fn kind(&self) -> RecordKind {
        // Records are validated when built or decoded, so the byte is known.
        RecordKind::from_byte(self.bytes[28]).unwrap_or(RecordKind::Control)
    }

    /// The payload as a shared view (no copy).
    pub fn payload(&self) -> Bytes {
        self.bytes.slice(HEADER_LEN..)
    }

    /// The payload bytes.
    pub fn payload_ref(&self) -> &[u8] {
        &self.bytes[HEADER_LEN..]
    }

    /// The payload length in bytes.
    pub fn payload_len(&self) -> usize {
        self.bytes.len() - HEADER_LEN
    }

    /// The whole encoded record, as written to disk and shipped to peers.
    pub fn encoded(&self) -> &Bytes {
        &self.bytes
    }

    /// Size of the encoded record in bytes.
    pub fn encoded_len(&self) -> usize {
        self.bytes.len()
    }

    /// Decode and validate the record at the start of `buf`.
    ///
    /// Returns the record (a view into `buf`) or why the bytes are not a
    /// valid record. `max_payload` bounds the length field so a corrupt
    /// length never causes a huge read.
    pub fn decode(buf: &Bytes, max_payload: usize) -> Result<Record, DecodeError> {
        let len = check(buf, max_payload)?;
        Ok(Record {
            bytes: buf.slice(..PREFIX + len),
        })
    }

    /// Encode a record whose payload is written by `fill` into the buffer.
    ///
    /// The payload is written in place after a reserved header, so callers
    /// that build the payload from the record's position (the server
    /// stamps `tp`/`e`/`o` into it) never copy it.
    pub(crate) fn build(
        position: Position,
        timestamp_us: u64,
        kind: RecordKind,
        capacity_hint: usize,
        fill: impl FnOnce(&mut BytesMut),
    ) -> Record {
        let mut buf = BytesMut::with_capacity(HEADER_LEN + capacity_hint);
        buf.put_bytes(0, PREFIX);
        buf.put_u64_le(position.offset);
        buf.put_u32_le(position.epoch.0);
        buf.put_u64_le(timestamp_us);
        buf.put_u8(kind as u8);
        fill(&mut buf);
        seal(&mut buf);
        Record {
            bytes: buf.freeze(),
        }
    }

    /// A record from a payload slice (tests build expected records).
    #[cfg(test)]
    pub(crate) fn from_parts(
        position: Position,
        timestamp_us: u64,
        kind: RecordKind,
        payload: &[u8],
    ) -> Record {
        Self::build(position, timestamp_us, kind, payload.len(), |b| {
            b.extend_from_slice(payload)
        })
    }
}

/// Fill in the length and CRC of a record whose header was reserved.
fn seal(buf: &mut BytesMut) {
    let len = (buf.len() - PREFIX) as u32;
    buf[4..8].copy_from_slice(&len.to_le_bytes());
    let crc = crc32fast::hash(&buf[4..]);
    buf[0..4].copy_from_slice(&crc.to_le_bytes());
}

/// Why bytes are not a valid record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the record needs: the end of the data, or a torn
    /// write.
    #[error("truncated record: {available} of {needed} bytes present")]
    Truncated {
        /// Bytes the record needs (header, or header plus declared length).
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// The length field is impossible (too small or above the limit).
    #[error("implausible record length {0}")]
    BadLength(u32),
    /// The stored CRC does not match the bytes.
    #[error("CRC mismatch: stored {stored:08x}, computed {computed:08x}")]
    BadCrc {
        /// CRC stored in the record.
        stored: u32,
        /// CRC computed over the record's bytes.
        computed: u32,
    },
    /// The kind byte is not a known kind.
    #[error("unknown record kind {0}")]
    BadKind(u8),
}

impl DecodeError {
    /// True when the bytes simply end early (a torn tail or data still
    /// being written), as opposed to bytes that are wrong.
    pub fn is_truncation(&self) -> bool {
        matches!(self, Self::Truncated { .. })
    }
}

/// Validate the record at the start of `buf`; returns the `len` field.
fn check(buf: &[u8], max_payload: usize) -> Result<usize, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Err(DecodeError::Truncated {
            needed: HEADER_LEN,
            available: buf.len(),
        });
    }
    let len_field = read_u32(buf, 4);
    let len = len_field as usize;
    if len < BODY_FIXED || len - BODY_FIXED > max_payload {
        return Err(DecodeError::BadLength(len_field));
    }
    let total = PREFIX + len;
    if buf.len() < total {
        return Err(DecodeError::Truncated {
            needed: total,
            available: buf.len(),
        });
    }
    let stored = read_u32(buf, 0);
    let computed = crc32fast::hash(&buf[4..total]);
    if stored != computed {
        return Err(DecodeError::BadCrc { stored, computed });
    }
    let kind = buf[28];
    if RecordKind::from_byte(kind).is_none() {
        return Err(DecodeError::BadKind(kind));
    }
    Ok(len)
}

/// The total encoded size declared by the header at the start of `buf`, if
/// the header is present (no validation beyond that).
pub(crate) fn declared_len(buf: &[u8]) -> Option<usize> {
    (buf.len() >= PREFIX).then(|| PREFIX + read_u32(buf, 4) as usize)
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn read_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(payload: &[u8]) -> Record {
        Record::from_parts(
            Position::new(Epoch(0xdead_beef), 42),
            1_700_000_000_000_000,
            RecordKind::Presence,
            payload,
        )
    }

    #[test]
    fn encodes_and_decodes_every_field() {
        let r = sample(b"hello");
        assert_eq!(r.encoded_len(), HEADER_LEN + 5);
        let d = Record::decode(r.encoded(), 1 << 20).unwrap();
        assert_eq!(d.offset(), 42);
        assert_eq!(d.epoch(), Epoch(0xdead_beef));
        assert_eq!(d.timestamp_us(), 1_700_000_000_000_000);
        assert_eq!(d.kind(), RecordKind::Presence);
        assert_eq!(&d.payload()[..], b"hello");
        assert_eq!(d, r);
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let r = sample(b"some payload");
        let bytes = r.encoded().to_vec();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                let res = Record::decode(&Bytes::from(b), 1 << 20);
                assert!(res.is_err(), "flip at byte {i} bit {bit} not detected");
            }
        }
    }

    #[test]
    fn truncation_is_told_apart_from_corruption() {
        let r = sample(b"abc");
        let short = r.encoded().slice(..r.encoded_len() - 1);
        assert!(Record::decode(&short, 1 << 20).unwrap_err().is_truncation());
        let tiny = r.encoded().slice(..3);
        assert!(Record::decode(&tiny, 1 << 20).unwrap_err().is_truncation());
        assert_eq!(
            Record::decode(r.encoded(), 2).unwrap_err(),
            DecodeError::BadLength((BODY_FIXED + 3) as u32)
        );
    }

    #[test]
    fn zeroed_bytes_are_not_a_record() {
        let zeros = Bytes::from(vec![0u8; 64]);
        assert_eq!(
            Record::decode(&zeros, 1 << 20).unwrap_err(),
            DecodeError::BadLength(0)
        );
    }
}
