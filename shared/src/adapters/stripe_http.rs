//! Read-only HTTP client for the Stripe API (`GET /v1/...`), generic over the
//! types the caller deserializes into (it never depends on the domain types).
//!
//! Built once per cold start with an injected base URL (`STRIPE_API_BASE`),
//! a [`SecretString`] key sent as `Authorization: Bearer`, a timeout, a pinned
//! `Stripe-Version`, a retry policy and an optional client-side request budget.
//!
//! - Pagination: <https://docs.stripe.com/api/pagination> — `limit` ≤ 100,
//!   newest first, the cursor is the last object's `id`. Like async-stripe,
//!   paging stops when there is no next cursor even if `has_more` is true.
//! - Retries: <https://docs.stripe.com/error-low-level#idempotency> — the
//!   `Stripe-Should-Retry` header wins when present; otherwise 409
//!   (`lock_timeout`), 429, 5xx and network errors are retried with
//!   exponential backoff and full jitter, honouring `Retry-After` (clamped).
//! - Rate limits: <https://docs.stripe.com/rate-limits> — 100 r/s live,
//!   25 r/s test; the default budget stays under them (80 / 20).
//!
//! No error text ever contains the key: Stripe's own messages carry a masked
//! key (`sk_test_****abcd`), which is dropped or redacted.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::config::{self, ConfigError, EnvSource};

/// The API version every request pins, so objects keep the shape we parse.
/// <https://docs.stripe.com/api/versioning>
pub const STRIPE_API_VERSION: &str = "2024-06-20";

/// Stripe's maximum (and our default) page size.
pub const MAX_PAGE_SIZE: u32 = 100;

/// Default client-side budgets, under Stripe's 100 r/s (live) and 25 r/s (test).
pub const DEFAULT_LIVE_RPS: f64 = 80.0;
pub const DEFAULT_TEST_RPS: f64 = 20.0;

const USER_AGENT: &str = concat!("stripe-brevo/", env!("CARGO_PKG_VERSION"));

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// What a Stripe call can end in, after retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripeError {
    /// 401: the key is unknown, expired or revoked. Stripe's message (which
    /// contains a masked key) is deliberately not kept.
    #[error("Stripe API key is invalid")]
    Unauthorized,
    /// 403: typically a restricted key lacking a `rak_…_read` permission.
    /// The message names the permission; key text is redacted.
    #[error("Stripe permission denied: {message}")]
    PermissionDenied { message: String },
    /// 404 `resource_missing`.
    #[error("Stripe resource not found{}", .resource_id.as_deref().map(|id| format!(": {id}")).unwrap_or_default())]
    NotFound { resource_id: Option<String> },
    /// 400 (and other 4xx that are not retried): a bug in the request.
    #[error("Stripe rejected the request ({}): {message}", .code.as_deref().unwrap_or("invalid_request"))]
    InvalidRequest { code: Option<String>, message: String },
    /// 409 still failing after retries (`lock_timeout`, idempotency conflicts).
    #[error("Stripe conflict: {message}")]
    Conflict { message: String },
    /// 429 still answered after every retry.
    #[error("Stripe rate limit still exceeded after retries")]
    RateLimited,
    /// 5xx after retries (or one Stripe said not to retry).
    #[error("Stripe server error (HTTP {0})")]
    Server(u16),
    /// The request did not complete within the client's timeout.
    #[error("Stripe request timed out")]
    Timeout,
    /// Connection refused/reset, DNS, TLS…
    #[error("Stripe transport error: {0}")]
    Transport(String),
    /// The body was not the JSON we expected.
    #[error("Stripe response could not be decoded: {0}")]
    Decode(String),
    /// Client construction failed (bad base URL, TLS backend).
    #[error("Stripe client configuration: {0}")]
    Config(String),
}

impl StripeError {
    /// The kind the use cases decide on.
    pub fn kind(&self) -> crate::ports::RemoteErrorKind {
        use crate::ports::RemoteErrorKind as K;
        match self {
            Self::Unauthorized => K::Unauthorized,
            Self::PermissionDenied { .. } => K::Forbidden,
            Self::NotFound { .. } => K::NotFound,
            // An answer we cannot read will not read better on a retry.
            Self::InvalidRequest { .. } | Self::Config(_) | Self::Decode(_) => K::Rejected,
            Self::RateLimited => K::RateLimited,
            Self::Conflict { .. } | Self::Server(_) | Self::Timeout | Self::Transport(_) => K::Unavailable,
        }
    }

    /// True when the same request may succeed later (throttling, outages).
    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }
}

/// Replaces anything that looks like a Stripe key (`sk_…`, `rk_…`, `pk_…`,
/// masked or not) and the given secret itself by `[redacted]`.
pub fn redact_keys(text: &str, secret: Option<&str>) -> String {
    let mut s = text.to_owned();
    if let Some(k) = secret.filter(|k| k.len() >= 4) {
        s = s.replace(k, "[redacted]");
    }
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'*';
    while i < bytes.len() {
        let at_boundary = i == 0 || !is_word(bytes[i - 1]);
        let rest = &s[i..];
        if at_boundary && (rest.starts_with("sk_") || rest.starts_with("rk_") || rest.starts_with("pk_")) {
            let mut j = i + 3;
            while j < bytes.len() && is_word(bytes[j]) {
                j += 1;
            }
            out.push_str("[redacted]");
            i = j;
        } else {
            // Push one whole char (the input may be non-ASCII).
            let ch_len = rest.chars().next().map_or(1, char::len_utf8);
            out.push_str(&rest[..ch_len]);
            i += ch_len;
        }
    }
    out
}

#[derive(Debug, Default, Deserialize)]
struct ErrorEnvelope {
    error: Option<ErrorBody>,
}

#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    code: Option<String>,
    message: Option<String>,
    param: Option<String>,
}

/// `No such customer: 'cus_x'` → `cus_x`.
fn quoted_id(message: &str) -> Option<String> {
    let start = message.find('\'')? + 1;
    let len = message[start..].find('\'')?;
    let id = &message[start..start + len];
    (!id.is_empty()).then(|| id.to_owned())
}

// ---------------------------------------------------------------------------
// Policy, stats, budget
// ---------------------------------------------------------------------------

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

    /// Full-jitter backoff before retry number `retry` (0-based).
    fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self.base_delay.saturating_mul(2u32.saturating_pow(retry.min(20))).min(self.max_delay);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(rand::rng().random_range(0..=nanos))
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
    budget_nanos: AtomicU64,
}

fn add_duration(counter: &AtomicU64, d: Duration) {
    counter.fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// Token bucket: `rate` tokens per second, burst of `rate` (at least 1).
#[derive(Debug)]
struct Budget {
    rate: f64,
    capacity: f64,
    state: tokio::sync::Mutex<(f64, Instant)>,
}

impl Budget {
    fn new(rate: f64) -> Self {
        let capacity = rate.max(1.0);
        Self { rate, capacity, state: tokio::sync::Mutex::new((capacity, Instant::now())) }
    }

    /// Waits until a token is available and takes it; returns the time waited.
    async fn acquire(&self) -> Duration {
        let started = Instant::now();
        loop {
            let wait = {
                let mut st = self.state.lock().await;
                let now = Instant::now();
                let refill = now.duration_since(st.1).as_secs_f64() * self.rate;
                st.0 = (st.0 + refill).min(self.capacity);
                st.1 = now;
                if st.0 >= 1.0 {
                    st.0 -= 1.0;
                    return started.elapsed();
                }
                Duration::from_secs_f64((1.0 - st.0) / self.rate)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

// ---------------------------------------------------------------------------
// Pages
// ---------------------------------------------------------------------------

/// One page of a Stripe list (`{"object":"list","data":[…],"has_more":…}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub has_more: bool,
    /// The id to pass as `starting_after` for the next page: the last item's
    /// id, and only when `has_more` is true and that id exists.
    pub next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct RawPage<'a> {
    #[serde(borrow)]
    data: Vec<&'a RawValue>,
    #[serde(default)]
    has_more: bool,
}

#[derive(Deserialize)]
struct IdOnly {
    id: Option<String>,
}

fn parse_page<T: DeserializeOwned>(body: &str, cursor_from_first: bool) -> Result<Page<T>, StripeError> {
    let raw: RawPage<'_> = serde_json::from_str(body).map_err(|e| StripeError::Decode(e.to_string()))?;
    let edge = if cursor_from_first { raw.data.first() } else { raw.data.last() };
    let edge_id = match edge {
        Some(r) => serde_json::from_str::<IdOnly>(r.get()).ok().and_then(|o| o.id),
        None => None,
    };
    let data = raw
        .data
        .iter()
        .map(|r| serde_json::from_str::<T>(r.get()).map_err(|e| StripeError::Decode(e.to_string())))
        .collect::<Result<Vec<T>, _>>()?;
    Ok(Page { data, has_more: raw.has_more, next_cursor: if raw.has_more { edge_id } else { None } })
}

/// Which way a [`Pager`] walks a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// Older objects than this id (the usual direction).
    StartingAfter(String),
    /// Newer objects than this id (pages still come newest first; the next
    /// cursor is the page's first id).
    EndingBefore(String),
}

/// Walks a list page by page; only one page is in memory at a time.
///
/// ```ignore
/// let mut pager = client.pager::<Customer>("/v1/customers", &[]);
/// while let Some(page) = pager.next_page().await? { … }
/// ```
#[derive(Debug)]
pub struct Pager<'c, T> {
    client: &'c StripeClient,
    path: String,
    params: Vec<(String, String)>,
    cursor: Option<Cursor>,
    backward: bool,
    done: bool,
    pages: u64,
    _t: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Pager<'_, T> {
    /// Resumes after (older than) `id`.
    pub fn starting_after(mut self, id: impl Into<String>) -> Self {
        self.cursor = Some(Cursor::StartingAfter(id.into()));
        self.backward = false;
        self
    }

    /// Walks towards newer objects than `id`.
    pub fn ending_before(mut self, id: impl Into<String>) -> Self {
        self.cursor = Some(Cursor::EndingBefore(id.into()));
        self.backward = true;
        self
    }

    /// The next page's items, or `None` once the list is exhausted.
    pub async fn next_page(&mut self) -> Result<Option<Vec<T>>, StripeError> {
        if self.done {
            return Ok(None);
        }
        let mut params: Vec<(&str, String)> = self.params.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        match &self.cursor {
            Some(Cursor::StartingAfter(id)) => params.push(("starting_after", id.clone())),
            Some(Cursor::EndingBefore(id)) => params.push(("ending_before", id.clone())),
            None => {}
        }
        let page: Page<T> = self.client.fetch_page(&self.path, &params, self.backward).await?;
        self.pages += 1;
        match page.next_cursor {
            Some(c) => {
                self.cursor = Some(if self.backward { Cursor::EndingBefore(c) } else { Cursor::StartingAfter(c) })
            }
            None => self.done = true,
        }
        if page.data.is_empty() {
            self.done = true;
            return Ok(None);
        }
        Ok(Some(page.data))
    }

    /// The cursor the next request will use (persist it to resume later).
    pub fn cursor(&self) -> Option<&Cursor> {
        self.cursor.as_ref()
    }

    /// Pages fetched so far.
    pub fn pages_fetched(&self) -> u64 {
        self.pages
    }

    pub fn is_done(&self) -> bool {
        self.done
    }
}

// ---------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------

/// Builder for [`StripeClient`].
#[derive(Debug)]
pub struct StripeClientBuilder {
    base_url: String,
    key: SecretString,
    timeout: Duration,
    retry: RetryPolicy,
    rps: Option<Option<f64>>,
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
                retry: RetryPolicy { max_attempts: self.retry.max_attempts.max(1), ..self.retry },
                budget: rps.map(Budget::new),
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
    retry: RetryPolicy,
    budget: Option<Budget>,
    counters: Counters,
}

/// Stripe API client; cheap to clone (shares the connection pool, budget and
/// counters).
#[derive(Debug, Clone)]
pub struct StripeClient {
    inner: Arc<Inner>,
}

/// What one attempt ended in.
enum Attempt {
    Done(String),
    Retry { error: StripeError, retry_after: Option<Duration> },
    Fail(StripeError),
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
        }
    }

    /// A client with the defaults.
    pub fn new(base_url: impl Into<String>, key: SecretString) -> Result<Self, StripeError> {
        Self::builder(base_url, key).build()
    }

    /// From `STRIPE_API_BASE` (default `https://api.stripe.com`) and
    /// `STRIPE_SECRET_KEY` held in the environment.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let base = config::base_url(env, config::STRIPE_API_BASE, config::DEFAULT_STRIPE_API_BASE)?;
        let key = config::required_secret(env, config::STRIPE_SECRET_KEY)?;
        Self::new(base, key).map_err(|e| ConfigError::invalid(config::STRIPE_API_BASE, e.to_string()))
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

    pub fn stats(&self) -> StripeStats {
        let c = &self.inner.counters;
        StripeStats {
            requests: c.requests.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            rate_limited: c.rate_limited.load(Ordering::Relaxed),
            backoff_wait: Duration::from_nanos(c.backoff_nanos.load(Ordering::Relaxed)),
            budget_wait: Duration::from_nanos(c.budget_nanos.load(Ordering::Relaxed)),
        }
    }

    /// `GET {base}{path}?params` deserialized into `T`. Params may repeat
    /// keys (`("expand[]", "customer")`).
    pub async fn get<T: DeserializeOwned>(&self, path: &str, params: &[(&str, String)]) -> Result<T, StripeError> {
        let body = self.send_with_retries(path, params).await?;
        serde_json::from_str(&body).map_err(|e| StripeError::Decode(e.to_string()))
    }

    /// One page of a list; `limit=100` unless `params` sets it.
    pub async fn list_page<T: DeserializeOwned>(
        &self,
        path: &str,
        params: &[(&str, String)],
        starting_after: Option<&str>,
    ) -> Result<Page<T>, StripeError> {
        let mut p: Vec<(&str, String)> = params.to_vec();
        if let Some(id) = starting_after {
            p.push(("starting_after", id.to_owned()));
        }
        self.fetch_page(path, &p, false).await
    }

    async fn fetch_page<T: DeserializeOwned>(
        &self,
        path: &str,
        params: &[(&str, String)],
        backward: bool,
    ) -> Result<Page<T>, StripeError> {
        let mut p: Vec<(&str, String)> = params.to_vec();
        if !p.iter().any(|(k, _)| *k == "limit") {
            p.push(("limit", MAX_PAGE_SIZE.to_string()));
        }
        let body = self.send_with_retries(path, &p).await?;
        parse_page(&body, backward)
    }

    /// A pager over `path` (see [`Pager`]).
    pub fn pager<T: DeserializeOwned>(&self, path: &str, params: &[(&str, String)]) -> Pager<'_, T> {
        Pager {
            client: self,
            path: path.to_owned(),
            params: params.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect(),
            cursor: None,
            backward: false,
            done: false,
            pages: 0,
            _t: PhantomData,
        }
    }

    /// Walks the whole list, handing each page to `on_page` (one page in
    /// memory at a time). Returns the number of items seen.
    pub async fn list_all<T, F>(
        &self,
        path: &str,
        params: &[(&str, String)],
        mut on_page: F,
    ) -> Result<u64, StripeError>
    where
        T: DeserializeOwned,
        F: FnMut(Vec<T>),
    {
        let mut pager = self.pager::<T>(path, params);
        let mut n = 0u64;
        while let Some(items) = pager.next_page().await? {
            n += items.len() as u64;
            on_page(items);
        }
        Ok(n)
    }

    /// Checks the key may read `path` (e.g. `/v1/customers`) with a
    /// `limit=1` list. For `stripe-brevo check`.
    pub async fn check_permission(&self, path: &str) -> Result<(), StripeError> {
        self.send_with_retries(path, &[("limit", "1".to_owned())]).await.map(|_| ())
    }

    async fn send_with_retries(&self, path: &str, params: &[(&str, String)]) -> Result<String, StripeError> {
        let url = format!("{}{}", self.inner.base, path);
        let policy = self.inner.retry;
        let c = &self.inner.counters;
        let mut attempt = 0u32;
        loop {
            if let Some(b) = &self.inner.budget {
                let waited = b.acquire().await;
                add_duration(&c.budget_nanos, waited);
            }
            c.requests.fetch_add(1, Ordering::Relaxed);
            let outcome = self.attempt(&url, params).await;
            let (error, retry_after) = match outcome {
                Attempt::Done(body) => return Ok(body),
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry { error, retry_after } => (error, retry_after),
            };
            attempt += 1;
            if attempt >= policy.max_attempts {
                return Err(error);
            }
            let delay = match retry_after {
                Some(ra) => ra.min(policy.max_retry_after),
                None => policy.backoff(attempt - 1),
            };
            tracing::debug!(path, attempt, delay_ms = delay.as_millis() as u64, error = %error, "retrying Stripe request");
            c.retries.fetch_add(1, Ordering::Relaxed);
            add_duration(&c.backoff_nanos, delay);
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(&self, url: &str, params: &[(&str, String)]) -> Attempt {
        let resp = match self.inner.http.get(url).query(params).send().await {
            Ok(r) => r,
            Err(e) => {
                let err = map_transport(&e);
                return Attempt::Retry { error: err, retry_after: None };
            }
        };
        let status = resp.status().as_u16();
        let should_retry = resp
            .headers()
            .get("stripe-should-retry")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().eq_ignore_ascii_case("true"));
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64);
        if status == 429 {
            self.inner.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
        let body = match resp.text().await {
            Ok(b) => b,
            Err(e) => {
                let err = map_transport(&e);
                return if (200..300).contains(&status) || should_retry != Some(false) {
                    Attempt::Retry { error: err, retry_after: None }
                } else {
                    Attempt::Fail(err)
                };
            }
        };
        if (200..300).contains(&status) {
            return Attempt::Done(body);
        }
        let error = self.map_status(status, &body);
        let retry = match should_retry {
            Some(v) => v,
            None => matches!(status, 409 | 429) || status >= 500,
        };
        if retry {
            Attempt::Retry { error, retry_after }
        } else {
            Attempt::Fail(error)
        }
    }

    fn map_status(&self, status: u16, body: &str) -> StripeError {
        let parsed: ErrorBody =
            serde_json::from_str::<ErrorEnvelope>(body).ok().and_then(|e| e.error).unwrap_or_default();
        let secret = Some(self.inner.key.expose_secret());
        let message = redact_keys(parsed.message.as_deref().unwrap_or(""), secret);
        match status {
            401 => StripeError::Unauthorized,
            403 => StripeError::PermissionDenied {
                message: if message.is_empty() { "the key may not read this resource".to_owned() } else { message },
            },
            404 => StripeError::NotFound { resource_id: quoted_id(&message).filter(|id| !id.contains("[redacted]")) },
            409 => StripeError::Conflict { message },
            429 => StripeError::RateLimited,
            s if s >= 500 => StripeError::Server(s),
            _ => StripeError::InvalidRequest {
                code: parsed.code.or_else(|| parsed.param.map(|p| format!("param:{p}"))),
                message: if message.is_empty() { format!("HTTP {status}") } else { message },
            },
        }
    }
}

fn map_transport(e: &reqwest::Error) -> StripeError {
    if e.is_timeout() {
        return StripeError::Timeout;
    }
    // The error's sources, without the request URL (no key is in it, but
    // there is no need to log object ids either).
    let mut parts = vec![if e.is_connect() {
        "connection failed"
    } else if e.is_decode() {
        "body unreadable"
    } else {
        "request failed"
    }
    .to_owned()];
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(inner) = cur {
        let text = inner.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        cur = inner.source();
    }
    if e.is_decode() {
        StripeError::Decode(parts.join(": "))
    } else {
        StripeError::Transport(parts.join(": "))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::{json, Value};
    use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const KEY: &str = "sk_test_51FakeKeyForUnitTests0123456789abcd";

    fn fast() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_retry_after: Duration::from_secs(2),
        }
    }

    fn client(server: &MockServer) -> StripeClient {
        client_with_key(server, KEY)
    }

    fn client_with_key(server: &MockServer, key: &str) -> StripeClient {
        StripeClient::builder(server.uri(), SecretString::from(key.to_owned()))
            .retry_policy(fast())
            .timeout(Duration::from_secs(5))
            .requests_per_second(None)
            .build()
            .unwrap()
    }

    fn list(ids: &[&str], has_more: bool) -> Value {
        json!({
            "object": "list",
            "url": "/v1/customers",
            "has_more": has_more,
            "data": ids.iter().map(|id| json!({"id": id, "object": "customer"})).collect::<Vec<_>>(),
        })
    }

    #[derive(Debug, Deserialize)]
    struct Obj {
        id: String,
    }

    fn assert_no_key(text: &str) {
        assert!(!text.contains(KEY), "key leaked: {text}");
        assert!(!text.contains("sk_test"), "key-like text leaked: {text}");
        assert!(!text.contains("rk_test"), "key-like text leaked: {text}");
        assert!(!text.contains("abcd"), "key suffix leaked: {text}");
    }

    #[tokio::test]
    async fn get_sends_bearer_key_and_pinned_version_and_decodes_the_body() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/customers/cus_1"))
            .and(header("authorization", format!("Bearer {KEY}").as_str()))
            .and(header("stripe-version", STRIPE_API_VERSION))
            .and(query_param("expand[]", "subscriptions"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "cus_1", "object": "customer"})))
            .expect(1)
            .mount(&server)
            .await;
        let c = client(&server);
        let o: Obj = c.get("/v1/customers/cus_1", &[("expand[]", "subscriptions".to_owned())]).await.unwrap();
        assert_eq!(o.id, "cus_1");
        assert_eq!(c.stats().requests, 1);
        assert_eq!(c.stats().retries, 0);
    }

    #[tokio::test]
    async fn pages_through_a_list_with_starting_after_the_last_id() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/customers"))
            .and(query_param("limit", "100"))
            .and(query_param_is_missing("starting_after"))
            .respond_with(ResponseTemplate::new(200).set_body_json(list(&["cus_c", "cus_b"], true)))
            .expect(2)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/customers"))
            .and(query_param("starting_after", "cus_b"))
            .and(query_param("created[gte]", "100"))
            .respond_with(ResponseTemplate::new(200).set_body_json(list(&["cus_a"], false)))
            .expect(1)
            .mount(&server)
            .await;
        let c = client(&server);
        let mut seen = Vec::new();
        let n = c
            .list_all::<Obj, _>("/v1/customers", &[("created[gte]", "100".to_owned())], |page| {
                seen.extend(page.into_iter().map(|o| o.id))
            })
            .await
            .unwrap();
        assert_eq!(n, 3);
        assert_eq!(seen, ["cus_c", "cus_b", "cus_a"]);
        assert_eq!(c.stats().requests, 2);

        // The same first page through list_page exposes the cursor.
        let first: Page<Obj> = c.list_page("/v1/customers", &[], None).await.unwrap();
        assert_eq!(first.next_cursor.as_deref(), Some("cus_b"));
        assert!(first.has_more);
    }

    #[tokio::test]
    async fn stops_when_there_is_no_next_cursor_even_if_has_more_is_true() {
        let server = MockServer::start().await;
        // An empty page that still claims has_more: no cursor, so stop.
        Mock::given(method("GET"))
            .and(path("/v1/events"))
            .respond_with(ResponseTemplate::new(200).set_body_json(list(&[], true)))
            .expect(1)
            .mount(&server)
            .await;
        // Items without ids: nothing to continue from either.
        Mock::given(method("GET"))
            .and(path("/v1/balance_history"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"object":"list","has_more":true,"data":[{"amount":1}]})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let c = client(&server);
        let n = c.list_all::<Value, _>("/v1/events", &[], |_| {}).await.unwrap();
        assert_eq!(n, 0);
        let mut pager = c.pager::<Value>("/v1/balance_history", &[]);
        assert_eq!(pager.next_page().await.unwrap().map(|p| p.len()), Some(1));
        assert!(pager.is_done());
        assert!(pager.next_page().await.unwrap().is_none());
        assert_eq!(c.stats().requests, 2);
    }

    #[tokio::test]
    async fn pager_walks_backwards_with_ending_before_the_first_id() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/events"))
            .and(query_param("ending_before", "evt_1"))
            .respond_with(ResponseTemplate::new(200).set_body_json(list(&["evt_3", "evt_2"], true)))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/events"))
            .and(query_param("ending_before", "evt_3"))
            .respond_with(ResponseTemplate::new(200).set_body_json(list(&["evt_4"], false)))
            .mount(&server)
            .await;
        let c = client(&server);
        let mut pager = c.pager::<Obj>("/v1/events", &[]).ending_before("evt_1");
        let p1: Vec<String> = pager.next_page().await.unwrap().unwrap().into_iter().map(|o| o.id).collect();
        assert_eq!(p1, ["evt_3", "evt_2"]);
        assert_eq!(pager.cursor(), Some(&Cursor::EndingBefore("evt_3".to_owned())));
        let p2: Vec<String> = pager.next_page().await.unwrap().unwrap().into_iter().map(|o| o.id).collect();
        assert_eq!(p2, ["evt_4"]);
        assert!(pager.next_page().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_429_is_retried_after_the_retry_after_delay() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/charges"))
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header("Retry-After", "1")
                    .set_body_json(json!({"error": {"type": "invalid_request_error", "code": "rate_limit", "message": "Request rate limit exceeded."}})),
            )
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/charges"))
            .respond_with(ResponseTemplate::new(200).set_body_json(list(&["ch_1"], false)))
            .mount(&server)
            .await;
        let c = client(&server);
        let started = Instant::now();
        let page: Page<Obj> = c.list_page("/v1/charges", &[], None).await.unwrap();
        assert_eq!(page.data.len(), 1);
        assert!(started.elapsed() >= Duration::from_millis(950), "Retry-After ignored: {:?}", started.elapsed());
        let s = c.stats();
        assert_eq!((s.requests, s.retries, s.rate_limited), (2, 1, 1));
        assert!(s.backoff_wait >= Duration::from_secs(1));
    }

    #[tokio::test]
    async fn retry_after_is_clamped_to_the_policy_maximum() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "3600"))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "x"})))
            .mount(&server)
            .await;
        let c = StripeClient::builder(server.uri(), SecretString::from(KEY.to_owned()))
            .retry_policy(RetryPolicy { max_retry_after: Duration::from_millis(50), ..fast() })
            .build()
            .unwrap();
        let started = Instant::now();
        let _: Obj = c.get("/v1/account", &[]).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn stripe_should_retry_false_on_a_500_is_not_retried() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(500).insert_header("Stripe-Should-Retry", "false"))
            .expect(1)
            .mount(&server)
            .await;
        let c = client(&server);
        let e = c.get::<Value>("/v1/customers", &[]).await.unwrap_err();
        assert_eq!(e, StripeError::Server(500));
        assert_eq!(c.stats().retries, 0);
    }

    #[tokio::test]
    async fn stripe_should_retry_true_on_a_400_is_retried() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(400)
                    .insert_header("Stripe-Should-Retry", "true")
                    .set_body_json(json!({"error": {"type": "invalid_request_error", "message": "try again"}})),
            )
            .up_to_n_times(1)
            .with_priority(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "cus_1"})))
            .expect(1)
            .mount(&server)
            .await;
        let c = client(&server);
        let o: Obj = c.get("/v1/customers/cus_1", &[]).await.unwrap();
        assert_eq!(o.id, "cus_1");
        assert_eq!(c.stats().retries, 1);
    }

    #[tokio::test]
    async fn a_plain_400_is_not_retried_and_keeps_code_and_message() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
                "type": "invalid_request_error", "code": "parameter_invalid_integer", "param": "limit",
                "message": "This value must be less than or equal to 100."}})))
            .expect(1)
            .mount(&server)
            .await;
        let c = client(&server);
        let e = c.get::<Value>("/v1/customers", &[("limit", "500".to_owned())]).await.unwrap_err();
        match &e {
            StripeError::InvalidRequest { code, message } => {
                assert_eq!(code.as_deref(), Some("parameter_invalid_integer"));
                assert!(message.contains("less than or equal to 100"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(!e.is_retryable());
    }

    #[tokio::test]
    async fn server_errors_and_409_are_retried_until_attempts_run_out() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/a"))
            .respond_with(ResponseTemplate::new(503))
            .expect(4)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/b"))
            .respond_with(ResponseTemplate::new(409).set_body_json(
                json!({"error": {"type": "invalid_request_error", "code": "lock_timeout", "message": "locked"}}),
            ))
            .expect(4)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/c"))
            .respond_with(ResponseTemplate::new(429))
            .expect(4)
            .mount(&server)
            .await;
        let c = client(&server);
        let e = c.get::<Value>("/v1/a", &[]).await.unwrap_err();
        assert_eq!(e, StripeError::Server(503));
        assert!(e.is_retryable());
        assert!(matches!(c.get::<Value>("/v1/b", &[]).await.unwrap_err(), StripeError::Conflict { .. }));
        assert_eq!(c.get::<Value>("/v1/c", &[]).await.unwrap_err(), StripeError::RateLimited);
        assert_eq!(c.stats().requests, 12);
        assert_eq!(c.stats().retries, 9);
        assert_eq!(c.stats().rate_limited, 4);
    }

    #[tokio::test]
    async fn a_401_maps_to_unauthorized_without_echoing_the_masked_key() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": {
                "type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_****abcd"}})))
            .expect(1)
            .mount(&server)
            .await;
        let c = client(&server);
        let e = c.get::<Value>("/v1/account", &[]).await.unwrap_err();
        assert_eq!(e, StripeError::Unauthorized);
        assert_eq!(e.to_string(), "Stripe API key is invalid");
        assert_no_key(&format!("{e} {e:?}"));
    }

    #[tokio::test]
    async fn a_403_keeps_the_missing_permission_but_redacts_the_key() {
        let server = MockServer::start().await;
        let rk = "rk_test_51FakeRestricted0123456789abcd";
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(403).set_body_json(json!({"error": {
                "type": "invalid_request_error",
                "message": format!("The provided key 'rk_test_****abcd' does not have the required permissions for this endpoint on account 'acct_1'. Having the 'rak_subscription_read' permission would allow this request to continue. ({rk})")}})))
            .expect(1)
            .mount(&server)
            .await;
        let c = client_with_key(&server, rk);
        assert!(c.key_is_restricted());
        let e = c.check_permission("/v1/subscriptions").await.unwrap_err();
        let text = format!("{e} {e:?}");
        assert!(matches!(e, StripeError::PermissionDenied { .. }));
        assert!(text.contains("rak_subscription_read"), "{text}");
        assert!(!text.contains(rk));
        assert_no_key(&text);
        assert!(!e.is_retryable());
    }

    #[tokio::test]
    async fn a_404_maps_to_not_found_with_the_resource_id() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": {
                "type": "invalid_request_error", "code": "resource_missing", "param": "id",
                "message": "No such customer: 'cus_missing'"}})))
            .expect(1)
            .mount(&server)
            .await;
        let c = client(&server);
        let e = c.get::<Value>("/v1/customers/cus_missing", &[]).await.unwrap_err();
        assert_eq!(e, StripeError::NotFound { resource_id: Some("cus_missing".to_owned()) });
    }

    #[tokio::test]
    async fn a_slow_answer_is_a_timeout_after_bounded_attempts() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"id": "x"})).set_delay(Duration::from_millis(800)),
            )
            .expect(2)
            .mount(&server)
            .await;
        let c = StripeClient::builder(server.uri(), SecretString::from(KEY.to_owned()))
            .retry_policy(RetryPolicy { max_attempts: 2, ..fast() })
            .timeout(Duration::from_millis(100))
            .build()
            .unwrap();
        let started = Instant::now();
        let e = c.get::<Value>("/v1/account", &[]).await.unwrap_err();
        assert_eq!(e, StripeError::Timeout);
        assert!(e.is_retryable());
        assert!(started.elapsed() < Duration::from_millis(700));
        assert_eq!(c.stats().requests, 2);
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_retryable_transport_error_without_the_key() {
        // Bind then drop a listener to get a port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let c = StripeClient::builder(format!("http://127.0.0.1:{port}"), SecretString::from(KEY.to_owned()))
            .retry_policy(RetryPolicy { max_attempts: 2, ..fast() })
            .build()
            .unwrap();
        let e = c.get::<Value>("/v1/account", &[]).await.unwrap_err();
        assert!(matches!(e, StripeError::Transport(_)), "{e:?}");
        assert!(e.is_retryable());
        assert_no_key(&format!("{e} {e:?} {c:?}"));
        assert_eq!(c.stats().retries, 1);
    }

    #[tokio::test]
    async fn a_body_that_is_not_the_expected_json_is_a_decode_error() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_string("<html>"))
            .mount(&server)
            .await;
        let c = client(&server);
        let e = c.list_page::<Obj>("/v1/customers", &[], None).await.unwrap_err();
        assert!(matches!(e, StripeError::Decode(_)));
        assert!(!e.is_retryable());
    }

    #[tokio::test]
    async fn the_request_budget_spaces_requests_out() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "x"})))
            .mount(&server)
            .await;
        let c = StripeClient::builder(server.uri(), SecretString::from(KEY.to_owned()))
            .requests_per_second(Some(20.0))
            .build()
            .unwrap();
        let started = Instant::now();
        for _ in 0..25 {
            let _: Obj = c.get("/v1/account", &[]).await.unwrap();
        }
        // 20 tokens up front, then 5 more at 50 ms each.
        assert!(started.elapsed() >= Duration::from_millis(200), "{:?}", started.elapsed());
        assert!(c.stats().budget_wait >= Duration::from_millis(150));
    }

    #[test]
    fn key_mode_and_default_budget_follow_the_key_prefix() {
        let live = StripeClient::new("https://api.stripe.com", SecretString::from("rk_live_x".to_owned())).unwrap();
        assert!(live.key_is_live());
        assert_eq!(live.inner.budget.as_ref().map(|b| b.rate), Some(DEFAULT_LIVE_RPS));
        let test = StripeClient::new("https://api.stripe.com/", SecretString::from("sk_test_x".to_owned())).unwrap();
        assert!(!test.key_is_live());
        assert_eq!(test.base_url(), "https://api.stripe.com");
        assert_eq!(test.inner.budget.as_ref().map(|b| b.rate), Some(DEFAULT_TEST_RPS));
        assert_no_key(&format!("{test:?}"));
    }

    #[test]
    fn redaction_removes_key_like_tokens_and_the_secret() {
        assert_eq!(
            redact_keys("Invalid API Key provided: sk_test_****abcd.", None),
            "Invalid API Key provided: [redacted]."
        );
        assert_eq!(redact_keys("key 'rk_live_abc123' on acct", None), "key '[redacted]' on acct");
        assert_eq!(redact_keys("task_sk_1 stays, mysecret goes", Some("mysecret")), "task_sk_1 stays, [redacted] goes");
        assert_eq!(redact_keys("désolé", None), "désolé");
    }
}
