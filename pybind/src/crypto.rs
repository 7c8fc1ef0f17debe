//! Crypto helpers (PYTHON_API.md §3.2): ECDH P-256 with HKDF-SHA256,
//! AES-256-GCM, HMAC-SHA256, SHA-256 and message signing.
//!
//! Bad keys and short inputs raise `ValueError`; a failed authentication
//! tag raises `RuntimeError("Decrypt failed: aead::Error")`.

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use wse::crypto::aead::{self, AeadError};
use wse::crypto::{ecdh, signing};

/// A fresh key pair: (32-byte private scalar, 65-byte uncompressed public
/// point).
#[pyfunction]
pub fn rust_ecdh_generate_keypair(py: Python<'_>) -> (Bound<'_, PyBytes>, Bound<'_, PyBytes>) {
    let (private, public) = ecdh::generate_keypair();
    (PyBytes::new(py, &private), PyBytes::new(py, &public))
}

/// The 32-byte AES key shared with `peer_public_key` (SEC1, either form).
#[pyfunction]
pub fn rust_ecdh_derive_shared_secret<'py>(
    py: Python<'py>,
    private_key: &[u8],
    peer_public_key: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    ecdh::derive_shared_key(private_key, peer_public_key)
        .map(|key| PyBytes::new(py, &key))
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

fn aead_error(e: &AeadError) -> PyErr {
    match e {
        AeadError::InvalidKeyLength { .. } | AeadError::TooShort { .. } => {
            PyValueError::new_err(e.to_string())
        }
        AeadError::Encrypt(_) | AeadError::Decrypt(_) => PyRuntimeError::new_err(e.to_string()),
    }
}

/// `IV(12) ‖ ciphertext ‖ tag(16)` under a 32-byte key, fresh random IV.
#[pyfunction]
pub fn rust_aes_gcm_encrypt<'py>(
    py: Python<'py>,
    key: &[u8],
    plaintext: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    aead::encrypt(key, plaintext)
        .map(|out| PyBytes::new(py, &out))
        .map_err(|e| aead_error(&e))
}

/// Open `IV ‖ ciphertext ‖ tag`.
#[pyfunction]
pub fn rust_aes_gcm_decrypt<'py>(
    py: Python<'py>,
    key: &[u8],
    data: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    aead::decrypt(key, data)
        .map(|out| PyBytes::new(py, &out))
        .map_err(|e| aead_error(&e))
}

/// HMAC-SHA256, 32 raw bytes.
#[pyfunction]
pub fn rust_hmac_sha256<'py>(py: Python<'py>, key: &[u8], data: &[u8]) -> Bound<'py, PyBytes> {
    PyBytes::new(py, &signing::hmac_sha256(key, data))
}

/// SHA-256 as lowercase hex.
#[pyfunction]
pub fn rust_sha256(data: &[u8]) -> String {
    signing::sha256_hex(data)
}

/// `hex(HMAC-SHA256(secret, hex(SHA-256(payload_json))))`.
#[pyfunction]
pub fn rust_sign_message(payload_json: &str, secret: &[u8]) -> String {
    signing::sign_message(payload_json, secret)
}
