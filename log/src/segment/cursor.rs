//! Sequential, validated reading of the records of a segment file.
//!
//! A cursor reads the file in chunks with positional reads (so a file
//! handle can be shared by the writer and any number of readers), and
//! returns records as views into the chunk it read (no copy per record).

use std::io;

use bytes::Bytes;

use crate::position::Epoch;
use crate::record::{self, DecodeError, HEADER_LEN, Record};
use crate::storage::StorageFile;
pub use crate::storage::read_at_most;

/// Default read size of a cursor.
const CHUNK: usize = 256 * 1024;

/// Why a cursor returned no record.
#[derive(Debug)]
pub enum CursorStop {
    /// The data ends exactly here.
    End,
    /// The data ends inside the record that starts at `at` (a torn write,
    /// or a record still being written by another process).
    Truncated {
        /// Byte position of the incomplete record.
        at: u64,
        /// How many bytes it needs and how many there are.
        error: DecodeError,
    },
    /// The bytes at `at` are not a valid record.
    Invalid {
        /// Byte position of the bad record.
        at: u64,
        /// What is wrong with it.
        error: DecodeError,
    },
    /// Reading failed.
    Io(io::Error),
}

/// Reads the records of one file from a byte position up to a limit.
pub struct RecordCursor<'f> {
    file: &'f dyn StorageFile,
    pos: u64,
    limit: u64,
    buf: Bytes,
    buf_start: u64,
    max_payload: usize,
}

impl<'f> RecordCursor<'f> {
    /// A cursor over `file` from byte `start` up to byte `limit`.
    pub fn new(file: &'f dyn StorageFile, start: u64, limit: u64, max_payload: usize) -> Self {
        Self {
            file,
            pos: start,
            limit,
            buf: Bytes::new(),
            buf_start: start,
            max_payload,
        }
    }

    /// Byte position of the next record.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The next record, validated (length and CRC).
    pub fn next_record(&mut self) -> Result<Record, CursorStop> {
        if self.pos >= self.limit {
            return Err(CursorStop::End);
        }
        let mut want = HEADER_LEN;
        loop {
            let rel = (self.pos - self.buf_start) as usize;
            let have = self.buf.len().saturating_sub(rel);
            if have < want {
                self.fill(want)?;
                continue;
            }
            let view = self.buf.slice(rel..);
            match Record::decode(&view, self.max_payload) {
                Ok(r) => {
                    self.pos += r.encoded_len() as u64;
                    return Ok(r);
                }
                Err(DecodeError::Truncated { needed, .. }) => {
                    if self.pos + needed as u64 > self.limit {
                        return Err(self.truncated(needed));
                    }
                    want = needed;
                }
                Err(error) => {
                    return Err(CursorStop::Invalid {
                        at: self.pos,
                        error,
                    });
                }
            }
        }
    }

    fn truncated(&self, needed: usize) -> CursorStop {
        CursorStop::Truncated {
            at: self.pos,
            error: DecodeError::Truncated {
                needed,
                available: (self.limit - self.pos) as usize,
            },
        }
    }

    /// Read at least `want` bytes from the current position (or up to the
    /// limit), replacing the buffer.
    fn fill(&mut self, want: usize) -> Result<(), CursorStop> {
        let remaining = self.limit - self.pos;
        if remaining < want as u64 {
            // Not enough data for the record: a torn tail.
            return Err(self.truncated(want));
        }
        let size = (want.max(CHUNK) as u64).min(remaining) as usize;
        let got = read_at_most(self.file, self.pos, size).map_err(CursorStop::Io)?;
        if got.len() < want {
            // The file is shorter than the limit said (truncated meanwhile).
            self.limit = self.pos + got.len() as u64;
            return Err(self.truncated(want));
        }
        self.buf_start = self.pos;
        self.buf = got;
        Ok(())
    }
}

/// Find the first valid record of `epoch` at or after byte `from` and before
/// `limit`, by trying every byte position: the way past a corrupt record
/// whose length field cannot be trusted. Cheap header checks come before
/// the CRC, so this reads the range once.
pub fn resync(
    file: &dyn StorageFile,
    from: u64,
    limit: u64,
    max_payload: usize,
    epoch: Epoch,
) -> io::Result<Option<(u64, Record)>> {
    resync_where(file, from, limit, max_payload, epoch, |_| true)
}

/// Like [`resync`], for the first valid record that `accept` also takes
/// (e.g. one whose offset is past the damage, so a stale or duplicated
/// record is not taken for the place where reading resumes).
pub fn resync_where(
    file: &dyn StorageFile,
    from: u64,
    limit: u64,
    max_payload: usize,
    epoch: Epoch,
    accept: impl Fn(&Record) -> bool,
) -> io::Result<Option<(u64, Record)>> {
    let mut start = from;
    while start + HEADER_LEN as u64 <= limit {
        let size = ((CHUNK + HEADER_LEN) as u64).min(limit - start) as usize;
        let chunk = read_at_most(file, start, size)?;
        if chunk.len() < HEADER_LEN {
            return Ok(None);
        }
        for i in 0..=(chunk.len() - HEADER_LEN) {
            let h = &chunk[i..i + HEADER_LEN];
            let plausible = h[16..20] == epoch.0.to_le_bytes()
                && record::RecordKind::from_byte(h[28]).is_some()
                && record::declared_len(h)
                    .is_some_and(|n| n >= HEADER_LEN && n - HEADER_LEN <= max_payload);
            if !plausible {
                continue;
            }
            let at = start + i as u64;
            let n = record::declared_len(h).unwrap_or(HEADER_LEN);
            if at + n as u64 > limit {
                continue;
            }
            let bytes = read_at_most(file, at, n)?;
            if let Ok(r) = Record::decode(&bytes, max_payload)
                && accept(&r)
            {
                return Ok(Some((at, r)));
            }
        }
        start += (chunk.len() - HEADER_LEN + 1) as u64;
    }
    Ok(None)
}
