//! Finding where readable history resumes after damage.
//!
//! A bad record's length field cannot be trusted, so the next record is
//! found by its framing and CRC instead: every byte position after the bad
//! spot is tried until a record of the topic's epoch decodes with an offset
//! past the damage (`cursor::resync_where`). When the rest of the damaged
//! segment holds none, the following segments are tried from their first
//! record on, which covers a segment cut short, a missing segment (its
//! offsets lie between one segment's end and the next one's base) and a
//! quarantined one.
//!
//! The search is deterministic: a read that later starts at the offset it
//! found meets the same damage first (its index entry may lie before it),
//! resynchronizes to the same place, and reads on from there.

use std::io;

use crate::read::{DiskRead, Seek};
use crate::record::Record;
use crate::segment::cursor::resync_where;
use crate::storage::StorageFile;

/// Where reading can go on after damage.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Resume {
    /// First readable offset after the damage.
    pub offset: u64,
    /// Byte position of its record when it is in the damaged segment.
    pub position: Option<u64>,
}

/// The first readable offset after damage that makes `missing` unreadable
/// at byte `at` of `seek`'s segment (`file`, unless its header is bad), up
/// to the head `to`; `find` looks up the segment holding an offset.
pub(crate) fn resume(
    read: &DiskRead<'_>,
    file: Option<&dyn StorageFile>,
    seek: &Seek,
    at: u64,
    missing: u64,
    to: u64,
    find: &dyn Fn(u64) -> Option<Seek>,
) -> io::Result<Option<Resume>> {
    if let Some(file) = file
        && let Some((p, r)) = first_intact(read, file, seek, at, missing, to)?
    {
        return Ok(Some(Resume {
            offset: r.offset(),
            position: Some(p),
        }));
    }
    let mut next = seek.end_offset;
    while next < to {
        let Some(s) = find(next) else { break };
        if s.bad_header.is_none() {
            let f = read.files.get(&s.path)?;
            if let Some((_, r)) = first_intact(read, &*f, &s, s.header_len, missing, to)? {
                return Ok(Some(Resume {
                    offset: r.offset(),
                    position: None,
                }));
            }
        }
        if s.end_offset <= next {
            break;
        }
        next = s.end_offset;
    }
    Ok(None)
}

/// The first intact record of `seek`'s segment at or after byte `from`
/// whose offset lies past `missing`, inside the segment and below `to`.
fn first_intact(
    read: &DiskRead<'_>,
    file: &dyn StorageFile,
    seek: &Seek,
    from: u64,
    missing: u64,
    to: u64,
) -> io::Result<Option<(u64, Record)>> {
    let end = seek.end_offset.min(to);
    let belongs = |r: &Record| r.offset() > missing && r.offset() >= seek.base && r.offset() < end;
    resync_where(
        file,
        from,
        seek.scan_end,
        read.max_payload,
        read.epoch,
        belongs,
    )
}
