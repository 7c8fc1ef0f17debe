//! Printing helpers shared by the commands: buffered stdout that turns a
//! closed pipe into [`CliError::BrokenPipe`] (a clean stop, not an error
//! message), and timestamp formatting.

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

    /// Write `value` as one line of JSON.
    pub fn json_line<T: Serialize>(&mut self, value: &T) -> Result<(), CliError> {
        serde_json::to_writer(&mut self.w, value).map_err(|e| match e.io_error_kind() {
            Some(kind) => stdout_error(kind.into()),
            None => CliError::io("encode JSON", io::Error::other(e)),
        })?;
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
    fn formats_microseconds_and_survives_absurd_times() {
        assert_eq!(
            rfc3339_us(1_700_000_000_123_456),
            "2023-11-14T22:13:20.123456Z"
        );
        assert_eq!(rfc3339_us(u64::MAX), format!("{}us-since-epoch", u64::MAX));
        assert_eq!(rfc3339_us_opt(0), None);
    }
}
