//! `RustCompressionManager`: zlib with a default level, a threshold and
//! success/failure statistics (PYTHON_API.md §3.3).
//!
//! The msgpack/event methods of the Python class are stateless and live in
//! [`super::msgpack`]; this type only adds what needs state: the threshold,
//! the default level, the decompression cap and the counters.

use serde::Serialize;

use super::zlib::{self, CompressError, DEFAULT_MAX_DECOMPRESSED_LEN, DecompressError};

/// Default `threshold` of `RustCompressionManager` (bytes).
pub const DEFAULT_THRESHOLD: usize = 1024;

/// Default `compression_level` of `RustCompressionManager`.
pub const DEFAULT_LEVEL: i32 = 6;

/// `get_stats()` of the Python class; field names are the dict keys.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct CompressionStats {
    /// Successful `compress` calls.
    pub total_compressed: u64,
    /// Successful `decompress` calls.
    pub total_decompressed: u64,
    /// `compress` calls that failed (including an out-of-range level).
    pub compression_failures: u64,
    /// `decompress` calls that failed (corrupt, truncated or over the cap).
    pub decompression_failures: u64,
    /// Sum over successful compressions of `input - output` when positive.
    pub total_bytes_saved: u64,
    /// `total_compressed / (total_compressed + compression_failures)`, 0.0
    /// before any attempt.
    pub compression_success_rate: f64,
    /// `total_decompressed / (total_decompressed + decompression_failures)`,
    /// 0.0 before any attempt.
    pub decompression_success_rate: f64,
    /// `total_bytes_saved / total_compressed`, 0.0 before any success.
    pub average_bytes_saved: f64,
}

/// Raw counters; the rates of [`CompressionStats`] are derived from them.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    compressed: u64,
    decompressed: u64,
    compression_failures: u64,
    decompression_failures: u64,
    bytes_saved: u64,
}

/// zlib helper with defaults and statistics.
///
/// Methods that count take `&mut self`; the Python wrapper owns the
/// instance (one per Python object) and serializes access.
#[derive(Debug, Clone)]
pub struct CompressionManager {
    /// `should_compress` is true for data strictly longer than this.
    threshold: usize,
    /// Level used when `compress` is called without one. Validated at use,
    /// like an explicit level, so construction never fails.
    level: i32,
    /// Output cap of `decompress` (10 MiB unless configured).
    max_decompressed_len: usize,
    /// Success/failure counters behind `get_stats`.
    counters: Counters,
}

impl Default for CompressionManager {
    fn default() -> Self {
        Self::new(DEFAULT_THRESHOLD, DEFAULT_LEVEL)
    }
}

impl CompressionManager {
    /// `RustCompressionManager(threshold=1024, compression_level=6)`.
    pub fn new(threshold: usize, compression_level: i32) -> Self {
        Self {
            threshold,
            level: compression_level,
            max_decompressed_len: DEFAULT_MAX_DECOMPRESSED_LEN,
            counters: Counters::default(),
        }
    }

    /// Changes the decompression output cap (default 10 MiB).
    pub fn with_max_decompressed_len(mut self, limit: usize) -> Self {
        self.max_decompressed_len = limit;
        self
    }

    /// The configured threshold.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// The default compression level.
    pub fn compression_level(&self) -> i32 {
        self.level
    }

    /// True when `data` is strictly longer than the threshold.
    pub fn should_compress(&self, data: &[u8]) -> bool {
        zlib::should_compress(data.len(), self.threshold)
    }

    /// Compresses with `level`, or the default level when `None`, and
    /// records the outcome.
    pub fn compress(&mut self, data: &[u8], level: Option<i32>) -> Result<Vec<u8>, CompressError> {
        match zlib::compress(data, level.unwrap_or(self.level)) {
            Ok(out) => {
                self.counters.compressed += 1;
                self.counters.bytes_saved += data.len().saturating_sub(out.len()) as u64;
                Ok(out)
            }
            Err(err) => {
                self.counters.compression_failures += 1;
                Err(err)
            }
        }
    }

    /// Decompresses under the configured cap and records the outcome.
    pub fn decompress(&mut self, data: &[u8]) -> Result<Vec<u8>, DecompressError> {
        let result = zlib::decompress_with_limit(data, self.max_decompressed_len);
        match &result {
            Ok(_) => self.counters.decompressed += 1,
            Err(_) => self.counters.decompression_failures += 1,
        }
        result
    }

    /// `get_stats()`.
    pub fn stats(&self) -> CompressionStats {
        let c = self.counters;
        let ratio = |num: u64, den: u64| {
            if den > 0 {
                num as f64 / den as f64
            } else {
                0.0
            }
        };
        CompressionStats {
            total_compressed: c.compressed,
            total_decompressed: c.decompressed,
            compression_failures: c.compression_failures,
            decompression_failures: c.decompression_failures,
            total_bytes_saved: c.bytes_saved,
            compression_success_rate: ratio(c.compressed, c.compressed + c.compression_failures),
            decompression_success_rate: ratio(
                c.decompressed,
                c.decompressed + c.decompression_failures,
            ),
            average_bytes_saved: ratio(c.bytes_saved, c.compressed),
        }
    }

    /// `reset_stats()`: zeroes every counter; settings are kept.
    pub fn reset_stats(&mut self) {
        self.counters = Counters::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_stats_are_zero() {
        assert_eq!(
            CompressionManager::default().stats(),
            CompressionStats::default()
        );
    }

    #[test]
    fn counts_successes_failures_and_savings() {
        let mut m = CompressionManager::new(10, 6);
        assert!(!m.should_compress(&[0; 10]));
        assert!(m.should_compress(&[0; 11]));

        let data = vec![b'a'; 1000];
        let z = m.compress(&data, None).unwrap();
        let saved = (data.len() - z.len()) as u64;
        // Incompressible tiny input: output is larger, saves nothing.
        m.compress(b"x", Some(1)).unwrap();
        assert!(m.compress(b"x", Some(0)).is_err());
        assert_eq!(m.decompress(&z).unwrap(), data);
        assert!(m.decompress(b"junk").is_err());

        let s = m.stats();
        assert_eq!(s.total_compressed, 2);
        assert_eq!(s.compression_failures, 1);
        assert_eq!(s.total_decompressed, 1);
        assert_eq!(s.decompression_failures, 1);
        assert_eq!(s.total_bytes_saved, saved);
        assert!((s.compression_success_rate - 2.0 / 3.0).abs() < 1e-12);
        assert!((s.decompression_success_rate - 0.5).abs() < 1e-12);
        assert!((s.average_bytes_saved - saved as f64 / 2.0).abs() < 1e-12);

        m.reset_stats();
        assert_eq!(m.stats(), CompressionStats::default());
        assert_eq!(m.threshold(), 10);
    }

    #[test]
    fn invalid_default_level_fails_at_use() {
        let mut m = CompressionManager::new(0, 42);
        assert!(matches!(
            m.compress(b"x", None),
            Err(CompressError::InvalidLevel(42))
        ));
        assert!(m.compress(b"x", Some(9)).is_ok());
    }

    #[test]
    fn decompression_cap_is_configurable() {
        let mut m = CompressionManager::default().with_max_decompressed_len(100);
        let z = zlib::compress(&[0u8; 101], 1).unwrap();
        assert!(matches!(
            m.decompress(&z),
            Err(DecompressError::TooLarge { limit: 100 })
        ));
        assert_eq!(m.stats().decompression_failures, 1);
    }
}
