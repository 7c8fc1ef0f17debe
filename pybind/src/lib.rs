//! `wse-py`: the native module `wse_server._wse_accel` of the Python
//! package `wse_server` (PYTHON_API.md is the contract).
//!
//! This is the only crate that uses PyO3. It converts Python values to the
//! Rust types of the `wse` and `wse-log` crates and back, maps their errors
//! to the Python exceptions of the spec, and releases the GIL around every
//! call that waits or does I/O; all real work happens in those crates.
//!
//! # Layout
//!
//! - [`server`]: `RustWSEServer`, the `wse::Server` handle (lifecycle,
//!   drain and callback modes, sends, subscriptions, recovery, monitoring,
//!   log reads).
//! - [`config`]: constructor arguments → `ServerConfig`/`LogConfig`.
//! - [`dispatcher`]: the callback-mode thread.
//! - [`events`]: application events → drain tuples and callback calls.
//! - [`recovery`]: `subscribe_with_recovery` results as dicts.
//! - [`health`]: `health_snapshot()` as a dict.
//! - [`records`]: log positions and records as dicts.
//! - [`log_reader`]: `LogReader`, read-only access to a data directory.
//! - [`errors`]: Rust errors → Python exceptions, `NotRecoverableError`.
//! - [`convert`]: Python values ↔ JSON values.
//! - [`cli`]: `_wse_main`, the `wse` command line behind `python -m
//!   wse_server` and the `wse` script.
//! - [`jwt`], [`crypto`], [`compression`], [`queues`], [`rate_limit`],
//!   [`sequencers`], [`filters`]: the utility toolkit of PYTHON_API.md §3.

pub mod cli;
pub mod compression;
pub mod config;
pub mod convert;
pub mod crypto;
pub mod dispatcher;
pub mod errors;
pub mod events;
pub mod filters;
pub mod health;
pub mod jwt;
pub mod log_reader;
pub mod queues;
pub mod rate_limit;
pub mod records;
pub mod recovery;
pub mod sequencers;
pub mod server;

use pyo3::prelude::*;

/// The module `wse_server._wse_accel`.
#[pymodule]
fn _wse_accel(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // Private: which option each constructor keyword sets, for the tests
    // that check the keywords against the options and the docs.
    m.add(
        "_KEYWORD_OPTIONS",
        config::keyword_options().collect::<std::collections::HashMap<_, _>>(),
    )?;
    m.add_class::<server::RustWSEServer>()?;
    m.add_class::<log_reader::LogReader>()?;
    m.add(
        "NotRecoverableError",
        m.py().get_type::<errors::NotRecoverableError>(),
    )?;
    m.add_class::<compression::RustCompressionManager>()?;
    m.add_class::<queues::RustPriorityQueue>()?;
    m.add_class::<queues::RustPriorityMessageQueue>()?;
    m.add_class::<rate_limit::RustTokenBucket>()?;
    m.add_class::<sequencers::RustSequencer>()?;
    m.add_class::<sequencers::RustEventSequencer>()?;
    m.add_function(wrap_pyfunction!(cli::wse_main, m)?)?;
    m.add_function(wrap_pyfunction!(jwt::rust_jwt_encode, m)?)?;
    m.add_function(wrap_pyfunction!(jwt::rust_jwt_decode, m)?)?;
    m.add_function(wrap_pyfunction!(crypto::rust_aes_gcm_encrypt, m)?)?;
    m.add_function(wrap_pyfunction!(crypto::rust_aes_gcm_decrypt, m)?)?;
    m.add_function(wrap_pyfunction!(crypto::rust_ecdh_generate_keypair, m)?)?;
    m.add_function(wrap_pyfunction!(crypto::rust_ecdh_derive_shared_secret, m)?)?;
    m.add_function(wrap_pyfunction!(crypto::rust_hmac_sha256, m)?)?;
    m.add_function(wrap_pyfunction!(crypto::rust_sha256, m)?)?;
    m.add_function(wrap_pyfunction!(crypto::rust_sign_message, m)?)?;
    m.add_function(wrap_pyfunction!(compression::rust_compress, m)?)?;
    m.add_function(wrap_pyfunction!(compression::rust_decompress, m)?)?;
    m.add_function(wrap_pyfunction!(compression::rust_should_compress, m)?)?;
    m.add_function(wrap_pyfunction!(filters::rust_match_event, m)?)?;
    m.add_function(wrap_pyfunction!(filters::rust_transform_event, m)?)?;
    Ok(())
}
