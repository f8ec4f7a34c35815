//! Fault injection and rate limiting for the Stripe sandbox: bursts of 429
//! (Stripe's `rate_limit` error, optionally with `Stripe-Should-Retry` /
//! `Retry-After`), seeded random 429/500, latency and a full outage (503),
//! set at run time through [`StripeSandbox`]'s fault methods and applied by
//! [`inject_faults`] before a request is looked at. Also the response
//! latency with jitter (options or [`StripeSandbox::set_response_latency`]),
//! which is the sandbox's pace rather than a fault: `clear_faults` keeps it.

use std::time::Duration;

use axum::http::StatusCode;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::latency::{Jittered, Latency};

use super::http::ApiError;
use super::store::{lock, State};
use super::StripeSandbox;

/// A run of 429 answers for the next `count` requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Burst {
    pub count: u32,
    /// Sends `Stripe-Should-Retry: true|false` when set.
    pub should_retry: Option<bool>,
    /// Sends `Retry-After: N` (seconds) when set.
    pub retry_after: Option<u64>,
}

#[derive(Debug)]
pub(super) struct Faults {
    burst: Burst,
    p429: f64,
    p500: f64,
    latency: Duration,
    outage: bool,
    rng: StdRng,
    /// The response latency (not a fault: [`StripeSandbox::clear_faults`] keeps it).
    response: Jittered,
}

impl Faults {
    /// No fault; random ones (once set) drawn from an RNG seeded with `seed`;
    /// `response` latency drawn from its own RNG.
    pub(super) fn new(seed: u64, response: Latency) -> Self {
        Self {
            burst: Burst::default(),
            p429: 0.0,
            p500: 0.0,
            latency: Duration::ZERO,
            outage: false,
            rng: StdRng::seed_from_u64(seed),
            response: Jittered::new(response, seed),
        }
    }

    /// How long the next request waits: the response latency (drawn) plus
    /// the injected latency.
    pub(super) fn next_delay(&mut self) -> Duration {
        self.response.next_delay() + self.latency
    }
}

impl StripeSandbox {
    /// The next `count` requests answer 429 (Stripe's `rate_limit` error).
    pub fn burst_429(&self, count: u32) {
        self.burst(Burst { count, ..Burst::default() });
    }

    pub fn burst(&self, burst: Burst) {
        lock(&self.state).faults.burst = burst;
    }

    /// Probabilities (0..=1) that a request answers 429 or 500 (seeded RNG).
    pub fn set_error_rates(&self, p429: f64, p500: f64) {
        let mut st = lock(&self.state);
        st.faults.p429 = p429.clamp(0.0, 1.0);
        st.faults.p500 = p500.clamp(0.0, 1.0);
    }

    /// Delay added before every answer (a fault, on top of the response latency).
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.state).faults.latency = latency;
    }

    /// The response latency from now on: each answer waits uniformly in
    /// [latency − jitter, latency + jitter]. Not a fault: kept by `clear_faults`.
    pub fn set_response_latency(&self, latency: Duration, jitter: Duration) {
        lock(&self.state).faults.response.latency = Latency::new(latency, jitter);
    }

    /// The response latency in effect.
    pub fn response_latency(&self) -> Latency {
        lock(&self.state).faults.response.latency
    }

    /// Every request answers 503 while true.
    pub fn set_outage(&self, down: bool) {
        lock(&self.state).faults.outage = down;
    }

    /// Removes every fault (the response latency stays).
    pub fn clear_faults(&self) {
        let mut st = lock(&self.state);
        st.faults.burst = Burst::default();
        st.faults.p429 = 0.0;
        st.faults.p500 = 0.0;
        st.faults.latency = Duration::ZERO;
        st.faults.outage = false;
    }
}

/// Stripe's 429 for a rate-limited request: the `rate_limit` error, and
/// `Stripe-Should-Retry` / `Retry-After` only when given.
pub(super) fn rate_limited(should_retry: Option<bool>, retry_after: Option<u64>) -> ApiError {
    let mut headers = Vec::new();
    if let Some(r) = should_retry {
        headers.push(("stripe-should-retry", r.to_string()));
    }
    if let Some(s) = retry_after {
        headers.push(("retry-after", s.to_string()));
    }
    ApiError {
        status: StatusCode::TOO_MANY_REQUESTS,
        body: json!({"error": {
            "type": "invalid_request_error",
            "code": "rate_limit",
            "doc_url": "https://stripe.com/docs/error-codes/rate-limit",
            "message": "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits."
        }}),
        headers,
    }
}

/// The fault this request gets, if any (an outage first, then a burst, then
/// the random rates). Latency is applied by the handler, outside the lock.
pub(super) fn inject_faults(st: &mut State) -> Result<(), ApiError> {
    let f = &mut st.faults;
    if f.outage {
        return Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            body: json!({"error": {"type": "api_error", "message": "The service is temporarily unavailable."}}),
            headers: Vec::new(),
        });
    }
    if f.burst.count > 0 {
        f.burst.count -= 1;
        return Err(rate_limited(f.burst.should_retry, f.burst.retry_after));
    }
    if f.p429 > 0.0 || f.p500 > 0.0 {
        let x: f64 = f.rng.random();
        if x < f.p429 {
            return Err(rate_limited(None, None));
        }
        if x < f.p429 + f.p500 {
            return Err(ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                body: json!({"error": {"type": "api_error", "message": "An unknown error occurred"}}),
                headers: Vec::new(),
            });
        }
    }
    Ok(())
}
