//! The `E:` binary frame body of E2E connections.
//!
//! Layout (CLIENT_PROTOCOL.md §5.2, §13): `E:` ‖ IV(12) ‖ ciphertext ‖
//! tag(16), at least 28 bytes after the prefix. The server sends it for
//! `send_event` output, broadcasts, replays and presence on E2E connections,
//! and decrypts inbound binary frames that start with it.

use bytes::Bytes;

use super::aead::{AeadError, MIN_SEALED_LEN, SessionCipher};

/// The two bytes that mark an encrypted binary frame (`0x45 0x3A`).
pub const ENCRYPTED_FRAME_PREFIX: &[u8; 2] = b"E:";

/// Why an inbound frame could not be decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The frame does not start with `E:`, so it is not an encrypted frame.
    #[error("not an encrypted frame: missing the E: prefix")]
    MissingPrefix,
    /// The body is too short, or authentication failed.
    #[error(transparent)]
    Aead(#[from] AeadError),
}

/// True when a binary frame carries the `E:` prefix, i.e. it must be
/// decrypted before anything else is done with it.
pub fn is_encrypted_frame(frame: &[u8]) -> bool {
    frame.starts_with(ENCRYPTED_FRAME_PREFIX)
}

/// Strips the `E:` prefix and checks that what follows can hold an IV and a
/// tag; returns the sealed body (`IV ‖ ciphertext ‖ tag`).
pub fn encrypted_frame_body(frame: &[u8]) -> Result<&[u8], FrameError> {
    let body = frame
        .strip_prefix(ENCRYPTED_FRAME_PREFIX)
        .ok_or(FrameError::MissingPrefix)?;
    if body.len() < MIN_SEALED_LEN {
        return Err(AeadError::TooShort { len: body.len() }.into());
    }
    Ok(body)
}

impl SessionCipher {
    /// Encrypts `plaintext` into a complete `E:` frame body, written into a
    /// single buffer (prefix, IV, ciphertext and tag) ready to send.
    ///
    /// Fails only for plaintexts above GCM's 64 GiB limit.
    pub fn encrypt_frame(&self, plaintext: &[u8]) -> Result<Bytes, AeadError> {
        self.seal_after(ENCRYPTED_FRAME_PREFIX, plaintext)
            .map(Bytes::from)
    }

    /// Decrypts an inbound `E:` frame body and returns the plaintext.
    pub fn decrypt_frame(&self, frame: &[u8]) -> Result<Vec<u8>, FrameError> {
        let body = encrypted_frame_body(frame)?;
        Ok(self.decrypt(body)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::aead::{IV_LEN, TAG_LEN, decrypt};

    #[test]
    fn frame_round_trip_and_layout() {
        let key = [5u8; 32];
        let cipher = SessionCipher::from_key(&key);
        let frame = cipher.encrypt_frame(br#"{"t":"x"}"#).unwrap();
        assert!(is_encrypted_frame(&frame));
        assert_eq!(frame.len(), 2 + IV_LEN + 9 + TAG_LEN);
        // The body is exactly what the one-shot decrypt (and the clients) read.
        assert_eq!(decrypt(&key, &frame[2..]).unwrap(), br#"{"t":"x"}"#);
        assert_eq!(cipher.decrypt_frame(&frame).unwrap(), br#"{"t":"x"}"#);
    }

    #[test]
    fn frames_without_prefix_or_too_short_are_refused() {
        let cipher = SessionCipher::from_key(&[5u8; 32]);
        assert_eq!(
            cipher.decrypt_frame(b"M:abc"),
            Err(FrameError::MissingPrefix)
        );
        assert_eq!(cipher.decrypt_frame(b""), Err(FrameError::MissingPrefix));
        let short = [b'E', b':', 0, 0, 0];
        assert_eq!(
            cipher.decrypt_frame(&short),
            Err(FrameError::Aead(AeadError::TooShort { len: 3 }))
        );
        let mut min = b"E:".to_vec();
        min.extend([0u8; 28]);
        assert_eq!(encrypted_frame_body(&min).unwrap().len(), 28);
        assert!(matches!(
            cipher.decrypt_frame(&min),
            Err(FrameError::Aead(AeadError::Decrypt(_)))
        ));
    }

    #[test]
    fn a_frame_from_another_session_fails_authentication() {
        let a = SessionCipher::from_key(&[1u8; 32]);
        let b = SessionCipher::from_key(&[2u8; 32]);
        let frame = a.encrypt_frame(b"secret").unwrap();
        let err = b.decrypt_frame(&frame).unwrap_err();
        assert_eq!(err.to_string(), "Decrypt failed: aead::Error");
    }
}
