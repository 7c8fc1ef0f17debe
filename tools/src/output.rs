//! Printing helpers shared by the commands: buffered stdout that turns a
//! closed pipe into [`CliError::BrokenPipe`] (a clean stop, not an error
//! message), timestamp formatting, and names made safe for a terminal.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, BufWriter, StdoutLock, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::error::CliError;

/// Buffered standard output.
///
/// Rust ignores SIGPIPE, so a reader that goes away (`| head`) shows up as
/// a `BrokenPipe` write error; every method maps it to
/// [`CliError::BrokenPipe`], which `main` ends the process on quietly.
pub struct Out {
    /// Buffered, so a dump of a million records is not a million syscalls;
    /// commands that follow a log call [`Out::flush`] after each batch.
    w: BufWriter<StdoutLock<'static>>,
}

impl Out {
    /// Standard output, locked for the life of the command.
    pub fn stdout() -> Self {
        Self {
            w: BufWriter::with_capacity(64 * 1024, io::stdout().lock()),
        }
    }

    /// Write raw bytes.
    pub fn bytes(&mut self, b: &[u8]) -> Result<(), CliError> {
        self.w.write_all(b).map_err(stdout_error)
    }

    /// Write a formatted line (`out.line(format_args!(..))`).
    pub fn line(&mut self, args: fmt::Arguments<'_>) -> Result<(), CliError> {
        self.w.write_fmt(args).map_err(stdout_error)?;
        self.bytes(b"\n")
    }

    /// Write `value` as indented JSON.
    pub fn json_pretty<T: Serialize>(&mut self, value: &T) -> Result<(), CliError> {
        serde_json::to_writer_pretty(&mut self.w, value).map_err(|e| match e.io_error_kind() {
            Some(kind) => stdout_error(kind.into()),
            None => CliError::io("encode JSON", io::Error::other(e)),
        })?;
        self.bytes(b"\n")
    }

    /// Hand everything written so far to the reader.
    pub fn flush(&mut self) -> Result<(), CliError> {
        self.w.flush().map_err(stdout_error)
    }
}

fn stdout_error(e: io::Error) -> CliError {
    if e.kind() == io::ErrorKind::BrokenPipe {
        CliError::BrokenPipe
    } else {
        CliError::io("write to standard output", e)
    }
}

/// `name` (a topic name, from a client) as a terminal may show it: control
/// characters (C0, DEL, C1) and the bidirectional formatting characters
/// that reorder what follows them (U+061C, U+200E, U+200F, U+202A..U+202E,
/// U+2066..U+2069) written as `\u{..}`, and a backslash as `\\`, so the
/// output cannot be mistaken for another name. Other names are borrowed
/// as they are.
pub fn escaped(name: &str) -> Cow<'_, str> {
    fn hidden(c: char) -> bool {
        c.is_control()
            || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !name.chars().any(|c| c == '\\' || hidden(c)) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if hidden(c) {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Seconds since the Unix epoch of 10000-01-01, the first instant RFC 3339
/// cannot show.
const YEAR_10000: u64 = 253_402_300_800;

/// A record time (microseconds since the Unix epoch) in RFC 3339 with
/// microseconds, UTC: `2025-01-31T12:00:00.123456Z`.
pub fn rfc3339_us(ts_us: u64) -> String {
    if ts_us / 1_000_000 >= YEAR_10000 {
        // Only a damaged record could carry it; show it rather than fail.
        return format!("{ts_us}us-since-epoch");
    }
    let t: SystemTime = UNIX_EPOCH + Duration::from_micros(ts_us);
    humantime::format_rfc3339_micros(t).to_string()
}

/// Like [`rfc3339_us`], but `None` for 0 (the time of an empty segment).
pub fn rfc3339_us_opt(ts_us: u64) -> Option<String> {
    (ts_us != 0).then(|| rfc3339_us(ts_us))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_for_a_terminal() {
        assert!(matches!(escaped("chat.room-1 é"), Cow::Borrowed(_)));
        assert_eq!(escaped("\u{1}presence:lobby"), "\\u{0001}presence:lobby");
        assert_eq!(escaped("a\u{202e}gpj.exe"), "a\\u{202e}gpj.exe");
        assert_eq!(
            escaped("x\u{1b}[31my\u{7f}\u{85}"),
            "x\\u{001b}[31my\\u{007f}\\u{0085}"
        );
        assert_eq!(
            escaped("a\\u{0001}"),
            "a\\\\u{0001}",
            "a backslash cannot fake an escape"
        );
        assert_eq!(escaped("\u{2066}\u{200f}"), "\\u{2066}\\u{200f}");
    }

    #[test]
    fn formats_microseconds_and_survives_absurd_times() {
        assert_eq!(
            rfc3339_us(1_700_000_000_123_456),
            "2023-11-14T22:13:20.123456Z"
        );
        assert_eq!(rfc3339_us(u64::MAX), format!("{}us-since-epoch", u64::MAX));
        assert_eq!(rfc3339_us_opt(0), None);
    }
}
