//! The one retry decision and the one retry loop of the HTTP adapters.
//!
//! - [`decide`] is a pure function: what one failed attempt ended in (a
//!   status, or no usable answer), the answer's headers, how many attempts
//!   were made and a [`Policy`] → retry after a [`Wait`], or give up. It
//!   knows no vendor: what differs between Stripe and Brevo is data in the
//!   policy each client builds (`stripe::RetryPolicy::rules`,
//!   `brevo::BrevoConfig`'s backoff and 429 bounds).
//! - [`run`] is the loop both clients drive: take a token from the
//!   [`TokenBucket`], make one attempt, ask [`decide`], pause the bucket if
//!   the vendor said so, sleep, try again. The clients keep their own
//!   requests, error mapping and counters in the attempt and in [`Step`]s.
//! - [`Backoff`]: exponential backoff with full jitter
//!   (<https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/>),
//!   bounded by a cap and a number of attempts.
//!
//! May use: [`super::bucket`], `reqwest`'s header types, `rand`, `tokio`'s timer.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use reqwest::header::HeaderMap;

use super::bucket::TokenBucket;

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
    /// 250 ms base, 8 s cap, 4 attempts (the Brevo client's default).
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
        Wait::Jittered { ceiling: self.ceiling(retry) }.sample()
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

/// How one vendor's failed attempts are retried: data, not code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Attempts and the jittered wait when the vendor names none.
    pub backoff: Backoff,
    /// A header whose value, on an answer that is not a 2xx, decides alone
    /// whether to retry (`true`; any other value means no). Stripe:
    /// `Stripe-Should-Retry`. Absent header: the rules below decide.
    pub verdict_header: Option<&'static str>,
    /// Statuses under 500 that are retried (5xx and failures without a
    /// usable answer always are). Stripe: 409, 429. Brevo: 429.
    pub retried_statuses: &'static [u16],
    /// Where the wait after a retried status comes from, when not from
    /// [`Policy::backoff`].
    pub server_wait: ServerWait,
}

/// A wait the vendor names in a header of its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerWait {
    /// None: every retry waits the jittered backoff.
    None,
    /// `header` (seconds) on any retried status, at most `max`; the backoff
    /// without it. Stripe: `Retry-After`.
    RetryAfter { header: &'static str, max: Duration },
    /// On `status` only: `header` (seconds until the window resets, absent =
    /// 0) clamped to `[min, max]`; the bucket is paused that long too, so
    /// concurrent callers back off. Brevo: 429 and `x-sib-ratelimit-reset`.
    RateLimitReset { status: u16, header: &'static str, min: Duration, max: Duration },
}

/// What one failed attempt ended in, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// An answer with this status that is not a success.
    Status(u16),
    /// No usable answer: connect, TLS, timeout, reset… before any status
    /// (`None`), or the body of an answer with this status was unreadable.
    Transport(Option<u16>),
    /// A request that must not be repeated blindly was sent and no answer
    /// came: it may have been applied. Never retried.
    Unconfirmed,
}

/// How long to wait before the next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// This long exactly (the vendor said so).
    Exactly(Duration),
    /// Uniform in `[0, ceiling]` (full jitter).
    Jittered { ceiling: Duration },
}

impl Wait {
    /// The wait to sleep (a random draw for [`Wait::Jittered`]).
    pub fn sample(self) -> Duration {
        match self {
            Self::Exactly(d) => d,
            Self::Jittered { ceiling } => {
                let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
                if nanos == 0 {
                    return Duration::ZERO;
                }
                Duration::from_nanos(rand::rng().random_range(0..=nanos))
            }
        }
    }
}

/// Why an error is returned without another attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// The failure is not worth retrying (a 4xx, or the vendor said no).
    Permanent,
    /// It was, but every attempt of the backoff was made.
    Exhausted,
}

/// Retry or give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    RetryAfter(Wait),
    GiveUp(GiveUp),
}

/// What [`decide`] says about one failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// Hold every caller of the bucket back this long (whatever the verdict:
    /// the vendor's window applies to the concurrent callers too).
    pub pause: Option<Duration>,
}

/// The header's value in seconds (a non-negative number, at most a day).
fn header_seconds(headers: &HeaderMap, name: &str) -> Option<Duration> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(86_400.0)))
}

/// The verdict header's say: `Some(true)` for `true`, `Some(false)` for any
/// other readable value, `None` when absent or unreadable.
fn header_verdict(headers: &HeaderMap, name: &str) -> Option<bool> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// The retry decision after attempt number `attempts_made` (1-based) ended
/// in `failure` with these answer `headers` (empty without an answer).
pub fn decide(policy: &Policy, failure: Failure, headers: &HeaderMap, attempts_made: u32) -> Decision {
    let answered_non_2xx = match failure {
        Failure::Status(s) | Failure::Transport(Some(s)) => !(200..300).contains(&s),
        Failure::Transport(None) | Failure::Unconfirmed => false,
    };
    let said = policy.verdict_header.filter(|_| answered_non_2xx).and_then(|h| header_verdict(headers, h));
    let (retry, named_wait, pause) = match failure {
        Failure::Transport(_) => (said.unwrap_or(true), None, None),
        Failure::Unconfirmed => (false, None, None),
        Failure::Status(status) => {
            let retry = said.unwrap_or(status >= 500 || policy.retried_statuses.contains(&status));
            match policy.server_wait {
                ServerWait::RetryAfter { header, max } => {
                    (retry, header_seconds(headers, header).map(|d| d.min(max)), None)
                }
                ServerWait::RateLimitReset { status: s, header, min, max } if s == status => {
                    let wait = clamp_duration(header_seconds(headers, header).unwrap_or(Duration::ZERO), min, max);
                    (retry, Some(wait), Some(wait))
                }
                ServerWait::RateLimitReset { .. } | ServerWait::None => (retry, None, None),
            }
        }
    };
    let verdict = if !retry {
        Verdict::GiveUp(GiveUp::Permanent)
    } else if !policy.backoff.can_retry(attempts_made) {
        Verdict::GiveUp(GiveUp::Exhausted)
    } else {
        let backoff = || Wait::Jittered { ceiling: policy.backoff.ceiling(attempts_made.saturating_sub(1)) };
        Verdict::RetryAfter(named_wait.map_or_else(backoff, Wait::Exactly))
    };
    Decision { verdict, pause }
}

/// A failed attempt: the client's error, and what [`decide`] needs.
#[derive(Debug)]
pub struct Failed<E> {
    pub error: E,
    pub failure: Failure,
    /// The answer's headers; empty when there was no answer.
    pub headers: HeaderMap,
}

impl<E> Failed<E> {
    pub fn new(error: E, failure: Failure, headers: HeaderMap) -> Self {
        Self { error, failure, headers }
    }

    /// No answer at all (connect, timeout…): no status, no headers.
    pub fn unanswered(error: E) -> Self {
        Self { error, failure: Failure::Transport(None), headers: HeaderMap::new() }
    }
}

/// What [`run`] tells the client's observer (for its counters and logs).
#[derive(Debug)]
pub enum Step<'a, E> {
    /// Attempt number `attempt` failed with `error`; the next one follows
    /// after `wait`.
    Retrying { attempt: u32, wait: Duration, error: &'a E },
    /// `error` is returned after `attempts` attempts.
    GaveUp { attempts: u32, why: GiveUp, error: &'a E },
}

/// Makes attempts (`attempt(n)`, `n` from 1) until one succeeds or [`decide`]
/// gives up, taking a token from `bucket` before each; returns the value or
/// the last error.
pub async fn run<T, E, F, Fut>(
    policy: &Policy,
    bucket: &TokenBucket,
    mut attempt: F,
    mut observe: impl FnMut(Step<'_, E>),
) -> Result<T, E>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Failed<E>>>,
{
    let mut n = 1u32;
    loop {
        bucket.acquire().await;
        let failed = match attempt(n).await {
            Ok(v) => return Ok(v),
            Err(f) => f,
        };
        let decision = decide(policy, failed.failure, &failed.headers, n);
        if let Some(pause) = decision.pause {
            bucket.pause_for(pause);
        }
        match decision.verdict {
            Verdict::GiveUp(why) => {
                observe(Step::GaveUp { attempts: n, why, error: &failed.error });
                return Err(failed.error);
            }
            Verdict::RetryAfter(wait) => {
                let wait = wait.sample();
                observe(Step::Retrying { attempt: n, wait, error: &failed.error });
                tokio::time::sleep(wait).await;
                n += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests;
