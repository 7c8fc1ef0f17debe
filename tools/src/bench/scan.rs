//! Finding a number in JSON text without parsing it.
//!
//! The load generator reads millions of frames a second on the cores the
//! server uses too, and needs only one or two numbers from each (the
//! offset `o`, the send time `ts`): a byte search is a fraction of the cost
//! of a JSON parse.

/// Where `needle` first occurs in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Where `needle` last occurs in `hay`.
pub fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// The unsigned integer right after the first `key` (e.g. `"o":`).
pub fn number_after(hay: &[u8], key: &[u8]) -> Option<u64> {
    let at = find(hay, key)?;
    leading_number(&hay[at + key.len()..])
}

/// The unsigned integer right after the last `key`.
pub fn number_after_last(hay: &[u8], key: &[u8]) -> Option<u64> {
    let at = rfind(hay, key)?;
    leading_number(&hay[at + key.len()..])
}

/// The decimal digits at the start of `b` (after spaces); `None` without
/// digits or past `u64::MAX`.
fn leading_number(b: &[u8]) -> Option<u64> {
    let digits = b.iter().skip_while(|&&c| c == b' ');
    let mut value: Option<u64> = None;
    for &c in digits {
        if !c.is_ascii_digit() {
            break;
        }
        value = Some(
            value
                .unwrap_or(0)
                .checked_mul(10)?
                .checked_add(u64::from(c - b'0'))?,
        );
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_numbers_after_keys() {
        let frame = br#"{"tp":"bench","e":"0badcafe","o":41,"p":{"pad":"xx","ts": 17},"t":"b"}"#;
        assert_eq!(number_after(frame, br#""o":"#), Some(41));
        assert_eq!(number_after_last(frame, br#""ts":"#), Some(17));
        assert_eq!(number_after(frame, br#""x":"#), None);
        assert_eq!(number_after(br#"{"o":"7"}"#, br#""o":"#), None);
        assert_eq!(
            number_after(br#"{"o":99999999999999999999}"#, br#""o":"#),
            None
        );
        assert_eq!(number_after(br#"{"o":"#, br#""o":"#), None);
        assert_eq!(rfind(b"abab", b"ab"), Some(2));
        assert_eq!(find(b"a", b"ab"), None);
    }
}
