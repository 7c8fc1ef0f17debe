//! Request rate limits of the HTTP API: a token bucket per client address
//! (an IPv6 host counted by its /64, as the handshake cap counts), refilled
//! at `http_rate_limit` requests a second up to `http_rate_burst`.
//!
//! Requests that carry the admin token are not counted: the token holder
//! is the operator or a backend publishing at whatever rate it needs, and
//! a per-address limit would only throttle the trusted. What the limit
//! bounds is everything else: probes, scrapers of a public `/metrics`,
//! and above all guesses at the token (each one a 401 that costs a
//! request from the allowance).
//!
//! The table of addresses is bounded: past [`MAX_ADDRESSES`], entries whose
//! bucket has refilled (an address idle long enough to be indistinguishable
//! from a new one) are dropped; if every entry is still spending, a new
//! address is refused until one refills. Memory stays bounded under a
//! flood from many addresses, and an address already limited never gets a
//! fresh bucket by being pushed out.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;

use super::error::ApiError;
use super::{Api, auth};
use crate::rate_limit::TokenBucket;
use crate::state::handshakes::address_key;

/// Addresses tracked at most (a bucket and a key: under 100 bytes each).
pub(crate) const MAX_ADDRESSES: usize = 4096;

/// The per-address buckets.
pub(crate) struct Limiter {
    /// Requests a second per address.
    rate: f64,
    /// Requests an address may make at once.
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, TokenBucket>>,
}

impl Limiter {
    /// A limiter, or `None` when `rate` is 0 (unlimited). A burst below 1
    /// is taken as 1: no request could pass otherwise.
    pub(crate) fn new(rate: f64, burst: f64) -> Option<Self> {
        (rate > 0.0).then(|| Self {
            rate,
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Take one request of `ip`'s allowance at `now`, or say how long
    /// until one is there.
    pub(crate) fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let key = address_key(ip);
        let mut buckets = self.buckets.lock();
        if !buckets.contains_key(&key) && buckets.len() >= MAX_ADDRESSES {
            let burst = self.burst;
            buckets.retain(|_, b| b.tokens_at(now) < burst);
            if buckets.len() >= MAX_ADDRESSES {
                return Err(Duration::from_secs_f64(1.0 / self.rate));
            }
        }
        let bucket = buckets
            .entry(key)
            .or_insert_with(|| TokenBucket::new_at(self.burst, self.rate, None, now));
        if bucket.acquire_at(1.0, now) {
            return Ok(());
        }
        let missing = 1.0 - bucket.tokens_at(now);
        Err(Duration::from_secs_f64(missing.max(0.0) / self.rate))
    }

    /// Addresses tracked now.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.buckets.lock().len()
    }
}

/// The middleware: count the request against its address unless it
/// carries the admin token; 429 `RATE_LIMITED` with `Retry-After` when the
/// allowance is spent.
pub(crate) async fn limit(State(api): State<Arc<Api>>, request: Request, next: Next) -> Response {
    if let Some(limiter) = &api.limiter
        && !auth::is_admin(api.token.as_ref(), request.headers())
        && let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>()
        && let Err(wait) = limiter.check(peer.ip(), Instant::now())
    {
        return ApiError::rate_limited(wait).into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_burst_then_the_rate() {
        let l = Limiter::new(2.0, 3.0).unwrap();
        let t0 = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(l.check(a, t0), Ok(()));
        }
        let wait = l.check(a, t0).unwrap_err();
        assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500));
        // Another address has its own allowance; the same /64 shares one.
        assert_eq!(l.check("10.0.0.2".parse().unwrap(), t0), Ok(()));
        let v6a: IpAddr = "2001:db8::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8::2".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(l.check(v6a, t0), Ok(()));
        }
        assert!(l.check(v6b, t0).is_err());
        // Half a second later one request fits again.
        assert_eq!(l.check(a, t0 + Duration::from_millis(500)), Ok(()));
        assert!(Limiter::new(0.0, 10.0).is_none(), "0 is unlimited");
    }

    #[test]
    fn the_table_is_bounded_and_a_limited_address_is_never_pushed_out() {
        let l = Limiter::new(1.0, 1.0).unwrap();
        let t0 = Instant::now();
        let addr = |i: usize| IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
        for i in 0..MAX_ADDRESSES {
            assert_eq!(l.check(addr(i), t0), Ok(()));
        }
        // Every address is spending: a new one waits rather than evicting.
        assert!(l.check(addr(MAX_ADDRESSES), t0).is_err());
        assert!(l.check(addr(0), t0).is_err(), "still limited");
        assert_eq!(l.tracked(), MAX_ADDRESSES);
        // Once they refilled, idle entries make room.
        let later = t0 + Duration::from_secs(2);
        assert_eq!(l.check(addr(MAX_ADDRESSES), later), Ok(()));
        assert_eq!(l.tracked(), 1);
    }
}
