//! zlib and MessagePack helpers of the `send_event` pipeline and of the
//! Python compression utilities.
//!
//! - [`zlib`]: level-checked compression, decompression with an output cap
//!   (10 MiB by default; zip bombs fail fast), the strict `>` threshold rule.
//! - [`msgpack`]: msgpack encode/decode of `serde_json::Value` (string keys,
//!   nesting limit 64) and the `pack_event`/`unpack_event` fallbacks.
//! - [`manager`]: [`CompressionManager`], the stateful
//!   `RustCompressionManager` (defaults and statistics).
//!
//! Error Display texts are the Python exception messages (`decompression
//! error: ...`, `msgpack unpacking failed: ...`).

pub mod manager;
pub mod msgpack;
pub mod zlib;

pub use manager::{CompressionManager, CompressionStats};
pub use msgpack::{MsgpackError, UnpackEventError, pack_msgpack, unpack_msgpack};
pub use zlib::{CompressError, DecompressError, compress, decompress, should_compress};
