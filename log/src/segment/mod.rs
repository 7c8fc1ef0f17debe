//! Segment files: the on-disk unit of a topic's history.
//!
//! A topic's directory holds `<base offset>.seg` files (20 digits, so they
//! sort by name) and, next to each, a sparse `<base offset>.idx`. Only the
//! newest segment of a topic is written to; the others are sealed.

pub mod cursor;
pub mod header;
pub mod index;
pub mod info;

use std::path::{Path, PathBuf};

/// File name of the segment that starts at `base`.
pub fn segment_file_name(base: u64) -> String {
    format!("{base:020}.seg")
}

/// Path of the segment that starts at `base` in `dir`.
pub fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(segment_file_name(base))
}

/// Path of the index of the segment that starts at `base` in `dir`.
pub fn index_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.idx"))
}

/// The base offset a segment file name stands for, if it is one.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(segment_file_name(42), "00000000000000000042.seg");
        assert_eq!(parse_segment_name("00000000000000000042.seg"), Some(42));
        assert_eq!(parse_segment_name("42.seg"), None);
        assert_eq!(parse_segment_name("00000000000000000042.idx"), None);
        assert_eq!(parse_segment_name("0000000000000000004x.seg"), None);
    }
}
