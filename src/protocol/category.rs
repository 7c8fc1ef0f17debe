//! The message category `c` and its textual injection (CLIENT_PROTOCOL.md §4.1).
//!
//! Every message a client receives is expected to carry `c`: `WSE` for
//! system messages, `S` for snapshots, `U` for updates. Apps usually
//! broadcast JSON without it, so the core adds it to strings passed to
//! `broadcast_all`, `broadcast_local` and `broadcast`: when the top-level
//! object has a `t` key and no `c` key, `"c":"X",` is inserted right after
//! the opening brace and the rest of the text is left byte for byte as it
//! was. Anything else (no `t`, an existing `c`, not an object, malformed
//! JSON) is sent unchanged.
//!
//! The check uses the allocation-free scanner of [`super::scan`]; the common
//! "nothing to do" path returns the input borrowed.

use std::borrow::Cow;

use super::scan::{self, RawJsonValue};

/// The value of the `c` envelope key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Category {
    /// `WSE`: protocol and system messages.
    Wse,
    /// `S`: snapshots (`t` contains `_snapshot` or starts with `snapshot_`).
    Snapshot,
    /// `U`: updates, the default.
    Update,
}

impl Category {
    /// The wire spelling: `"WSE"`, `"S"` or `"U"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Wse => "WSE",
            Self::Snapshot => "S",
            Self::Update => "U",
        }
    }
}

/// Message types that are always category `WSE` (unless the snapshot rule
/// applies first).
const SYSTEM_TYPES: [&str; 8] = [
    "server_ready",
    "server_hello",
    "client_hello_ack",
    "connection_state_change",
    "subscription_update",
    "error",
    "pong",
    "PONG",
];

/// The category for a message whose `t` is `t` (`None` when `t` is absent
/// or not a string).
///
/// Used by the textual injection below and by `send_event`, which always
/// recomputes `c`.
#[must_use]
pub fn category_for(t: Option<&str>) -> Category {
    let Some(t) = t else {
        return Category::Update;
    };
    if t.contains("_snapshot") || t.starts_with("snapshot_") {
        Category::Snapshot
    } else if SYSTEM_TYPES.contains(&t) {
        Category::Wse
    } else {
        Category::Update
    }
}

/// Where and what to insert into a broadcast text; see [`category_insertion`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CategoryInsertion {
    /// Byte index just after the object's opening `{`.
    pub at: usize,
    /// The category to insert there.
    pub category: Category,
}

/// Decide whether `text` needs `"c":"X",` and where, without allocating
/// (except to decode a key or `t` value that contains escapes).
///
/// Returns `None` when the text must be sent unchanged: it is not a JSON
/// object, it is malformed, it has a top-level `c`, or it has no top-level
/// `t`. When `t` appears more than once the last one decides, as it does
/// for every JSON parser the clients use.
#[must_use]
pub fn category_insertion(text: &str) -> Option<CategoryInsertion> {
    let (open, members) = scan::object_members(text)?;
    let mut category = None;
    for member in members {
        let member = member.ok()?;
        let key = member.key.decode()?;
        match &*key {
            "c" => return None,
            "t" => {
                category = Some(match member.value {
                    RawJsonValue::Str(s) => category_for(Some(&s.decode()?)),
                    RawJsonValue::Other(_) => Category::Update,
                });
            }
            _ => {}
        }
    }
    category.map(|category| CategoryInsertion {
        at: open + 1,
        category,
    })
}

/// Length of the text inserted for `category`: `"c":"` + name + `",`.
#[must_use]
pub const fn insertion_len(category: Category) -> usize {
    category.as_str().len() + 7
}

/// Apply the category rule to a broadcast text (CLIENT_PROTOCOL.md §4.1).
///
/// Returns the input borrowed when nothing is inserted, and a single new
/// string otherwise.
#[must_use]
pub fn inject_category(text: &str) -> Cow<'_, str> {
    let Some(CategoryInsertion { at, category }) = category_insertion(text) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + insertion_len(category));
    out.push_str(&text[..at]);
    push_category_member(&mut out, category);
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

/// Append `"c":"X",` to `out`.
pub(crate) fn push_category_member(out: &mut String, category: Category) {
    out.push_str("\"c\":\"");
    out.push_str(category.as_str());
    out.push_str("\",");
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    #[test]
    fn category_rules() {
        assert_eq!(category_for(Some("snapshot_complete")), Category::Snapshot);
        assert_eq!(category_for(Some("user_snapshot")), Category::Snapshot);
        assert_eq!(category_for(Some("snapshots")), Category::Update);
        for t in SYSTEM_TYPES {
            assert_eq!(category_for(Some(t)), Category::Wse, "{t}");
        }
        assert_eq!(category_for(Some("Error")), Category::Update);
        assert_eq!(category_for(Some("chat_message")), Category::Update);
        assert_eq!(category_for(None), Category::Update);
        assert_eq!(Category::Wse.as_str(), "WSE");
        assert_eq!(insertion_len(Category::Wse), r#""c":"WSE","#.len());
        assert_eq!(insertion_len(Category::Update), r#""c":"U","#.len());
    }

    #[test]
    fn injects_right_after_the_first_brace() {
        assert_eq!(
            inject_category(r#"{"t":"chat_message","p":{"text":"hi"}}"#),
            r#"{"c":"U","t":"chat_message","p":{"text":"hi"}}"#
        );
        assert_eq!(
            inject_category(r#"  { "p": 1, "t" : "snapshot_x" }"#),
            r#"  {"c":"S", "p": 1, "t" : "snapshot_x" }"#
        );
        assert_eq!(
            inject_category(r#"{"t":"error"}"#),
            r#"{"c":"WSE","t":"error"}"#
        );
        assert_eq!(inject_category(r#"{"t":5}"#), r#"{"c":"U","t":5}"#);
        assert_eq!(inject_category(r#"{"t":null}"#), r#"{"c":"U","t":null}"#);
        assert_eq!(
            inject_category(r#"{"\u0074":"error"}"#),
            r#"{"c":"WSE","\u0074":"error"}"#
        );
    }

    #[test]
    fn leaves_other_texts_alone() {
        for text in [
            r#"{"c":"X","t":"a"}"#,
            r#"{"t":"a","c":null}"#,
            r#"{"p":{"t":"nested"}}"#,
            r#"{"x":"\"t\":\"y\""}"#,
            r#"[{"t":"a"}]"#,
            "plain text",
            "",
            "{}",
            r#"{"t":"a""#,
            r#"{"t":"a",}"#,
            r#"{"t":"\ud800"}"#,
        ] {
            assert!(
                matches!(inject_category(text), Cow::Borrowed(t) if t == text),
                "{text:?}"
            );
        }
    }

    fn json_string() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("t".to_owned()),
            Just("c".to_owned()),
            Just("snapshot_x".to_owned()),
            Just("error".to_owned()),
            Just("\"t\":\"x\"".to_owned()),
            Just("{\\}[".to_owned()),
            "\\PC{0,6}",
            "[\u{0}-\u{1f}\"\\\\]{0,3}",
        ]
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            // Floats that survive a text round trip exactly (serde_json
            // without `float_roundtrip` may be off by one ulp otherwise).
            any::<i32>().prop_map(|i| Value::from(f64::from(i) / 8.0)),
            json_string().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::btree_map(json_string(), inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn top_object() -> impl Strategy<Value = Map<String, Value>> {
        (
            proptest::collection::btree_map(json_string(), json_value(), 0..6),
            proptest::option::of(json_value()),
            any::<bool>(),
        )
            .prop_map(|(m, t, force_string_t)| {
                let mut map: Map<String, Value> = m.into_iter().collect();
                if let Some(t) = t {
                    let t = if force_string_t {
                        json!("x_snapshot")
                    } else {
                        t
                    };
                    map.insert("t".to_owned(), t);
                }
                map
            })
    }

    fn arbitrary_text() -> impl Strategy<Value = String> {
        let regex =
            |re: &str| proptest::string::string_regex(re).unwrap_or_else(|e| unreachable!("{e}"));
        prop_oneof![regex("\\PC{0,40}"), regex(r#"[{}\[\]":,\\tc ]{0,40}"#)]
    }

    proptest! {
        #[test]
        fn injection_agrees_with_serde_json(obj in top_object(), pretty in any::<bool>()) {
            let text = if pretty {
                serde_json::to_string_pretty(&obj)
            } else {
                serde_json::to_string(&obj)
            }
            .unwrap_or_else(|e| unreachable!("{e}"));
            let out = inject_category(&text);
            let expect_injection = obj.contains_key("t") && !obj.contains_key("c");
            prop_assert_eq!(matches!(out, Cow::Owned(_)), expect_injection);
            let parsed: Map<String, Value> = serde_json::from_str(&out)
                .unwrap_or_else(|e| unreachable!("{e}: {out}"));
            if expect_injection {
                let want = category_for(obj.get("t").and_then(Value::as_str));
                prop_assert_eq!(parsed.get("c"), Some(&json!(want.as_str())));
                let mut without_c = parsed;
                without_c.remove("c");
                prop_assert_eq!(&without_c, &obj);
                // Inserted right after the first brace, rest untouched.
                let at = text.find('{').unwrap_or_else(|| unreachable!());
                prop_assert_eq!(&out[..=at], &text[..=at]);
                prop_assert_eq!(&out[at + 1 + insertion_len(want)..], &text[at + 1..]);
            } else {
                prop_assert_eq!(&*out, &*text);
            }
        }

        #[test]
        fn never_panics_on_arbitrary_text(text in arbitrary_text()) {
            let out = inject_category(&text);
            if let Cow::Owned(changed) = out {
                // Whatever we changed was an object that had a `t`.
                prop_assert!(changed.len() > text.len());
                prop_assert!(text.trim_start().starts_with('{'), "changed a non-object");
            }
        }
    }
}
