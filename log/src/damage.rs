//! Damage: stored offsets a read cannot return, and where readable history
//! resumes after them.
//!
//! A bad record (CRC, framing, offset or epoch), a segment cut short, a
//! missing segment or a quarantined one make a range of offsets
//! unreadable. Reads never skip such a range silently: a batch stops right
//! before it, and a read that starts inside it fails with
//! [`crate::LogError::Damaged`] carrying a [`Damage`], which says which
//! offsets are lost and where the caller may read on (`resume_at`). Intact
//! records on either side stay readable.
//!
//! Each topic of a [`crate::Log`] remembers the ranges it found
//! ([`KnownDamage`]): a reader that retries a damaged offset is answered
//! without scanning the segment again, and the log warns once per range
//! instead of once per read.

use std::collections::VecDeque;
use std::fmt;
use std::path::PathBuf;

use crate::error::CorruptReason;

/// A range of stored offsets that cannot be read, and where reading may go
/// on.
///
/// The unreadable offsets are `first_missing..resume_at` (up to the head
/// when `resume_at` is `None`). A read that starts inside the range gets
/// this damage; `first_missing` is where the range begins, so it may be
/// below the offset that was asked for.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Damage {
    /// The topic.
    pub topic: String,
    /// The segment file where the damage was found (for a quarantined
    /// segment, the empty segment left in its place; the open report names
    /// where the damaged file went).
    pub segment: PathBuf,
    /// Byte position in `segment` where readable data stops.
    pub file_position: u64,
    /// First offset that cannot be read.
    pub first_missing: u64,
    /// First offset readable again after the damage; `None` when nothing
    /// readable follows it up to the head the read saw (later appends are
    /// readable as usual).
    pub resume_at: Option<u64>,
    /// What is wrong at `file_position`.
    #[serde(serialize_with = "as_display")]
    pub reason: CorruptReason,
}

impl Damage {
    /// Does the damage make `offset` unreadable? Only answerable when the
    /// range's end is known.
    pub fn covers(&self, offset: u64) -> bool {
        self.resume_at
            .is_some_and(|end| self.first_missing <= offset && offset < end)
    }

    /// Offsets the damage hides, as `first..end` or `first..` (up to the head).
    pub fn missing(&self) -> String {
        match self.resume_at {
            Some(end) => format!("{}..{end}", self.first_missing),
            None => format!("{}..", self.first_missing),
        }
    }
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "topic {:?}: offsets {} unreadable: damage in {} at byte {} ({})",
            self.topic,
            self.missing(),
            self.segment.display(),
            self.file_position,
            self.reason
        )?;
        match self.resume_at {
            Some(r) => write!(f, "; readable again from offset {r}"),
            None => write!(f, "; nothing readable after it up to the head"),
        }
    }
}

impl std::error::Error for Damage {}

fn as_display<S: serde::Serializer>(reason: &CorruptReason, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(reason)
}

/// How many damaged ranges a topic remembers. Damage is rare; a disk that
/// produces more than this at once is failing, and forgetting the oldest
/// range only costs a rescan and a repeated warning.
const MAX_KNOWN: usize = 32;

/// The damaged ranges a topic found while reading, newest last.
#[derive(Debug, Default)]
pub(crate) struct KnownDamage {
    ranges: VecDeque<Damage>,
}

impl KnownDamage {
    /// A known range that makes `offset` unreadable.
    pub(crate) fn covering(&self, offset: u64) -> Option<Damage> {
        self.ranges.iter().find(|d| d.covers(offset)).cloned()
    }

    /// Remember `d`; true when the range was not known yet (the caller
    /// then reports it).
    pub(crate) fn remember(&mut self, d: &Damage) -> bool {
        let same = |k: &Damage| {
            k.segment == d.segment
                && k.file_position == d.file_position
                && k.first_missing == d.first_missing
        };
        if let Some(k) = self.ranges.iter_mut().find(|k| same(k)) {
            // The head may have moved on since: keep the newest answer.
            k.resume_at = d.resume_at;
            return false;
        }
        if self.ranges.len() == MAX_KNOWN {
            self.ranges.pop_front();
        }
        self.ranges.push_back(d.clone());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::DecodeError;

    fn damage(first: u64, resume: Option<u64>) -> Damage {
        Damage {
            topic: "t".into(),
            segment: PathBuf::from("/d/00000000000000000010.seg"),
            file_position: 77,
            first_missing: first,
            resume_at: resume,
            reason: CorruptReason::Decode(DecodeError::BadKind(9)),
        }
    }

    #[test]
    fn display_names_topic_file_position_and_range() {
        let s = damage(12, Some(15)).to_string();
        assert_eq!(
            s,
            "topic \"t\": offsets 12..15 unreadable: damage in /d/00000000000000000010.seg \
             at byte 77 (unknown record kind 9); readable again from offset 15"
        );
        assert!(
            damage(12, None)
                .to_string()
                .contains("offsets 12.. unreadable")
        );
    }

    #[test]
    fn known_ranges_are_reported_once_and_bounded() {
        let mut k = KnownDamage::default();
        assert!(k.remember(&damage(5, Some(7))));
        assert!(!k.remember(&damage(5, Some(7))));
        assert_eq!(k.covering(6).map(|d| d.first_missing), Some(5));
        assert_eq!(k.covering(7), None);
        assert!(k.remember(&damage(20, None)));
        assert_eq!(
            k.covering(25),
            None,
            "an open range is never answered from memory"
        );
        for i in 0..MAX_KNOWN as u64 {
            k.remember(&damage(100 + i, Some(101 + i)));
        }
        assert_eq!(k.ranges.len(), MAX_KNOWN);
        assert_eq!(k.covering(6), None, "the oldest range was forgotten");
    }
}
