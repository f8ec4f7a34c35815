//! Per-request response latency for both sandboxes, so a test can give them
//! a real vendor's pace: each answer waits a delay drawn uniformly from
//! [latency − jitter, latency + jitter] (the lower bound clamped at zero).
//! Draws come from an RNG of their own (seeded from the sandbox's seed), so
//! turning latency on never shifts the sequence of the random faults. The
//! default is zero: no delay, nothing drawn.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A base delay and its jitter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latency {
    pub latency: Duration,
    pub jitter: Duration,
}

impl Latency {
    pub const ZERO: Self = Self { latency: Duration::ZERO, jitter: Duration::ZERO };

    pub fn new(latency: Duration, jitter: Duration) -> Self {
        Self { latency, jitter }
    }

    /// The smallest and largest delay a request can get.
    pub fn bounds(&self) -> (Duration, Duration) {
        (self.latency.saturating_sub(self.jitter), self.latency.saturating_add(self.jitter))
    }

    /// One request's delay (exactly `latency` when there is no jitter).
    pub fn sample(&self, rng: &mut impl Rng) -> Duration {
        if self.jitter.is_zero() {
            return self.latency;
        }
        let (lo, hi) = self.bounds();
        rng.random_range(lo..=hi)
    }
}

/// A sandbox's latency setting with the RNG its delays are drawn from.
#[derive(Debug)]
pub(crate) struct Jittered {
    pub(crate) latency: Latency,
    rng: StdRng,
}

impl Jittered {
    /// `seed` is the sandbox's; the stream is offset so it differs from the faults' RNG.
    pub(crate) fn new(latency: Latency, seed: u64) -> Self {
        Self { latency, rng: StdRng::seed_from_u64(seed ^ 0x6c61_7465_6e63_7921) }
    }

    /// The delay of the next request.
    pub(crate) fn next_delay(&mut self) -> Duration {
        self.latency.sample(&mut self.rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn zero_by_default_and_exact_without_jitter() {
        let mut j = Jittered::new(Latency::default(), 1);
        assert_eq!(j.next_delay(), Duration::ZERO);
        let mut j = Jittered::new(Latency::new(ms(200), Duration::ZERO), 1);
        assert!((0..50).all(|_| j.next_delay() == ms(200)));
    }

    #[test]
    fn jittered_delays_stay_within_bounds_and_spread_around_the_latency() {
        let mut j = Jittered::new(Latency::new(ms(200), ms(50)), 7);
        let draws: Vec<Duration> = (0..2_000).map(|_| j.next_delay()).collect();
        assert!(draws.iter().all(|d| (ms(150)..=ms(250)).contains(d)), "out of [150, 250] ms");
        let mean = draws.iter().sum::<Duration>() / 2_000;
        assert!((ms(195)..=ms(205)).contains(&mean), "mean {mean:?}");
        assert!(draws.iter().any(|d| *d < ms(160)) && draws.iter().any(|d| *d > ms(240)), "uses the whole range");
    }

    #[test]
    fn a_jitter_larger_than_the_latency_never_goes_below_zero() {
        let l = Latency::new(ms(10), ms(30));
        assert_eq!(l.bounds(), (Duration::ZERO, ms(40)));
        let mut j = Jittered::new(l, 3);
        assert!((0..500).map(|_| j.next_delay()).all(|d| d <= ms(40)));
    }

    #[test]
    fn the_same_seed_draws_the_same_delays() {
        let l = Latency::new(ms(120), ms(30));
        let (mut a, mut b) = (Jittered::new(l, 42), Jittered::new(l, 42));
        assert!((0..100).all(|_| a.next_delay() == b.next_delay()));
    }
}
