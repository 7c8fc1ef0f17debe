//! The WebSocket layer (RFC 6455), server side.
//!
//! tungstenite supplies the frame-header codec and the accept-key
//! derivation; the server drives the socket itself so that a broadcast's
//! frame is built once and written, shared, to every subscriber with
//! vectored writes (tungstenite's message API would copy each frame per
//! connection).
//!
//! - [`handshake`]: reading the HTTP upgrade request and answering it.
//! - [`frame`]: server frames (built once, shared) and the parser of client
//!   frames (masking, fragmentation, limits, UTF-8).
//! - [`extensions`]: negotiating per-message deflate in the upgrade;
//!   [`deflate`]: compressing and inflating messages.

pub mod deflate;
pub mod extensions;
pub mod frame;
pub mod handshake;
