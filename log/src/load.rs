//! Reading a topic directory back: headers, indexes and the records after
//! the last index entry of each segment.
//!
//! The same scan serves the writer when it opens a log (it then applies the
//! repairs the scan proposes: cut a torn tail, rewrite a damaged index) and
//! the read-only tools (which only report). Segments are self-describing,
//! so nothing here needs the metadata store. One segment's scan is in
//! `scan`.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::CorruptReason;
pub use crate::finding::Finding;
use crate::layout;
use crate::position::Epoch;
use crate::quarantine;
use crate::record::Record;
use crate::segment::cursor;
use crate::segment::header::{HeaderError, SegmentHeader};
use crate::segment::info::SegmentInfo;
use crate::segment::segment_path;
use crate::topic_name::topic_key;

mod scan;

/// A topic directory as found on disk.
#[derive(Debug)]
pub struct LoadedTopic {
    /// The topic name (from the segment headers).
    pub name: String,
    /// The epoch of the stored history.
    pub epoch: Epoch,
    /// Segments, oldest first; the last one is the active segment.
    pub segments: Vec<SegmentInfo>,
    /// What the scan found that needs (or got) repairing.
    pub findings: Vec<Finding>,
}

impl LoadedTopic {
    /// Offset after the newest stored record.
    pub fn next_offset(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.end_offset)
    }
}

/// Why a topic directory's history cannot be trusted as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unprovable {
    /// A segment header is damaged.
    #[error("{}: {error}", segment.display())]
    BadHeader {
        /// The segment file.
        segment: PathBuf,
        /// What is wrong.
        error: HeaderError,
    },
    /// The directory holds a topic whose name does not hash to it.
    #[error("{}: holds topic {topic:?}, which does not belong here", segment.display())]
    ForeignTopic {
        /// The segment file.
        segment: PathBuf,
        /// The topic in its header.
        topic: String,
    },
    /// Segments disagree on the topic, the epoch or their base offsets.
    #[error("{}: {what}", segment.display())]
    Inconsistent {
        /// The segment file.
        segment: PathBuf,
        /// What disagrees.
        what: String,
    },
}

/// Result of loading one topic directory.
#[derive(Debug)]
pub enum Loaded {
    /// A topic with its history.
    Topic(LoadedTopic),
    /// A directory without any segment (nothing to load).
    Empty,
    /// A history that cannot be trusted (the writer sets it aside and gives
    /// the topic a new epoch).
    Unprovable {
        /// The topic name, when a header could be read.
        name: Option<String>,
        /// The epoch, when a header could be read.
        epoch: Option<Epoch>,
        /// Why.
        why: Unprovable,
    },
}

/// Settings a scan needs.
#[derive(Copy, Clone, Debug)]
pub struct ScanSettings {
    /// Largest payload a record may declare.
    pub max_payload: usize,
    /// Bytes between index entries.
    pub index_interval: u64,
}

/// Read the header of the segment file at `path`.
pub fn read_header(file: &File) -> io::Result<Result<(SegmentHeader, usize), HeaderError>> {
    let head = cursor::read_at_most(file, 0, 4096)?;
    match SegmentHeader::needed_len(&head) {
        Some(n) if n > head.len() => {
            let full = cursor::read_at_most(file, 0, n)?;
            Ok(SegmentHeader::decode(&full))
        }
        _ => Ok(SegmentHeader::decode(&head)),
    }
}

/// A segment file and what its header says.
struct Slot {
    base: u64,
    path: PathBuf,
    file: File,
    /// The header and its length, or why it cannot be read.
    header: Result<(SegmentHeader, u64), HeaderError>,
}

/// Load the topic directory `dir` whose name is the key `key`.
///
/// A segment whose header is damaged does not make the history unprovable
/// as long as another segment's header names the topic: it becomes a
/// [`Finding::BadHeader`] and stands for the offsets it covered, which
/// read as damaged.
pub fn load_topic_dir(dir: &Path, key: u128, settings: ScanSettings) -> io::Result<Loaded> {
    let bases = layout::list_segments(dir)?;
    let mut findings = Vec::new();
    let mut slots: Vec<Slot> = Vec::new();
    for (i, &base) in bases.iter().enumerate() {
        let path = segment_path(dir, base);
        let file = File::open(&path)?;
        let header = match read_header(&file)? {
            Ok((h, len)) => Ok((h, len as u64)),
            Err(HeaderError::Truncated(_)) if i + 1 == bases.len() => {
                findings.push(Finding::TornCreation { segment: path });
                continue;
            }
            Err(error) => Err(error),
        };
        slots.push(Slot {
            base,
            path,
            file,
            header,
        });
    }
    let first = slots
        .iter()
        .find_map(|s| s.header.as_ref().ok().map(|(h, _)| (h, &s.path)));
    let Some((first, first_path)) = first else {
        // No header names the topic: nothing here can be attributed to it.
        return Ok(match slots.into_iter().next() {
            None => Loaded::Empty,
            Some(s) => Loaded::Unprovable {
                name: None,
                epoch: None,
                why: Unprovable::BadHeader {
                    segment: s.path,
                    error: s.header.err().unwrap_or(HeaderError::BadMagic),
                },
            },
        });
    };
    let (name, epoch) = (first.topic.clone(), first.epoch);
    let unprovable = |why| Loaded::Unprovable {
        name: Some(name.clone()),
        epoch: Some(epoch),
        why,
    };
    if topic_key(&name) != key {
        return Ok(unprovable(Unprovable::ForeignTopic {
            segment: first_path.clone(),
            topic: name.clone(),
        }));
    }
    for s in &slots {
        let Ok((h, _)) = &s.header else { continue };
        let what = if h.topic != name {
            Some(format!("topic {:?} differs from {name:?}", h.topic))
        } else if h.epoch != epoch {
            Some(format!("epoch {} differs from {epoch}", h.epoch))
        } else if h.base_offset != s.base {
            Some(format!(
                "header base offset {} differs from its name",
                h.base_offset
            ))
        } else {
            None
        };
        if let Some(what) = what {
            return Ok(unprovable(Unprovable::Inconsistent {
                segment: s.path.clone(),
                what,
            }));
        }
    }

    let mut segments = Vec::with_capacity(slots.len());
    for (i, s) in slots.iter().enumerate() {
        let next_base = slots.get(i + 1).map(|n| n.base);
        match &s.header {
            Ok((_, header_len)) => {
                let (info, mut found) =
                    scan::scan_segment(dir, s, *header_len, epoch, next_base, settings)?;
                findings.append(&mut found);
                segments.push(info);
            }
            Err(error) => {
                // A newer file (even one whose creation was torn) proves
                // the offsets before its base were used.
                let later = bases.iter().copied().find(|b| *b > s.base);
                let end = match later {
                    Some(b) => b,
                    None => quarantine::recovered_end(&s.file, s.base, &name, epoch, settings)?,
                };
                findings.push(Finding::BadHeader {
                    segment: s.path.clone(),
                    error: error.clone(),
                    from: s.base,
                    to: end,
                    moved_to: None,
                });
                segments.push(SegmentInfo::bad_header(
                    s.base,
                    s.path.clone(),
                    end,
                    error.clone(),
                ));
            }
        }
    }
    Ok(Loaded::Topic(LoadedTopic {
        name,
        epoch,
        segments,
        findings,
    }))
}

/// Why a valid record does not belong where it was found, if it does not.
pub fn misplaced(r: &Record, expected: u64, epoch: Epoch) -> Option<CorruptReason> {
    if r.offset() != expected {
        Some(CorruptReason::WrongOffset { found: r.offset() })
    } else if r.epoch() != epoch {
        Some(CorruptReason::WrongEpoch { found: r.epoch() })
    } else {
        None
    }
}
