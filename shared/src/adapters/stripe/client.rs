//! The Stripe client itself: [`StripeClientBuilder`], [`StripeClient`] and
//! its one request loop (`GET /v1/...`, paced by the client's
//! [`TokenBucket`] and retried by the shared decision of
//! [`crate::adapters::http::retry`] with Stripe's [`RetryPolicy`]), plus the
//! counters ([`StripeStats`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

use super::StripeError;
use crate::adapters::http::retry::{self, Failed, Failure, ServerWait, Step};
use crate::adapters::http::{Backoff, TokenBucket};

/// The API version every request pins, so objects keep the shape we parse.
/// <https://docs.stripe.com/api/versioning>
pub const STRIPE_API_VERSION: &str = "2024-06-20";

/// Default client-side budgets, under Stripe's 100 r/s (live) and 25 r/s
/// (test): <https://docs.stripe.com/rate-limits>.
pub const DEFAULT_LIVE_RPS: f64 = 80.0;
pub const DEFAULT_TEST_RPS: f64 = 20.0;

const USER_AGENT: &str = concat!("stripe-brevo/", env!("CARGO_PKG_VERSION"));

/// Stripe's verdict on retrying, when it gives one
/// (<https://docs.stripe.com/error-low-level#idempotency>).
const SHOULD_RETRY: &str = "stripe-should-retry";

/// How failed requests are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first (≥ 1).
    pub max_attempts: u32,
    /// First backoff ceiling; doubles each retry (full jitter picks in [0, ceiling]).
    pub base_delay: Duration,
    /// Ceiling of the exponential backoff.
    pub max_delay: Duration,
    /// `Retry-After` values above this are clamped to it.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self { max_attempts: 1, ..Self::default() }
    }

    /// The shared retry decision's rules for Stripe: `Stripe-Should-Retry`
    /// wins when present; otherwise 409 (`lock_timeout`), 429, 5xx and
    /// transport failures are retried, waiting `Retry-After` (at most
    /// `max_retry_after`) or else the full-jitter backoff.
    pub(crate) fn rules(&self) -> retry::Policy {
        retry::Policy {
            backoff: Backoff::new(self.base_delay, self.max_delay, self.max_attempts),
            verdict_header: Some(SHOULD_RETRY),
            retried_statuses: &[409, 429],
            server_wait: ServerWait::RetryAfter { header: "retry-after", max: self.max_retry_after },
        }
    }
}

/// A snapshot of the client's counters (for benchmarks and `status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StripeStats {
    /// HTTP requests actually sent (retries included).
    pub requests: u64,
    /// Of which retries.
    pub retries: u64,
    /// 429 answers seen (before any retry).
    pub rate_limited: u64,
    /// Time slept in retry backoff / `Retry-After`.
    pub backoff_wait: Duration,
    /// Time slept waiting for the client-side request budget.
    pub budget_wait: Duration,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    rate_limited: AtomicU64,
    backoff_nanos: AtomicU64,
}

fn add_duration(counter: &AtomicU64, d: Duration) {
    counter.fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// Builder for [`StripeClient`].
#[derive(Debug)]
pub struct StripeClientBuilder {
    base_url: String,
    key: SecretString,
    timeout: Duration,
    retry: RetryPolicy,
    rps: Option<Option<f64>>,
    burst: Option<u32>,
}

impl StripeClientBuilder {
    /// Whole-request timeout (default 20 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Client-side budget in requests per second; `None` disables it.
    /// Unset: 80 r/s for a live key, 20 r/s for a test key.
    pub fn requests_per_second(mut self, rps: Option<f64>) -> Self {
        self.rps = Some(rps.filter(|r| r.is_finite() && *r > 0.0));
        self
    }

    /// How many requests the budget lets out at once after a quiet spell
    /// (≥ 1). Unset: one second's worth (burst = rate). A share of an
    /// account-wide budget uses 1, so that processes together keep to the
    /// account's budget in every second (see `wiring::budget`).
    pub fn burst(mut self, burst: u32) -> Self {
        self.burst = Some(burst.max(1));
        self
    }

    /// True for a `sk_live_…` / `rk_live_…` key (the default budget depends on it).
    pub fn key_is_live(&self) -> bool {
        key_mode_is_live(self.key.expose_secret())
    }

    pub fn build(self) -> Result<StripeClient, StripeError> {
        let base = self.base_url.trim_end_matches('/').to_owned();
        url::Url::parse(&base).map_err(|e| StripeError::Config(format!("base URL: {e}")))?;
        let live = key_mode_is_live(self.key.expose_secret());
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", self.key.expose_secret()))
            .map_err(|_| StripeError::Config("the Stripe key contains invalid characters".to_owned()))?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        headers.insert("Stripe-Version", HeaderValue::from_static(STRIPE_API_VERSION));
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(USER_AGENT)
            .timeout(self.timeout)
            .connect_timeout(self.timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| StripeError::Config(e.to_string()))?;
        let rps = match self.rps {
            Some(r) => r,
            None => Some(if live { DEFAULT_LIVE_RPS } else { DEFAULT_TEST_RPS }),
        };
        Ok(StripeClient {
            inner: Arc::new(Inner {
                http,
                base,
                key: self.key,
                live,
                retry: self.retry.rules(),
                budget: match (rps, self.burst) {
                    (None, _) => TokenBucket::unlimited(),
                    (Some(r), None) => TokenBucket::with_one_second_burst(r),
                    (Some(r), Some(b)) => TokenBucket::new(r, b),
                },
                counters: Counters::default(),
            }),
        })
    }
}

fn key_mode_is_live(key: &str) -> bool {
    key.starts_with("sk_live_") || key.starts_with("rk_live_")
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    base: String,
    key: SecretString,
    live: bool,
    /// The shared decision's rules, from the builder's [`RetryPolicy`].
    retry: retry::Policy,
    /// Burst = rate (one second's worth); unlimited without a budget.
    budget: TokenBucket,
    counters: Counters,
}

/// Stripe API client; cheap to clone (shares the connection pool, budget and
/// counters).
#[derive(Debug, Clone)]
pub struct StripeClient {
    inner: Arc<Inner>,
}

impl StripeClient {
    /// `base_url` is e.g. `https://api.stripe.com` (paths `/v1/...` are appended).
    pub fn builder(base_url: impl Into<String>, key: SecretString) -> StripeClientBuilder {
        StripeClientBuilder {
            base_url: base_url.into(),
            key,
            timeout: Duration::from_secs(20),
            retry: RetryPolicy::default(),
            rps: None,
            burst: None,
        }
    }

    /// A client with the defaults.
    pub fn new(base_url: impl Into<String>, key: SecretString) -> Result<Self, StripeError> {
        Self::builder(base_url, key).build()
    }

    /// True for `sk_live_…` / `rk_live_…` keys.
    pub fn key_is_live(&self) -> bool {
        self.inner.live
    }

    /// True for restricted (`rk_…`) keys.
    pub fn key_is_restricted(&self) -> bool {
        self.inner.key.expose_secret().starts_with("rk_")
    }

    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// The client-side budget: requests per second (`None`: unlimited) and burst.
    pub fn budget(&self) -> (Option<f64>, u32) {
        (self.inner.budget.rate(), self.inner.budget.burst())
    }

    pub fn stats(&self) -> StripeStats {
        let c = &self.inner.counters;
        StripeStats {
            requests: c.requests.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            rate_limited: c.rate_limited.load(Ordering::Relaxed),
            backoff_wait: Duration::from_nanos(c.backoff_nanos.load(Ordering::Relaxed)),
            budget_wait: self.inner.budget.stats().waited,
        }
    }

    /// `GET {base}{path}?params` deserialized into `T`. Params may repeat
    /// keys (`("expand[]", "customer")`).
    pub async fn get<T: DeserializeOwned>(&self, path: &str, params: &[(&str, String)]) -> Result<T, StripeError> {
        let body = self.send_with_retries(path, params).await?;
        serde_json::from_str(&body).map_err(|e| StripeError::Decode(e.to_string()))
    }

    /// Checks the key may read `path` (e.g. `/v1/customers`) with a
    /// `limit=1` list. For `stripe-brevo check`.
    pub async fn check_permission(&self, path: &str) -> Result<(), StripeError> {
        self.send_with_retries(path, &[("limit", "1".to_owned())]).await.map(|_| ())
    }

    /// `GET {base}{path}?params` with pacing and retries: the body of the
    /// 2xx answer, or the last error.
    pub(super) async fn send_with_retries(&self, path: &str, params: &[(&str, String)]) -> Result<String, StripeError> {
        let url = format!("{}{}", self.inner.base, path);
        let c = &self.inner.counters;
        let observe = |step: Step<'_, StripeError>| {
            if let Step::Retrying { attempt, wait, error } = step {
                tracing::debug!(path, attempt, delay_ms = wait.as_millis() as u64, error = %error, "retrying Stripe request");
                c.retries.fetch_add(1, Ordering::Relaxed);
                add_duration(&c.backoff_nanos, wait);
            }
        };
        retry::run(&self.inner.retry, &self.inner.budget, |_| self.attempt(&url, params), observe).await
    }

    /// One request: the body of a 2xx, or what the retry decision needs.
    async fn attempt(&self, url: &str, params: &[(&str, String)]) -> Result<String, Failed<StripeError>> {
        self.inner.counters.requests.fetch_add(1, Ordering::Relaxed);
        let resp = match self.inner.http.get(url).query(params).send().await {
            Ok(r) => r,
            Err(e) => return Err(Failed::unanswered(StripeError::from_transport(&e))),
        };
        let status = resp.status().as_u16();
        if status == 429 {
            self.inner.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
        let success = (200..300).contains(&status);
        // Only an error answer's headers matter to the decision.
        let headers = if success { HeaderMap::new() } else { resp.headers().clone() };
        let secret = Some(self.inner.key.expose_secret());
        let (error, failure) = match resp.text().await {
            Ok(body) if success => return Ok(body),
            Ok(body) => (StripeError::from_answer(status, &body, secret), Failure::Status(status)),
            Err(e) => (StripeError::from_transport(&e), Failure::Transport(Some(status))),
        };
        Err(Failed::new(error, failure, headers))
    }
}

#[cfg(test)]
mod tests;
