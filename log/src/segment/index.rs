//! The sparse offset index of a segment.
//!
//! One entry per `index_interval_bytes` of records maps an offset to the
//! byte position of its record, so a read seeks close to its start instead
//! of scanning the segment. The index is only a hint: every entry is checked
//! against the record it points to, and a missing or damaged index is
//! rebuilt from the segment.
//!
//! ```text
//! header:  /* magic */ 8 "WSE-IDX\0" + /* version */ 2 + /* reserved */ 2
//!          + /* base offset */ 8 + /* header crc */ 4          = 24 bytes
//! entry:   /* offset - base */ 4 + /* byte position */ 4        = 8 bytes
//! ```

/// First bytes of every index file.
pub const INDEX_MAGIC: [u8; 8] = *b"WSE-IDX\0";
/// Size of the index file header.
pub const INDEX_HEADER_LEN: usize = 24;
/// Size of one index entry.
pub const ENTRY_LEN: usize = 8;

/// One index entry: the record of offset `base + rel_offset` starts at
/// byte `position` of the segment file.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// Offset relative to the segment's base offset.
    pub rel_offset: u32,
    /// Byte position of the record in the segment file.
    pub position: u32,
}

impl IndexEntry {
    /// The entry's encoded bytes.
    pub fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut b = [0u8; ENTRY_LEN];
        b[..4].copy_from_slice(&self.rel_offset.to_le_bytes());
        b[4..].copy_from_slice(&self.position.to_le_bytes());
        b
    }
}

/// Why an index file cannot be used as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// The header is short, has a bad magic, version or CRC.
    #[error("bad index header")]
    BadHeader,
    /// The index belongs to another segment.
    #[error("index is for base offset {found}, segment starts at {expected}")]
    WrongBase {
        /// Base offset in the index header.
        found: u64,
        /// Base offset of the segment.
        expected: u64,
    },
    /// Entry `n` is not after the one before it, or lies beyond the data.
    #[error("index entry {0} is out of order or out of range")]
    BadEntry(usize),
    /// The file ends inside an entry.
    #[error("index ends inside an entry")]
    TrailingBytes,
}

/// The encoded index header for a segment starting at `base`.
pub fn encode_header(base: u64) -> [u8; INDEX_HEADER_LEN] {
    let mut b = [0u8; INDEX_HEADER_LEN];
    b[..8].copy_from_slice(&INDEX_MAGIC);
    b[8..10].copy_from_slice(&1u16.to_le_bytes());
    b[12..20].copy_from_slice(&base.to_le_bytes());
    let crc = crc32fast::hash(&b[..20]);
    b[20..24].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Parse an index file for the segment at `base` whose data ends at byte
/// `segment_len`. Entries must be strictly increasing and inside the data.
pub fn parse(
    buf: &[u8],
    base: u64,
    segment_len: u64,
) -> Result<Vec<IndexEntry>, (Vec<IndexEntry>, IndexError)> {
    if buf.len() < INDEX_HEADER_LEN
        || buf[..8] != INDEX_MAGIC
        || buf[8..10] != 1u16.to_le_bytes()
        || crc32fast::hash(&buf[..20]) != u32::from_le_bytes(buf[20..24].try_into().expect("4"))
    {
        return Err((Vec::new(), IndexError::BadHeader));
    }
    let found = u64::from_le_bytes(buf[12..20].try_into().expect("8"));
    if found != base {
        return Err((
            Vec::new(),
            IndexError::WrongBase {
                found,
                expected: base,
            },
        ));
    }
    let body = &buf[INDEX_HEADER_LEN..];
    let mut entries = Vec::with_capacity(body.len() / ENTRY_LEN);
    for (i, chunk) in body.chunks(ENTRY_LEN).enumerate() {
        if chunk.len() < ENTRY_LEN {
            return Err((entries, IndexError::TrailingBytes));
        }
        let e = IndexEntry {
            rel_offset: u32::from_le_bytes(chunk[..4].try_into().expect("4")),
            position: u32::from_le_bytes(chunk[4..].try_into().expect("4")),
        };
        let ordered = entries
            .last()
            .is_none_or(|p: &IndexEntry| e.rel_offset > p.rel_offset && e.position > p.position);
        if !ordered || u64::from(e.position) >= segment_len {
            return Err((entries, IndexError::BadEntry(i)));
        }
        entries.push(e);
    }
    Ok(entries)
}

/// The last entry whose offset is at most `rel_offset`.
pub fn floor(entries: &[IndexEntry], rel_offset: u32) -> Option<IndexEntry> {
    let n = entries.partition_point(|e| e.rel_offset <= rel_offset);
    n.checked_sub(1).map(|i| entries[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(entries: &[IndexEntry]) -> Vec<u8> {
        let mut b = encode_header(100).to_vec();
        for e in entries {
            b.extend_from_slice(&e.encode());
        }
        b
    }

    #[test]
    fn parses_and_finds_floor() {
        let es = [
            IndexEntry {
                rel_offset: 0,
                position: 40,
            },
            IndexEntry {
                rel_offset: 10,
                position: 5000,
            },
        ];
        let parsed = parse(&file(&es), 100, 10_000).unwrap();
        assert_eq!(parsed, es);
        assert_eq!(floor(&parsed, 5).unwrap().position, 40);
        assert_eq!(floor(&parsed, 10).unwrap().position, 5000);
        assert_eq!(floor(&parsed[1..], 5), None);
    }

    #[test]
    fn damage_is_reported_with_the_good_prefix() {
        let es = [
            IndexEntry {
                rel_offset: 0,
                position: 40,
            },
            IndexEntry {
                rel_offset: 10,
                position: 5000,
            },
        ];
        let mut b = file(&es);
        assert_eq!(
            parse(&b, 101, 10_000).unwrap_err().1,
            IndexError::WrongBase {
                found: 100,
                expected: 101
            }
        );
        assert_eq!(parse(&b, 100, 4000).unwrap_err().0, es[..1].to_vec());
        b[3] ^= 1;
        assert_eq!(parse(&b, 100, 10_000).unwrap_err().1, IndexError::BadHeader);
    }
}
