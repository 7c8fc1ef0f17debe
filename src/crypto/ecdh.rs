//! ECDH P-256 key agreement and the HKDF step that turns it into an AES key.
//!
//! The E2E handshake (CLIENT_PROTOCOL.md §13) is: each side has a P-256 key
//! pair, the public halves travel in `client_hello`/`server_hello` as
//! standard base64 (with padding) of the 65-byte uncompressed SEC1 point, and
//! both sides derive
//!
//! ```text
//! key = HKDF-SHA256(IKM = x-coordinate of the ECDH point (32 bytes),
//!                   salt = none, info = "wse-encryption/aes-gcm-key", L = 32)
//! ```
//!
//! Peer keys are also accepted in compressed form (33 bytes), which the core
//! tolerates although neither bundled client sends it.

use aes_gcm::aead::OsRng;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hkdf::Hkdf;
use p256::ecdh::diffie_hellman;
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::{PublicKey, SecretKey};
use sha2::Sha256;

use super::aead::{AES_KEY_LEN, AesKey};

/// Length of a raw P-256 private scalar, as `rust_ecdh_generate_keypair`
/// returns it.
pub const PRIVATE_KEY_LEN: usize = 32;

/// Length of an uncompressed SEC1 public point (`04 ‖ X ‖ Y`), the only form
/// the server ever sends.
pub const PUBLIC_KEY_LEN: usize = 65;

/// HKDF `info` string fixed by the wire contract; changing it breaks every
/// client.
pub const HKDF_INFO: &[u8] = b"wse-encryption/aes-gcm-key";

/// Why a key exchange input was refused.
///
/// The Display texts are the Python `ValueError` messages of
/// `rust_ecdh_derive_shared_secret` (`Invalid private key: ...`,
/// `Invalid peer public key: ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyExchangeError {
    /// The private scalar has the wrong length, is zero or is not below the
    /// curve order.
    #[error("Invalid private key: {0}")]
    InvalidPrivateKey(p256::elliptic_curve::Error),
    /// The peer's SEC1 bytes are not a point on P-256 (wrong length, bad
    /// tag byte, coordinates off the curve, or the identity).
    #[error("Invalid peer public key: {0}")]
    InvalidPeerPublicKey(p256::elliptic_curve::Error),
    /// The peer's key in a `client_hello` is not standard base64.
    #[error("Invalid peer public key: {0}")]
    PeerPublicKeyBase64(base64::DecodeError),
}

/// A P-256 key pair: one per E2E connection on the server side.
///
/// The secret scalar is wiped from memory when the pair is dropped (the
/// `p256` type zeroizes itself).
#[derive(Clone)]
pub struct KeyPair {
    /// The private scalar; never leaves this type except through
    /// [`KeyPair::private_key_bytes`] for the Python helper.
    secret: SecretKey,
    /// Cached public point, so `server_hello` does not recompute it.
    public: PublicKey,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &self.public_key_base64())
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    /// Generates a fresh key pair from the operating system's CSPRNG.
    pub fn generate() -> Self {
        Self::from_secret(SecretKey::random(&mut OsRng))
    }

    /// Rebuilds a key pair from a raw private scalar (what Python passes to
    /// `rust_ecdh_derive_shared_secret`).
    ///
    /// Like upstream, 24 to 32 bytes are accepted (shorter input is
    /// left-padded with zeros); anything else, zero or a value not below the
    /// curve order is an error.
    pub fn from_private_bytes(private_key: &[u8]) -> Result<Self, KeyExchangeError> {
        SecretKey::from_slice(private_key)
            .map(Self::from_secret)
            .map_err(KeyExchangeError::InvalidPrivateKey)
    }

    fn from_secret(secret: SecretKey) -> Self {
        let public = secret.public_key();
        Self { secret, public }
    }

    /// The 32-byte big-endian private scalar.
    pub fn private_key_bytes(&self) -> [u8; PRIVATE_KEY_LEN] {
        self.secret.to_bytes().into()
    }

    /// The 65-byte uncompressed SEC1 public point (`04 ‖ X ‖ Y`).
    pub fn public_key_bytes(&self) -> [u8; PUBLIC_KEY_LEN] {
        uncompressed(&self.public)
    }

    /// The public key in its wire form: standard base64 with padding of the
    /// uncompressed point (`p.encryption_public_key` of `server_hello`).
    pub fn public_key_base64(&self) -> String {
        BASE64.encode(self.public_key_bytes())
    }

    /// Runs ECDH with the peer's key and derives the AES-256-GCM key through
    /// HKDF-SHA256 (no salt, info [`HKDF_INFO`]).
    pub fn derive_aes_key(&self, peer: &PeerPublicKey) -> AesKey {
        let shared = diffie_hellman(self.secret.to_nonzero_scalar(), peer.0.as_affine());
        let hkdf = Hkdf::<Sha256>::new(None, shared.raw_secret_bytes());
        let mut key = [0u8; AES_KEY_LEN];
        hkdf.expand(HKDF_INFO, &mut key)
            .expect("32 bytes is within HKDF-SHA256's 8160-byte output limit");
        key
    }
}

/// A validated peer public key (a point on P-256, not the identity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerPublicKey(PublicKey);

impl PeerPublicKey {
    /// Parses SEC1 bytes: 65-byte uncompressed or 33-byte compressed.
    pub fn from_sec1(bytes: &[u8]) -> Result<Self, KeyExchangeError> {
        PublicKey::from_sec1_bytes(bytes)
            .map(Self)
            .map_err(KeyExchangeError::InvalidPeerPublicKey)
    }

    /// Parses the wire form of `client_hello`'s `p.encryption_public_key`:
    /// standard base64 (with padding) of the SEC1 bytes.
    pub fn from_base64(encoded: &str) -> Result<Self, KeyExchangeError> {
        let bytes = BASE64
            .decode(encoded)
            .map_err(KeyExchangeError::PeerPublicKeyBase64)?;
        Self::from_sec1(&bytes)
    }

    /// The point in uncompressed SEC1 form, whatever form it arrived in.
    pub fn to_uncompressed(&self) -> [u8; PUBLIC_KEY_LEN] {
        uncompressed(&self.0)
    }
}

/// The 65-byte uncompressed SEC1 encoding of a point.
fn uncompressed(public: &PublicKey) -> [u8; PUBLIC_KEY_LEN] {
    let mut out = [0u8; PUBLIC_KEY_LEN];
    out.copy_from_slice(public.to_encoded_point(false).as_bytes());
    out
}

/// `rust_ecdh_generate_keypair`: a fresh (32-byte private scalar, 65-byte
/// uncompressed public point) pair.
pub fn generate_keypair() -> ([u8; PRIVATE_KEY_LEN], [u8; PUBLIC_KEY_LEN]) {
    let pair = KeyPair::generate();
    (pair.private_key_bytes(), pair.public_key_bytes())
}

/// `rust_ecdh_derive_shared_secret`: the 32-byte AES key shared between
/// `private_key` and `peer_public_key` (raw SEC1 bytes, either form).
pub fn derive_shared_key(
    private_key: &[u8],
    peer_public_key: &[u8],
) -> Result<AesKey, KeyExchangeError> {
    let pair = KeyPair::from_private_bytes(private_key)?;
    let peer = PeerPublicKey::from_sec1(peer_public_key)?;
    Ok(pair.derive_aes_key(&peer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::test_hex as hex;

    #[test]
    fn both_sides_derive_the_same_key() {
        let a = KeyPair::generate();
        let b = KeyPair::generate();
        let ab = a.derive_aes_key(&PeerPublicKey::from_sec1(&b.public_key_bytes()).unwrap());
        let ba = b.derive_aes_key(&PeerPublicKey::from_sec1(&a.public_key_bytes()).unwrap());
        assert_eq!(ab, ba);
        assert_ne!(ab, [0u8; 32]);
    }

    #[test]
    fn generated_keys_have_the_documented_shapes() {
        let (private, public) = generate_keypair();
        assert_eq!(public[0], 0x04);
        assert!(KeyPair::from_private_bytes(&private).is_ok());
        let pair = KeyPair::from_private_bytes(&private).unwrap();
        assert_eq!(pair.public_key_bytes(), public);
    }

    #[test]
    fn compressed_and_uncompressed_peer_keys_agree() {
        let a = KeyPair::generate();
        let b = KeyPair::generate();
        let uncompressed = b.public_key_bytes();
        let compressed = b.public.to_encoded_point(true);
        assert_eq!(compressed.as_bytes().len(), 33);
        let k1 = derive_shared_key(&a.private_key_bytes(), &uncompressed).unwrap();
        let k2 = derive_shared_key(&a.private_key_bytes(), compressed.as_bytes()).unwrap();
        assert_eq!(k1, k2);
        let peer = PeerPublicKey::from_sec1(compressed.as_bytes()).unwrap();
        assert_eq!(peer.to_uncompressed(), uncompressed);
    }

    #[test]
    fn base64_wire_form_round_trips() {
        let a = KeyPair::generate();
        let wire = a.public_key_base64();
        assert_eq!(
            wire.len(),
            88,
            "65 bytes encode to 88 base64 chars with padding"
        );
        let peer = PeerPublicKey::from_base64(&wire).unwrap();
        assert_eq!(peer.to_uncompressed(), a.public_key_bytes());
    }

    #[test]
    fn bad_private_keys_are_rejected_with_the_python_message() {
        let (_, public) = generate_keypair();
        for bad in [
            &[][..],
            &[1u8; 16][..],
            &[1u8; 33][..],
            &[0u8; 32][..],
            &[0xFF; 32][..],
        ] {
            let err = derive_shared_key(bad, &public).unwrap_err();
            assert!(matches!(err, KeyExchangeError::InvalidPrivateKey(_)));
            assert_eq!(err.to_string(), "Invalid private key: crypto error");
        }
    }

    #[test]
    fn bad_peer_points_are_rejected() {
        let (private, mut public) = generate_keypair();
        let mut off_curve = public;
        off_curve[64] ^= 1;
        public[0] = 0x05;
        let identity = [0u8; 1];
        for bad in [
            &off_curve[..],
            &public[..],
            &identity[..],
            &[][..],
            &[4u8; 64][..],
        ] {
            let err = derive_shared_key(&private, bad).unwrap_err();
            assert!(matches!(err, KeyExchangeError::InvalidPeerPublicKey(_)));
            assert!(err.to_string().starts_with("Invalid peer public key: "));
        }
        let err = PeerPublicKey::from_base64("not base64!").unwrap_err();
        assert!(matches!(err, KeyExchangeError::PeerPublicKeyBase64(_)));
        assert!(err.to_string().starts_with("Invalid peer public key: "));
    }

    /// Known answer: the P-256 ECDH vector of RFC 5903 §8.1 gives the shared
    /// x-coordinate; the expected AES key was computed independently with
    /// Python's `cryptography` 48:
    /// `HKDF(SHA256(), 32, salt=None, info=b"wse-encryption/aes-gcm-key").derive(x)`.
    #[test]
    fn rfc5903_vector_gives_the_expected_key() {
        let i = hex("C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433");
        let gr = hex(concat!(
            "04",
            "D12DFB5289C8D4F81208B70270398C342296970A0BCCB74C736FC7554494BF63",
            "56FBF3CA366CC23E8157854C13C58D6AAC23F046ADA30F8353E74F33039872AB"
        ));
        let pair = KeyPair::from_private_bytes(&i).unwrap();
        let peer = PeerPublicKey::from_sec1(&gr).unwrap();
        let shared = diffie_hellman(pair.secret.to_nonzero_scalar(), peer.0.as_affine());
        assert_eq!(
            shared.raw_secret_bytes().to_vec(),
            hex("D6840F6B42F6EDAFD13116E0E12565202FEF8E9ECE7DCE03812464D04B9442DE")
        );
        assert_eq!(
            derive_shared_key(&i, &gr).unwrap().to_vec(),
            hex("42505842f34f4081666e9f23308990fd2ccd7c8800c3203a90f5b43af670e2b9")
        );
    }
}
