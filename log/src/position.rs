//! Epochs and positions: the names a record has on disk, on the wire and in
//! every tool.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Names one unbroken history of a topic.
///
/// The epoch is kept across clean and unclean restarts while the data is
/// intact, and replaced by a value never used before for that topic when
/// history is lost (topic deleted and recreated, data directory wiped,
/// history that cannot be proven intact). Clients compare epochs as strings,
/// so it is always shown as exactly 8 lowercase hex digits.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Epoch(pub u32);

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

impl fmt::Debug for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Epoch({:08x})", self.0)
    }
}

/// The text given where an epoch was expected is not 1 to 8 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid epoch {0:?}: expected 1 to 8 hex digits")]
pub struct ParseEpochError(pub String);

impl FromStr for Epoch {
    type Err = ParseEpochError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() > 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ParseEpochError(s.to_owned()));
        }
        u32::from_str_radix(s, 16)
            .map(Epoch)
            .map_err(|_| ParseEpochError(s.to_owned()))
    }
}

/// A record's place in a topic: which history, and which offset in it.
///
/// Offsets are per topic and dense: the first record of a history is offset
/// 0, the next one 1, and so on, exactly as the client wire protocol numbers
/// them.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Position {
    /// The history the offset belongs to.
    pub epoch: Epoch,
    /// The record's offset within the history.
    pub offset: u64,
}

impl Position {
    /// A position from its parts.
    pub fn new(epoch: Epoch, offset: u64) -> Self {
        Self { epoch, offset }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.epoch, self.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_is_eight_lowercase_hex_digits() {
        assert_eq!(Epoch(0x6b23_8eba).to_string(), "6b238eba");
        assert_eq!(Epoch(1).to_string(), "00000001");
        assert_eq!("6B238EBA".parse::<Epoch>().unwrap(), Epoch(0x6b23_8eba));
        assert!("".parse::<Epoch>().is_err());
        assert!("123456789".parse::<Epoch>().is_err());
        assert!("xyz".parse::<Epoch>().is_err());
        assert!("+1".parse::<Epoch>().is_err());
    }
}
