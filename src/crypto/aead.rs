//! AES-256-GCM with the WSE wire layout `IV(12) ‖ ciphertext ‖ tag(16)`.
//!
//! Every message gets a fresh random 12-byte IV and no associated data
//! (CLIENT_PROTOCOL.md §13). [`SessionCipher`] keeps the expanded key
//! schedule of one connection so the per-message cost is only the
//! encryption itself; [`encrypt`]/[`decrypt`] are the one-shot forms behind
//! `rust_aes_gcm_encrypt`/`rust_aes_gcm_decrypt`.

use aes_gcm::aead::AeadInPlace as _;
use aes_gcm::{Aes256Gcm, KeyInit as _, Nonce, Tag};
use rand::RngCore as _;

/// Length of the AES-256 key derived by the handshake.
pub const AES_KEY_LEN: usize = 32;

/// Length of the random IV that starts every sealed message.
pub const IV_LEN: usize = 12;

/// Length of the GCM authentication tag that ends every sealed message.
pub const TAG_LEN: usize = 16;

/// Smallest valid sealed message: IV and tag around an empty plaintext.
pub const MIN_SEALED_LEN: usize = IV_LEN + TAG_LEN;

/// A derived AES-256-GCM key (the output of the E2E handshake).
pub type AesKey = [u8; AES_KEY_LEN];

/// Why an AES-GCM operation failed.
///
/// Display texts are the Python messages of the upstream module:
/// `ValueError` for the first two, `RuntimeError` for the last two.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AeadError {
    /// The key is not 32 bytes long.
    #[error("AES-GCM-256 key must be 32 bytes")]
    InvalidKeyLength {
        /// The length that was given, for logs.
        len: usize,
    },
    /// The sealed message cannot even hold the IV and the tag.
    #[error("Encrypted data too short (min 28 bytes: 12 IV + 16 tag)")]
    TooShort {
        /// The length that was given, for logs.
        len: usize,
    },
    /// The plaintext exceeds GCM's 64 GiB per-message limit.
    #[error("Encrypt failed: {0}")]
    Encrypt(aes_gcm::Error),
    /// Wrong key, or the IV, ciphertext or tag was altered.
    #[error("Decrypt failed: {0}")]
    Decrypt(aes_gcm::Error),
}

/// The AES-256-GCM state of one E2E connection.
///
/// Built once when the key exchange succeeds, then used for every frame in
/// both directions. It holds no lock and is `Send + Sync`; encryption takes
/// `&self`, so one instance can be shared by the connection's reader and
/// writer.
#[derive(Clone)]
pub struct SessionCipher {
    /// The expanded AES key schedule; rebuilding it per message would
    /// double the cost of small frames.
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SessionCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionCipher { .. }")
    }
}

impl SessionCipher {
    /// Builds the cipher from key bytes of any length, refusing all but 32.
    pub fn new(key: &[u8]) -> Result<Self, AeadError> {
        Aes256Gcm::new_from_slice(key)
            .map(|cipher| Self { cipher })
            .map_err(|_| AeadError::InvalidKeyLength { len: key.len() })
    }

    /// Builds the cipher from a key produced by the handshake.
    pub fn from_key(key: &AesKey) -> Self {
        Self {
            cipher: Aes256Gcm::new(key.into()),
        }
    }

    /// Seals `plaintext` as `IV ‖ ciphertext ‖ tag`.
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, AeadError> {
        self.seal_after(&[], plaintext)
    }

    /// Opens `IV ‖ ciphertext ‖ tag` and returns the plaintext.
    pub fn decrypt(&self, sealed: &[u8]) -> Result<Vec<u8>, AeadError> {
        let too_short = || AeadError::TooShort { len: sealed.len() };
        let (iv, rest) = sealed.split_first_chunk::<IV_LEN>().ok_or_else(too_short)?;
        let (ciphertext, tag) = rest.split_last_chunk::<TAG_LEN>().ok_or_else(too_short)?;
        let mut buffer = ciphertext.to_vec();
        self.cipher
            .decrypt_in_place_detached(&Nonce::from(*iv), b"", &mut buffer, &Tag::from(*tag))
            .map_err(AeadError::Decrypt)?;
        Ok(buffer)
    }

    /// Seals `plaintext` into one buffer laid out as
    /// `prefix ‖ IV ‖ ciphertext ‖ tag`, so framing (a WebSocket header,
    /// the `E:` marker) needs no second copy.
    pub fn seal_after(&self, prefix: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, AeadError> {
        let header = prefix.len() + IV_LEN;
        let mut out = Vec::with_capacity(header + plaintext.len() + TAG_LEN);
        out.extend_from_slice(prefix);
        let mut iv = [0u8; IV_LEN];
        rand::rng().fill_bytes(&mut iv);
        out.extend_from_slice(&iv);
        out.extend_from_slice(plaintext);
        let tag = self
            .cipher
            .encrypt_in_place_detached(&Nonce::from(iv), b"", &mut out[header..])
            .map_err(AeadError::Encrypt)?;
        out.extend_from_slice(&tag);
        Ok(out)
    }
}

impl SessionCipher {
    /// Appends `IV ‖ ciphertext ‖ tag` sealing `plaintext` to `out`, so
    /// many messages can be sealed into one buffer (one allocation and one
    /// write for a batch of frames).
    pub fn seal_append(
        &self,
        out: &mut bytes::BytesMut,
        plaintext: &[u8],
    ) -> Result<(), AeadError> {
        let mut iv = [0u8; IV_LEN];
        rand::rng().fill_bytes(&mut iv);
        out.extend_from_slice(&iv);
        let at = out.len();
        out.extend_from_slice(plaintext);
        let tag = self
            .cipher
            .encrypt_in_place_detached(&Nonce::from(iv), b"", &mut out[at..])
            .map_err(|e| {
                out.truncate(at - IV_LEN);
                AeadError::Encrypt(e)
            })?;
        out.extend_from_slice(&tag);
        Ok(())
    }
}

/// `rust_aes_gcm_encrypt`: seals `plaintext` under a 32-byte `key` with a
/// fresh random IV.
pub fn encrypt(key: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, AeadError> {
    SessionCipher::new(key)?.encrypt(plaintext)
}

/// `rust_aes_gcm_decrypt`: opens `IV ‖ ciphertext ‖ tag`.
///
/// The length of `data` is checked before the key, as upstream does, so a
/// short input reports [`AeadError::TooShort`] whatever the key.
pub fn decrypt(key: &[u8], data: &[u8]) -> Result<Vec<u8>, AeadError> {
    if data.len() < MIN_SEALED_LEN {
        return Err(AeadError::TooShort { len: data.len() });
    }
    SessionCipher::new(key)?.decrypt(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::test_hex as hex;

    #[test]
    fn round_trip_with_fresh_ivs() {
        let key = [7u8; 32];
        let a = encrypt(&key, b"hello").unwrap();
        let b = encrypt(&key, b"hello").unwrap();
        assert_eq!(a.len(), IV_LEN + 5 + TAG_LEN);
        assert_ne!(a[..IV_LEN], b[..IV_LEN], "IVs must not repeat");
        assert_eq!(decrypt(&key, &a).unwrap(), b"hello");
        assert_eq!(decrypt(&key, &b).unwrap(), b"hello");
    }

    #[test]
    fn empty_plaintext_is_exactly_the_minimum() {
        let key = [1u8; 32];
        let sealed = encrypt(&key, b"").unwrap();
        assert_eq!(sealed.len(), MIN_SEALED_LEN);
        assert_eq!(decrypt(&key, &sealed).unwrap(), b"");
    }

    #[test]
    fn wrong_key_sizes_are_value_errors() {
        for len in [0usize, 16, 24, 31, 33, 64] {
            let key = vec![0u8; len];
            let err = encrypt(&key, b"x").unwrap_err();
            assert_eq!(err, AeadError::InvalidKeyLength { len });
            assert_eq!(err.to_string(), "AES-GCM-256 key must be 32 bytes");
            assert_eq!(
                decrypt(&key, &[0u8; 40]).unwrap_err(),
                AeadError::InvalidKeyLength { len }
            );
        }
    }

    #[test]
    fn truncated_input_is_too_short_before_the_key_is_checked() {
        for len in 0..MIN_SEALED_LEN {
            let err = decrypt(&[0u8; 3], &vec![0u8; len]).unwrap_err();
            assert_eq!(err, AeadError::TooShort { len });
            assert_eq!(
                err.to_string(),
                "Encrypted data too short (min 28 bytes: 12 IV + 16 tag)"
            );
        }
    }

    #[test]
    fn tampering_and_wrong_keys_fail_authentication() {
        let key = [9u8; 32];
        let sealed = encrypt(&key, b"payload").unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x80;
            let err = decrypt(&key, &bad).unwrap_err();
            assert_eq!(err.to_string(), "Decrypt failed: aead::Error");
        }
        assert!(matches!(
            decrypt(&[8u8; 32], &sealed),
            Err(AeadError::Decrypt(_))
        ));
        // Dropping bytes from the end moves the tag: also an auth failure.
        assert!(matches!(
            decrypt(&key, &sealed[..sealed.len() - 1]),
            Err(AeadError::Decrypt(_))
        ));
    }

    /// NIST GCM test vector (gcmEncryptExtIV256.rsp, Count 0 of the
    /// 96-bit IV / 128-bit tag / 128-bit PT / no AAD group, also "Test
    /// Case 14" of the GCM specification): decrypting our wire layout
    /// `IV ‖ CT ‖ Tag` must give the plaintext back.
    #[test]
    fn nist_vector_decrypts() {
        let key = [0u8; 32];
        let mut wire = hex("000000000000000000000000");
        wire.extend(hex("cea7403d4d606b6e074ec5d3baf39d18"));
        wire.extend(hex("d0d1c8a799996bf0265b98b5d48ab919"));
        assert_eq!(decrypt(&key, &wire).unwrap(), vec![0u8; 16]);
    }

    /// Same as above with a non-trivial key and a 64-byte message (GCM spec
    /// Test Case 15).
    #[test]
    fn gcm_spec_test_case_15_decrypts() {
        let key = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
        let mut wire = hex("cafebabefacedbaddecaf888");
        wire.extend(hex(concat!(
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa",
            "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad"
        )));
        wire.extend(hex("b094dac5d93471bdec1a502270e3cc6c"));
        let plaintext = hex(concat!(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72",
            "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255"
        ));
        assert_eq!(decrypt(&key, &wire).unwrap(), plaintext);
    }

    #[test]
    fn session_cipher_matches_the_one_shot_functions() {
        let key = [3u8; 32];
        let session = SessionCipher::from_key(&key);
        let sealed = session.encrypt(b"abc").unwrap();
        assert_eq!(decrypt(&key, &sealed).unwrap(), b"abc");
        let sealed = encrypt(&key, b"def").unwrap();
        assert_eq!(session.decrypt(&sealed).unwrap(), b"def");
        assert_eq!(format!("{session:?}"), "SessionCipher { .. }");
    }

    proptest::proptest! {
        #[test]
        fn prop_round_trip(key in proptest::array::uniform32(proptest::num::u8::ANY),
                           plaintext in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            let sealed = encrypt(&key, &plaintext).unwrap();
            proptest::prop_assert_eq!(decrypt(&key, &sealed).unwrap(), plaintext);
        }

        #[test]
        fn prop_garbage_never_panics(key in proptest::collection::vec(proptest::num::u8::ANY, 0..40),
                                     data in proptest::collection::vec(proptest::num::u8::ANY, 0..100)) {
            proptest::prop_assert!(decrypt(&key, &data).is_err());
        }
    }
}
