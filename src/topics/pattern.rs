//! Glob topic patterns: `*` matches any run of characters (including none),
//! `?` matches exactly one character; everything else matches itself.
//!
//! # Why not the textbook matcher
//!
//! The usual two-pointer glob matcher backtracks to the last `*` on every
//! mismatch, which costs `O(|text| × |pattern|)` on inputs such as
//! `a*a*a*…*b` against `aaaa…`. Patterns come from JWT claims and from the
//! app's subscribe calls and are matched against every published topic, so
//! we compile a pattern once into its `*`-separated *segments* instead:
//!
//! - the first segment must match at the start of the topic and the last
//!   one at its end (both positions are forced, because a segment matches a
//!   fixed number of characters);
//! - each middle segment is searched left to right and taken at its leftmost
//!   match. Taking the leftmost match is always safe: a later match leaves
//!   less room for the remaining segments, never more.
//!
//! No position is ever revisited by an earlier segment, so the work is
//! `O(|topic| × L)` where `L` is the length of the longest middle segment
//! (segments that start with a literal are located with `str::find`, which is
//! linear). For the hostile shapes above this is linear in the topic length.
//!
//! `?` matches one Unicode scalar value (one `char`), not one byte.

use std::fmt;

/// One run of a segment: literal text, or a number of `?`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    /// Byte range of literal text inside the pattern source.
    Lit(usize, usize),
    /// This many `?`: that many characters of anything.
    Any(usize),
}

/// The text between two `*` (or a pattern end): a fixed number of characters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Segment {
    pieces: Vec<Piece>,
}

/// Compiled form of a pattern that contains wildcards.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Glob {
    /// Must match at the start of the topic.
    head: Segment,
    /// Searched in order between `head` and `tail`; empty segments dropped.
    middle: Vec<Segment>,
    /// Must match at the end of the topic; `None` when the pattern has no
    /// `*`, in which case `head` must match the whole topic.
    tail: Option<Segment>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    /// No wildcard: plain string equality.
    Exact,
    Glob(Glob),
}

/// A topic name or glob pattern, compiled once and matched many times.
///
/// Exists so subscriptions and ACL rules pay the parsing cost once, not on
/// every publication they are checked against.
#[derive(Clone, PartialEq, Eq)]
pub struct TopicPattern {
    /// The pattern as written (kept for display and for equality).
    source: Box<str>,
    /// How to match it.
    kind: Kind,
}

/// Whether `topic` is a pattern (contains `*` or `?`) rather than a plain name.
///
/// Subscriptions use this to decide between the exact-topic index and the
/// pattern list.
#[must_use]
pub fn is_pattern(topic: &str) -> bool {
    topic.contains(['*', '?'])
}

/// Match `text` against `pattern` without keeping the compiled form.
///
/// Convenient for one-off checks; hot paths should keep a [`TopicPattern`].
#[must_use]
pub fn glob_match(pattern: &str, text: &str) -> bool {
    TopicPattern::new(pattern).matches(text)
}

impl TopicPattern {
    /// Compile `source`. Every string is a valid pattern.
    #[must_use]
    pub fn new(source: &str) -> Self {
        let kind = if is_pattern(source) {
            Kind::Glob(compile(source))
        } else {
            Kind::Exact
        };
        Self {
            source: source.into(),
            kind,
        }
    }

    /// The pattern as it was written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The text before the first wildcard: every topic this matches
    /// starts with it (the whole source for a plain name).
    #[must_use]
    pub fn literal_prefix(&self) -> &str {
        let end = self.source.find(['*', '?']).unwrap_or(self.source.len());
        &self.source[..end]
    }

    /// The text after the last wildcard: every topic this matches ends
    /// with it (the whole source for a plain name).
    #[must_use]
    pub fn literal_suffix(&self) -> &str {
        let start = self.source.rfind(['*', '?']).map_or(0, |i| i + 1);
        &self.source[start..]
    }

    /// Whether this contains a wildcard (otherwise it only matches itself).
    #[must_use]
    pub fn is_glob(&self) -> bool {
        matches!(self.kind, Kind::Glob(_))
    }

    /// Whether the published topic name `topic` matches this pattern.
    #[must_use]
    pub fn matches(&self, topic: &str) -> bool {
        match &self.kind {
            Kind::Exact => *self.source == *topic,
            Kind::Glob(glob) => self.matches_glob(glob, topic),
        }
    }

    fn matches_glob(&self, glob: &Glob, text: &str) -> bool {
        let src = &*self.source;
        let Some(mut pos) = match_forward(&glob.head, src, text, 0, text.len()) else {
            return false;
        };
        let Some(tail) = &glob.tail else {
            return pos == text.len();
        };
        let Some(limit) = match_backward(tail, src, text, text.len(), pos) else {
            return false;
        };
        for segment in &glob.middle {
            match find_segment(segment, src, text, pos, limit) {
                Some(end) => pos = end,
                None => return false,
            }
        }
        true
    }
}

impl fmt::Debug for TopicPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TopicPattern").field(&self.source).finish()
    }
}

impl fmt::Display for TopicPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl From<&str> for TopicPattern {
    fn from(source: &str) -> Self {
        Self::new(source)
    }
}

/// Split `source` on `*` and turn each part into a [`Segment`].
fn compile(source: &str) -> Glob {
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, _) in source.match_indices('*') {
        parts.push(segment(source, start, i));
        start = i + 1;
    }
    let last = segment(source, start, source.len());
    if parts.is_empty() {
        return Glob {
            head: last,
            middle: Vec::new(),
            tail: None,
        };
    }
    let head = parts.remove(0);
    parts.retain(|s| !s.pieces.is_empty());
    Glob {
        head,
        middle: parts,
        tail: Some(last),
    }
}

/// Pieces of `source[start..end]`, a stretch without `*`.
fn segment(source: &str, start: usize, end: usize) -> Segment {
    let mut pieces = Vec::new();
    let mut lit_start = start;
    let mut i = start;
    let bytes = source.as_bytes();
    while i < end {
        if bytes[i] == b'?' {
            if lit_start < i {
                pieces.push(Piece::Lit(lit_start, i));
            }
            let run = bytes[i..end].iter().take_while(|&&b| b == b'?').count();
            pieces.push(Piece::Any(run));
            i += run;
            lit_start = i;
        } else {
            i += 1;
        }
    }
    if lit_start < end {
        pieces.push(Piece::Lit(lit_start, end));
    }
    Segment { pieces }
}

/// Byte length of the UTF-8 character whose first byte is `first`.
fn char_width(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// Match `seg` starting at byte `at`, not reading past `limit`.
/// Returns the byte position just after the match.
fn match_forward(seg: &Segment, src: &str, text: &str, at: usize, limit: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut pos = at;
    for piece in &seg.pieces {
        match *piece {
            Piece::Lit(s, e) => {
                let lit = &src.as_bytes()[s..e];
                let end = pos + lit.len();
                if end > limit || &bytes[pos..end] != lit {
                    return None;
                }
                pos = end;
            }
            Piece::Any(n) => {
                for _ in 0..n {
                    if pos >= limit {
                        return None;
                    }
                    pos += char_width(bytes[pos]);
                }
                if pos > limit {
                    return None;
                }
            }
        }
    }
    Some(pos)
}

/// Match `seg` so that it ends at byte `end`, not reading before `floor`.
/// Returns the byte position where the match starts.
fn match_backward(seg: &Segment, src: &str, text: &str, end: usize, floor: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut pos = end;
    for piece in seg.pieces.iter().rev() {
        match *piece {
            Piece::Lit(s, e) => {
                let lit = &src.as_bytes()[s..e];
                let start = pos.checked_sub(lit.len())?;
                if start < floor || &bytes[start..pos] != lit {
                    return None;
                }
                pos = start;
            }
            Piece::Any(n) => {
                for _ in 0..n {
                    if pos <= floor {
                        return None;
                    }
                    pos -= 1;
                    while !text.is_char_boundary(pos) {
                        pos -= 1;
                    }
                }
                if pos < floor {
                    return None;
                }
            }
        }
    }
    Some(pos)
}

/// Leftmost match of `seg` inside `text[from..limit]`; returns its end.
fn find_segment(seg: &Segment, src: &str, text: &str, from: usize, limit: usize) -> Option<usize> {
    let window = &text[..limit];
    let mut start = from;
    match seg.pieces.first() {
        None => Some(from),
        Some(&Piece::Lit(s, e)) => {
            let lit = &src[s..e];
            loop {
                let found = start + window[start..].find(lit)?;
                if let Some(end) = match_forward(seg, src, text, found, limit) {
                    return Some(end);
                }
                start = found + char_width(text.as_bytes()[found]);
            }
        }
        Some(&Piece::Any(_)) => {
            while start < limit {
                if let Some(end) = match_forward(seg, src, text, start, limit) {
                    return Some(end);
                }
                start += char_width(text.as_bytes()[start]);
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::{Duration, Instant};

    /// Obviously-correct reference: dynamic programming over chars.
    fn reference(pattern: &str, text: &str) -> bool {
        let p: Vec<char> = pattern.chars().collect();
        let t: Vec<char> = text.chars().collect();
        // dp[j] = pattern[..i] matches text[..j]
        let mut dp = vec![false; t.len() + 1];
        dp[0] = true;
        for &pc in &p {
            let mut next = vec![false; t.len() + 1];
            if pc == '*' {
                let mut any = false;
                for j in 0..=t.len() {
                    any |= dp[j];
                    next[j] = any;
                }
            } else {
                for j in 1..=t.len() {
                    next[j] = dp[j - 1] && (pc == '?' || pc == t[j - 1]);
                }
            }
            dp = next;
        }
        dp[t.len()]
    }

    #[test]
    fn exact_names() {
        let p = TopicPattern::new("chat.room1");
        assert!(!p.is_glob());
        assert!(p.matches("chat.room1"));
        assert!(!p.matches("chat.room10"));
        assert!(!p.matches("chat.room"));
        assert!(TopicPattern::new("").matches(""));
    }

    #[test]
    fn star_and_question_mark() {
        let cases = [
            ("news.*", "news.sport", true),
            ("news.*", "news.", true),
            ("news.*", "news", false),
            ("*", "", true),
            ("*", "anything", true),
            ("**", "x", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("a*b*c", "acb", false),
            ("?", "", false),
            ("?", "é", true),
            ("??", "é", false),
            ("chat.?", "chat.1", true),
            ("chat.?", "chat.12", false),
            ("*.?x", "a.bx", true),
            ("*ab", "aab", true),
            ("ab*ab", "ab", false),
            ("ab*ab", "abab", true),
            ("*a?c*", "zzabcdd", true),
            ("*a?c*", "zzacdd", false),
            ("user.*.events", "user.42.events", true),
            ("user.*.events", "user..events", true),
            ("user.*.events", "user.42.event", false),
            ("*ü*", "grün", true),
            ("gr?n", "grün", true),
        ];
        for (pattern, text, want) in cases {
            assert_eq!(glob_match(pattern, text), want, "{pattern:?} vs {text:?}");
            assert_eq!(reference(pattern, text), want, "reference {pattern:?}");
        }
    }

    #[test]
    fn is_pattern_detects_wildcards() {
        assert!(is_pattern("a*"));
        assert!(is_pattern("a?"));
        assert!(!is_pattern("a.b"));
        assert!(TopicPattern::new("x?").is_glob());
    }

    #[test]
    fn hostile_patterns_stay_fast() {
        let text = "a".repeat(100_000);
        let hostile = [
            format!("{}b", "a*".repeat(2_000)),
            format!("*{}b*", "a*".repeat(2_000)),
            format!(
                "*{}*",
                "a?".repeat(30)
                    .chars()
                    .chain("b".chars())
                    .collect::<String>()
            ),
            format!("*{}b*", "a".repeat(500)),
            format!("{}*b", "?*".repeat(1_000)),
        ];
        for pattern in &hostile {
            let compiled = TopicPattern::new(pattern);
            let started = Instant::now();
            assert!(!compiled.matches(&text), "{}", &pattern[..20]);
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "pattern starting {:?} took {:?}",
                &pattern[..20],
                started.elapsed()
            );
        }
        // And a hostile pattern that does match, at the very end.
        let mut text_b = text;
        text_b.push('b');
        assert!(TopicPattern::new(&format!("*{}b*", "a*".repeat(2_000))).matches(&text_b));
    }

    fn alphabet_string(max: usize) -> impl Strategy<Value = String> {
        proptest::collection::vec(prop_oneof![Just('a'), Just('b'), Just('é')], 0..max)
            .prop_map(|v| v.into_iter().collect())
    }

    fn pattern_string() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![Just('a'), Just('b'), Just('é'), Just('*'), Just('?')],
            0..10,
        )
        .prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #[test]
        fn agrees_with_reference(pattern in pattern_string(), text in alphabet_string(14)) {
            prop_assert_eq!(
                TopicPattern::new(&pattern).matches(&text),
                reference(&pattern, &text)
            );
        }
    }
}
