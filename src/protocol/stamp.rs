//! The recovery stamp (CLIENT_PROTOCOL.md §11.1).
//!
//! With recovery on, every topic publication gets the topic's next offset
//! and, if it is a JSON object, is rewritten so that its first members say
//! where it sits in the topic's history:
//!
//! ```text
//! {"tp":"chat","e":"6b238eba","o":0,"c":"U","t":"chat_message","p":{"text":"hi"}}
//! ```
//!
//! `tp` is the topic as a JSON string, `e` the epoch as exactly 8 lowercase
//! hex digits (clients compare epochs as strings), `o` the offset. The
//! stamped bytes are what is stored and what every live subscriber and
//! every later replay receives, so the writers here append straight into
//! the caller's `BytesMut`: the stored record is built in place, in one
//! copy of the text.
//!
//! Texts that do not start with `{` (after leading whitespace) still consume
//! an offset but are stored unchanged.

use std::fmt::Write as _;

use bytes::{BufMut, BytesMut};

use super::category::{self, CategoryInsertion};

/// Append the stamp members `"tp":…,"e":"…","o":…` (no braces, no comma).
fn put_stamp_members(out: &mut BytesMut, topic: &str, epoch: u32, offset: u64) {
    out.extend_from_slice(b"\"tp\":");
    // Writing into a BytesMut cannot fail, and a &str always serialises.
    let _ = serde_json::to_writer((&mut *out).writer(), topic);
    let _ = write!(out, ",\"e\":\"{epoch:08x}\",\"o\":{offset}");
}

/// Room for `{"tp":` + `,"e":"xxxxxxxx","o":` + 20 digits + `,` and a few
/// escapes in the topic.
const STAMP_OVERHEAD: usize = 48;

/// Append `text` to `out`, stamped with (`topic`, `epoch`, `offset`) when
/// it is a JSON object. Returns whether a stamp was written.
///
/// The stamped form is `{"tp":<topic>,"e":"<epoch:08x>","o":<offset>,` and
/// the text after its first `{` (no comma when that rest is `}`, so `{}`
/// becomes `{"tp":…,"o":0}`). Whitespace before the `{` is dropped; a text
/// that does not start with `{` is appended unchanged.
pub fn write_stamped(out: &mut BytesMut, text: &str, topic: &str, epoch: u32, offset: u64) -> bool {
    let Some(rest) = text.trim_start().strip_prefix('{') else {
        out.extend_from_slice(text.as_bytes());
        return false;
    };
    out.reserve(text.len() + topic.len() + STAMP_OVERHEAD);
    out.put_u8(b'{');
    put_stamp_members(out, topic, epoch, offset);
    if !rest.trim_start().starts_with('}') {
        out.put_u8(b',');
    }
    out.extend_from_slice(rest.as_bytes());
    true
}

/// Apply the category rule (§4.1) and the stamp in one pass: the result is
/// exactly `write_stamped(inject_category(text))`, without the intermediate
/// string. This is the record a `broadcast_local`/`broadcast` stores when
/// recovery is on. Returns whether a stamp was written.
pub fn write_stamped_with_category(
    out: &mut BytesMut,
    text: &str,
    topic: &str,
    epoch: u32,
    offset: u64,
) -> bool {
    let Some(CategoryInsertion { at, category }) = category::category_insertion(text) else {
        return write_stamped(out, text, topic, epoch, offset);
    };
    // The scanner found the object's `{` at `at - 1`, preceded only by JSON
    // whitespace, which is exactly what `write_stamped` would strip.
    out.reserve(text.len() + topic.len() + STAMP_OVERHEAD + category::insertion_len(category));
    out.put_u8(b'{');
    put_stamp_members(out, topic, epoch, offset);
    out.extend_from_slice(b",\"c\":\"");
    out.extend_from_slice(category.as_str().as_bytes());
    out.extend_from_slice(b"\",");
    out.extend_from_slice(&text.as_bytes()[at..]);
    true
}

/// The stored bytes of a message published on `topic` at (`epoch`,
/// `offset`): the category rule, and with `stamp` (recovery on) the
/// position, applied to `text`. Every writer of message records uses it
/// (the server's broadcast, `wse log append`), so a record reads alike
/// whoever stored it.
pub fn write_stored_message(
    out: &mut BytesMut,
    stamp: bool,
    text: &str,
    topic: &str,
    epoch: u32,
    offset: u64,
) {
    if stamp {
        write_stamped_with_category(out, text, topic, epoch, offset);
    } else {
        out.extend_from_slice(category::inject_category(text).as_bytes());
    }
}

/// Where a stored record says it sits ([`read_stamp`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StampedAt {
    /// The `tp` member.
    pub topic: String,
    /// The `e` member, as a number.
    pub epoch: u32,
    /// The `o` member.
    pub offset: u64,
}

/// The inverse of [`write_stamped`]: the stamp of a stored record and its
/// text without it, or `None` when `stored` does not start with a stamp in
/// the exact form the writer produces. Stamping the returned text again at
/// the returned position gives `stored` back, byte for byte.
///
/// Tools that move history (replay, `wse log append`) use it: a record
/// taken from one topic and published again is stamped again with its new
/// position, not carried with its old one.
pub fn read_stamp(stored: &str) -> Option<(StampedAt, String)> {
    let after_tp = stored.strip_prefix("{\"tp\":")?;
    let mut topics = serde_json::Deserializer::from_str(after_tp).into_iter::<String>();
    let topic = topics.next()?.ok()?;
    let rest = after_tp[topics.byte_offset()..].strip_prefix(",\"e\":\"")?;
    let hex = rest.get(..8)?;
    if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let epoch = u32::from_str_radix(hex, 16).ok()?;
    let rest = rest[8..].strip_prefix("\",\"o\":")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let offset_text = &rest[..digits];
    // The writer prints offsets in canonical decimal: no leading zeros.
    if digits == 0 || (digits > 1 && offset_text.starts_with('0')) {
        return None;
    }
    let offset = offset_text.parse().ok()?;
    let rest = &rest[digits..];
    // A `,` separates the stamp from the original members; without one the
    // original object was empty (whitespace then `}`).
    let body = match rest.strip_prefix(',') {
        Some(members) if !members.trim_start().starts_with('}') => members,
        Some(_) => return None,
        None if rest.trim_start().starts_with('}') => rest,
        None => return None,
    };
    let mut text = String::with_capacity(body.len() + 1);
    text.push('{');
    text.push_str(body);
    Some((
        StampedAt {
            topic,
            epoch,
            offset,
        },
        text,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::category::inject_category;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn stamped(text: &str, topic: &str, epoch: u32, offset: u64) -> (String, bool) {
        let mut out = BytesMut::new();
        let did = write_stamped(&mut out, text, topic, epoch, offset);
        (String::from_utf8(out.to_vec()).unwrap_or_default(), did)
    }

    #[test]
    fn read_stamp_undoes_the_stamp() {
        let stored =
            r#"{"tp":"chat","e":"6b238eba","o":7,"c":"U","t":"chat_message","p":{"text":"hi"}}"#;
        let (at, text) = read_stamp(stored).unwrap_or_else(|| unreachable!());
        assert_eq!(
            at,
            StampedAt {
                topic: "chat".into(),
                epoch: 0x6b23_8eba,
                offset: 7
            }
        );
        assert_eq!(text, r#"{"c":"U","t":"chat_message","p":{"text":"hi"}}"#);
        assert_eq!(
            read_stamp(r#"{"tp":"t","e":"00000001","o":0}"#).map(|x| x.1),
            Some("{}".into())
        );
        assert_eq!(
            read_stamp(r#"{"tp":"t","e":"00000001","o":0 }"#).map(|x| x.1),
            Some("{ }".into())
        );
    }

    #[test]
    fn read_stamp_refuses_what_the_writer_never_writes() {
        for text in [
            r#"{"c":"U"}"#,
            r#"{"tp":"t","e":"0000001","o":0}"#,
            r#"{"tp":"t","e":"0000000A","o":0}"#,
            r#"{"tp":"t","e":"00000001","o":01}"#,
            r#"{"tp":"t","e":"00000001","o":}"#,
            r#"{"tp":"t","e":"00000001","o":1,}"#,
            r#"{"tp":"t","e":"00000001","o":1"a":1}"#,
            r#"{"tp":1,"e":"00000001","o":1}"#,
            r#" {"tp":"t","e":"00000001","o":1}"#,
            "hello",
        ] {
            assert_eq!(read_stamp(text), None, "{text}");
        }
    }

    #[test]
    fn matches_the_capture() {
        let (out, did) = stamped(
            r#"{"c":"U","t":"chat_message","p":{"text":"hi"}}"#,
            "chat",
            0x6b23_8eba,
            0,
        );
        assert!(did);
        assert_eq!(
            out,
            r#"{"tp":"chat","e":"6b238eba","o":0,"c":"U","t":"chat_message","p":{"text":"hi"}}"#
        );
    }

    #[test]
    fn epoch_is_eight_lowercase_hex_digits() {
        let (out, _) = stamped("{}", "t", 0xAB, u64::MAX);
        assert_eq!(out, r#"{"tp":"t","e":"000000ab","o":18446744073709551615}"#);
        let (out, _) = stamped("{ }", "t", u32::MAX, 1);
        assert_eq!(out, r#"{"tp":"t","e":"ffffffff","o":1 }"#);
    }

    #[test]
    fn topic_is_json_escaped() {
        let (out, _) = stamped(r#"{"a":1}"#, "we\"ird\\/\n", 1, 2);
        assert_eq!(out, r#"{"tp":"we\"ird\\/\n","e":"00000001","o":2,"a":1}"#);
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(v["tp"], "we\"ird\\/\n");
    }

    #[test]
    fn leading_whitespace_is_dropped_and_non_objects_kept() {
        let (out, did) = stamped("  \n{\"a\":1}", "t", 1, 2);
        assert!(did);
        assert_eq!(out, r#"{"tp":"t","e":"00000001","o":2,"a":1}"#);
        for text in ["hello", "[1]", "", "  x{"] {
            let (out, did) = stamped(text, "t", 1, 2);
            assert!(!did);
            assert_eq!(out, text);
        }
    }

    #[test]
    fn appends_to_existing_content() {
        let mut out = BytesMut::from(&b"HEADER"[..]);
        write_stamped(&mut out, "{}", "t", 0, 0);
        assert_eq!(&out[..], br#"HEADER{"tp":"t","e":"00000000","o":0}"#);
    }

    #[test]
    fn combined_writer_adds_category_after_the_stamp() {
        let mut out = BytesMut::new();
        assert!(write_stamped_with_category(
            &mut out,
            r#"{"t":"chat_message","p":{"text":"hi"}}"#,
            "chat",
            0x6b23_8eba,
            0
        ));
        assert_eq!(
            &out[..],
            br#"{"tp":"chat","e":"6b238eba","o":0,"c":"U","t":"chat_message","p":{"text":"hi"}}"#
        );
    }

    fn broadcast_like_text() -> impl Strategy<Value = String> {
        let pattern = r#"[ \n]{0,2}(\{("t"|"c"|"p"|"x")?(:)?("snapshot_a"|"error"|1|\{\}|"q")?(,"t":"u")?\}?)?[a-z]{0,3}"#;
        proptest::string::string_regex(pattern).unwrap_or_else(|e| unreachable!("{e}"))
    }

    proptest! {
        #[test]
        fn read_stamp_inverts_write_stamped(
            text in "[ \n]{0,2}\\{\\PC{0,24}",
            topic in "\\PC{0,8}",
            epoch in any::<u32>(),
            offset in any::<u64>(),
        ) {
            let mut stored = BytesMut::new();
            prop_assert!(write_stamped(&mut stored, &text, &topic, epoch, offset));
            let stored = String::from_utf8(stored.to_vec()).unwrap_or_default();
            let (at, unstamped) = read_stamp(&stored).unwrap_or_else(|| unreachable!("{stored}"));
            prop_assert_eq!(at, StampedAt { topic: topic.clone(), epoch, offset });
            prop_assert_eq!(&unstamped, text.trim_start());
            let mut again = BytesMut::new();
            write_stamped(&mut again, &unstamped, &topic, epoch, offset);
            prop_assert_eq!(&again[..], stored.as_bytes());
        }

        #[test]
        fn combined_equals_inject_then_stamp(
            text in broadcast_like_text(),
            topic in "\\PC{0,8}",
            epoch in any::<u32>(),
            offset in any::<u64>(),
        ) {
            let mut combined = BytesMut::new();
            let a = write_stamped_with_category(&mut combined, &text, &topic, epoch, offset);
            let mut sequential = BytesMut::new();
            let b = write_stamped(&mut sequential, &inject_category(&text), &topic, epoch, offset);
            prop_assert_eq!(a, b);
            prop_assert_eq!(&combined[..], &sequential[..]);
        }

        #[test]
        fn stamped_objects_stay_valid_json(
            // Keys of 3+ letters: never `tp`, `e` or `o` (duplicates would shadow).
            map in proptest::collection::btree_map("[a-z]{3,5}", any::<i32>(), 0..5),
            topic in "\\PC{0,12}",
            epoch in any::<u32>(),
            offset in any::<u64>(),
        ) {
            let text = serde_json::to_string(&map).unwrap_or_default();
            let mut out = BytesMut::new();
            prop_assert!(write_stamped(&mut out, &text, &topic, epoch, offset));
            let v: Value = serde_json::from_slice(&out).unwrap_or_else(|e| unreachable!("{e}"));
            prop_assert_eq!(&v["tp"], &json!(topic));
            prop_assert_eq!(&v["e"], &json!(format!("{epoch:08x}")));
            prop_assert_eq!(&v["o"], &json!(offset));
            for (k, val) in &map {
                prop_assert_eq!(&v[k.as_str()], &json!(val));
            }
        }
    }
}
