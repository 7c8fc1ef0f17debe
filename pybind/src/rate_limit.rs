//! `RustTokenBucket` (PYTHON_API.md §3.4): the server's token bucket for
//! Python code.

use parking_lot::Mutex;
use pyo3::prelude::*;
use wse::rate_limit::TokenBucket;

/// Token bucket holding up to `capacity` tokens, refilled continuously at
/// `refill_rate` tokens per second.
#[pyclass(frozen, module = "wse_server._wse_accel")]
pub struct RustTokenBucket {
    /// The bucket (reading `tokens` refills it, so it needs `&mut`).
    inner: Mutex<TokenBucket>,
}

#[pymethods]
impl RustTokenBucket {
    /// `RustTokenBucket(capacity, refill_rate, initial_tokens=None)`:
    /// starts full unless `initial_tokens` is given.
    #[new]
    #[pyo3(signature = (capacity, refill_rate, initial_tokens=None))]
    fn new(capacity: f64, refill_rate: f64, initial_tokens: Option<f64>) -> Self {
        Self {
            inner: Mutex::new(TokenBucket::with_initial_tokens(
                capacity,
                refill_rate,
                initial_tokens,
            )),
        }
    }

    /// Take `tokens` if available (after refilling); False otherwise.
    fn acquire(&self, tokens: f64) -> bool {
        self.inner.lock().acquire(tokens)
    }

    /// Tokens available now (refills first).
    #[getter]
    fn tokens(&self) -> f64 {
        self.inner.lock().tokens()
    }

    /// Refill to capacity.
    fn reset(&self) {
        self.inner.lock().reset();
    }
}
