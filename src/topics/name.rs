//! Validation of topic names that come from clients.
//!
//! Topic names end up as map keys, log directory names (hashed) and metric
//! labels, so a few names are refused outright before a subscription is
//! made: empty names, names with ASCII control characters (upstream drops
//! those silently, PYTHON_API.md §2.6) and names longer than a limit.

/// Default upper bound, in bytes, for a client-supplied topic name.
///
/// Long enough for any real naming scheme (`tenant.region.entity.id`), short
/// enough that a hostile client cannot make us store or hash megabyte keys.
pub const DEFAULT_MAX_TOPIC_LEN: usize = 256;

/// Whether `topic` is acceptable as a client-supplied topic name (or pattern),
/// using [`DEFAULT_MAX_TOPIC_LEN`].
///
/// Exists so the subscribe path can drop bad names with one call; see
/// [`is_valid_client_topic_with_limit`] for the rules.
#[must_use]
pub fn is_valid_client_topic(topic: &str) -> bool {
    is_valid_client_topic_with_limit(topic, DEFAULT_MAX_TOPIC_LEN)
}

/// Whether `topic` is non-empty, at most `max_len` bytes long and free of
/// ASCII control characters (`0x00..=0x1F` and `0x7F`).
///
/// The limit is a parameter so a server configuration can raise or lower it.
#[must_use]
pub fn is_valid_client_topic_with_limit(topic: &str, max_len: usize) -> bool {
    !topic.is_empty() && topic.len() <= max_len && !topic.bytes().any(|b| b.is_ascii_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names_and_patterns() {
        for t in ["chat", "chat.room-1", "news.*", "a?c", "ünïcödé", "x y"] {
            assert!(is_valid_client_topic(t), "{t:?}");
        }
    }

    #[test]
    fn rejects_empty_and_control_characters() {
        assert!(!is_valid_client_topic(""));
        for t in ["a\nb", "\0", "tab\there", "del\x7f", "\x1b[31m"] {
            assert!(!is_valid_client_topic(t), "{t:?}");
        }
    }

    #[test]
    fn length_limit_is_in_bytes_and_inclusive() {
        let at_limit = "a".repeat(DEFAULT_MAX_TOPIC_LEN);
        let over = "a".repeat(DEFAULT_MAX_TOPIC_LEN + 1);
        assert!(is_valid_client_topic(&at_limit));
        assert!(!is_valid_client_topic(&over));
        // 2-byte characters: 129 of them are 258 bytes.
        assert!(!is_valid_client_topic(&"é".repeat(129)));
        assert!(is_valid_client_topic_with_limit("abcd", 4));
        assert!(!is_valid_client_topic_with_limit("abcde", 4));
    }
}
