//! zlib compression with validated levels and bounded decompression.
//!
//! `send_event` compresses with level 1 when the JSON is longer than the
//! threshold (CLIENT_PROTOCOL.md §6); the Python helpers `rust_compress`,
//! `rust_decompress` and `rust_should_compress` expose the same operations.
//! Decompression never produces more than a caller-chosen number of bytes
//! (10 MiB by default), so a zip bomb fails as soon as it crosses the limit
//! instead of exhausting memory.

use flate2::write::ZlibEncoder;
use flate2::{Compression, Decompress, FlushDecompress, Status};
use std::io::Write as _;

/// Output cap of [`decompress`]: `rust_decompress` refuses to inflate more
/// than this (10 MiB).
pub const DEFAULT_MAX_DECOMPRESSED_LEN: usize = 10 * 1024 * 1024;

/// Smallest accepted compression level (fastest).
pub const MIN_LEVEL: i32 = 1;

/// Largest accepted compression level (smallest output).
pub const MAX_LEVEL: i32 = 9;

/// The level `send_event` uses for `C:` frames (zlib header `78 01`).
pub const SEND_EVENT_LEVEL: i32 = 1;

/// Size of the scratch buffer inflation writes into before the output is
/// appended; bounds the work done between two limit checks.
const INFLATE_CHUNK: usize = 32 * 1024;

/// Why compression failed.
#[derive(Debug, thiserror::Error)]
pub enum CompressError {
    /// The level is outside 1..=9 (Python `ValueError`).
    #[error("compression level must be between 1 and 9, got {0}")]
    InvalidLevel(i32),
    /// The encoder failed (in practice only on allocation failure).
    #[error("compression error: {0}")]
    Io(#[from] std::io::Error),
}

/// Why decompression failed; every message starts with
/// `decompression error: ` (Python `RuntimeError`).
#[derive(Debug, thiserror::Error)]
pub enum DecompressError {
    /// The output would exceed the configured cap.
    #[error("decompression error: output exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The cap that was hit.
        limit: usize,
    },
    /// The input is not a valid zlib stream (bad header, bad checksum,
    /// corrupt deflate data).
    #[error("decompression error: {0}")]
    Corrupt(#[from] flate2::DecompressError),
    /// The input ends before the zlib stream does.
    #[error("decompression error: incomplete or truncated stream")]
    Truncated,
}

/// Checks that `level` is in 1..=9 and turns it into a flate2 level.
pub fn validate_level(level: i32) -> Result<Compression, CompressError> {
    match u32::try_from(level) {
        Ok(l) if (MIN_LEVEL..=MAX_LEVEL).contains(&level) => Ok(Compression::new(l)),
        _ => Err(CompressError::InvalidLevel(level)),
    }
}

/// `rust_compress`: zlib (RFC 1950) of `data` at `level` (1..=9).
pub fn compress(data: &[u8], level: i32) -> Result<Vec<u8>, CompressError> {
    let level = validate_level(level)?;
    // A deflate stream is at most ~0.1% larger than its input, plus headers.
    let mut encoder = ZlibEncoder::new(Vec::with_capacity(data.len() / 2 + 64), level);
    encoder.write_all(data)?;
    Ok(encoder.finish()?)
}

/// `rust_decompress`: inflates a zlib stream, refusing to produce more than
/// [`DEFAULT_MAX_DECOMPRESSED_LEN`] bytes.
pub fn decompress(data: &[u8]) -> Result<Vec<u8>, DecompressError> {
    decompress_with_limit(data, DEFAULT_MAX_DECOMPRESSED_LEN)
}

/// Inflates a zlib stream into at most `limit` bytes.
///
/// Memory use never exceeds `limit` plus a 32 KiB scratch buffer; the
/// error is returned as soon as the limit is crossed. Bytes after the end
/// of the zlib stream are ignored, as Python's `zlib.decompress` does.
pub fn decompress_with_limit(data: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError> {
    let mut inflater = Decompress::new(true);
    let mut chunk = vec![0u8; INFLATE_CHUNK];
    let mut out: Vec<u8> = Vec::new();
    loop {
        let consumed_before = inflater.total_in();
        let produced_before = inflater.total_out();
        let input = data
            .get(usize::try_from(consumed_before).unwrap_or(usize::MAX)..)
            .unwrap_or_default();
        let status = inflater.decompress(input, &mut chunk, FlushDecompress::None)?;
        let consumed = inflater.total_in() - consumed_before;
        let produced =
            usize::try_from(inflater.total_out() - produced_before).unwrap_or(usize::MAX);

        let new_len = out.len().saturating_add(produced);
        if new_len > limit {
            return Err(DecompressError::TooLarge { limit });
        }
        if new_len > out.capacity() {
            // Grow geometrically, but never reserve past the limit.
            let target = out.capacity().saturating_mul(2).max(new_len).min(limit);
            out.reserve_exact(target - out.len());
        }
        out.extend_from_slice(&chunk[..produced]);

        match status {
            Status::StreamEnd => return Ok(out),
            Status::Ok | Status::BufError if consumed == 0 && produced == 0 => {
                return Err(DecompressError::Truncated);
            }
            Status::Ok | Status::BufError => {}
        }
    }
}

/// `rust_should_compress` and the `send_event` rule: compress only when the
/// data is strictly longer than `threshold`.
pub fn should_compress(len: usize, threshold: usize) -> bool {
    len > threshold
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_at_every_level() {
        let data = b"the quick brown fox jumps over the lazy dog ".repeat(50);
        for level in MIN_LEVEL..=MAX_LEVEL {
            let z = compress(&data, level).unwrap();
            assert!(z.len() < data.len());
            assert_eq!(decompress(&z).unwrap(), data);
        }
        assert_eq!(decompress(&compress(b"", 6).unwrap()).unwrap(), b"");
    }

    #[test]
    fn level_one_has_the_header_upstream_sends() {
        assert_eq!(
            &compress(b"hello", SEND_EVENT_LEVEL).unwrap()[..2],
            &[0x78, 0x01]
        );
        assert_eq!(&compress(b"hello", 6).unwrap()[..2], &[0x78, 0x9c]);
        assert_eq!(&compress(b"hello", 9).unwrap()[..2], &[0x78, 0xda]);
    }

    #[test]
    fn out_of_range_levels_are_refused() {
        for level in [i32::MIN, -1, 0, 10, 11, i32::MAX] {
            let err = compress(b"x", level).unwrap_err();
            assert!(matches!(err, CompressError::InvalidLevel(l) if l == level));
            assert_eq!(
                err.to_string(),
                format!("compression level must be between 1 and 9, got {level}")
            );
        }
    }

    /// Python: `zlib.compress(b"hello")` (level 6), an independent encoder.
    #[test]
    fn decompresses_python_output() {
        let z = [
            0x78, 0x9c, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x06, 0x2c, 0x02, 0x15,
        ];
        assert_eq!(decompress(&z).unwrap(), b"hello");
        let mut trailing = z.to_vec();
        trailing.extend_from_slice(b"junk");
        assert_eq!(decompress(&trailing).unwrap(), b"hello");
    }

    #[test]
    fn garbage_truncation_and_bad_checksums_are_errors() {
        let err = decompress(b"definitely not zlib").unwrap_err();
        assert!(matches!(err, DecompressError::Corrupt(_)), "{err:?}");
        assert!(err.to_string().starts_with("decompression error: "));

        let z = compress(&b"abc".repeat(1000), 6).unwrap();
        for cut in [0, 1, 2, z.len() / 2, z.len() - 1] {
            let err = decompress(&z[..cut]).unwrap_err();
            assert!(
                matches!(
                    err,
                    DecompressError::Truncated | DecompressError::Corrupt(_)
                ),
                "cut {cut}: {err:?}"
            );
        }
        assert_eq!(
            decompress(&z[..z.len() - 3]).unwrap_err().to_string(),
            "decompression error: incomplete or truncated stream"
        );

        let mut bad_adler = z;
        let last = bad_adler.len() - 1;
        bad_adler[last] ^= 0xff;
        assert!(matches!(
            decompress(&bad_adler).unwrap_err(),
            DecompressError::Corrupt(_)
        ));
    }

    #[test]
    fn zip_bomb_stops_at_the_limit() {
        // 64 MiB of zeros compress to ~64 KiB.
        let bomb = compress(&vec![0u8; 64 * 1024 * 1024], 9).unwrap();
        assert!(bomb.len() < 100 * 1024);
        let started = std::time::Instant::now();
        let err = decompress(&bomb).unwrap_err();
        assert!(
            matches!(err, DecompressError::TooLarge { limit } if limit == DEFAULT_MAX_DECOMPRESSED_LEN)
        );
        assert_eq!(
            err.to_string(),
            "decompression error: output exceeds the limit of 10485760 bytes"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn limit_is_inclusive_and_never_over_reserved() {
        let data = vec![7u8; 100_000];
        let z = compress(&data, 1).unwrap();
        let out = decompress_with_limit(&z, 100_000).unwrap();
        assert_eq!(out, data);
        assert!(out.capacity() <= 100_000);
        assert!(matches!(
            decompress_with_limit(&z, 99_999),
            Err(DecompressError::TooLarge { limit: 99_999 })
        ));
        assert!(matches!(
            decompress_with_limit(&z, 0),
            Err(DecompressError::TooLarge { limit: 0 })
        ));
    }

    #[test]
    fn should_compress_is_strictly_greater() {
        assert!(!should_compress(1024, 1024));
        assert!(should_compress(1025, 1024));
        assert!(!should_compress(0, 0));
        assert!(should_compress(1, 0));
    }

    proptest::proptest! {
        #[test]
        fn prop_round_trip(data in proptest::collection::vec(proptest::num::u8::ANY, 0..4096), level in 1i32..=9) {
            let z = compress(&data, level).unwrap();
            proptest::prop_assert_eq!(decompress(&z).unwrap(), data);
        }

        #[test]
        fn prop_arbitrary_input_never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..512), limit in 0usize..10_000) {
            let _ = decompress_with_limit(&data, limit);
        }
    }
}
