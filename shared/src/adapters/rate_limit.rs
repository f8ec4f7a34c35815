//! Client-side pacing and retries shared by the HTTP adapters.
//!
//! - [`TokenBucket`]: an async token bucket (`rate` tokens per second, at most
//!   `burst` saved up). Cheap to share (`Arc<TokenBucket>`), fair (each caller
//!   reserves its slot, so waiters are served in arrival order), and it counts
//!   how often and how long callers waited, for `status` and the benchmarks.
//!   A vendor's 429 can [`TokenBucket::pause_for`] the bucket so every
//!   concurrent caller backs off, not only the one that was refused.
//! - [`Backoff`]: exponential backoff with full jitter
//!   (<https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/>),
//!   bounded by a cap and a number of attempts; [`retry`] drives any async
//!   operation with it. Vendor-neutral: the Brevo and Stripe clients both use it.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

/// How many callers had to wait for a token, and for how long in total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WaitStats {
    /// Calls to [`TokenBucket::acquire`].
    pub acquired: u64,
    /// Calls that had to sleep before getting their token.
    pub waits: u64,
    /// Total time slept across all callers.
    pub waited: Duration,
}

#[derive(Debug)]
struct BucketState {
    /// May go negative: each waiter reserves its token up front.
    tokens: f64,
    last: Instant,
    /// Set by [`TokenBucket::pause_for`] (e.g. after a 429).
    paused_until: Option<Instant>,
}

/// An async token bucket. `rate` tokens per second are added up to `burst`;
/// [`acquire`](Self::acquire) takes one, sleeping until it is available.
#[derive(Debug)]
pub struct TokenBucket {
    /// Tokens per second; `None` means unlimited.
    rate: Option<f64>,
    burst: f64,
    state: Mutex<BucketState>,
    acquired: AtomicU64,
    waits: AtomicU64,
    waited_micros: AtomicU64,
}

impl TokenBucket {
    /// `rate_per_sec` tokens per second, at most `burst` (≥ 1) saved up; the
    /// bucket starts full. A rate that is not a positive finite number gives
    /// an unlimited bucket.
    pub fn new(rate_per_sec: f64, burst: u32) -> Self {
        let rate = (rate_per_sec.is_finite() && rate_per_sec > 0.0).then_some(rate_per_sec);
        let burst = f64::from(burst.max(1));
        Self {
            rate,
            burst,
            state: Mutex::new(BucketState { tokens: burst, last: Instant::now(), paused_until: None }),
            acquired: AtomicU64::new(0),
            waits: AtomicU64::new(0),
            waited_micros: AtomicU64::new(0),
        }
    }

    /// A bucket that never waits (still counts acquisitions and pauses).
    pub fn unlimited() -> Self {
        Self::new(0.0, 1)
    }

    /// Tokens per second (`None` when unlimited).
    pub fn rate(&self) -> Option<f64> {
        self.rate
    }

    pub fn burst(&self) -> u32 {
        // burst was built from a u32, so the conversion back is exact.
        self.burst as u32
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BucketState> {
        // A panic while holding this lock cannot leave the state invalid
        // (plain numbers), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves one token and returns how long the caller must wait for it.
    fn reserve(&self) -> Duration {
        let now = Instant::now();
        let mut st = self.lock();
        let mut wait = Duration::ZERO;
        if let Some(until) = st.paused_until {
            if until > now {
                wait = until - now;
            } else {
                st.paused_until = None;
            }
        }
        let Some(rate) = self.rate else {
            return wait;
        };
        let elapsed = now.saturating_duration_since(st.last).as_secs_f64();
        st.tokens = (st.tokens + elapsed * rate).min(self.burst);
        st.last = now;
        st.tokens -= 1.0;
        if st.tokens < 0.0 {
            wait = wait.max(Duration::from_secs_f64(-st.tokens / rate));
        }
        wait
    }

    /// Waits until a token is available and takes it.
    pub async fn acquire(&self) {
        self.acquired.fetch_add(1, Ordering::Relaxed);
        let wait = self.reserve();
        if !wait.is_zero() {
            self.waits.fetch_add(1, Ordering::Relaxed);
            let micros = u64::try_from(wait.as_micros()).unwrap_or(u64::MAX);
            self.waited_micros.fetch_add(micros, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
        }
    }

    /// Takes a token if one is available now, without waiting.
    pub fn try_acquire(&self) -> bool {
        let now = Instant::now();
        let mut st = self.lock();
        if st.paused_until.is_some_and(|u| u > now) {
            return false;
        }
        let Some(rate) = self.rate else {
            self.acquired.fetch_add(1, Ordering::Relaxed);
            return true;
        };
        let elapsed = now.saturating_duration_since(st.last).as_secs_f64();
        st.tokens = (st.tokens + elapsed * rate).min(self.burst);
        st.last = now;
        if st.tokens >= 1.0 {
            st.tokens -= 1.0;
            self.acquired.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    /// Holds every caller back for `d` from now (a vendor said "slow down");
    /// an existing longer pause is kept.
    pub fn pause_for(&self, d: Duration) {
        let until = Instant::now() + d;
        let mut st = self.lock();
        st.paused_until = Some(st.paused_until.map_or(until, |u| u.max(until)));
    }

    pub fn stats(&self) -> WaitStats {
        WaitStats {
            acquired: self.acquired.load(Ordering::Relaxed),
            waits: self.waits.load(Ordering::Relaxed),
            waited: Duration::from_micros(self.waited_micros.load(Ordering::Relaxed)),
        }
    }
}

/// Exponential backoff with full jitter: the wait before retry number
/// `retry` (0-based) is uniform in `[0, min(cap, base × 2^retry)]`.
/// `max_attempts` counts every attempt, the first one included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    pub max_attempts: u32,
}

impl Default for Backoff {
    /// 250 ms base, 8 s cap, 4 attempts.
    fn default() -> Self {
        Self { base: Duration::from_millis(250), cap: Duration::from_secs(8), max_attempts: 4 }
    }
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration, max_attempts: u32) -> Self {
        Self { base, cap, max_attempts: max_attempts.max(1) }
    }

    /// No retries at all.
    pub fn none() -> Self {
        Self { base: Duration::ZERO, cap: Duration::ZERO, max_attempts: 1 }
    }

    /// The upper bound of [`delay`](Self::delay): `min(cap, base × 2^retry)`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// A random wait in `[0, ceiling(retry)]` (full jitter).
    pub fn delay(&self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(rand::rng().random_range(0..=nanos))
    }

    /// True when, after `attempts_made` attempts, another one is allowed.
    pub fn can_retry(&self, attempts_made: u32) -> bool {
        attempts_made < self.max_attempts
    }
}

/// `d` limited to `[min, max]` (`min` wins if the bounds are crossed).
pub fn clamp_duration(d: Duration, min: Duration, max: Duration) -> Duration {
    d.min(max).max(min)
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Permanent failure: return the error now.
    Stop,
    /// Retry after the backoff's jittered delay.
    Backoff,
    /// Retry after exactly this long (the vendor said so, e.g. a 429's reset).
    After(Duration),
}

/// Runs `op(attempt)` (attempt numbers start at 1) until it succeeds,
/// `decide` says [`RetryDecision::Stop`], or `backoff.max_attempts` attempts
/// were made; returns the last error in the two latter cases.
pub async fn retry<T, E, F, Fut, D>(backoff: &Backoff, mut op: F, decide: D) -> Result<T, E>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    D: Fn(&E) -> RetryDecision,
{
    let mut attempt = 1u32;
    loop {
        match op(attempt).await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let wait = match decide(&e) {
                    RetryDecision::Stop => return Err(e),
                    _ if !backoff.can_retry(attempt) => return Err(e),
                    RetryDecision::Backoff => backoff.delay(attempt - 1),
                    RetryDecision::After(d) => d,
                };
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_bucket_paces_callers_at_its_rate_after_the_burst() {
        // 100 per second, burst 5: 5 immediate, then 20 more take ≈ 200 ms.
        let bucket = TokenBucket::new(100.0, 5);
        let start = std::time::Instant::now();
        for _ in 0..25 {
            bucket.acquire().await;
        }
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(190), "too fast: {elapsed:?}");
        assert!(elapsed < Duration::from_millis(700), "too slow: {elapsed:?}");
        let s = bucket.stats();
        assert_eq!(s.acquired, 25);
        assert!(s.waits >= 19, "waits counted: {s:?}");
        assert!(s.waited >= Duration::from_millis(150), "time waited counted: {s:?}");
    }

    #[tokio::test]
    async fn a_shared_bucket_paces_concurrent_callers_together() {
        let bucket = Arc::new(TokenBucket::new(50.0, 1));
        let start = std::time::Instant::now();
        let tasks: Vec<_> = (0..11)
            .map(|_| {
                let b = Arc::clone(&bucket);
                tokio::spawn(async move { b.acquire().await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        // 1 immediate + 10 at 20 ms each.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(190), "too fast: {elapsed:?}");
        assert!(elapsed < Duration::from_millis(700), "too slow: {elapsed:?}");
    }

    #[tokio::test]
    async fn a_full_bucket_does_not_wait_and_try_acquire_refuses_when_empty() {
        let bucket = TokenBucket::new(1.0, 3);
        for _ in 0..3 {
            bucket.acquire().await;
        }
        assert_eq!(bucket.stats().waits, 0);
        assert!(!bucket.try_acquire());
        assert!(TokenBucket::unlimited().try_acquire());
    }

    #[tokio::test]
    async fn a_paused_bucket_holds_every_caller_back() {
        let bucket = TokenBucket::unlimited();
        bucket.pause_for(Duration::from_millis(80));
        assert!(!bucket.try_acquire());
        let start = std::time::Instant::now();
        bucket.acquire().await;
        assert!(start.elapsed() >= Duration::from_millis(70));
        assert_eq!(bucket.stats().waits, 1);
    }

    #[test]
    fn backoff_grows_exponentially_up_to_the_cap_with_full_jitter() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000), 5);
        assert_eq!(b.ceiling(0), Duration::from_millis(100));
        assert_eq!(b.ceiling(1), Duration::from_millis(200));
        assert_eq!(b.ceiling(3), Duration::from_millis(800));
        assert_eq!(b.ceiling(4), Duration::from_millis(1000));
        assert_eq!(b.ceiling(200), Duration::from_millis(1000));
        let samples: Vec<Duration> = (0..200).map(|_| b.delay(2)).collect();
        assert!(samples.iter().all(|d| *d <= Duration::from_millis(400)));
        // Full jitter: values spread over the range, not all at the ceiling.
        assert!(samples.iter().any(|d| *d < Duration::from_millis(200)));
        assert!(samples.iter().any(|d| *d > Duration::from_millis(200)));
        assert!(b.can_retry(4));
        assert!(!b.can_retry(5));
        assert!(!Backoff::none().can_retry(1));
    }

    #[test]
    fn clamp_keeps_durations_in_bounds() {
        let (lo, hi) = (Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(clamp_duration(Duration::ZERO, lo, hi), lo);
        assert_eq!(clamp_duration(Duration::from_secs(5), lo, hi), Duration::from_secs(5));
        assert_eq!(clamp_duration(Duration::from_secs(3600), lo, hi), hi);
    }

    #[tokio::test]
    async fn retry_stops_on_permanent_errors_and_bounds_attempts() {
        let fast = Backoff::new(Duration::from_millis(1), Duration::from_millis(2), 3);
        let mut calls = 0;
        let r: Result<(), &str> = retry(
            &fast,
            |_| {
                calls += 1;
                async { Err("boom") }
            },
            |_| RetryDecision::Backoff,
        )
        .await;
        assert_eq!(r, Err("boom"));
        assert_eq!(calls, 3);

        let mut calls = 0;
        let r: Result<(), &str> = retry(
            &fast,
            |_| {
                calls += 1;
                async { Err("bad") }
            },
            |_| RetryDecision::Stop,
        )
        .await;
        assert_eq!(r, Err("bad"));
        assert_eq!(calls, 1);

        let r: Result<u32, &str> = retry(
            &fast,
            |attempt| async move {
                if attempt < 3 {
                    Err("again")
                } else {
                    Ok(attempt)
                }
            },
            |_| RetryDecision::After(Duration::from_millis(1)),
        )
        .await;
        assert_eq!(r, Ok(3));
    }
}
