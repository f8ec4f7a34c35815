//! The retry decision branch by branch, with both vendors' real policies
//! (their default numbers included), then the loop that drives it.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU32, Ordering};

use reqwest::header::{HeaderName, HeaderValue};
use secrecy::SecretString;

use super::*;
use crate::adapters::brevo::BrevoConfig;
use crate::adapters::stripe::RetryPolicy;

const MS: fn(u64) -> Duration = Duration::from_millis;
const SECS: fn(u64) -> Duration = Duration::from_secs;

fn stripe() -> Policy {
    RetryPolicy::default().rules()
}

fn brevo() -> Policy {
    BrevoConfig::new("http://127.0.0.1:9", SecretString::from("k")).retry_rules()
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
    }
    h
}

fn none() -> HeaderMap {
    HeaderMap::new()
}

fn status(p: &Policy, s: u16, h: &HeaderMap, attempt: u32) -> Decision {
    decide(p, Failure::Status(s), h, attempt)
}

fn retry(wait: Wait) -> Decision {
    Decision { verdict: Verdict::RetryAfter(wait), pause: None }
}

fn jitter(ceiling: Duration) -> Decision {
    retry(Wait::Jittered { ceiling })
}

fn exactly(d: Duration) -> Decision {
    retry(Wait::Exactly(d))
}

const PERMANENT: Decision = Decision { verdict: Verdict::GiveUp(GiveUp::Permanent), pause: None };
const EXHAUSTED: Decision = Decision { verdict: Verdict::GiveUp(GiveUp::Exhausted), pause: None };

// ----- the vendors' numbers -------------------------------------------------

#[test]
fn the_vendor_policies_keep_their_default_numbers() {
    let s = stripe();
    assert_eq!(s.backoff, Backoff { base: MS(500), cap: SECS(8), max_attempts: 5 });
    assert_eq!(s.verdict_header, Some("stripe-should-retry"));
    assert_eq!(s.retried_statuses, &[409, 429]);
    assert_eq!(s.server_wait, ServerWait::RetryAfter { header: "retry-after", max: SECS(20) });
    let b = brevo();
    assert_eq!(b.backoff, Backoff { base: MS(250), cap: SECS(8), max_attempts: 4 });
    assert_eq!(b.verdict_header, None);
    assert_eq!(b.retried_statuses, &[429]);
    assert_eq!(
        b.server_wait,
        ServerWait::RateLimitReset { status: 429, header: "x-sib-ratelimit-reset", min: SECS(1), max: SECS(60) }
    );
}

#[test]
fn a_stripe_policy_of_zero_attempts_still_makes_one() {
    let p = RetryPolicy { max_attempts: 0, ..RetryPolicy::default() }.rules();
    assert_eq!(p.backoff.max_attempts, 1);
    assert_eq!(status(&p, 503, &none(), 1), EXHAUSTED);
}

// ----- Stripe ---------------------------------------------------------------

#[test]
fn stripe_retries_409_429_and_5xx_with_full_jitter_backoff() {
    for s in [409, 429, 500, 502, 503, 504] {
        assert_eq!(status(&stripe(), s, &none(), 1), jitter(MS(500)), "HTTP {s}");
    }
    // The ceiling doubles per retry, up to the cap.
    assert_eq!(status(&stripe(), 503, &none(), 2), jitter(SECS(1)));
    assert_eq!(status(&stripe(), 503, &none(), 4), jitter(SECS(4)));
    let long = Policy { backoff: Backoff::new(MS(500), SECS(8), 10), ..stripe() };
    assert_eq!(status(&long, 503, &none(), 6), jitter(SECS(8)));
    assert_eq!(status(&long, 503, &none(), 9), jitter(SECS(8)));
}

#[test]
fn stripe_gives_up_on_other_4xx_at_once() {
    for s in [400, 401, 402, 403, 404, 422] {
        assert_eq!(status(&stripe(), s, &none(), 1), PERMANENT, "HTTP {s}");
    }
}

#[test]
fn stripe_should_retry_wins_when_present() {
    let no = headers(&[("Stripe-Should-Retry", "false")]);
    let yes = headers(&[("Stripe-Should-Retry", "true")]);
    assert_eq!(status(&stripe(), 500, &no, 1), PERMANENT);
    assert_eq!(status(&stripe(), 429, &no, 1), PERMANENT);
    assert_eq!(status(&stripe(), 400, &yes, 1), jitter(MS(500)));
    assert_eq!(status(&stripe(), 404, &headers(&[("stripe-should-retry", " TRUE ")]), 1), jitter(MS(500)));
    // Any readable value but `true` is a no.
    assert_eq!(status(&stripe(), 503, &headers(&[("stripe-should-retry", "yes")]), 1), PERMANENT);
    // An unreadable value is as good as none: the status decides.
    let mut garbled = HeaderMap::new();
    garbled.insert("stripe-should-retry", HeaderValue::from_bytes(b"\xfffalse").unwrap());
    assert_eq!(status(&stripe(), 503, &garbled, 1), jitter(MS(500)));
    assert_eq!(status(&stripe(), 400, &garbled, 1), PERMANENT);
}

#[test]
fn stripe_waits_what_retry_after_says_clamped_to_the_maximum() {
    let after = |v: &str| headers(&[("Retry-After", v)]);
    assert_eq!(status(&stripe(), 429, &after("1"), 1), exactly(SECS(1)));
    assert_eq!(status(&stripe(), 429, &after(" 0.5 "), 1), exactly(MS(500)));
    assert_eq!(status(&stripe(), 429, &after("0"), 1), exactly(Duration::ZERO));
    assert_eq!(status(&stripe(), 429, &after("3600"), 1), exactly(SECS(20)));
    assert_eq!(status(&stripe(), 429, &after("1e300"), 1), exactly(SECS(20)));
    assert_eq!(status(&stripe(), 503, &after("2"), 3), exactly(SECS(2)));
    // Unusable values fall back to the backoff.
    for v in ["-1", "soon", "NaN", "inf", ""] {
        assert_eq!(status(&stripe(), 429, &after(v), 1), jitter(MS(500)), "Retry-After {v:?}");
    }
    // A status retried because Stripe said so honours Retry-After too.
    let both = headers(&[("stripe-should-retry", "true"), ("retry-after", "3")]);
    assert_eq!(status(&stripe(), 400, &both, 1), exactly(SECS(3)));
    // A status not retried ignores it.
    assert_eq!(status(&stripe(), 400, &after("3"), 1), PERMANENT);
    // No 429 pauses Stripe's bucket.
    assert_eq!(status(&stripe(), 429, &after("1"), 1).pause, None);
}

#[test]
fn stripe_retries_transport_failures_with_backoff_unless_told_not_to_on_an_error_answer() {
    let p = stripe();
    assert_eq!(decide(&p, Failure::Transport(None), &none(), 1), jitter(MS(500)));
    assert_eq!(decide(&p, Failure::Transport(None), &none(), 3), jitter(SECS(2)));
    // An unreadable body of an error answer: the header still has its say.
    let no = headers(&[("stripe-should-retry", "false")]);
    assert_eq!(decide(&p, Failure::Transport(Some(500)), &no, 1), PERMANENT);
    assert_eq!(decide(&p, Failure::Transport(Some(400)), &none(), 1), jitter(MS(500)));
    // …but not on a 2xx: its body is retried whatever the header says.
    assert_eq!(decide(&p, Failure::Transport(Some(200)), &no, 1), jitter(MS(500)));
    // Retry-After is for answers that were read, not for broken bodies.
    let after = headers(&[("retry-after", "5")]);
    assert_eq!(decide(&p, Failure::Transport(Some(429)), &after, 1), jitter(MS(500)));
}

#[test]
fn stripe_gives_up_when_the_attempts_run_out_and_permanent_wins_over_exhausted() {
    assert_eq!(status(&stripe(), 503, &none(), 4), jitter(SECS(4)));
    assert_eq!(status(&stripe(), 503, &none(), 5), EXHAUSTED);
    assert_eq!(status(&stripe(), 429, &headers(&[("retry-after", "1")]), 5), EXHAUSTED);
    assert_eq!(decide(&stripe(), Failure::Transport(None), &none(), 5), EXHAUSTED);
    assert_eq!(status(&stripe(), 400, &none(), 5), PERMANENT);
}

// ----- Brevo ----------------------------------------------------------------

#[test]
fn brevo_waits_the_rate_limit_reset_on_429_clamped_and_pauses_the_bucket() {
    let reset = |v: &str| headers(&[("x-sib-ratelimit-reset", v), ("x-sib-ratelimit-remaining", "0")]);
    let paused = |d: Duration| Decision { verdict: Verdict::RetryAfter(Wait::Exactly(d)), pause: Some(d) };
    assert_eq!(status(&brevo(), 429, &reset("7"), 1), paused(SECS(7)));
    assert_eq!(status(&brevo(), 429, &reset("2.5"), 2), paused(MS(2_500)));
    // Absent, zero or unreadable: the minimum.
    assert_eq!(status(&brevo(), 429, &none(), 1), paused(SECS(1)));
    assert_eq!(status(&brevo(), 429, &reset("0"), 1), paused(SECS(1)));
    assert_eq!(status(&brevo(), 429, &reset("later"), 1), paused(SECS(1)));
    assert_eq!(status(&brevo(), 429, &reset("-3"), 1), paused(SECS(1)));
    // Long windows: the maximum.
    assert_eq!(status(&brevo(), 429, &reset("3600"), 1), paused(SECS(60)));
    assert_eq!(status(&brevo(), 429, &reset("1e300"), 1), paused(SECS(60)));
    // Brevo sends no Retry-After; one would not count.
    assert_eq!(status(&brevo(), 429, &headers(&[("retry-after", "30")]), 1), paused(SECS(1)));
}

#[test]
fn brevo_pauses_the_bucket_even_when_the_last_429_gives_up() {
    let d = status(&brevo(), 429, &headers(&[("x-sib-ratelimit-reset", "5")]), 4);
    assert_eq!(d, Decision { verdict: Verdict::GiveUp(GiveUp::Exhausted), pause: Some(SECS(5)) });
}

#[test]
fn brevo_retries_5xx_timeouts_and_transport_failures_with_full_jitter_backoff() {
    let reset = headers(&[("x-sib-ratelimit-reset", "9")]);
    for s in [500, 502, 503, 504] {
        // The reset header is for 429s only: no pause, no named wait.
        assert_eq!(status(&brevo(), s, &reset, 1), jitter(MS(250)), "HTTP {s}");
    }
    assert_eq!(status(&brevo(), 503, &none(), 2), jitter(MS(500)));
    assert_eq!(status(&brevo(), 503, &none(), 3), jitter(SECS(1)));
    assert_eq!(status(&brevo(), 503, &none(), 4), EXHAUSTED);
    assert_eq!(decide(&brevo(), Failure::Transport(None), &none(), 1), jitter(MS(250)));
    assert_eq!(decide(&brevo(), Failure::Transport(Some(200)), &none(), 2), jitter(MS(500)));
    assert_eq!(decide(&brevo(), Failure::Transport(Some(400)), &none(), 1), jitter(MS(250)));
    assert_eq!(decide(&brevo(), Failure::Transport(None), &none(), 4), EXHAUSTED);
    let long = Policy { backoff: Backoff::new(MS(250), SECS(8), 20), ..brevo() };
    assert_eq!(status(&long, 500, &none(), 7), jitter(SECS(8)));
}

#[test]
fn brevo_never_retries_other_answers() {
    for s in [300, 304, 400, 401, 403, 404, 409, 422] {
        assert_eq!(status(&brevo(), s, &none(), 1), PERMANENT, "HTTP {s}");
    }
    // Brevo has no verdict header: Stripe's is ignored.
    let yes = headers(&[("stripe-should-retry", "true")]);
    assert_eq!(status(&brevo(), 400, &yes, 1), PERMANENT);
    let no = headers(&[("stripe-should-retry", "false")]);
    assert_eq!(status(&brevo(), 503, &no, 1), jitter(MS(250)));
}

// ----- policies as data -----------------------------------------------------

#[test]
fn without_a_server_wait_every_retry_is_backoff() {
    let plain = Policy { server_wait: ServerWait::None, ..stripe() };
    assert_eq!(status(&plain, 429, &headers(&[("retry-after", "1")]), 1), jitter(MS(500)));
    let other = Policy {
        server_wait: ServerWait::RateLimitReset { status: 503, header: "x-reset", min: SECS(1), max: SECS(2) },
        ..brevo()
    };
    assert_eq!(status(&other, 429, &headers(&[("x-reset", "1")]), 1), jitter(MS(250)));
    let d = status(&other, 503, &headers(&[("x-reset", "9")]), 1);
    assert_eq!(d, Decision { verdict: Verdict::RetryAfter(Wait::Exactly(SECS(2))), pause: Some(SECS(2)) });
}

#[test]
fn a_wait_samples_exactly_or_within_its_ceiling() {
    assert_eq!(Wait::Exactly(MS(7)).sample(), MS(7));
    assert_eq!(Wait::Jittered { ceiling: Duration::ZERO }.sample(), Duration::ZERO);
    let samples: Vec<Duration> = (0..200).map(|_| Wait::Jittered { ceiling: MS(400) }.sample()).collect();
    assert!(samples.iter().all(|d| *d <= MS(400)));
    assert!(samples.iter().any(|d| *d < MS(200)) && samples.iter().any(|d| *d > MS(200)));
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

// ----- the loop -------------------------------------------------------------

fn fast(max_attempts: u32) -> Policy {
    Policy { backoff: Backoff::new(MS(1), MS(2), max_attempts), ..stripe() }
}

fn failing(status: u16) -> Failed<&'static str> {
    Failed { error: "boom", failure: Failure::Status(status), headers: HeaderMap::new() }
}

#[tokio::test]
async fn retry_stops_on_permanent_errors_and_bounds_attempts() {
    let bucket = TokenBucket::unlimited();
    let calls = AtomicU32::new(0);
    let mut steps = Vec::new();
    let r: Result<(), &str> = run(
        &fast(3),
        &bucket,
        |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(failing(503)) }
        },
        |s| steps.push(format!("{s:?}")),
    )
    .await;
    assert_eq!(r, Err("boom"));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(steps.len(), 3);
    assert!(steps[0].starts_with("Retrying { attempt: 1") && steps[1].starts_with("Retrying { attempt: 2"));
    assert!(steps[2].starts_with("GaveUp { attempts: 3, why: Exhausted"), "{steps:?}");
    assert_eq!(bucket.stats().acquired, 3, "one token per attempt");

    let calls = AtomicU32::new(0);
    let mut why = None;
    let r: Result<(), &str> = run(
        &fast(3),
        &bucket,
        |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(failing(400)) }
        },
        |s| {
            if let Step::GaveUp { why: w, .. } = s {
                why = Some(w);
            }
        },
    )
    .await;
    assert_eq!(r, Err("boom"));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(why, Some(GiveUp::Permanent));

    let r: Result<u32, &str> = run(
        &fast(3),
        &bucket,
        |attempt| async move {
            if attempt < 3 {
                Err(Failed::unanswered("again"))
            } else {
                Ok(attempt)
            }
        },
        |_| {},
    )
    .await;
    assert_eq!(r, Ok(3));
}

#[tokio::test]
async fn the_loop_sleeps_the_named_wait_and_pauses_the_bucket_when_told() {
    let policy = Policy {
        backoff: Backoff::new(MS(1), MS(1), 2),
        server_wait: ServerWait::RateLimitReset { status: 429, header: "x-reset", min: MS(60), max: MS(60) },
        ..brevo()
    };
    let bucket = TokenBucket::unlimited();
    let started = std::time::Instant::now();
    let mut waits = Vec::new();
    let r: Result<(), &str> = run(
        &policy,
        &bucket,
        |_| async { Err(failing(429)) },
        |s| {
            if let Step::Retrying { wait, .. } = s {
                waits.push(wait);
            }
        },
    )
    .await;
    assert_eq!(r, Err("boom"));
    assert_eq!(waits, vec![MS(60)]);
    assert!(started.elapsed() >= MS(55), "{:?}", started.elapsed());
    // The last 429 gave up, and still paused the bucket for other callers.
    assert!(!bucket.try_acquire());
}
