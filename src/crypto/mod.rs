//! End-to-end encryption primitives and signing helpers.
//!
//! An E2E connection (CLIENT_PROTOCOL.md §13) goes through three steps, one
//! module each:
//!
//! 1. [`ecdh`]: the server makes a [`KeyPair`], parses the client's
//!    [`PeerPublicKey`] from `client_hello`, and both derive the same
//!    32-byte key with HKDF-SHA256.
//! 2. [`aead`]: that key becomes a [`SessionCipher`] (AES-256-GCM, random
//!    12-byte IV per message, `IV ‖ ciphertext ‖ tag`).
//! 3. [`frame`]: the cipher writes and reads the `E:` binary frame bodies.
//!
//! [`signing`] holds the HMAC-SHA256 / SHA-256 helpers of the Python API
//! and the check of a client's `sig` field.
//!
//! Error Display texts are the Python exception messages of the upstream
//! module, so the Python binding can pass them through unchanged.

pub mod aead;
pub mod ecdh;
pub mod frame;
pub mod signing;

pub use aead::{AES_KEY_LEN, AeadError, AesKey, IV_LEN, MIN_SEALED_LEN, SessionCipher, TAG_LEN};
pub use ecdh::{KeyExchangeError, KeyPair, PeerPublicKey};
pub use frame::{ENCRYPTED_FRAME_PREFIX, FrameError};

/// Decodes a hex string in tests (vectors are written in hex).
#[cfg(test)]
pub(crate) fn test_hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test vector is hex"))
        .collect()
}
