//! Stripe's per-account rate limit in the sandbox
//! (<https://docs.stripe.com/rate-limits>: 100 requests per second live, 25
//! in test mode, "per Stripe account"): one limiter for the whole sandbox —
//! it is one account — so every client and every key of it share the limit,
//! as the merchant's checkout and the connector's functions share Stripe's.
//! At most `per_second` requests are admitted in any one-second window
//! (a sliding log of admissions); the others are answered as Stripe answers
//! them: 429 with the `rate_limit` error, plus `Stripe-Should-Retry` /
//! `Retry-After` only when [`RateLimit`] says so (Stripe's SDKs retry a 429
//! only when `Stripe-Should-Retry: true` says they may, or for a
//! `lock_timeout`). Off by default, so other tests are unchanged.
//!
//! Whether on or off, the account's requests are counted for the figures
//! ([`RateStats`]): requests, 429s of the limit, and the most requests that
//! arrived in any one second. An *observer* key (a test's own reads of the
//! data, see [`super::StripeSandboxOptions::with_observer_key`]) is outside
//! the account: never limited, never counted.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;

use super::auth::bearer;
use super::faults::rate_limited;
use super::http::ApiError;
use super::store::{lock, State};
use super::StripeSandbox;

/// Stripe's live-mode limit (requests per second per account).
pub const LIVE_MODE_PER_SECOND: u32 = 100;
/// Stripe's test-mode (sandbox) limit.
pub const TEST_MODE_PER_SECOND: u32 = 25;

const WINDOW: Duration = Duration::from_secs(1);

/// The account's sustained limit and how its 429s look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests admitted in any one-second window.
    pub per_second: u32,
    /// Sends `Stripe-Should-Retry: true|false` on its 429s when set.
    pub should_retry: Option<bool>,
    /// Sends `Retry-After: N` (seconds) on its 429s when set.
    pub retry_after: Option<u64>,
}

impl RateLimit {
    /// `per_second` requests in any second, 429s with Stripe's body and no
    /// retry headers.
    pub const fn per_second(per_second: u32) -> Self {
        Self { per_second, should_retry: None, retry_after: None }
    }

    /// Stripe's live-mode limit.
    pub const LIVE: Self = Self::per_second(LIVE_MODE_PER_SECOND);
    /// Stripe's test-mode limit.
    pub const TEST: Self = Self::per_second(TEST_MODE_PER_SECOND);
}

/// What the account was sent (observer keys left out).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateStats {
    /// Requests of the account's keys (admitted or not).
    pub requests: u64,
    /// Of which answered 429 by the account limit (injected faults not included).
    pub rate_limited: u64,
    /// The most requests that arrived within any one second.
    pub peak_per_second: u32,
}

/// The limiter and the counters.
#[derive(Debug, Default)]
pub(super) struct AccountLimiter {
    pub(super) limit: Option<RateLimit>,
    /// Arrivals of the last second that were admitted.
    admitted: VecDeque<Instant>,
    /// Every arrival of the last second (for the peak).
    arrived: VecDeque<Instant>,
    pub(super) stats: RateStats,
}

/// Drops the instants a second or more before `now`.
fn expire(log: &mut VecDeque<Instant>, now: Instant) {
    while log.front().is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW) {
        log.pop_front();
    }
}

impl AccountLimiter {
    pub(super) fn new(limit: Option<RateLimit>) -> Self {
        Self { limit, ..Self::default() }
    }

    /// A request of the account arriving at `now` (instants never decrease):
    /// counted, then admitted or answered Stripe's 429.
    pub(super) fn arrive(&mut self, now: Instant) -> Result<(), ApiError> {
        self.stats.requests += 1;
        expire(&mut self.arrived, now);
        self.arrived.push_back(now);
        let in_window = u32::try_from(self.arrived.len()).unwrap_or(u32::MAX);
        self.stats.peak_per_second = self.stats.peak_per_second.max(in_window);
        let Some(limit) = self.limit else { return Ok(()) };
        expire(&mut self.admitted, now);
        if self.admitted.len() < limit.per_second as usize {
            self.admitted.push_back(now);
            return Ok(());
        }
        self.stats.rate_limited += 1;
        Err(rate_limited(limit.should_retry, limit.retry_after))
    }

    /// Zeroes the counters (the limit and its window stay).
    pub(super) fn reset_stats(&mut self) {
        self.stats = RateStats::default();
        self.arrived.clear();
    }
}

impl State {
    /// Counts a request of the account (a known key that is no observer's)
    /// and applies the account limit to it; others pass untouched.
    pub(super) fn meter(&mut self, headers: &HeaderMap) -> Result<(), ApiError> {
        let of_account = bearer(headers).is_some_and(|k| self.keys.contains_key(k) && !self.observers.contains(k));
        if of_account {
            self.limiter.arrive(Instant::now())
        } else {
            Ok(())
        }
    }
}

impl StripeSandbox {
    /// The account's rate limit from now on (`None`: unlimited).
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        lock(&self.state).limiter.limit = limit;
    }

    /// The account's rate limit in effect.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        lock(&self.state).limiter.limit
    }

    /// Requests of the account, 429s of its limit, and the most requests in
    /// any one second, since the start or [`reset_rate_stats`](Self::reset_rate_stats).
    pub fn rate_stats(&self) -> RateStats {
        lock(&self.state).limiter.stats
    }

    pub fn reset_rate_stats(&self) {
        lock(&self.state).limiter.reset_stats();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn at(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    #[test]
    fn admits_per_second_requests_in_any_one_second_window_then_answers_429() {
        let t = Instant::now();
        let mut l = AccountLimiter::new(Some(RateLimit::per_second(3)));
        let outcomes: Vec<bool> =
            [0, 100, 200, 300, 999, 1_000, 1_050, 1_150, 1_201].iter().map(|ms| l.arrive(at(t, *ms)).is_ok()).collect();
        // 0,100,200 in; 300 and 999 out (3 in the window); at 1000 the one of
        // 0 has left, at 1050 nothing more has, at 1150 the one of 100 has,
        // at 1201 the one of 200 has.
        assert_eq!(outcomes, [true, true, true, false, false, true, false, true, true]);
        assert_eq!(l.stats.requests, 9);
        assert_eq!(l.stats.rate_limited, 3);
        assert_eq!(l.stats.peak_per_second, 6, "100..1050 saw six arrivals, refused ones included");
    }

    #[test]
    fn a_429_of_the_limit_is_stripes_rate_limit_error_with_the_configured_headers() {
        let t = Instant::now();
        let limit = RateLimit { per_second: 1, should_retry: Some(false), retry_after: Some(2) };
        let mut l = AccountLimiter::new(Some(limit));
        assert!(l.arrive(t).is_ok());
        let e = l.arrive(t).unwrap_err();
        assert_eq!(e.status.as_u16(), 429);
        assert_eq!(e.body["error"]["code"], "rate_limit");
        assert_eq!(e.body["error"]["type"], "invalid_request_error");
        assert!(e.headers.contains(&("stripe-should-retry", "false".to_owned())));
        assert!(e.headers.contains(&("retry-after", "2".to_owned())));
        let plain = AccountLimiter::new(Some(RateLimit::TEST)).limit.unwrap();
        assert_eq!((plain.per_second, plain.should_retry, plain.retry_after), (25, None, None));
    }

    #[test]
    fn without_a_limit_everything_is_admitted_and_still_counted() {
        let t = Instant::now();
        let mut l = AccountLimiter::new(None);
        for ms in [0, 10, 20, 1_500] {
            assert!(l.arrive(at(t, ms)).is_ok());
        }
        assert_eq!(l.stats, RateStats { requests: 4, rate_limited: 0, peak_per_second: 3 });
        l.reset_stats();
        assert_eq!(l.stats, RateStats::default());
        assert!(l.arrive(at(t, 1_600)).is_ok());
        assert_eq!(l.stats.peak_per_second, 1, "the window restarts with the counters");
    }
}
