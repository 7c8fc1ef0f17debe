//! `rust_jwt_encode` / `rust_jwt_decode` (PYTHON_API.md §3.1): the tokens
//! the WebSocket handshake accepts, for an app's HTTP routes.

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::Value;
use wse::auth::{self, EncodeError};

use crate::convert::{Style, dict_to_map, map_to_py};

/// Sign `claims` as given (nothing is added); `kid` header with `key_id`.
///
/// Unknown algorithm → `ValueError`; short HS256 key, bad PEM or signing
/// failure → `RuntimeError("JWT encode error: ...")`.
#[pyfunction]
#[pyo3(signature = (claims, secret, algorithm="HS256", key_id=None))]
pub fn rust_jwt_encode(
    claims: &Bound<'_, PyDict>,
    secret: &[u8],
    algorithm: &str,
    key_id: Option<&str>,
) -> PyResult<String> {
    let claims = Value::Object(dict_to_map(claims, Style::SEND)?);
    auth::encode(&claims, secret, algorithm, key_id).map_err(|e| match e {
        EncodeError::UnsupportedAlgorithm(_) => PyValueError::new_err(e.to_string()),
        EncodeError::Failed(_) => PyRuntimeError::new_err(e.to_string()),
    })
}

/// Validate `token` like the handshake (without requiring `sub`) and
/// return its claims, or `None` on any failure (also an unknown
/// algorithm).
#[pyfunction]
#[pyo3(signature = (token, secret, algorithm="HS256", issuer=None, audience=None, previous_secret=None, key_id=None))]
#[allow(clippy::too_many_arguments)] // the upstream signature
pub fn rust_jwt_decode<'py>(
    py: Python<'py>,
    token: &str,
    secret: &[u8],
    algorithm: &str,
    issuer: Option<&str>,
    audience: Option<&str>,
    previous_secret: Option<&[u8]>,
    key_id: Option<&str>,
) -> PyResult<Option<Bound<'py, PyDict>>> {
    auth::decode(
        token,
        secret,
        algorithm,
        issuer,
        audience,
        previous_secret,
        key_id,
    )
    .map(|claims| map_to_py(py, &claims))
    .transpose()
}
