//! The Brevo v3 HTTP client: contacts (real-time upsert and asynchronous
//! import), lists, attributes, custom events, orders and the account check.
//!
//! Built once per cold start with an injected base URL (`BREVO_API_BASE`,
//! `/v3/...` appended), the key as a [`SecretString`] (sent in the `api-key`
//! header, never logged or put in an error), a timeout, a [`Backoff`] and
//! client-side rate limits per endpoint family ([`BrevoLimits`], by default
//! 80 % of the General plan's limits,
//! <https://developers.brevo.com/docs/api-limits>).
//!
//! Behaviour on failures:
//! - 429: waits what `x-sib-ratelimit-reset` says (seconds until the window
//!   resets; Brevo sends no `Retry-After`,
//!   <https://developers.brevo.com/docs/limit-headers>), clamped to
//!   `[rate_limit_wait_min, rate_limit_wait_max]`, pausing the family's
//!   bucket so concurrent calls back off too; then retries.
//! - 5xx, timeouts and transport errors: retried with jittered exponential
//!   backoff. Brevo has no idempotency keys: a timed-out `POST /v3/events`
//!   that Brevo did process is sent twice on retry.
//! - 4xx: never retried blindly; reported with Brevo's `code` and `message`
//!   (e-mail addresses in the message are redacted).
//!   Every call makes at most `backoff.max_attempts` attempts.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{HeaderMap, ACCEPT, CONTENT_TYPE};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};

use super::rate_limit::{clamp_duration, Backoff, TokenBucket, WaitStats};
use crate::domain::brevo::{AttributeType, BrevoEvent, BrevoOrder, ContactUpdate};
use crate::ports::{BrevoApi, RemoteError, RemoteErrorKind, Vendor};
use crate::telemetry::redact_email;

/// Brevo's standard attribute for the mobile number (E.164).
pub const SMS_ATTRIBUTE: &str = "SMS";
/// `POST /v3/events/batch` accepts at most 200 events
/// (<https://developers.brevo.com/reference/create-batch-events>).
pub const EVENTS_BATCH_MAX: usize = 200;
/// List add/remove accept at most 150 e-mails per call
/// (<https://developers.brevo.com/reference/add-contact-to-list>).
pub const LIST_CHUNK_MAX: usize = 150;
/// Import JSON bodies should stay under about 8 MB
/// (<https://developers.brevo.com/reference/import-contacts>).
pub const IMPORT_MAX_BYTES: usize = 8_000_000;

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
    pub fn per_hour(n: f64, burst: u32) -> Self {
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
    /// `check` is not slowed down).
    fn default() -> Self {
        Self {
            contacts: Rate::per_second(8.0, 8),
            events: Rate::per_second(8.0, 8),
            orders: Rate::per_second(4.0, 4),
            other: Rate::per_hour(80.0, 10),
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
}

/// Errors of the Brevo client. Texts never contain the key or an e-mail.
#[derive(Debug, thiserror::Error)]
pub enum BrevoError {
    /// 401: wrong key (or a key not allowed from this IP address).
    #[error("Brevo API key is invalid ({message})")]
    Unauthorized { message: String },
    /// 403: the key lacks a permission, or the feature is not enabled.
    #[error("Brevo refused access ({code}): {message}")]
    Forbidden { code: String, message: String },
    /// 400 and other 4xx: the request itself is wrong; retrying won't help.
    #[error("Brevo rejected the request (HTTP {status}, {code}): {message}")]
    BadRequest { status: u16, code: String, message: String },
    /// 404: the list (or other resource) does not exist.
    #[error("Brevo resource not found: {message}")]
    NotFound { message: String },
    /// Still 429 after every attempt.
    #[error("Brevo rate limit still exceeded after {attempts} attempts")]
    RateLimited { attempts: u32 },
    /// 5xx after every attempt.
    #[error("Brevo server error (HTTP {0})")]
    Server(u16),
    #[error("Brevo did not answer within {0:?}")]
    Timeout(Duration),
    #[error("could not reach Brevo: {0}")]
    Transport(String),
    /// A 2xx whose body could not be read.
    #[error("unexpected answer from Brevo: {0}")]
    Decode(String),
}

impl BrevoError {
    /// True when the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }

    /// The kind the use cases decide on.
    pub fn kind(&self) -> RemoteErrorKind {
        match self {
            Self::Unauthorized { .. } => RemoteErrorKind::Unauthorized,
            Self::Forbidden { .. } => RemoteErrorKind::Forbidden,
            Self::NotFound { .. } => RemoteErrorKind::NotFound,
            // An answer we cannot read will not read better on a retry.
            Self::BadRequest { .. } | Self::Decode(_) => RemoteErrorKind::Rejected,
            Self::RateLimited { .. } => RemoteErrorKind::RateLimited,
            Self::Server(_) | Self::Timeout(_) | Self::Transport(_) => RemoteErrorKind::Unavailable,
        }
    }

    /// Brevo's error code for 4xx answers (`invalid_parameter`, …).
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::BadRequest { code, .. } | Self::Forbidden { code, .. } => Some(code),
            _ => None,
        }
    }

    fn message_contains(&self, needles: &[&str]) -> bool {
        let text = match self {
            Self::BadRequest { code, message, .. } => format!("{code} {message}"),
            _ => return false,
        }
        .to_ascii_lowercase();
        needles.iter().any(|n| text.contains(n))
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

/// What `upsert_contact` did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpsertOutcome {
    /// 201 (new contact) rather than 204 (updated).
    pub created: bool,
    /// Brevo refused the SMS number, so the contact was written without it;
    /// the caller should log a warning.
    pub sms_dropped: bool,
    /// Brevo's reason for refusing the number (no PII).
    pub sms_error: Option<String>,
}

/// What `import_contacts` started.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImportReceipt {
    /// One per import request (the import runs asynchronously in Brevo).
    pub process_ids: Vec<i64>,
    pub contacts: usize,
    pub requests: usize,
}

/// What a list add/remove did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListChange {
    /// Contacts added to (removed from) the list.
    pub changed: usize,
    /// Contacts already in (already out of) the list, or unknown to Brevo.
    pub unchanged: usize,
    pub requests: usize,
}

/// One event Brevo did not record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedEvent {
    /// Index in the slice given to `send_events`.
    pub index: usize,
    pub message: String,
    /// True when sending it again later may succeed.
    pub retryable: bool,
}

/// What `send_events` did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventsOutcome {
    pub sent: usize,
    pub failed: Vec<FailedEvent>,
    pub requests: usize,
}

impl EventsOutcome {
    pub fn all_sent(&self) -> bool {
        self.failed.is_empty()
    }
}

/// One contact attribute as Brevo lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BrevoAttribute {
    pub name: String,
    #[serde(default)]
    pub category: Option<String>,
    /// `text`, `float`, `date`, `boolean`, … (absent for some categories).
    #[serde(default, rename = "type")]
    pub attribute_type: Option<String>,
}

/// An attribute that exists with another type than the mapping wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeMismatch {
    pub name: String,
    pub wanted: AttributeType,
    pub found: String,
}

/// What `ensure_attributes` did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnsuredAttributes {
    pub created: Vec<String>,
    pub mismatched: Vec<AttributeMismatch>,
}

/// The parts of `GET /v3/account` that `check` shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccountInfo {
    pub company_name: Option<String>,
    pub email: Option<String>,
    /// Plan types (`free`, `payAsYouGo`, `subscription`, …).
    pub plans: Vec<String>,
}

/// A contact list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListInfo {
    pub id: i64,
    pub name: String,
    pub total_subscribers: Option<i64>,
}

/// Lowercase Brevo name of an attribute type.
pub fn attribute_type_name(t: AttributeType) -> &'static str {
    match t {
        AttributeType::Float => "float",
        AttributeType::Date => "date",
        AttributeType::Text => "text",
        AttributeType::Boolean => "boolean",
    }
}

/// Body of `POST /v3/contacts` (also what `--dry-run` prints).
pub fn contact_body(c: &ContactUpdate) -> Value {
    let mut body = serde_json::Map::new();
    body.insert("email".into(), json!(c.email));
    if !c.attributes.is_empty() {
        body.insert("attributes".into(), json!(c.attributes));
    }
    body.insert("updateEnabled".into(), json!(true));
    if !c.list_ids.is_empty() {
        body.insert("listIds".into(), json!(c.list_ids));
    }
    if !c.unlink_list_ids.is_empty() {
        body.insert("unlinkListIds".into(), json!(c.unlink_list_ids));
    }
    Value::Object(body)
}

/// One item of an import's `jsonBody` (per-contact list changes do not
/// apply: an import's `listIds` cover the whole import).
pub fn import_item(c: &ContactUpdate) -> Value {
    let mut item = serde_json::Map::new();
    item.insert("email".into(), json!(c.email));
    if !c.attributes.is_empty() {
        item.insert("attributes".into(), json!(c.attributes));
    }
    Value::Object(item)
}

/// Body of `POST /v3/events/batch`.
pub fn events_batch_body(events: &[BrevoEvent]) -> Value {
    json!({ "events": events })
}

/// Body of `POST /v3/orders/status`. [`BrevoOrder`] carries no line items;
/// `products` is required by Brevo, so an empty list is sent.
pub fn order_body(o: &BrevoOrder) -> Value {
    json!({
        "id": o.id,
        "createdAt": o.created_at,
        "updatedAt": o.updated_at,
        "status": o.status,
        "amount": o.amount,
        "identifiers": { "email_id": o.email },
        "products": [],
    })
}

/// Replaces anything that looks like an e-mail address by its redacted form.
fn scrub(text: &str) -> String {
    let is_addr_char = |c: char| c.is_alphanumeric() || "._%+-@".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        if token.contains('@') {
            out.push_str(&redact_email(token));
        } else {
            out.push_str(token);
        }
        token.clear();
    };
    for c in text.chars() {
        if is_addr_char(c) {
            token.push(c);
        } else {
            flush(&mut token, &mut out);
            out.push(c);
        }
    }
    flush(&mut token, &mut out);
    out
}

#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

fn client_error(status: u16, body: &[u8]) -> BrevoError {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let code = parsed.code.unwrap_or_else(|| "unknown".to_owned());
    let message = parsed.message.map(|m| scrub(&m)).unwrap_or_else(|| format!("HTTP {status}"));
    match status {
        401 => BrevoError::Unauthorized { message },
        403 => BrevoError::Forbidden { code, message },
        404 => BrevoError::NotFound { message },
        _ => BrevoError::BadRequest { status, code, message },
    }
}

/// A successful answer.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Result<Value, BrevoError> {
        if self.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body).map_err(|e| BrevoError::Decode(e.to_string()))
    }
}

struct Inner {
    http: reqwest::Client,
    base_url: String,
    api_key: SecretString,
    timeout: Duration,
    backoff: Backoff,
    rate_limit_wait_min: Duration,
    rate_limit_wait_max: Duration,
    max_import_bytes: usize,
    buckets: [Arc<TokenBucket>; 4],
    counters: [Counters; 4],
    /// Upper-cased attribute name → type, once fetched.
    attributes: tokio::sync::Mutex<Option<HashMap<String, Option<String>>>>,
}

/// The Brevo v3 client. Cheap to clone (shared state behind an `Arc`).
#[derive(Clone)]
pub struct BrevoClient {
    inner: Arc<Inner>,
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
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base_url: config.base_url.trim_end_matches('/').to_owned(),
                api_key: config.api_key,
                timeout: config.timeout,
                backoff: config.backoff,
                rate_limit_wait_min: config.rate_limit_wait_min,
                rate_limit_wait_max: config.rate_limit_wait_max,
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

    fn rate_limit_wait(&self, headers: &HeaderMap) -> Duration {
        let reset = headers
            .get("x-sib-ratelimit-reset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s.min(86_400.0)))
            .unwrap_or(Duration::ZERO);
        clamp_duration(reset, self.inner.rate_limit_wait_min, self.inner.rate_limit_wait_max)
    }

    /// One call with pacing, retries and error mapping.
    async fn call(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<Answer, BrevoError> {
        let inner = &*self.inner;
        let family = Family::of(path);
        let bucket = &inner.buckets[family.index()];
        let counters = &inner.counters[family.index()];
        let url = format!("{}{}", inner.base_url, path);
        let mut attempt = 1u32;
        loop {
            bucket.acquire().await;
            counters.requests.fetch_add(1, Ordering::Relaxed);
            let mut req = inner
                .http
                .request(method.clone(), &url)
                .header("api-key", inner.api_key.expose_secret())
                .header(ACCEPT, "application/json");
            if let Some(b) = &body {
                req = req.header(CONTENT_TYPE, "application/json").body(b.clone());
            }
            let (failure, wait) = match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if status == 429 {
                        counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                        let wait = self.rate_limit_wait(resp.headers());
                        bucket.pause_for(wait);
                        (BrevoError::RateLimited { attempts: attempt }, wait)
                    } else {
                        match resp.bytes().await {
                            Ok(bytes) if status < 300 => return Ok(Answer { status, body: bytes.to_vec() }),
                            Ok(_) if status >= 500 => {
                                counters.server_errors.fetch_add(1, Ordering::Relaxed);
                                (BrevoError::Server(status), inner.backoff.delay(attempt - 1))
                            }
                            Ok(bytes) => return Err(client_error(status, &bytes)),
                            Err(e) => (self.transport_error(family, e), inner.backoff.delay(attempt - 1)),
                        }
                    }
                }
                Err(e) => (self.transport_error(family, e), inner.backoff.delay(attempt - 1)),
            };
            if !inner.backoff.can_retry(attempt) {
                tracing::warn!(family = ?family, attempts = attempt, error = %failure, "Brevo call failed");
                return Err(failure);
            }
            counters.retries.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(family = ?family, attempt, wait_ms = wait.as_millis() as u64, error = %failure, "retrying Brevo call");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    fn transport_error(&self, family: Family, e: reqwest::Error) -> BrevoError {
        if e.is_timeout() {
            self.inner.counters[family.index()].timeouts.fetch_add(1, Ordering::Relaxed);
            BrevoError::Timeout(self.inner.timeout)
        } else {
            BrevoError::Transport(crate::error::chain(&e.without_url()))
        }
    }

    async fn post_json(&self, path: &str, body: &Value) -> Result<Answer, BrevoError> {
        let bytes = serde_json::to_vec(body).map_err(|e| BrevoError::Decode(e.to_string()))?;
        self.call(Method::POST, path, Some(bytes)).await
    }

    /// Creates or updates one contact (`POST /v3/contacts`, `updateEnabled`).
    /// If Brevo refuses the SMS number, writes the contact again without it
    /// and says so in the outcome.
    pub async fn upsert_contact(&self, contact: &ContactUpdate) -> Result<UpsertOutcome, BrevoError> {
        match self.post_json("/v3/contacts", &contact_body(contact)).await {
            Ok(a) => Ok(UpsertOutcome { created: a.status == 201, ..Default::default() }),
            Err(e)
                if contact.attributes.contains_key(SMS_ATTRIBUTE)
                    && e.message_contains(&["sms", "phone", "mobile"]) =>
            {
                let reason = e.to_string();
                tracing::debug!(contact = %redact_email(&contact.email), error = %reason, "Brevo refused the SMS number; writing the contact without it");
                let mut without = contact.clone();
                without.attributes.remove(SMS_ATTRIBUTE);
                let a = self.post_json("/v3/contacts", &contact_body(&without)).await?;
                Ok(UpsertOutcome { created: a.status == 201, sms_dropped: true, sms_error: Some(reason) })
            }
            Err(e) => Err(e),
        }
    }

    /// Starts asynchronous imports (`POST /v3/contacts/import`) of the
    /// contacts' attributes into `list_ids`, existing contacts updated, empty
    /// values not erasing anything. Split into several imports when one
    /// body would exceed `max_import_bytes`. Brevo ignores unknown attributes.
    pub async fn import_contacts(
        &self,
        contacts: &[ContactUpdate],
        list_ids: &[i64],
    ) -> Result<ImportReceipt, BrevoError> {
        let mut receipt = ImportReceipt::default();
        if contacts.is_empty() {
            return Ok(receipt);
        }
        let tail = serde_json::to_string(&json!({
            "listIds": list_ids,
            "updateExistingContacts": true,
            "emptyContactsAttributes": false,
        }))
        .map_err(|e| BrevoError::Decode(e.to_string()))?;
        // `{"jsonBody":[` + items + `],` + tail without its leading `{`.
        let head = b"{\"jsonBody\":[";
        let envelope = head.len() + 2 + tail.len() - 1;
        let mut chunks: Vec<(Vec<u8>, usize)> = Vec::new();
        let mut cur: Vec<u8> = Vec::new();
        let mut count = 0usize;
        for c in contacts {
            let item = serde_json::to_vec(&import_item(c)).map_err(|e| BrevoError::Decode(e.to_string()))?;
            let extra = item.len() + usize::from(count > 0);
            if count > 0 && envelope + cur.len() + extra > self.inner.max_import_bytes {
                chunks.push((std::mem::take(&mut cur), count));
                count = 0;
            }
            if count > 0 {
                cur.push(b',');
            }
            cur.extend_from_slice(&item);
            count += 1;
        }
        chunks.push((cur, count));
        for (items, n) in chunks {
            let mut body = Vec::with_capacity(envelope + items.len());
            body.extend_from_slice(head);
            body.extend_from_slice(&items);
            body.extend_from_slice(b"],");
            body.extend_from_slice(&tail.as_bytes()[1..]);
            let answer = self.call(Method::POST, "/v3/contacts/import", Some(body)).await?;
            receipt.requests += 1;
            receipt.contacts += n;
            if let Some(id) = answer.json()?.get("processId").and_then(Value::as_i64) {
                receipt.process_ids.push(id);
            }
        }
        Ok(receipt)
    }

    async fn list_change(&self, list_id: i64, emails: &[String], verb: &str) -> Result<ListChange, BrevoError> {
        let path = format!("/v3/contacts/lists/{list_id}/contacts/{verb}");
        let mut out = ListChange::default();
        for chunk in emails.chunks(LIST_CHUNK_MAX) {
            out.requests += 1;
            match self.post_json(&path, &json!({ "emails": chunk })).await {
                Ok(answer) => {
                    let v = answer.json().unwrap_or(Value::Null);
                    let count =
                        |key: &str| v.pointer(&format!("/contacts/{key}")).and_then(Value::as_array).map(Vec::len);
                    match (count("success"), count("failure")) {
                        (None, None) => out.changed += chunk.len(),
                        (s, f) => {
                            out.changed += s.unwrap_or(0);
                            out.unchanged += f.unwrap_or(0);
                        }
                    }
                }
                Err(e) if e.message_contains(&["already in list", "not in list", "does not exist"]) => {
                    out.unchanged += chunk.len();
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Adds contacts to a list in calls of at most 150; contacts already in
    /// the list count as unchanged, not as an error.
    pub async fn add_to_list(&self, list_id: i64, emails: &[String]) -> Result<ListChange, BrevoError> {
        self.list_change(list_id, emails, "add").await
    }

    /// Removes contacts from a list in calls of at most 150; contacts not in
    /// the list count as unchanged, not as an error.
    pub async fn remove_from_list(&self, list_id: i64, emails: &[String]) -> Result<ListChange, BrevoError> {
        self.list_change(list_id, emails, "remove").await
    }

    /// Every contact attribute of the account (`GET /v3/contacts/attributes`);
    /// refreshes the cache `ensure_attributes` uses.
    pub async fn list_attributes(&self) -> Result<Vec<BrevoAttribute>, BrevoError> {
        let mut cache = self.inner.attributes.lock().await;
        let list = self.fetch_attributes().await?;
        *cache = Some(Self::index_attributes(&list));
        Ok(list)
    }

    /// Forgets the cached attribute list (the next `ensure_attributes` fetches it).
    pub async fn forget_attributes(&self) {
        *self.inner.attributes.lock().await = None;
    }

    async fn fetch_attributes(&self) -> Result<Vec<BrevoAttribute>, BrevoError> {
        #[derive(Deserialize)]
        struct Attributes {
            #[serde(default)]
            attributes: Vec<BrevoAttribute>,
        }
        let answer = self.call(Method::GET, "/v3/contacts/attributes", None).await?;
        let parsed: Attributes = serde_json::from_slice(&answer.body).map_err(|e| BrevoError::Decode(e.to_string()))?;
        Ok(parsed.attributes)
    }

    fn index_attributes(list: &[BrevoAttribute]) -> HashMap<String, Option<String>> {
        list.iter().map(|a| (a.name.to_uppercase(), a.attribute_type.clone())).collect()
    }

    /// Makes sure every attribute exists, creating the missing ones
    /// (`POST /v3/contacts/attributes/normal/{name}`) with their type. The
    /// account's attributes are fetched once and cached in the client.
    pub async fn ensure_attributes(
        &self,
        wanted: &BTreeMap<String, AttributeType>,
    ) -> Result<EnsuredAttributes, BrevoError> {
        let mut report = EnsuredAttributes::default();
        let mut cache = self.inner.attributes.lock().await;
        if cache.is_none() {
            *cache = Some(Self::index_attributes(&self.fetch_attributes().await?));
        }
        let Some(known) = cache.as_mut() else {
            return Ok(report);
        };
        for (name, ty) in wanted {
            let key = name.to_uppercase();
            if let Some(found) = known.get(&key) {
                if let Some(found) = found {
                    if !found.eq_ignore_ascii_case(attribute_type_name(*ty)) {
                        report.mismatched.push(AttributeMismatch {
                            name: name.clone(),
                            wanted: *ty,
                            found: found.clone(),
                        });
                    }
                }
                continue;
            }
            let path = format!("/v3/contacts/attributes/normal/{name}");
            match self.post_json(&path, &json!({ "type": attribute_type_name(*ty) })).await {
                Ok(_) => report.created.push(name.clone()),
                Err(e) if e.message_contains(&["already exist", "must be unique", "duplicate"]) => {}
                Err(e) => return Err(e),
            }
            known.insert(key, Some(attribute_type_name(*ty).to_owned()));
        }
        Ok(report)
    }

    /// Sends custom events: one `POST /v3/events` for a single event,
    /// `POST /v3/events/batch` in chunks of at most 200 otherwise. A 207
    /// partial success lists the failed events. If the first request fails
    /// outright the error is returned (nothing was sent); if a later chunk
    /// fails, the events not sent are reported in `failed` with
    /// `retryable` set from the error.
    pub async fn send_events(&self, events: &[BrevoEvent]) -> Result<EventsOutcome, BrevoError> {
        let mut out = EventsOutcome::default();
        if events.is_empty() {
            return Ok(out);
        }
        if let [one] = events {
            let body = serde_json::to_value(one).map_err(|e| BrevoError::Decode(e.to_string()))?;
            self.post_json("/v3/events", &body).await?;
            out.requests = 1;
            out.sent = 1;
            return Ok(out);
        }
        for (n, chunk) in events.chunks(EVENTS_BATCH_MAX).enumerate() {
            let offset = n * EVENTS_BATCH_MAX;
            out.requests += 1;
            match self.post_json("/v3/events/batch", &events_batch_body(chunk)).await {
                Ok(answer) if answer.status == 207 => {
                    let failed = partial_failures(&answer.json().unwrap_or(Value::Null), chunk.len());
                    out.sent += chunk.len() - failed.len();
                    out.failed.extend(failed.into_iter().map(|mut f| {
                        f.index += offset;
                        f
                    }));
                }
                Ok(_) => out.sent += chunk.len(),
                Err(e) if offset == 0 => return Err(e),
                Err(e) => {
                    let (message, retryable) = (e.to_string(), e.is_retryable());
                    out.failed.extend((offset..events.len()).map(|index| FailedEvent {
                        index,
                        message: message.clone(),
                        retryable,
                    }));
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Creates or updates an eCommerce order (`POST /v3/orders/status`).
    pub async fn upsert_order(&self, order: &BrevoOrder) -> Result<(), BrevoError> {
        self.post_json("/v3/orders/status", &order_body(order)).await.map(|_| ())
    }

    /// `GET /v3/account`: proves the key works (for `check`).
    pub async fn account(&self) -> Result<AccountInfo, BrevoError> {
        let v = self.call(Method::GET, "/v3/account", None).await?.json()?;
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let plans = v
            .get("plan")
            .and_then(Value::as_array)
            .map(|ps| ps.iter().filter_map(|p| p.get("type").and_then(Value::as_str).map(str::to_owned)).collect())
            .unwrap_or_default();
        Ok(AccountInfo { company_name: s("companyName"), email: s("email"), plans })
    }

    /// `GET /v3/contacts/lists/{id}`; `None` when the list does not exist.
    pub async fn list(&self, id: i64) -> Result<Option<ListInfo>, BrevoError> {
        match self.call(Method::GET, &format!("/v3/contacts/lists/{id}"), None).await {
            Ok(a) => {
                let v = a.json()?;
                Ok(Some(ListInfo {
                    id: v.get("id").and_then(Value::as_i64).unwrap_or(id),
                    name: v.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
                    total_subscribers: v.get("totalSubscribers").and_then(Value::as_i64),
                }))
            }
            Err(BrevoError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn list_exists(&self, id: i64) -> Result<bool, BrevoError> {
        Ok(self.list(id).await?.is_some())
    }
}

impl From<BrevoError> for RemoteError {
    fn from(e: BrevoError) -> Self {
        // BrevoError texts hold no key and only redacted e-mails.
        Self::new(Vendor::Brevo, e.kind(), e.to_string())
    }
}

#[async_trait]
impl BrevoApi for BrevoClient {
    async fn ensure_attributes(&self, types: &BTreeMap<String, AttributeType>) -> Result<(), RemoteError> {
        let report = BrevoClient::ensure_attributes(self, types).await?;
        if !report.created.is_empty() {
            tracing::info!(created = ?report.created, "created Brevo contact attributes");
        }
        for m in &report.mismatched {
            tracing::warn!(attribute = %m.name, wanted = attribute_type_name(m.wanted), found = %m.found, "Brevo attribute exists with another type");
        }
        Ok(())
    }

    async fn upsert_contact(&self, contact: &ContactUpdate) -> Result<(), RemoteError> {
        let out = BrevoClient::upsert_contact(self, contact).await?;
        if out.sms_dropped {
            tracing::warn!(
                contact = %redact_email(&contact.email),
                cause = out.sms_error.as_deref().unwrap_or(""),
                "Brevo refused the phone number; contact written without SMS"
            );
        }
        Ok(())
    }

    async fn import_contacts(&self, contacts: &[ContactUpdate], list_ids: &[i64]) -> Result<(), RemoteError> {
        let receipt = BrevoClient::import_contacts(self, contacts, list_ids).await?;
        tracing::debug!(contacts = receipt.contacts, imports = receipt.requests, process_ids = ?receipt.process_ids, "Brevo imports started");
        Ok(())
    }

    async fn remove_from_list(&self, list_id: i64, emails: &[String]) -> Result<(), RemoteError> {
        BrevoClient::remove_from_list(self, list_id, emails).await?;
        Ok(())
    }

    async fn send_events(&self, events: &[BrevoEvent]) -> Result<Vec<Option<RemoteError>>, RemoteError> {
        let out = BrevoClient::send_events(self, events).await?;
        let mut per_event: Vec<Option<RemoteError>> = vec![None; events.len()];
        for f in out.failed {
            if let Some(slot) = per_event.get_mut(f.index) {
                let kind = if f.retryable { RemoteErrorKind::Unavailable } else { RemoteErrorKind::Rejected };
                *slot = Some(RemoteError::new(Vendor::Brevo, kind, f.message));
            }
        }
        Ok(per_event)
    }

    async fn upsert_order(&self, order: &BrevoOrder) -> Result<(), RemoteError> {
        Ok(BrevoClient::upsert_order(self, order).await?)
    }
}

/// Reads a 207 body leniently: an array of failures under `errors`,
/// `failed`, `failures` or `failedEvents`, each with an index (`index`,
/// `event_index`, `eventIndex`, `position`) and a message. Without usable
/// details every event of the chunk is reported failed.
fn partial_failures(v: &Value, chunk_len: usize) -> Vec<FailedEvent> {
    let list =
        ["errors", "failed", "failures", "failedEvents"].iter().find_map(|k| v.get(*k).and_then(Value::as_array));
    let mut out: Vec<FailedEvent> = Vec::new();
    if let Some(items) = list {
        for item in items {
            let index = ["index", "event_index", "eventIndex", "position"]
                .iter()
                .find_map(|k| item.get(*k).and_then(Value::as_u64))
                .and_then(|i| usize::try_from(i).ok())
                .filter(|i| *i < chunk_len);
            let message = ["message", "error", "reason"]
                .iter()
                .find_map(|k| match item.get(*k) {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(o @ Value::Object(_)) => o.get("message").and_then(Value::as_str).map(str::to_owned),
                    _ => None,
                })
                .map(|m| scrub(&m))
                .unwrap_or_else(|| "rejected by Brevo".to_owned());
            match index {
                Some(index) if !out.iter().any(|f| f.index == index) => {
                    out.push(FailedEvent { index, message, retryable: false })
                }
                Some(_) => {}
                None => return whole_chunk_failed(chunk_len),
            }
        }
    }
    if out.is_empty() {
        return whole_chunk_failed(chunk_len);
    }
    out.sort_by_key(|f| f.index);
    out
}

fn whole_chunk_failed(chunk_len: usize) -> Vec<FailedEvent> {
    (0..chunk_len)
        .map(|index| FailedEvent {
            index,
            message: "Brevo reported a partial failure without details".to_owned(),
            retryable: false,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domain::brevo::{AttributeValue, EventIdentifiers};
    use std::time::Instant;
    use wiremock::matchers::{body_partial_json, header, method, path};
    use wiremock::{Mock, MockServer, Request, ResponseTemplate};

    const KEY: &str = "xkeysib-test-secret";

    fn config(server: &MockServer) -> BrevoConfig {
        let mut c = BrevoConfig::new(server.uri(), SecretString::from(KEY));
        c.timeout = Duration::from_millis(300);
        c.backoff = Backoff::new(Duration::from_millis(5), Duration::from_millis(20), 3);
        c.limits = BrevoLimits::unlimited();
        c.rate_limit_wait_min = Duration::from_millis(10);
        c.rate_limit_wait_max = Duration::from_millis(150);
        c
    }

    fn client(server: &MockServer) -> BrevoClient {
        BrevoClient::new(config(server)).unwrap()
    }

    fn contact(email: &str) -> ContactUpdate {
        let mut c = ContactUpdate {
            email: email.to_owned(),
            list_ids: vec![20, 21],
            unlink_list_ids: vec![22],
            ..Default::default()
        };
        c.attributes.insert("TOTAL_SPENT".into(), AttributeValue::Number(12.5));
        c.attributes.insert("FIRSTNAME".into(), AttributeValue::Text("Jane".into()));
        c
    }

    fn event(i: usize) -> BrevoEvent {
        BrevoEvent {
            event_name: "stripe_charge_refunded".into(),
            event_date: "2026-01-02T03:04:05Z".into(),
            identifiers: EventIdentifiers { email_id: format!("user{i}@example.com") },
            event_properties: serde_json::Map::new(),
        }
    }

    fn json_body(r: &Request) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    async fn received(server: &MockServer) -> Vec<Request> {
        server.received_requests().await.unwrap()
    }

    #[tokio::test]
    async fn upserts_a_contact_with_update_enabled_and_reports_created_or_updated() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v3/contacts"))
            .and(header("api-key", KEY))
            .and(header("accept", "application/json"))
            .and(body_partial_json(json!({
                "email": "jane@example.com", "updateEnabled": true,
                "listIds": [20, 21], "unlinkListIds": [22],
                "attributes": {"TOTAL_SPENT": 12.5, "FIRSTNAME": "Jane"}
            })))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 7})))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v3/contacts"))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        let c = client(&server);
        let first = c.upsert_contact(&contact("jane@example.com")).await.unwrap();
        assert!(first.created && !first.sms_dropped);
        let second = c.upsert_contact(&contact("jane@example.com")).await.unwrap();
        assert!(!second.created);
        assert_eq!(c.stats().contacts.requests, 2);
        assert_eq!(c.stats().total_requests(), 2);
    }

    #[tokio::test]
    async fn surfaces_brevo_code_and_message_on_400_without_retrying_or_leaking_the_email() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v3/contacts"))
            .respond_with(ResponseTemplate::new(400).set_body_json(
                json!({"code": "invalid_parameter", "message": "Invalid email address jane@example.com"}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let err = client(&server).upsert_contact(&contact("jane@example.com")).await.unwrap_err();
        match &err {
            BrevoError::BadRequest { status, code, message } => {
                assert_eq!(*status, 400);
                assert_eq!(code, "invalid_parameter");
                assert!(message.starts_with("Invalid email address"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(!err.is_retryable());
        assert!(!err.to_string().contains("jane@example.com"), "{err}");
        assert!(err.to_string().contains("invalid_parameter"));
    }

    #[tokio::test]
    async fn maps_401_to_an_invalid_key_error_that_does_not_show_the_key() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v3/account"))
            .respond_with(
                ResponseTemplate::new(401).set_body_json(json!({"code": "unauthorized", "message": "Key not found"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let err = client(&server).account().await.unwrap_err();
        assert!(matches!(err, BrevoError::Unauthorized { .. }), "{err:?}");
        assert!(err.to_string().contains("Brevo API key is invalid"));
        assert!(!err.to_string().contains(KEY) && !format!("{err:?}").contains(KEY));
        assert!(!err.is_retryable());
        assert!(!format!("{:?}", config(&server)).contains(KEY), "config Debug must not print the key");
    }

    #[tokio::test]
    async fn reads_the_account() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v3/account"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"email": "owner@example.com", "companyName": "Acme", "plan": [{"type": "free", "credits": 300}]}),
            ))
            .mount(&server)
            .await;
        let a = client(&server).account().await.unwrap();
        assert_eq!(a.company_name.as_deref(), Some("Acme"));
        assert_eq!(a.plans, vec!["free".to_owned()]);
        assert_eq!(client(&server).stats().other.requests, 0, "stats are per client");
    }

    #[tokio::test]
    async fn waits_for_the_rate_limit_reset_then_retries() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v3/events"))
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header("x-sib-ratelimit-limit", "10")
                    .insert_header("x-sib-ratelimit-remaining", "0")
                    .insert_header("x-sib-ratelimit-reset", "1"),
            )
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v3/events"))
            .respond_with(ResponseTemplate::new(204))
            .mount(&server)
            .await;
        let c = client(&server);
        let start = Instant::now();
        let out = c.send_events(&[event(1)]).await.unwrap();
        // reset = 1 s, clamped to the test's 150 ms maximum.
        assert!(start.elapsed() >= Duration::from_millis(140), "did not wait: {:?}", start.elapsed());
        assert_eq!(out.sent, 1);
        assert_eq!(received(&server).await.len(), 2);
        let s = c.stats().events;
        assert_eq!((s.requests, s.rate_limited, s.retries), (2, 1, 1));
    }

    #[tokio::test]
    async fn gives_up_with_rate_limited_after_the_last_attempt() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v3/orders/status"))
            .respond_with(ResponseTemplate::new(429).insert_header("x-sib-ratelimit-reset", "0"))
            .expect(3)
            .mount(&server)
            .await;
        let order = BrevoOrder {
            id: "in_1".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
            status: "completed".into(),
            amount: 10.0,
            email: "jane@example.com".into(),
        };
        let err = client(&server).upsert_order(&order).await.unwrap_err();
        assert!(matches!(err, BrevoError::RateLimited { attempts: 3 }), "{err:?}");
        assert!(err.is_retryable());
    }

    #[tokio::test]
    async fn retries_server_errors_then_succeeds() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v3/orders/status"))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(2)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v3/orders/status"))
            .and(body_partial_json(
                json!({"id": "in_1", "identifiers": {"email_id": "jane@example.com"}, "products": []}),
            ))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        let order = BrevoOrder {
            id: "in_1".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
            status: "completed".into(),
            amount: 10.0,
            email: "jane@example.com".into(),
        };
        let c = client(&server);
        c.upsert_order(&order).await.unwrap();
        let s = c.stats().orders;
        assert_eq!((s.requests, s.server_errors, s.retries), (3, 2, 2));
    }

    #[tokio::test]
    async fn a_persistent_server_error_is_reported_after_bounded_attempts() {
        let server = MockServer::start().await;
        Mock::given(method("GET")).respond_with(ResponseTemplate::new(502)).expect(3).mount(&server).await;
        let err = client(&server).list_exists(20).await.unwrap_err();
        assert!(matches!(err, BrevoError::Server(502)) && err.is_retryable(), "{err:?}");
    }

    #[tokio::test]
    async fn times_out_retries_and_reports_a_timeout() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v3/account"))
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(1500)))
            .mount(&server)
            .await;
        let mut cfg = config(&server);
        cfg.timeout = Duration::from_millis(100);
        cfg.backoff = Backoff::new(Duration::from_millis(1), Duration::from_millis(1), 2);
        let c = BrevoClient::new(cfg).unwrap();
        let err = c.account().await.unwrap_err();
        assert!(matches!(err, BrevoError::Timeout(_)) && err.is_retryable(), "{err:?}");
        assert_eq!(c.stats().other.timeouts, 2);
        assert_eq!(received(&server).await.len(), 2);
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_retryable_transport_error() {
        let mut cfg = BrevoConfig::new("http://127.0.0.1:9", SecretString::from(KEY));
        cfg.backoff = Backoff::none();
        let err = BrevoClient::new(cfg).unwrap().account().await.unwrap_err();
        assert!(matches!(err, BrevoError::Transport(_) | BrevoError::Timeout(_)) && err.is_retryable(), "{err:?}");
        assert!(!err.to_string().contains(KEY));
    }

    #[tokio::test]
    async fn sends_one_event_alone_and_many_in_batches_of_at_most_200() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v3/events"))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v3/events/batch"))
            .respond_with(ResponseTemplate::new(201))
            .expect(3)
            .mount(&server)
            .await;
        let c = client(&server);
        let one = c.send_events(&[event(0)]).await.unwrap();
        assert_eq!((one.sent, one.requests), (1, 1));
        let many: Vec<_> = (0..450).map(event).collect();
        let out = c.send_events(&many).await.unwrap();
        assert_eq!((out.sent, out.requests), (450, 3));
        assert!(out.all_sent());
        let sizes: Vec<usize> = received(&server)
            .await
            .iter()
            .filter(|r| r.url.path() == "/v3/events/batch")
            .map(|r| json_body(r)["events"].as_array().unwrap().len())
            .collect();
        assert_eq!(sizes, vec![200, 200, 50]);
        let single = &received(&server).await[0];
        assert_eq!(json_body(single)["identifiers"]["email_id"], "user0@example.com");
    }

    #[tokio::test]
    async fn reports_which_events_failed_in_a_207_partial_success() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v3/events/batch"))
            .respond_with(ResponseTemplate::new(207).set_body_json(json!({
                "errors": [{"index": 1, "message": "Invalid event_name"}, {"index": 3, "message": "bad identifiers for x@example.com"}]
            })))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v3/events/batch"))
            .respond_with(ResponseTemplate::new(500))
            .mount(&server)
            .await;
        let events: Vec<_> = (0..205).map(event).collect();
        let out = client(&server).send_events(&events).await.unwrap();
        // First chunk: 198 sent, 1 and 3 failed; second chunk (5) failed on 500s.
        assert_eq!(out.sent, 198);
        let idx: Vec<usize> = out.failed.iter().map(|f| f.index).collect();
        assert_eq!(idx, vec![1, 3, 200, 201, 202, 203, 204]);
        assert!(!out.failed[0].retryable && out.failed[2].retryable);
        assert!(!out.failed[1].message.contains("x@example.com"));
    }

    #[tokio::test]
    async fn a_batch_refused_outright_is_an_error() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v3/events/batch"))
            .respond_with(
                ResponseTemplate::new(400)
                    .set_body_json(json!({"code": "invalid_parameter", "message": "too many events"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let events: Vec<_> = (0..3).map(event).collect();
        let err = client(&server).send_events(&events).await.unwrap_err();
        assert_eq!(err.code(), Some("invalid_parameter"));
    }

    #[tokio::test]
    async fn changes_lists_in_chunks_of_150_and_treats_already_in_list_as_success() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v3/contacts/lists/20/contacts/add"))
            .respond_with(ResponseTemplate::new(400).set_body_json(
                json!({"code": "invalid_parameter", "message": "Contact already in list and/or does not exist"}),
            ))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v3/contacts/lists/20/contacts/add"))
            .respond_with(
                ResponseTemplate::new(201).set_body_json(json!({"contacts": {"success": ["a@x.io"], "failure": []}})),
            )
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v3/contacts/lists/22/contacts/remove"))
            .respond_with(ResponseTemplate::new(400).set_body_json(
                json!({"code": "invalid_parameter", "message": "Contact not in list and/or does not exist"}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let emails: Vec<String> = (0..320).map(|i| format!("u{i}@example.com")).collect();
        let c = client(&server);
        let out = c.add_to_list(20, &emails).await.unwrap();
        assert_eq!(out.requests, 3);
        assert_eq!(out.unchanged, 150);
        assert_eq!(out.changed, 2, "one success reported per later chunk");
        let sizes: Vec<usize> =
            received(&server).await.iter().map(|r| json_body(r)["emails"].as_array().unwrap().len()).collect();
        assert_eq!(sizes, vec![150, 150, 20]);
        let removed = c.remove_from_list(22, &emails[..3]).await.unwrap();
        assert_eq!((removed.changed, removed.unchanged), (0, 3));
    }

    #[tokio::test]
    async fn a_missing_list_is_not_success() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(404)
                    .set_body_json(json!({"code": "document_not_found", "message": "List ID does not exist"})),
            )
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v3/contacts/lists/21"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"id": 21, "name": "subscribers", "totalSubscribers": 4})),
            )
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v3/contacts/lists/99"))
            .respond_with(
                ResponseTemplate::new(404)
                    .set_body_json(json!({"code": "document_not_found", "message": "List ID does not exist"})),
            )
            .mount(&server)
            .await;
        let c = client(&server);
        let err = c.add_to_list(99, &["a@example.com".to_owned()]).await.unwrap_err();
        assert!(matches!(err, BrevoError::NotFound { .. }), "{err:?}");
        assert!(c.list_exists(21).await.unwrap());
        assert!(!c.list_exists(99).await.unwrap());
        assert_eq!(c.list(21).await.unwrap().unwrap().name, "subscribers");
    }

    #[tokio::test]
    async fn splits_an_import_that_would_exceed_the_size_limit() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v3/contacts/import"))
            .respond_with(ResponseTemplate::new(202).set_body_json(json!({"processId": 78})))
            .mount(&server)
            .await;
        let mut cfg = config(&server);
        cfg.max_import_bytes = 2_000;
        let c = BrevoClient::new(cfg).unwrap();
        let contacts: Vec<_> = (0..50).map(|i| contact(&format!("user{i}@example.com"))).collect();
        let receipt = c.import_contacts(&contacts, &[20]).await.unwrap();
        assert!(receipt.requests > 1, "{receipt:?}");
        assert_eq!(receipt.contacts, 50);
        assert_eq!(receipt.process_ids.len(), receipt.requests);
        let mut seen = Vec::new();
        for r in received(&server).await {
            assert!(r.body.len() <= 2_000, "body of {} bytes", r.body.len());
            let v = json_body(&r);
            assert_eq!(v["listIds"], json!([20]));
            assert_eq!(v["updateExistingContacts"], json!(true));
            assert_eq!(v["emptyContactsAttributes"], json!(false));
            for item in v["jsonBody"].as_array().unwrap() {
                assert_eq!(item["attributes"]["TOTAL_SPENT"], json!(12.5));
                seen.push(item["email"].as_str().unwrap().to_owned());
            }
        }
        let expected: Vec<String> = (0..50).map(|i| format!("user{i}@example.com")).collect();
        assert_eq!(seen, expected, "every contact once, in order");
        assert_eq!(c.import_contacts(&[], &[20]).await.unwrap().requests, 0);
    }

    #[tokio::test]
    async fn drops_the_sms_and_retries_once_when_brevo_rejects_the_number() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v3/contacts"))
            .and(body_partial_json(json!({"attributes": {"SMS": "+33612345678"}})))
            .respond_with(
                ResponseTemplate::new(400)
                    .set_body_json(json!({"code": "invalid_parameter", "message": "Invalid phone number"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v3/contacts"))
            .respond_with(ResponseTemplate::new(201))
            .expect(1)
            .mount(&server)
            .await;
        let mut c = contact("jane@example.com");
        c.attributes.insert(SMS_ATTRIBUTE.into(), AttributeValue::Text("+33612345678".into()));
        let out = client(&server).upsert_contact(&c).await.unwrap();
        assert!(out.sms_dropped && out.created);
        assert!(out.sms_error.unwrap().contains("Invalid phone number"));
        let reqs = received(&server).await;
        let second = json_body(&reqs[1]);
        assert!(second["attributes"].get("SMS").is_none());
        assert_eq!(second["attributes"]["FIRSTNAME"], "Jane");
    }

    #[tokio::test]
    async fn a_phone_error_without_an_sms_attribute_is_not_retried() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(400)
                    .set_body_json(json!({"code": "invalid_parameter", "message": "Invalid phone number"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let err = client(&server).upsert_contact(&contact("jane@example.com")).await.unwrap_err();
        assert!(matches!(err, BrevoError::BadRequest { .. }));
    }

    #[tokio::test]
    async fn creates_only_missing_attributes_and_caches_what_exists() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v3/contacts/attributes"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"attributes": [
                {"name": "FIRSTNAME", "category": "normal", "type": "text"},
                {"name": "TOTAL_SPENT", "category": "normal", "type": "text"},
                {"name": "SMS", "category": "normal", "type": "text"}
            ]})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v3/contacts/attributes/normal/LTV"))
            .and(body_partial_json(json!({"type": "float"})))
            .respond_with(ResponseTemplate::new(201))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v3/contacts/attributes/normal/SUB_START_DATE"))
            .and(body_partial_json(json!({"type": "date"})))
            .respond_with(
                ResponseTemplate::new(400)
                    .set_body_json(json!({"code": "invalid_parameter", "message": "Attribute name must be unique"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let wanted: BTreeMap<String, AttributeType> = [
            ("FIRSTNAME", AttributeType::Text),
            ("TOTAL_SPENT", AttributeType::Float),
            ("LTV", AttributeType::Float),
            ("SUB_START_DATE", AttributeType::Date),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let c = client(&server);
        let report = c.ensure_attributes(&wanted).await.unwrap();
        assert_eq!(report.created, vec!["LTV".to_owned()]);
        assert_eq!(report.mismatched.len(), 1);
        assert_eq!(report.mismatched[0].name, "TOTAL_SPENT");
        // Cached: a second call sends nothing.
        let again = c.ensure_attributes(&wanted).await.unwrap();
        assert!(again.created.is_empty());
        assert_eq!(received(&server).await.len(), 3);
    }

    #[tokio::test]
    async fn paces_requests_per_family_with_the_configured_limits() {
        let server = MockServer::start().await;
        Mock::given(method("POST")).respond_with(ResponseTemplate::new(204)).mount(&server).await;
        let mut cfg = config(&server);
        cfg.limits = BrevoLimits { contacts: Rate::per_second(20.0, 1), ..BrevoLimits::unlimited() };
        let c = BrevoClient::new(cfg).unwrap();
        let start = Instant::now();
        for i in 0..6 {
            c.upsert_contact(&contact(&format!("u{i}@example.com"))).await.unwrap();
        }
        // Burst 1 then 5 × 50 ms.
        assert!(start.elapsed() >= Duration::from_millis(240), "too fast: {:?}", start.elapsed());
        let s = c.stats();
        assert_eq!(s.contacts.requests, 6);
        assert!(s.contacts.limiter.waits >= 4);
        // Events are not paced by the contacts bucket.
        c.send_events(&[event(1)]).await.unwrap();
        c.send_events(&[event(2)]).await.unwrap();
        assert_eq!(c.stats().events.limiter.waits, 0);
    }

    #[tokio::test]
    async fn the_port_reports_failed_events_in_order_and_errors_as_remote_errors() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v3/events/batch"))
            .respond_with(
                ResponseTemplate::new(207)
                    .set_body_json(json!({"errors": [{"index": 2, "message": "Invalid event_name"}]})),
            )
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v3/contacts"))
            .respond_with(ResponseTemplate::new(503))
            .mount(&server)
            .await;
        let c = client(&server);
        let api: &dyn BrevoApi = &c;
        let events: Vec<_> = (0..3).map(event).collect();
        let per_event = api.send_events(&events).await.unwrap();
        assert_eq!(per_event.len(), 3);
        assert!(per_event[0].is_none() && per_event[1].is_none());
        assert_eq!(per_event[2].as_ref().map(|e| e.is_retryable()), Some(false));
        let err = api.upsert_contact(&contact("jane@example.com")).await.unwrap_err();
        assert!(err.is_retryable());
        assert!(!err.message.contains("jane@example.com"));
    }

    #[test]
    fn default_limits_are_80_percent_of_the_general_plan() {
        let l = BrevoLimits::default();
        assert_eq!(l.contacts.per_second, 8.0);
        assert_eq!(l.events.per_second, 8.0);
        assert_eq!(l.orders.per_second, 4.0);
        assert!((l.other.per_second * 3600.0 - 80.0).abs() < 1e-9);
        assert_eq!(Family::of("/v3/contacts/lists/2/contacts/add"), Family::Contacts);
        assert_eq!(Family::of("/v3/events/batch"), Family::Events);
        assert_eq!(Family::of("/v3/orders/status"), Family::Orders);
        assert_eq!(Family::of("/v3/account"), Family::Other);
    }

    #[test]
    fn scrub_redacts_addresses_only() {
        assert_eq!(scrub("Contact jane.doe@example.com exists"), "Contact j***@e***.com exists");
        assert_eq!(scrub("Invalid phone number"), "Invalid phone number");
        assert_eq!(scrub("\"a@b.io\","), "\"a***@b***.io\",");
    }
}
