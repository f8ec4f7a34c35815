//! The Brevo client itself: configuration ([`BrevoConfig`], [`BrevoLimits`],
//! [`Rate`]), [`BrevoClient::new`], the counters per endpoint [`Family`],
//! and the one `call` every endpoint goes through: the family's
//! [`TokenBucket`], one request, the shared retry decision of
//! [`crate::adapters::http::retry`] with Brevo's rules, the error mapping.
//! The endpoints live in their own files (`contacts`, `lists`, …).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, ACCEPT, CONTENT_TYPE};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::error::client_error;
use super::wire::{
    DEFAULT_CONTACTS_RATE, DEFAULT_EVENTS_RATE, DEFAULT_ORDERS_RATE, DEFAULT_OTHER_RATE, IMPORT_MAX_BYTES,
};
use super::BrevoError;
use crate::adapters::http::retry::{self, Failed, Failure, GiveUp, ServerWait, Step};
use crate::adapters::http::{Backoff, TokenBucket, WaitStats};

/// Seconds until Brevo's rate-limit window resets; Brevo sends no
/// `Retry-After` (<https://developers.brevo.com/docs/limit-headers>).
const RATE_LIMIT_RESET: &str = "x-sib-ratelimit-reset";

/// A rate in requests per second with a burst.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

impl Rate {
    pub const fn per_second(per_second: f64, burst: u32) -> Self {
        Self { per_second, burst }
    }

    /// `n` requests per hour, with a burst.
    pub const fn per_hour(n: f64, burst: u32) -> Self {
        Self { per_second: n / 3600.0, burst }
    }

    /// No pacing at all (0 means unlimited to [`TokenBucket::new`]).
    pub const fn unlimited() -> Self {
        Self { per_second: 0.0, burst: 1 }
    }
}

/// Client-side limits per endpoint family.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BrevoLimits {
    /// `/v3/contacts/*` (contacts, import, lists, attributes).
    pub contacts: Rate,
    /// `/v3/events*`.
    pub events: Rate,
    /// `/v3/orders/*`.
    pub orders: Rate,
    /// Everything else (`/v3/account`, …).
    pub other: Rate,
}

impl Default for BrevoLimits {
    /// 80 % of the General plan: contacts 10 → 8 rps, events 10 → 8 rps,
    /// orders 5 → 4 rps, other endpoints 100 → 80 per hour (burst 10 so
    /// `check` is not slowed down); see [`super::wire`].
    fn default() -> Self {
        Self {
            contacts: DEFAULT_CONTACTS_RATE,
            events: DEFAULT_EVENTS_RATE,
            orders: DEFAULT_ORDERS_RATE,
            other: DEFAULT_OTHER_RATE,
        }
    }
}

impl BrevoLimits {
    pub fn unlimited() -> Self {
        Self {
            contacts: Rate::unlimited(),
            events: Rate::unlimited(),
            orders: Rate::unlimited(),
            other: Rate::unlimited(),
        }
    }
}

/// Everything the client needs; build with [`BrevoConfig::new`] and adjust
/// the public fields.
#[derive(Debug, Clone)]
pub struct BrevoConfig {
    /// `https://api.brevo.com` or a local sandbox; no trailing slash needed.
    pub base_url: String,
    pub api_key: SecretString,
    /// Per request (connect + answer).
    pub timeout: Duration,
    pub backoff: Backoff,
    pub limits: BrevoLimits,
    /// Bounds of the wait after a 429 (default 1 s and 60 s).
    pub rate_limit_wait_min: Duration,
    pub rate_limit_wait_max: Duration,
    /// Largest JSON body of one import; bigger imports are split.
    pub max_import_bytes: usize,
}

impl BrevoConfig {
    /// Defaults: 10 s timeout, [`Backoff::default`], [`BrevoLimits::default`],
    /// 429 waits clamped to [1 s, 60 s], imports of at most 8 MB.
    pub fn new(base_url: impl Into<String>, api_key: SecretString) -> Self {
        Self {
            base_url: base_url.into(),
            api_key,
            timeout: Duration::from_secs(10),
            backoff: Backoff::default(),
            limits: BrevoLimits::default(),
            rate_limit_wait_min: Duration::from_secs(1),
            rate_limit_wait_max: Duration::from_secs(60),
            max_import_bytes: IMPORT_MAX_BYTES,
        }
    }

    /// The shared retry decision's rules for Brevo: a 429 waits
    /// `x-sib-ratelimit-reset` seconds clamped to
    /// `[rate_limit_wait_min, rate_limit_wait_max]` and pauses the family's
    /// bucket; 5xx, timeouts and transport errors get the full-jitter
    /// backoff; other 4xx are never retried.
    pub(crate) fn retry_rules(&self) -> retry::Policy {
        retry::Policy {
            backoff: self.backoff,
            verdict_header: None,
            retried_statuses: &[429],
            server_wait: ServerWait::RateLimitReset {
                status: 429,
                header: RATE_LIMIT_RESET,
                min: self.rate_limit_wait_min,
                max: self.rate_limit_wait_max,
            },
        }
    }
}

/// The endpoint families Brevo rate-limits separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Contacts,
    Events,
    Orders,
    Other,
}

impl Family {
    pub const ALL: [Family; 4] = [Family::Contacts, Family::Events, Family::Orders, Family::Other];

    /// The family of a `/v3/...` path.
    pub fn of(path: &str) -> Self {
        if path.starts_with("/v3/contacts") {
            Self::Contacts
        } else if path.starts_with("/v3/events") {
            Self::Events
        } else if path.starts_with("/v3/orders") {
            Self::Orders
        } else {
            Self::Other
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Contacts => 0,
            Self::Events => 1,
            Self::Orders => 2,
            Self::Other => 3,
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    rate_limited: AtomicU64,
    server_errors: AtomicU64,
    timeouts: AtomicU64,
    retries: AtomicU64,
}

/// Counters of one endpoint family.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FamilyStats {
    /// HTTP requests sent (retries included).
    pub requests: u64,
    /// 429 answers received.
    pub rate_limited: u64,
    /// 5xx answers received.
    pub server_errors: u64,
    pub timeouts: u64,
    /// Attempts after the first.
    pub retries: u64,
    /// Client-side pacing.
    pub limiter: WaitStats,
}

/// A snapshot of the client's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BrevoStats {
    pub contacts: FamilyStats,
    pub events: FamilyStats,
    pub orders: FamilyStats,
    pub other: FamilyStats,
}

impl BrevoStats {
    pub fn family(&self, f: Family) -> &FamilyStats {
        match f {
            Family::Contacts => &self.contacts,
            Family::Events => &self.events,
            Family::Orders => &self.orders,
            Family::Other => &self.other,
        }
    }

    pub fn total_requests(&self) -> u64 {
        Family::ALL.iter().map(|f| self.family(*f).requests).sum()
    }
}

/// A successful answer.
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) body: Vec<u8>,
}

impl Answer {
    pub(super) fn json(&self) -> Result<Value, BrevoError> {
        if self.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body).map_err(|e| BrevoError::Decode(e.to_string()))
    }
}

pub(super) struct Inner {
    http: reqwest::Client,
    base_url: String,
    api_key: SecretString,
    timeout: Duration,
    /// The shared decision's rules, from the config's backoff and 429 bounds.
    retry: retry::Policy,
    pub(super) max_import_bytes: usize,
    buckets: [Arc<TokenBucket>; 4],
    counters: [Counters; 4],
    /// Upper-cased attribute name → type, once fetched.
    pub(super) attributes: tokio::sync::Mutex<Option<HashMap<String, Option<String>>>>,
}

/// The Brevo v3 client. Cheap to clone (shared state behind an `Arc`).
#[derive(Clone)]
pub struct BrevoClient {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for BrevoClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrevoClient").field("base_url", &self.inner.base_url).finish_non_exhaustive()
    }
}

impl BrevoClient {
    /// Builds the client; makes no network call.
    pub fn new(config: BrevoConfig) -> Result<Self, BrevoError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .user_agent(concat!("stripe-brevo/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| BrevoError::Transport(crate::error::chain(&e)))?;
        let bucket = |r: Rate| Arc::new(TokenBucket::new(r.per_second, r.burst));
        let l = config.limits;
        let retry = config.retry_rules();
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base_url: config.base_url.trim_end_matches('/').to_owned(),
                api_key: config.api_key,
                timeout: config.timeout,
                retry,
                max_import_bytes: config.max_import_bytes.max(1),
                buckets: [bucket(l.contacts), bucket(l.events), bucket(l.orders), bucket(l.other)],
                counters: Default::default(),
                attributes: tokio::sync::Mutex::new(None),
            }),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// The rate limiter of a family (e.g. to share its pacing with other work).
    pub fn limiter(&self, family: Family) -> Arc<TokenBucket> {
        Arc::clone(&self.inner.buckets[family.index()])
    }

    /// Counters per endpoint family.
    pub fn stats(&self) -> BrevoStats {
        let snap = |f: Family| {
            let c = &self.inner.counters[f.index()];
            FamilyStats {
                requests: c.requests.load(Ordering::Relaxed),
                rate_limited: c.rate_limited.load(Ordering::Relaxed),
                server_errors: c.server_errors.load(Ordering::Relaxed),
                timeouts: c.timeouts.load(Ordering::Relaxed),
                retries: c.retries.load(Ordering::Relaxed),
                limiter: self.inner.buckets[f.index()].stats(),
            }
        };
        BrevoStats {
            contacts: snap(Family::Contacts),
            events: snap(Family::Events),
            orders: snap(Family::Orders),
            other: snap(Family::Other),
        }
    }

    /// One call with pacing, retries and error mapping.
    pub(super) async fn call(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<Answer, BrevoError> {
        self.call_as(method, path, body, Replay::Safe).await
    }

    /// [`Self::call`], saying whether the request may be sent again after it
    /// went out and no answer came.
    pub(super) async fn call_as(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        replay: Replay,
    ) -> Result<Answer, BrevoError> {
        let inner = &*self.inner;
        let family = Family::of(path);
        let counters = &inner.counters[family.index()];
        let url = format!("{}{}", inner.base_url, path);
        let body = body.as_deref();
        let observe = |step: Step<'_, BrevoError>| match step {
            Step::Retrying { attempt, wait, error } => {
                counters.retries.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(family = ?family, attempt, wait_ms = wait.as_millis() as u64, error = %error, "retrying Brevo call");
            }
            Step::GaveUp { attempts, why: GiveUp::Exhausted, error } => {
                tracing::warn!(family = ?family, attempts, error = %error, "Brevo call failed");
            }
            Step::GaveUp { why: GiveUp::Permanent, .. } => {}
        };
        let bucket = &inner.buckets[family.index()];
        retry::run(&inner.retry, bucket, |attempt| self.attempt(&method, &url, body, family, attempt, replay), observe)
            .await
    }

    /// One request: the 2xx answer, or what the retry decision needs. A 429
    /// is not read further than its headers.
    async fn attempt(
        &self,
        method: &Method,
        url: &str,
        body: Option<&[u8]>,
        family: Family,
        attempt: u32,
        replay: Replay,
    ) -> Result<Answer, Failed<BrevoError>> {
        let inner = &*self.inner;
        let counters = &inner.counters[family.index()];
        counters.requests.fetch_add(1, Ordering::Relaxed);
        let mut req = inner
            .http
            .request(method.clone(), url)
            .header("api-key", inner.api_key.expose_secret())
            .header(ACCEPT, "application/json");
        if let Some(b) = body {
            req = req.header(CONTENT_TYPE, "application/json").body(b.to_vec());
        }
        let resp = match req.send().await {
            Ok(resp) => resp,
            // Not connected: nothing was sent, whatever the call.
            Err(e) if replay == Replay::Safe || e.is_connect() => {
                return Err(Failed::unanswered(self.transport_error(family, e)))
            }
            Err(e) => {
                let error = BrevoError::Unconfirmed(self.transport_error(family, e).to_string());
                return Err(Failed::new(error, Failure::Unconfirmed, HeaderMap::new()));
            }
        };
        let status = resp.status().as_u16();
        // Only an error answer's headers matter to the decision.
        let headers = if status < 300 { HeaderMap::new() } else { resp.headers().clone() };
        if status == 429 {
            counters.rate_limited.fetch_add(1, Ordering::Relaxed);
            let error = BrevoError::RateLimited { attempts: attempt };
            return Err(Failed::new(error, Failure::Status(status), headers));
        }
        let (error, failure) = match resp.bytes().await {
            Ok(bytes) if status < 300 => return Ok(Answer { status, body: bytes.to_vec() }),
            Ok(_) if status >= 500 => {
                counters.server_errors.fetch_add(1, Ordering::Relaxed);
                (BrevoError::Server(status), Failure::Status(status))
            }
            Ok(bytes) => (client_error(status, &bytes), Failure::Status(status)),
            // A success whose body was lost: it was applied; say so rather
            // than send it again.
            Err(_) if status < 300 && replay == Replay::Once => return Ok(Answer { status, body: Vec::new() }),
            Err(e) => (self.transport_error(family, e), Failure::Transport(Some(status))),
        };
        Err(Failed::new(error, failure, headers))
    }

    fn transport_error(&self, family: Family, e: reqwest::Error) -> BrevoError {
        if e.is_timeout() {
            self.inner.counters[family.index()].timeouts.fetch_add(1, Ordering::Relaxed);
            BrevoError::Timeout(self.inner.timeout)
        } else {
            BrevoError::Transport(crate::error::chain(&e.without_url()))
        }
    }

    /// One attempt, made only if the family's bucket has a token *now*:
    /// never sleeps (no wait for a token, no backoff, no wait after a 429).
    /// `Ok(None)` when no token was free, or Brevo answered 429 (the bucket
    /// is then paused for Brevo's reset, as [`call`](Self::call) would).
    /// For the `Other` family's 100 requests per hour, which a caller with a
    /// deadline must never wait for.
    pub(super) async fn call_now(&self, method: Method, path: &str) -> Result<Option<Answer>, BrevoError> {
        let inner = &*self.inner;
        let family = Family::of(path);
        let bucket = &inner.buckets[family.index()];
        if !bucket.try_acquire() {
            return Ok(None);
        }
        let url = format!("{}{}", inner.base_url, path);
        match self.attempt(&method, &url, None, family, 1, Replay::Safe).await {
            Ok(a) => Ok(Some(a)),
            Err(failed) => {
                if let Some(pause) = retry::decide(&inner.retry, failed.failure, &failed.headers, 1).pause {
                    bucket.pause_for(pause);
                }
                match failed.error {
                    BrevoError::RateLimited { .. } => Ok(None),
                    e => Err(e),
                }
            }
        }
    }

    pub(super) async fn post_json(&self, path: &str, body: &Value) -> Result<Answer, BrevoError> {
        self.post_json_as(path, body, Replay::Safe).await
    }

    /// `POST` of a request that must not be repeated once it went out (a
    /// Brevo event: its automations would fire twice).
    pub(super) async fn post_json_once(&self, path: &str, body: &Value) -> Result<Answer, BrevoError> {
        self.post_json_as(path, body, Replay::Once).await
    }

    async fn post_json_as(&self, path: &str, body: &Value, replay: Replay) -> Result<Answer, BrevoError> {
        let bytes = serde_json::to_vec(body).map_err(|e| BrevoError::Decode(e.to_string()))?;
        self.call_as(Method::POST, path, Some(bytes), replay).await
    }
}

/// Whether a request may be sent again after it went out unanswered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Replay {
    /// Yes: sending it twice leaves Brevo the same (contacts, lists).
    Safe,
    /// No: it may have been applied, and a second one would be another
    /// (events). Only failures before sending, and error answers, are retried.
    Once,
}

#[cfg(test)]
mod tests;
