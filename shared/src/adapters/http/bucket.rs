//! The one client-side token bucket of the HTTP adapters.
//!
//! [`TokenBucket`]: an async token bucket (`rate` tokens per second, at most
//! `burst` saved up). Cheap to share (`Arc<TokenBucket>`), fair (each caller
//! reserves its slot, so waiters are served in arrival order), and it counts
//! how often and how long callers waited, for `status` and the benchmarks.
//! A vendor's 429 can [`TokenBucket::pause_for`] the bucket so every
//! concurrent caller backs off, not only the one that was refused. Brevo
//! keeps one per endpoint family; Stripe one per client (burst = rate).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

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

    /// `rate_per_sec` tokens per second with one second's worth saved up
    /// (burst = rate, at least 1; a fractional rate's burst is rounded down).
    pub fn with_one_second_burst(rate_per_sec: f64) -> Self {
        // Float-to-int `as` saturates, so any rate gives a valid burst.
        Self::new(rate_per_sec, rate_per_sec.max(1.0) as u32)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Arc;
    // Paused tokio time: the pacing is checked exactly, whatever the machine load.
    #[tokio::test(start_paused = true)]
    async fn a_bucket_paces_callers_at_its_rate_after_the_burst() {
        // 100 per second, burst 5: 5 immediate, then 20 more take ≈ 200 ms.
        let bucket = TokenBucket::new(100.0, 5);
        let start = tokio::time::Instant::now();
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

    #[tokio::test(start_paused = true)]
    async fn a_shared_bucket_paces_concurrent_callers_together() {
        let bucket = Arc::new(TokenBucket::new(50.0, 1));
        let start = tokio::time::Instant::now();
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

    #[test]
    fn a_one_second_burst_is_the_rate_and_at_least_one() {
        let b = TokenBucket::with_one_second_burst(20.0);
        assert_eq!((b.rate(), b.burst()), (Some(20.0), 20));
        let slow = TokenBucket::with_one_second_burst(0.5);
        assert_eq!((slow.rate(), slow.burst()), (Some(0.5), 1));
        assert_eq!(TokenBucket::with_one_second_burst(f64::NAN).rate(), None);
    }

    #[tokio::test]
    async fn a_paused_bucket_holds_every_caller_back() {
        let bucket = TokenBucket::unlimited();
        bucket.pause_for(Duration::from_millis(80));
        assert!(!bucket.try_acquire());
        let start = tokio::time::Instant::now();
        bucket.acquire().await;
        assert!(start.elapsed() >= Duration::from_millis(70));
        assert_eq!(bucket.stats().waits, 1);
    }
}
