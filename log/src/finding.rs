//! What scanning a topic directory found besides intact data: torn
//! writes, corruption, damaged segment headers, rebuilt indexes. The
//! writer repairs what it can and reports the rest in its `OpenReport`;
//! the tools only report.

use std::path::PathBuf;

use crate::error::CorruptReason;
use crate::segment::header::HeaderError;

/// Something a scan found that is not simply intact data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// The active segment ends inside a record (a write cut short by a
    /// crash); the bytes from `at` on hold no acknowledged record.
    TornTail {
        /// The segment file.
        segment: PathBuf,
        /// Where the valid data ends.
        at: u64,
        /// Bytes after it.
        cut_bytes: u64,
    },
    /// The newest segment file has no complete header (a crash while
    /// creating it); it holds no record.
    TornCreation {
        /// The segment file.
        segment: PathBuf,
    },
    /// A corrupt record with valid data after it, or a sealed segment that
    /// ends early: reads stop there.
    Corruption {
        /// The segment file.
        segment: PathBuf,
        /// Byte position of the bad record.
        at: u64,
        /// The offset it should have had.
        offset: u64,
        /// What is wrong.
        reason: CorruptReason,
    },
    /// A segment whose header is damaged. Its records cannot be trusted to
    /// belong to the topic, so the segment is set aside as a whole (the
    /// writer moves it to `lost+found/` at open and leaves an empty segment
    /// with the same name in its place); offsets `from..to` read as
    /// damaged. The topic keeps its other segments.
    BadHeader {
        /// The segment file.
        segment: PathBuf,
        /// What is wrong with its header.
        error: HeaderError,
        /// Its base offset.
        from: u64,
        /// The next segment's base; for the newest segment, past every
        /// record it may have held (see `quarantine::recovered_end`).
        to: u64,
        /// Where the writer moved it (`None` in read-only scans).
        moved_to: Option<PathBuf>,
    },
    /// The index file was missing or damaged and was rebuilt from the
    /// segment.
    IndexRebuilt {
        /// The index file.
        index: PathBuf,
        /// Why.
        reason: String,
    },
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TornTail {
                segment,
                at,
                cut_bytes,
            } => write!(
                f,
                "{}: torn tail at byte {at}, {cut_bytes} bytes cut",
                segment.display()
            ),
            Self::TornCreation { segment } => {
                write!(
                    f,
                    "{}: incomplete segment header, removed",
                    segment.display()
                )
            }
            Self::Corruption {
                segment,
                at,
                offset,
                reason,
            } => write!(
                f,
                "{}: corrupt record at byte {at} (offset {offset}): {reason}",
                segment.display()
            ),
            Self::BadHeader {
                segment,
                error,
                from,
                to,
                moved_to,
            } => {
                write!(
                    f,
                    "{}: damaged segment header ({error}); offsets {from}..{to} unreadable",
                    segment.display()
                )?;
                match moved_to {
                    Some(m) => write!(f, "; moved to {}", m.display()),
                    None => Ok(()),
                }
            }
            Self::IndexRebuilt { index, reason } => {
                write!(f, "{}: index rebuilt ({reason})", index.display())
            }
        }
    }
}
