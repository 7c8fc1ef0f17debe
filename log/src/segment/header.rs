//! The segment file header: what makes a segment self-describing.
//!
//! ```text
//! /* magic        */ 8   "WSE-SEG\0"
//! /* version      */ 2   format version (1)
//! /* checksum     */ 1   checksum algorithm of the records (1 = CRC-32 IEEE)
//! /* flags        */ 1   reserved, 0
//! /* epoch        */ 4   history of every record in the segment
//! /* base offset  */ 8   offset of the segment's first record
//! /* created      */ 8   creation time, microseconds since the Unix epoch
//! /* topic length */ 2
//! /* topic        */ n   the topic name, UTF-8
//! /* header crc   */ 4   CRC-32 of all bytes above
//! ```
//!
//! Integers are little-endian. Records follow the header directly.

use crate::position::Epoch;

/// First bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"WSE-SEG\0";
/// The segment format this code writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Checksum algorithm id for CRC-32 (IEEE), as computed by crc32fast.
pub const CHECKSUM_CRC32: u8 = 1;
/// Header bytes before the topic name.
const FIXED: usize = 8 + 2 + 1 + 1 + 4 + 8 + 8 + 2;

/// The decoded header of a segment file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The topic every record of the segment belongs to.
    pub topic: String,
    /// The history every record of the segment belongs to.
    pub epoch: Epoch,
    /// Offset of the first record.
    pub base_offset: u64,
    /// When the segment was created, microseconds since the Unix epoch.
    pub created_us: u64,
}

/// Why a segment header is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The file is shorter than its header.
    #[error("segment header truncated ({0} bytes)")]
    Truncated(usize),
    /// Not a WSE segment.
    #[error("not a WSE segment (bad magic)")]
    BadMagic,
    /// Written by a newer WSE.
    #[error("unsupported segment format version {0}")]
    UnsupportedVersion(u16),
    /// Unknown record checksum algorithm.
    #[error("unsupported checksum algorithm {0}")]
    UnsupportedChecksum(u8),
    /// The header's own CRC does not match.
    #[error("segment header CRC mismatch")]
    BadCrc,
    /// The stored topic name is not UTF-8.
    #[error("segment header topic is not UTF-8")]
    BadTopic,
}

impl SegmentHeader {
    /// The encoded header.
    pub fn encode(&self) -> Vec<u8> {
        let topic = self.topic.as_bytes();
        let mut b = Vec::with_capacity(FIXED + topic.len() + 4);
        b.extend_from_slice(&SEGMENT_MAGIC);
        b.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        b.push(CHECKSUM_CRC32);
        b.push(0);
        b.extend_from_slice(&self.epoch.0.to_le_bytes());
        b.extend_from_slice(&self.base_offset.to_le_bytes());
        b.extend_from_slice(&self.created_us.to_le_bytes());
        b.extend_from_slice(&(topic.len() as u16).to_le_bytes());
        b.extend_from_slice(topic);
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    /// Bytes needed to decode a header whose first bytes are `prefix`, if
    /// `prefix` is long enough to tell.
    pub fn needed_len(prefix: &[u8]) -> Option<usize> {
        (prefix.len() >= FIXED).then(|| {
            FIXED + u16::from_le_bytes([prefix[FIXED - 2], prefix[FIXED - 1]]) as usize + 4
        })
    }

    /// Decode the header at the start of `buf`; returns it and its length.
    pub fn decode(buf: &[u8]) -> Result<(SegmentHeader, usize), HeaderError> {
        if buf.len() >= 8 && buf[..8] != SEGMENT_MAGIC {
            return Err(HeaderError::BadMagic);
        }
        let len = Self::needed_len(buf).ok_or(HeaderError::Truncated(buf.len()))?;
        if buf.len() < len {
            return Err(HeaderError::Truncated(buf.len()));
        }
        let stored = u32::from_le_bytes(buf[len - 4..len].try_into().expect("4 bytes"));
        if crc32fast::hash(&buf[..len - 4]) != stored {
            return Err(HeaderError::BadCrc);
        }
        let version = u16::from_le_bytes([buf[8], buf[9]]);
        if version != FORMAT_VERSION {
            return Err(HeaderError::UnsupportedVersion(version));
        }
        if buf[10] != CHECKSUM_CRC32 {
            return Err(HeaderError::UnsupportedChecksum(buf[10]));
        }
        let u32_at = |at: usize| u32::from_le_bytes(buf[at..at + 4].try_into().expect("4 bytes"));
        let u64_at = |at: usize| u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"));
        let topic = std::str::from_utf8(&buf[FIXED..len - 4])
            .map_err(|_| HeaderError::BadTopic)?
            .to_owned();
        Ok((
            SegmentHeader {
                topic,
                epoch: Epoch(u32_at(12)),
                base_offset: u64_at(16),
                created_us: u64_at(24),
            },
            len,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> SegmentHeader {
        SegmentHeader {
            topic: "chat/room é".into(),
            epoch: Epoch(7),
            base_offset: 1234,
            created_us: 99,
        }
    }

    #[test]
    fn round_trips() {
        let h = header();
        let bytes = h.encode();
        let (d, len) = SegmentHeader::decode(&bytes).unwrap();
        assert_eq!(d, h);
        assert_eq!(len, bytes.len());
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let bytes = header().encode();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x5a;
            assert!(SegmentHeader::decode(&b).is_err(), "flip at {i} undetected");
        }
    }

    #[test]
    fn short_input_is_truncated() {
        let bytes = header().encode();
        assert_eq!(
            SegmentHeader::decode(&bytes[..20]),
            Err(HeaderError::Truncated(20))
        );
        assert_eq!(
            SegmentHeader::decode(&bytes[..bytes.len() - 1]),
            Err(HeaderError::Truncated(bytes.len() - 1))
        );
    }
}
