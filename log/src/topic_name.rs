//! Topic names: arbitrary UTF-8, validated, and never used as a path.
//!
//! A topic's directory is named after the SHA-256 of its name (128 bits,
//! hex), so `../../etc`, `a/b`, `con` or a name with a NUL byte can never
//! reach the file system. The name itself is stored inside every segment
//! header, which is what makes segments self-describing.

use sha2::{Digest, Sha256};

/// Why a topic name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicNameError {
    /// The name is empty.
    #[error("topic name is empty")]
    Empty,
    /// The name is longer than the configured limit.
    #[error("topic name is {len} bytes long; the limit is {limit} bytes")]
    TooLong {
        /// The name's length in bytes.
        len: usize,
        /// The configured limit (`max_topic_bytes`).
        limit: usize,
    },
    /// The name contains a NUL byte, which tools and C APIs cannot carry.
    #[error("topic name contains a NUL byte")]
    Nul,
}

/// Check that `name` can be a topic under a limit of `max_bytes` bytes.
pub fn validate(name: &str, max_bytes: usize) -> Result<(), TopicNameError> {
    if name.is_empty() {
        return Err(TopicNameError::Empty);
    }
    if name.len() > max_bytes {
        return Err(TopicNameError::TooLong {
            len: name.len(),
            limit: max_bytes,
        });
    }
    if name.as_bytes().contains(&0) {
        return Err(TopicNameError::Nul);
    }
    Ok(())
}

/// The 128-bit key a topic's directory is named after.
pub fn topic_key(name: &str) -> u128 {
    let digest = Sha256::digest(name.as_bytes());
    let mut k = [0u8; 16];
    k.copy_from_slice(&digest[..16]);
    u128::from_be_bytes(k)
}

/// The directory name of a topic key: 32 lowercase hex digits.
pub fn key_hex(key: u128) -> String {
    format!("{key:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_rejected_or_hashed() {
        assert_eq!(validate("", 256), Err(TopicNameError::Empty));
        assert_eq!(validate("a\0b", 256), Err(TopicNameError::Nul));
        let long = "x".repeat(10_000);
        assert_eq!(
            validate(&long, 256),
            Err(TopicNameError::TooLong {
                len: 10_000,
                limit: 256
            })
        );
        for ok in ["../../etc", "a/b", "con", "NUL", ".", "..", "é/ü", "a\\b"] {
            validate(ok, 256).unwrap();
            let hex = key_hex(topic_key(ok));
            assert_eq!(hex.len(), 32);
            assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_ne!(topic_key("a"), topic_key("b"));
    }
}
