//! Compiled `$regex` patterns, cached process-wide.
//!
//! Filters are evaluated per event, so patterns are compiled once and kept
//! in a FIFO cache of [`REGEX_CACHE_CAPACITY`] entries (upstream's size).
//! Invalid patterns are cached too, so a bad filter costs one failed
//! compilation, not one per event. Patterns are size-bounded: input longer
//! than [`MAX_PATTERN_LEN`] or compiling past [`REGEX_SIZE_LIMIT`] is
//! refused, which keeps a hostile filter from costing much memory or time.

use std::collections::{HashMap, VecDeque};
use std::sync::LazyLock;

use parking_lot::Mutex;
use regex::{Regex, RegexBuilder};

/// Patterns kept compiled; the oldest is evicted beyond this.
pub const REGEX_CACHE_CAPACITY: usize = 1024;

/// Longest pattern (in bytes) that is compiled at all.
pub const MAX_PATTERN_LEN: usize = 4096;

/// Cap on a compiled program and on the lazy DFA of one pattern (bytes).
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Result of compiling a pattern: the regex, or the compiler's message.
type Compiled = Result<Regex, String>;

/// A FIFO-evicting map from pattern to compiled result.
#[derive(Debug)]
struct RegexCache {
    /// Compiled results by pattern.
    entries: HashMap<String, Compiled>,
    /// Patterns in insertion order, for eviction.
    order: VecDeque<String>,
    /// Most entries kept.
    capacity: usize,
}

impl RegexCache {
    fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    fn get(&self, pattern: &str) -> Option<Compiled> {
        self.entries.get(pattern).cloned()
    }

    fn insert(&mut self, pattern: &str, compiled: Compiled) {
        if self.capacity == 0 || self.entries.contains_key(pattern) {
            return;
        }
        while self.entries.len() >= self.capacity {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.entries.remove(&oldest);
        }
        self.entries.insert(pattern.to_owned(), compiled);
        self.order.push_back(pattern.to_owned());
    }

    /// The cached result for `pattern`, compiling (outside of any lock the
    /// caller holds around `self`) on a miss.
    fn lookup(cache: &Mutex<Self>, pattern: &str) -> Compiled {
        if let Some(hit) = cache.lock().get(pattern) {
            return hit;
        }
        let compiled = compile_anchored(pattern);
        cache.lock().insert(pattern, compiled.clone());
        compiled
    }
}

static CACHE: LazyLock<Mutex<RegexCache>> =
    LazyLock::new(|| Mutex::new(RegexCache::new(REGEX_CACHE_CAPACITY)));

/// Compiles `pattern` with Python `re.match` semantics: anchored at the
/// start as `^(?:pattern)`, always, so every alternative is anchored
/// (`^a|b` must not match `"xb"`; a leading `^` is then merely redundant).
fn compile_anchored(pattern: &str) -> Compiled {
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(format!(
            "pattern is {} bytes long, the limit is {MAX_PATTERN_LEN}",
            pattern.len()
        ));
    }
    RegexBuilder::new(&format!("^(?:{pattern})"))
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| e.to_string())
}

/// The compiled, start-anchored regex for `pattern` from the process-wide
/// cache, or the reason it does not compile.
pub(crate) fn cached_regex(pattern: &str) -> Result<Regex, String> {
    if pattern.len() > MAX_PATTERN_LEN {
        // Not cached: a huge key would pin memory for nothing.
        return compile_anchored(pattern);
    }
    RegexCache::lookup(&CACHE, pattern)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_anchored_at_the_start_only() {
        let re = cached_regex("ab+").unwrap();
        assert!(re.is_match("abbb-tail"));
        assert!(!re.is_match("xab"));
        let alt = cached_regex("a|b").unwrap();
        assert!(alt.is_match("b..."));
        assert!(!alt.is_match("cb"));
        assert!(cached_regex("^x$").unwrap().is_match("x"));
        // Python: re.match("^a|b", "xb") is None; the `b` branch is
        // anchored too.
        let leading = cached_regex("^a|b").unwrap();
        assert!(!leading.is_match("xb"));
        assert!(leading.is_match("b"));
        assert!(leading.is_match("ab"));
    }

    #[test]
    fn bad_and_oversized_patterns_are_errors() {
        assert!(cached_regex("(unclosed").is_err());
        assert!(cached_regex("(unclosed").is_err(), "cached failure");
        assert!(cached_regex(&"a".repeat(MAX_PATTERN_LEN + 1)).is_err());
        // Small text, huge program: refused by the size limit.
        assert!(cached_regex(r"\w{1000}{1000}").is_err());
    }

    #[test]
    fn eviction_is_fifo() {
        let cache = Mutex::new(RegexCache::new(2));
        let _ = RegexCache::lookup(&cache, "a");
        let _ = RegexCache::lookup(&cache, "b");
        let _ = RegexCache::lookup(&cache, "a"); // a hit does not refresh
        let _ = RegexCache::lookup(&cache, "c"); // evicts a
        let guard = cache.lock();
        assert!(guard.get("a").is_none());
        assert!(guard.get("b").is_some());
        assert!(guard.get("c").is_some());
        assert_eq!(guard.order.len(), 2);
    }

    #[test]
    fn zero_capacity_cache_still_compiles() {
        let cache = Mutex::new(RegexCache::new(0));
        assert!(RegexCache::lookup(&cache, "a").is_ok());
        assert!(cache.lock().entries.is_empty());
    }
}
