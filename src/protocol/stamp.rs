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
