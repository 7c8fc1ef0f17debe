//! `RustTokenBucket` (PYTHON_API.md §3.4): the server's token bucket for
//! Python code.

use parking_lot::Mutex;
use pyo3::exceptions::PyValueError;
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
    /// starts full unless `initial_tokens` is given. Negative or non-finite
    /// numbers raise `ValueError` (the original accepted them and the
    /// bucket then minted tokens).
    #[new]
    #[pyo3(signature = (capacity, refill_rate, initial_tokens=None))]
    fn new(capacity: f64, refill_rate: f64, initial_tokens: Option<f64>) -> PyResult<Self> {
        non_negative("capacity", capacity)?;
        non_negative("refill_rate", refill_rate)?;
        if let Some(t) = initial_tokens {
            non_negative("initial_tokens", t)?;
        }
        Ok(Self {
            inner: Mutex::new(TokenBucket::with_initial_tokens(
                capacity,
                refill_rate,
                initial_tokens,
            )),
        })
    }

    /// Take `tokens` if available (after refilling); False otherwise.
    /// A negative or non-finite count raises `ValueError`: taking -5
    /// tokens would otherwise add five.
    fn acquire(&self, tokens: f64) -> PyResult<bool> {
        non_negative("tokens", tokens)?;
        Ok(self.inner.lock().acquire(tokens))
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

/// `ValueError` unless `v` is a finite number >= 0.
fn non_negative(name: &str, v: f64) -> PyResult<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(PyValueError::new_err(format!(
            "{name} must be a finite number >= 0, got {v}"
        )))
    }
}
