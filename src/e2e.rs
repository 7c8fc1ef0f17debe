//! End-to-end encryption of one connection (CLIENT_PROTOCOL.md §13,
//! docs/PROTOCOL.md "End-to-end encryption").
//!
//! A client asks for it in `client_hello`; the server agrees on a key
//! ([`agree`]) and from then on seals every data frame the connection
//! receives: topic messages, recovered messages, presence, `send*` output.
//! The log and the fan-out rings keep one plaintext copy shared by every
//! subscriber; only an E2E connection pays for its own sealed copy, at the
//! moment its frames are gathered, so connections without E2E keep the
//! pre-framed path untouched. Protocol frames (`server_hello`, ping,
//! `PONG`, protocol errors) stay plaintext, as the clients expect.
//!
//! The key is set once per connection: the clients do not renegotiate it.
//! `e2e_rekey_interval` rotates keys by closing E2E connections (code
//! 4000 + reason `rekey`), after which the clients reconnect with a fresh
//! key pair and recover what they missed from the log.

use bytes::{Bytes, BytesMut};

use crate::crypto::{
    ENCRYPTED_FRAME_PREFIX, FrameError, KeyExchangeError, KeyPair, MIN_SEALED_LEN, PeerPublicKey,
    SessionCipher,
};
use crate::ws::frame;

/// The key of one E2E connection, used in both directions.
#[derive(Debug)]
pub struct E2eKey {
    cipher: SessionCipher,
}

/// The outcome of a successful key exchange.
#[derive(Debug)]
pub struct Agreement {
    /// The connection's key.
    pub key: E2eKey,
    /// The server's fresh public key for `server_hello`
    /// (`p.encryption_public_key`: base64 of the uncompressed point).
    pub server_public_key: String,
}

/// Agree on a key with a client that sent `client_public_key` (base64 of
/// a SEC1 point, uncompressed or compressed): a fresh server key pair per
/// connection, ECDH, HKDF-SHA256.
pub fn agree(client_public_key: &str) -> Result<Agreement, KeyExchangeError> {
    let peer = PeerPublicKey::from_base64(client_public_key)?;
    let pair = KeyPair::generate();
    let key = pair.derive_aes_key(&peer);
    Ok(Agreement {
        key: E2eKey {
            cipher: SessionCipher::from_key(&key),
        },
        server_public_key: pair.public_key_base64(),
    })
}

impl E2eKey {
    /// A key from raw bytes (tests and tools that play the client).
    pub fn from_aes_key(key: &crate::crypto::AesKey) -> Self {
        Self {
            cipher: SessionCipher::from_key(key),
        }
    }

    /// A complete binary frame `E:` ‖ IV ‖ ciphertext ‖ tag sealing
    /// `plaintext`, built in one buffer.
    pub fn seal(&self, plaintext: &[u8]) -> Bytes {
        let body = ENCRYPTED_FRAME_PREFIX.len() + MIN_SEALED_LEN + plaintext.len();
        let mut prefix = BytesMut::with_capacity(frame::header_len(body) + 2);
        frame::put_header(&mut prefix, frame::BINARY, body);
        prefix.extend_from_slice(ENCRYPTED_FRAME_PREFIX);
        let sealed = self
            .cipher
            .seal_after(&prefix, plaintext)
            // GCM refuses only messages above 64 GiB; frames are bounded
            // far below that by the server's message limits.
            .expect("a frame is far below AES-GCM's 64 GiB limit");
        Bytes::from(sealed)
    }

    /// Append the sealed form of each plaintext frame (frames this server
    /// built) to one buffer: what a connection's gathered topic frames
    /// become, with one allocation for the batch.
    pub fn seal_frames_into(&self, out: &mut BytesMut, plaintext_frames: &[Bytes]) {
        let payloads: Vec<Bytes> = plaintext_frames.iter().map(frame::payload_of).collect();
        self.seal_payloads_into(out, payloads.iter().map(|p| &p[..]));
    }

    /// Append one sealed frame per payload to `out`.
    pub fn seal_payloads_into<'a>(
        &self,
        out: &mut BytesMut,
        payloads: impl Iterator<Item = &'a [u8]> + Clone,
    ) {
        let extra = frame::header_len(usize::MAX) + ENCRYPTED_FRAME_PREFIX.len() + MIN_SEALED_LEN;
        out.reserve(payloads.clone().map(|p| p.len() + extra).sum());
        for plain in payloads {
            let body = ENCRYPTED_FRAME_PREFIX.len() + MIN_SEALED_LEN + plain.len();
            frame::put_header(out, frame::BINARY, body);
            out.extend_from_slice(ENCRYPTED_FRAME_PREFIX);
            self.cipher
                .seal_append(out, plain)
                .expect("a frame is far below AES-GCM's 64 GiB limit");
        }
    }

    /// The sealed form of a plaintext frame this server built (the shared
    /// frame of a ring, a reply): its payload, sealed and re-framed.
    pub fn seal_frame(&self, plaintext_frame: &Bytes) -> Bytes {
        self.seal(&frame::payload_of(plaintext_frame))
    }

    /// Open an inbound `E:` frame payload.
    pub fn open(&self, payload: &[u8]) -> Result<Vec<u8>, FrameError> {
        self.cipher.decrypt_frame(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::aead::decrypt;

    #[test]
    fn both_sides_derive_the_same_key() {
        let client = KeyPair::generate();
        let a = agree(&client.public_key_base64()).unwrap();
        let server = PeerPublicKey::from_base64(&a.server_public_key).unwrap();
        let client_key = client.derive_aes_key(&server);
        let f = a.key.seal(br#"{"t":"x"}"#);
        let body = frame::payload_of(&f);
        assert!(body.starts_with(b"E:"));
        assert_eq!(decrypt(&client_key, &body[2..]).unwrap(), br#"{"t":"x"}"#);
        // And back: what the client seals, the server opens.
        let sealed = E2eKey::from_aes_key(&client_key).seal(b"hello");
        assert_eq!(a.key.open(&frame::payload_of(&sealed)).unwrap(), b"hello");
    }

    #[test]
    fn seal_frame_keeps_the_payload_of_large_frames() {
        let key = E2eKey::from_aes_key(&[9u8; 32]);
        for len in [0usize, 100, 70_000] {
            let plain = vec![b'a'; len];
            let sealed = key.seal_frame(&frame::text(&plain));
            assert_eq!(key.open(&frame::payload_of(&sealed)).unwrap(), plain);
        }
    }

    #[test]
    fn frames_sealed_into_one_buffer_open_one_by_one() {
        let key = E2eKey::from_aes_key(&[3u8; 32]);
        let plain: Vec<Bytes> = [&b"a"[..], &[b'b'; 300][..], b""]
            .iter()
            .map(|p| frame::text(p))
            .collect();
        let mut out = BytesMut::new();
        key.seal_frames_into(&mut out, &plain);
        let mut rest = out.freeze();
        for p in &plain {
            let len = match rest[1] & 0x7f {
                126 => 4 + u16::from_be_bytes([rest[2], rest[3]]) as usize,
                n => 2 + n as usize,
            };
            let one = rest.split_to(len);
            assert_eq!(one[0], 0x80 | frame::BINARY);
            assert_eq!(
                key.open(&frame::payload_of(&one)).unwrap(),
                frame::payload_of(p)
            );
        }
        assert!(rest.is_empty());
    }

    #[test]
    fn bad_client_keys_are_refused() {
        assert!(agree("not base64!").is_err());
        assert!(agree("AAAA").is_err());
        let off_curve = {
            use base64::Engine as _;
            let mut p = [0u8; 65];
            p[0] = 4;
            p[1] = 1;
            base64::engine::general_purpose::STANDARD.encode(p)
        };
        assert!(agree(&off_curve).is_err());
    }
}
