//! A minimal scanner over the top-level members of a JSON object text.
//!
//! The category rule (§4.1) must look at the top-level keys of every string
//! an app broadcasts, and must leave the text byte for byte as it was apart
//! from one insertion. Parsing into a `serde_json::Value` and serialising
//! back would allocate a tree and reorder or reformat the text, so instead
//! this module walks the bytes once: it recognises strings (with escapes),
//! tracks `{`/`[` nesting to skip nested values, and yields each top-level
//! key with its raw value. It validates structure only as far as it needs to
//! (quotes, colons, commas, balanced brackets); scalars are not checked.
//!
//! All structural characters are ASCII, so scanning bytes of UTF-8 text is
//! exact: a continuation byte can never be mistaken for `"` or `{`.

use std::borrow::Cow;

/// A JSON string token as it appears in the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawJsonStr<'a> {
    /// The token including its surrounding quotes.
    quoted: &'a str,
    /// Whether the token contains a backslash escape.
    escaped: bool,
}

impl<'a> RawJsonStr<'a> {
    /// The decoded string: borrowed when it has no escapes, `None` when an
    /// escape is invalid (for example a lone surrogate).
    #[must_use]
    pub fn decode(&self) -> Option<Cow<'a, str>> {
        if self.escaped {
            serde_json::from_str::<String>(self.quoted)
                .ok()
                .map(Cow::Owned)
        } else {
            self.quoted.get(1..self.quoted.len() - 1).map(Cow::Borrowed)
        }
    }
}

/// A top-level value, as much as the category rule needs to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawJsonValue<'a> {
    /// A string value.
    Str(RawJsonStr<'a>),
    /// Anything else (number, literal, object, array), as raw text.
    Other(&'a str),
}

/// One top-level `key: value` member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member<'a> {
    /// The key token.
    pub key: RawJsonStr<'a>,
    /// The value token.
    pub value: RawJsonValue<'a>,
}

/// The text is not a well-formed object (as far as the scanner checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed;

/// Iterator over the top-level members of an object; see [`object_members`].
#[derive(Clone, Debug)]
pub struct Members<'a> {
    text: &'a str,
    pos: usize,
    state: State,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Just after `{`: a key or `}` may follow.
    First,
    /// After a member: `,` or `}` must follow.
    AfterMember,
    /// The closing `}` was seen, or an error was reported.
    Done,
}

/// If `text` (after JSON whitespace) starts with `{`, return the byte index
/// of that brace and an iterator over the object's top-level members.
///
/// The iterator yields `Err(Malformed)` once (and then stops) if the object
/// is not well formed; it ends normally at the object's closing brace.
/// Anything after the closing brace is ignored.
#[must_use]
pub fn object_members(text: &str) -> Option<(usize, Members<'_>)> {
    let open = skip_ws(text.as_bytes(), 0);
    if text.as_bytes().get(open) != Some(&b'{') {
        return None;
    }
    let members = Members {
        text,
        pos: open + 1,
        state: State::First,
    };
    Some((open, members))
}

impl<'a> Iterator for Members<'a> {
    type Item = Result<Member<'a>, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        let bytes = self.text.as_bytes();
        let mut pos = skip_ws(bytes, self.pos);
        match self.state {
            State::Done => return None,
            State::First => {
                if bytes.get(pos) == Some(&b'}') {
                    self.state = State::Done;
                    return None;
                }
            }
            State::AfterMember => match bytes.get(pos) {
                Some(b'}') => {
                    self.state = State::Done;
                    return None;
                }
                Some(b',') => pos = skip_ws(bytes, pos + 1),
                _ => return self.fail(),
            },
        }
        let Some(member) = self.member_at(pos) else {
            return self.fail();
        };
        self.state = State::AfterMember;
        Some(Ok(member))
    }
}

impl<'a> Members<'a> {
    fn fail(&mut self) -> Option<Result<Member<'a>, Malformed>> {
        self.state = State::Done;
        Some(Err(Malformed))
    }

    /// Parse `"key" : value` starting at `pos`; advances `self.pos`.
    fn member_at(&mut self, pos: usize) -> Option<Member<'a>> {
        let bytes = self.text.as_bytes();
        let (key, after_key) = string_at(self.text, pos)?;
        let colon = skip_ws(bytes, after_key);
        if bytes.get(colon) != Some(&b':') {
            return None;
        }
        let start = skip_ws(bytes, colon + 1);
        let (value, end) = if bytes.get(start) == Some(&b'"') {
            let (s, end) = string_at(self.text, start)?;
            (RawJsonValue::Str(s), end)
        } else {
            let end = skip_value(bytes, start)?;
            (RawJsonValue::Other(self.text.get(start..end)?), end)
        };
        self.pos = end;
        Some(Member { key, value })
    }
}

fn skip_ws(bytes: &[u8], mut pos: usize) -> usize {
    while matches!(bytes.get(pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        pos += 1;
    }
    pos
}

/// The string token starting with the `"` at `pos`, and the index after it.
fn string_at(text: &str, pos: usize) -> Option<(RawJsonStr<'_>, usize)> {
    let bytes = text.as_bytes();
    if bytes.get(pos) != Some(&b'"') {
        return None;
    }
    let mut i = pos + 1;
    let mut escaped = false;
    loop {
        match bytes.get(i)? {
            b'"' => break,
            b'\\' => {
                escaped = true;
                i += 2;
            }
            _ => i += 1,
        }
    }
    let quoted = text.get(pos..=i)?;
    Some((RawJsonStr { quoted, escaped }, i + 1))
}

/// Skip a non-string value starting at `pos`: everything up to the `,` or
/// `}` that ends it at this nesting level. Returns the end index (exclusive,
/// trailing whitespace trimmed) or `None` if the value is empty or the
/// brackets do not balance before the text ends.
fn skip_value(bytes: &[u8], pos: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = pos;
    let mut last_non_ws = pos;
    loop {
        match *bytes.get(i)? {
            b'"' => {
                i += 1;
                loop {
                    match bytes.get(i)? {
                        b'"' => break,
                        b'\\' => i += 2,
                        _ => i += 1,
                    }
                }
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' if depth > 0 => depth -= 1,
            b'}' | b']' | b',' if depth == 0 => break,
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            _ => {}
        }
        i += 1;
        last_non_ws = i;
    }
    (last_non_ws > pos).then_some(last_non_ws)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> Result<Vec<(String, String)>, Malformed> {
        let (_, members) = object_members(text).ok_or(Malformed)?;
        members
            .map(|m| {
                let m = m?;
                let key = m.key.decode().ok_or(Malformed)?.into_owned();
                let value = match m.value {
                    RawJsonValue::Str(s) => format!("str:{}", s.decode().ok_or(Malformed)?),
                    RawJsonValue::Other(raw) => format!("raw:{raw}"),
                };
                Ok((key, value))
            })
            .collect()
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn flat_object() {
        assert_eq!(
            keys(r#"{"t":"x","n":1,"b":true,"z":null}"#),
            Ok(kv(&[
                ("t", "str:x"),
                ("n", "raw:1"),
                ("b", "raw:true"),
                ("z", "raw:null")
            ]))
        );
        assert_eq!(keys("{}"), Ok(vec![]));
        assert_eq!(keys(" \n{ }"), Ok(vec![]));
    }

    #[test]
    fn nested_values_are_skipped_whole() {
        let text = r#"{"p":{"t":"inner","c":[1,{"x":"}"}]},"t" : "outer" }"#;
        assert_eq!(
            keys(text),
            Ok(kv(&[
                ("p", r#"raw:{"t":"inner","c":[1,{"x":"}"}]}"#),
                ("t", "str:outer")
            ]))
        );
    }

    #[test]
    fn escapes_in_keys_and_values() {
        let text = r#"{"\u0074":"a\"b","k\\":"\\"}"#;
        assert_eq!(keys(text), Ok(kv(&[("t", "str:a\"b"), ("k\\", "str:\\")])));
    }

    #[test]
    fn reports_where_the_brace_is() {
        let (open, _) = object_members("  {}").unwrap_or_else(|| unreachable!());
        assert_eq!(open, 2);
        assert!(object_members("[{}]").is_none());
        assert!(object_members("").is_none());
        assert!(object_members("x{}").is_none());
    }

    #[test]
    fn malformed_inputs() {
        for text in [
            "{",
            r#"{"t""#,
            r#"{"t":}"#,
            r#"{"t":"x""#,
            r#"{"t":"x" "c":1}"#,
            r#"{"t":[1,2}"#,
            r#"{t:1}"#,
            r#"{"t":"\"}"#,
            r#"{"a":1,}"#,
        ] {
            assert_eq!(keys(text), Err(Malformed), "{text:?}");
        }
    }
}
