//! A stateful, local Stripe-like API server for the tests, the benchmarks and
//! `stripe-brevo demo`. Read-only (`GET /v1/...`) like the connector.
//!
//! What it imitates (checked against <https://docs.stripe.com/api>):
//! - lists newest first (`created` desc, ties by id desc), `limit` 1..=100,
//!   `starting_after` / `ending_before` (an unknown id is a 400
//!   `resource_missing`), `created[gte|gt|lte|lt]`, `customer` and other
//!   equality filters, subscriptions' `status` (default hides `canceled` and
//!   `incomplete_expired`; `all` shows everything), events' `type` (with a
//!   trailing `*` wildcard) and `types[]` (≤ 20);
//! - `expand[]` (e.g. `data.balance_transaction`, `data.items.data.price.product`,
//!   `data.customer`; without `data.` on single objects);
//! - deleted customers (`{"id","object":"customer","deleted":true}`), hidden from lists;
//! - Bearer authentication, 401 with a masked key, restricted keys answering
//!   403 naming the missing `rak_…_read` permission;
//! - faults set at run time: bursts of 429 (optionally with
//!   `Stripe-Should-Retry` / `Retry-After`), seeded random 429/500, latency,
//!   a full outage (503);
//! - a request log and counters.
//!
//! Objects are built from Stripe's own example objects
//! (`fixtures/stripe_fixtures.json`, MIT) by [`Seed`]; [`demo_dataset`] makes a
//! deterministic, realistic data set of any size.
//!
//! It binds 127.0.0.1 on a free port only and stops when the handle drops.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use axum::extract::{Query, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// The full-access test key every sandbox accepts unless told otherwise.
pub const DEFAULT_SECRET_KEY: &str = "sk_test_sandbox_0000000000000000000000000000";
/// The API version written into emitted events.
pub const SANDBOX_API_VERSION: &str = "2024-06-20";

const FIXTURES: &str = include_str!("../fixtures/stripe_fixtures.json");

/// The resources served under `/v1/{path}`: (path, singular name used in
/// messages and `rak_{singular}_read` permissions).
pub const RESOURCES: &[(&str, &str)] = &[
    ("customers", "customer"),
    ("charges", "charge"),
    ("balance_transactions", "balance_transaction"),
    ("subscriptions", "subscription"),
    ("prices", "price"),
    ("products", "product"),
    ("invoices", "invoice"),
    ("refunds", "refund"),
    ("payment_intents", "payment_intent"),
    ("checkout/sessions", "checkout_session"),
    ("events", "event"),
    ("disputes", "dispute"),
    ("webhook_endpoints", "webhook_endpoint"),
];

/// Equality filters each list accepts (`?customer=cus_…`); other parameters
/// besides the common ones are ignored.
fn equality_filters(resource: &str) -> &'static [&'static str] {
    match resource {
        "customers" => &["email"],
        "charges" => &["customer", "payment_intent"],
        "balance_transactions" => &["source", "type", "currency"],
        "subscriptions" => &["customer", "collection_method"],
        "prices" => &["product", "active", "type", "currency"],
        "products" => &["active"],
        "invoices" => &["customer", "subscription", "status", "collection_method"],
        "refunds" => &["charge", "payment_intent"],
        "payment_intents" => &["customer"],
        "checkout/sessions" => &["customer", "payment_intent", "subscription", "status"],
        "disputes" => &["charge", "payment_intent"],
        _ => &[],
    }
}

fn singular(resource: &str) -> String {
    RESOURCES
        .iter()
        .find(|(p, _)| *p == resource)
        .map(|(_, s)| (*s).to_owned())
        .unwrap_or_else(|| resource.trim_end_matches('s').to_owned())
}

// ---------------------------------------------------------------------------
// Options and faults
// ---------------------------------------------------------------------------

/// How a sandbox starts.
#[derive(Debug, Clone)]
pub struct StripeSandboxOptions {
    /// Keys with full read access.
    pub secret_keys: Vec<String>,
    /// Restricted keys and the resources (paths such as `customers`,
    /// `checkout/sessions`, `account`, `balance`) each may read.
    pub restricted_keys: Vec<(String, Vec<String>)>,
    pub account_id: String,
    /// Seed of the RNG behind random faults.
    pub seed: u64,
    /// Fixed clock (unix seconds); `None` follows the system clock.
    pub now: Option<i64>,
}

impl Default for StripeSandboxOptions {
    fn default() -> Self {
        Self {
            secret_keys: vec![DEFAULT_SECRET_KEY.to_owned()],
            restricted_keys: Vec::new(),
            account_id: "acct_1PgafTB7WZ01zgkW".to_owned(),
            seed: 42,
            now: None,
        }
    }
}

impl StripeSandboxOptions {
    pub fn with_secret_key(mut self, key: impl Into<String>) -> Self {
        self.secret_keys.push(key.into());
        self
    }

    pub fn with_restricted_key(mut self, key: impl Into<String>, readable: &[&str]) -> Self {
        self.restricted_keys.push((key.into(), readable.iter().map(|r| (*r).to_owned()).collect()));
        self
    }

    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    pub fn with_now(mut self, now: i64) -> Self {
        self.now = Some(now);
        self
    }
}

/// A run of 429 answers for the next `count` requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Burst {
    pub count: u32,
    /// Sends `Stripe-Should-Retry: true|false` when set.
    pub should_retry: Option<bool>,
    /// Sends `Retry-After: N` (seconds) when set.
    pub retry_after: Option<u64>,
}

#[derive(Debug)]
struct Faults {
    burst: Burst,
    p429: f64,
    p500: f64,
    latency: Duration,
    outage: bool,
    rng: StdRng,
}

/// One request as the sandbox saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    /// The raw query string (percent-encoded).
    pub query: String,
    pub status: u16,
}

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

/// One resource's objects, plus an index sorted by (created, id) ascending.
#[derive(Debug, Default)]
struct Collection {
    objects: HashMap<String, Value>,
    order: Vec<(i64, String)>,
}

fn created_of(v: &Value) -> i64 {
    v.get("created").and_then(Value::as_i64).unwrap_or(0)
}

impl Collection {
    fn key_of(&self, id: &str) -> Option<(i64, String)> {
        self.objects.get(id).map(|v| (created_of(v), id.to_owned()))
    }

    fn upsert(&mut self, id: String, v: Value) {
        if let Some(old) = self.key_of(&id) {
            if let Ok(pos) = self.order.binary_search(&old) {
                self.order.remove(pos);
            }
        }
        let key = (created_of(&v), id.clone());
        let pos = self.order.binary_search(&key).unwrap_or_else(|p| p);
        self.order.insert(pos, key);
        self.objects.insert(id, v);
    }
}

#[derive(Debug)]
struct State {
    collections: HashMap<String, Collection>,
    keys: HashMap<String, Option<HashSet<String>>>,
    account_id: String,
    fixed_now: Option<i64>,
    event_seq: u64,
    faults: Faults,
    log: Vec<LoggedRequest>,
    total: u64,
    per_path: BTreeMap<String, u64>,
    per_status: BTreeMap<u16, u64>,
}

impl State {
    fn now(&self) -> i64 {
        self.fixed_now.unwrap_or_else(system_now)
    }

    fn find_any(&self, id: &str) -> Option<&Value> {
        self.collections.values().find_map(|c| c.objects.get(id))
    }

    fn insert(&mut self, resource: &str, mut obj: Value) -> String {
        let id = match obj.get("id").and_then(Value::as_str) {
            Some(id) => id.to_owned(),
            None => {
                self.event_seq += 1;
                let id = format!("{}_sbx{:010}", singular(resource), self.event_seq);
                if let Some(m) = obj.as_object_mut() {
                    m.insert("id".to_owned(), Value::String(id.clone()));
                }
                id
            }
        };
        if obj.get("created").is_none() && !is_deleted(&obj) {
            let now = self.now();
            if let Some(m) = obj.as_object_mut() {
                m.insert("created".to_owned(), json!(now));
            }
        }
        self.collections.entry(resource.to_owned()).or_default().upsert(id.clone(), obj);
        id
    }
}

fn system_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn is_deleted(v: &Value) -> bool {
    v.get("deleted").and_then(Value::as_bool).unwrap_or(false)
}

type Shared = Arc<Mutex<State>>;

fn lock(s: &Shared) -> MutexGuard<'_, State> {
    // A panic while holding the lock only happens in a test that already failed.
    s.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

// ---------------------------------------------------------------------------
// The handle
// ---------------------------------------------------------------------------

/// A running sandbox; stops when dropped.
#[derive(Debug)]
pub struct StripeSandbox {
    addr: SocketAddr,
    state: Shared,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for StripeSandbox {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl StripeSandbox {
    /// Binds 127.0.0.1 on a free port and serves in a background task.
    pub async fn start(opts: StripeSandboxOptions) -> std::io::Result<Self> {
        let mut keys: HashMap<String, Option<HashSet<String>>> = HashMap::new();
        for k in &opts.secret_keys {
            keys.insert(k.clone(), None);
        }
        for (k, readable) in &opts.restricted_keys {
            keys.insert(k.clone(), Some(readable.iter().cloned().collect()));
        }
        let state = Arc::new(Mutex::new(State {
            collections: RESOURCES.iter().map(|(p, _)| ((*p).to_owned(), Collection::default())).collect(),
            keys,
            account_id: opts.account_id.clone(),
            fixed_now: opts.now,
            event_seq: 0,
            faults: Faults {
                burst: Burst::default(),
                p429: 0.0,
                p500: 0.0,
                latency: Duration::ZERO,
                outage: false,
                rng: StdRng::seed_from_u64(opts.seed),
            },
            log: Vec::new(),
            total: 0,
            per_path: BTreeMap::new(),
            per_status: BTreeMap::new(),
        }));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let app = Router::new().fallback(handle).with_state(state.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "stripe sandbox stopped with an error");
            }
        });
        Ok(Self { addr, state, shutdown: Some(tx) })
    }

    /// `http://127.0.0.1:PORT` (paths `/v1/...` are appended, like `STRIPE_API_BASE`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    // --- data -------------------------------------------------------------

    /// Stores (or replaces) an object; returns its id (one is made up when
    /// missing; `created` defaults to the sandbox clock).
    pub fn insert(&self, resource: &str, obj: Value) -> String {
        lock(&self.state).insert(resource, obj)
    }

    /// Stores many objects of (resource, object) pairs.
    pub fn insert_all<I: IntoIterator<Item = (String, Value)>>(&self, items: I) -> usize {
        let mut st = lock(&self.state);
        let mut n = 0;
        for (r, v) in items {
            st.insert(&r, v);
            n += 1;
        }
        n
    }

    /// Merges `patch` into the stored object (nested objects merge, other
    /// values replace). False when there is no such object.
    pub fn update(&self, resource: &str, id: &str, patch: Value) -> bool {
        let mut st = lock(&self.state);
        let Some(coll) = st.collections.get_mut(resource) else { return false };
        let Some(current) = coll.objects.get(id).cloned() else { return false };
        coll.upsert(id.to_owned(), merge(current, patch));
        true
    }

    /// The stored object, as stored (unexpanded).
    pub fn get(&self, resource: &str, id: &str) -> Option<Value> {
        lock(&self.state).collections.get(resource).and_then(|c| c.objects.get(id).cloned())
    }

    /// Objects stored for `resource` (deleted customers included).
    pub fn count(&self, resource: &str) -> usize {
        lock(&self.state).collections.get(resource).map_or(0, |c| c.objects.len())
    }

    /// Replaces the customer by Stripe's deleted stub. False if unknown.
    pub fn delete_customer(&self, id: &str) -> bool {
        let mut st = lock(&self.state);
        let Some(coll) = st.collections.get_mut("customers") else { return false };
        let Some(current) = coll.objects.get(id) else { return false };
        let mut stub = json!({"id": id, "object": "customer", "deleted": true});
        // Keep `created` only for the index; lists hide deleted customers.
        if let (Some(m), Some(c)) = (stub.as_object_mut(), current.get("created").cloned()) {
            m.insert("created".to_owned(), c);
        }
        coll.upsert(id.to_owned(), stub);
        true
    }

    /// Records an event (`evt_…`) with `data.object = object`, created at
    /// the sandbox clock; returns its id. Ids increase, so events emitted in
    /// the same second still list newest first. The object itself is not
    /// stored: `insert`/`update` it separately when the test needs it.
    pub fn emit_event(&self, event_type: &str, object: Value) -> String {
        let mut st = lock(&self.state);
        st.event_seq += 1;
        let id = format!("evt_1Sbx{:012}", st.event_seq);
        let created = st.now();
        let livemode = object.get("livemode").and_then(Value::as_bool).unwrap_or(false);
        let event = Seed::event(&id, event_type, object, created, livemode);
        st.insert("events", event);
        id
    }

    /// Fixes the clock (unix seconds) used for emitted events and defaults.
    pub fn set_now(&self, ts: i64) {
        lock(&self.state).fixed_now = Some(ts);
    }

    /// Moves a fixed clock forward (fixes it at now + secs if it followed the system clock).
    pub fn advance(&self, secs: i64) {
        let mut st = lock(&self.state);
        let now = st.now();
        st.fixed_now = Some(now + secs);
    }

    pub fn now(&self) -> i64 {
        lock(&self.state).now()
    }

    /// Stores a charge and its balance transaction (`exchange_rate` set when
    /// the charge's currency differs from the account's, settled in USD).
    pub fn insert_charge(&self, charge: Value, exchange_rate: Option<f64>) -> String {
        let txn = Seed::balance_transaction_for(&charge, exchange_rate);
        let mut st = lock(&self.state);
        st.insert("balance_transactions", txn);
        st.insert("charges", charge)
    }

    /// Refunds `amount` of a stored charge: a `re_…` refund, the charge's
    /// `amount_refunded`/`refunded`/`refunds` updated. Returns the refund id.
    pub fn refund_charge(&self, charge_id: &str, amount: i64) -> Option<String> {
        let mut st = lock(&self.state);
        let charge = st.collections.get("charges")?.objects.get(charge_id)?.clone();
        let n = st.collections.get("refunds").map_or(0, |c| c.objects.len()) + 1;
        let created = created_of(&charge) + 86_400;
        let refund = Seed::refund(&format!("re_{}_{n}", charge_id.trim_start_matches("ch_")), &charge, amount, created);
        let refund_id = st.insert("refunds", refund.clone());
        let refunded_total = charge.get("amount_refunded").and_then(Value::as_i64).unwrap_or(0) + amount;
        let captured = charge.get("amount_captured").and_then(Value::as_i64).unwrap_or(0);
        let mut data = charge.pointer("/refunds/data").and_then(Value::as_array).cloned().unwrap_or_default();
        data.insert(0, refund);
        let patched = merge(
            charge,
            json!({
                "amount_refunded": refunded_total,
                "refunded": refunded_total >= captured,
                "refunds": {"object": "list", "data": data, "has_more": false, "total_count": null},
            }),
        );
        st.insert("charges", patched);
        Some(refund_id)
    }

    /// Inserts [`demo_dataset`]`(n_customers, seed)`.
    pub fn seed_demo_dataset(&self, n_customers: usize, seed: u64) -> DemoSummary {
        let data = demo_dataset(n_customers, seed);
        let summary = DemoSummary::of(&data);
        self.insert_all(data.into_iter().map(|(r, v)| (r.to_owned(), v)));
        summary
    }

    // --- faults -----------------------------------------------------------

    /// The next `count` requests answer 429 (Stripe's `rate_limit` error).
    pub fn burst_429(&self, count: u32) {
        self.burst(Burst { count, ..Burst::default() });
    }

    pub fn burst(&self, burst: Burst) {
        lock(&self.state).faults.burst = burst;
    }

    /// Probabilities (0..=1) that a request answers 429 or 500 (seeded RNG).
    pub fn set_error_rates(&self, p429: f64, p500: f64) {
        let mut st = lock(&self.state);
        st.faults.p429 = p429.clamp(0.0, 1.0);
        st.faults.p500 = p500.clamp(0.0, 1.0);
    }

    /// Delay added before every answer.
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.state).faults.latency = latency;
    }

    /// Every request answers 503 while true.
    pub fn set_outage(&self, down: bool) {
        lock(&self.state).faults.outage = down;
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        let mut st = lock(&self.state);
        st.faults.burst = Burst::default();
        st.faults.p429 = 0.0;
        st.faults.p500 = 0.0;
        st.faults.latency = Duration::ZERO;
        st.faults.outage = false;
    }

    // --- observation ------------------------------------------------------

    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.state).log.clone()
    }

    /// Requests received (faulted ones included).
    pub fn request_count(&self) -> u64 {
        lock(&self.state).total
    }

    /// Requests received for one path (e.g. `/v1/customers`).
    pub fn request_count_for(&self, path: &str) -> u64 {
        lock(&self.state).per_path.get(path).copied().unwrap_or(0)
    }

    /// Requests answered with `status`.
    pub fn status_count(&self, status: u16) -> u64 {
        lock(&self.state).per_status.get(&status).copied().unwrap_or(0)
    }

    pub fn reset_log(&self) {
        let mut st = lock(&self.state);
        st.log.clear();
        st.total = 0;
        st.per_path.clear();
        st.per_status.clear();
    }
}

/// JSON merge: objects merge key by key, anything else replaces.
pub fn merge(base: Value, patch: Value) -> Value {
    match (base, patch) {
        (Value::Object(mut b), Value::Object(p)) => {
            for (k, v) in p {
                let merged = match b.remove(&k) {
                    Some(old) => merge(old, v),
                    None => v,
                };
                b.insert(k, merged);
            }
            Value::Object(b)
        }
        (_, p) => p,
    }
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

struct ApiError {
    status: StatusCode,
    body: Value,
    headers: Vec<(&'static str, String)>,
}

impl ApiError {
    fn invalid(message: impl Into<String>, param: Option<&str>, code: Option<&str>) -> Self {
        let mut e = json!({"type": "invalid_request_error", "message": message.into()});
        if let Some(p) = param {
            e["param"] = json!(p);
        }
        if let Some(c) = code {
            e["code"] = json!(c);
        }
        Self { status: StatusCode::BAD_REQUEST, body: json!({ "error": e }), headers: Vec::new() }
    }

    fn missing(resource: &str, id: &str, param: &str) -> Self {
        let mut e =
            Self::invalid(format!("No such {}: '{id}'", singular(resource)), Some(param), Some("resource_missing"));
        if param == "id" {
            e.status = StatusCode::NOT_FOUND;
        }
        e
    }

    fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(self.body)).into_response();
        for (k, v) in self.headers {
            if let Ok(hv) = HeaderValue::from_str(&v) {
                resp.headers_mut().insert(k, hv);
            }
        }
        resp
    }
}

/// `sk_test_abcdef1234` → `sk_test_****1234`.
fn mask_key(key: &str) -> String {
    let prefix_len = key.match_indices('_').nth(1).map_or(0, |(i, _)| i + 1);
    let tail: String = key.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    format!("{}****{}", &key[..prefix_len.min(key.len())], tail)
}

async fn handle(AxState(state): AxState<Shared>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().to_owned();
    let query = uri.query().unwrap_or("").to_owned();
    let latency = lock(&state).faults.latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let result = {
        let mut st = lock(&state);
        answer(&mut st, &method, &uri, &headers)
    };
    let resp = match result {
        Ok(v) => (StatusCode::OK, axum::Json(v)).into_response(),
        Err(e) => e.into_response(),
    };
    let status = resp.status().as_u16();
    let mut st = lock(&state);
    st.total += 1;
    *st.per_path.entry(path.clone()).or_default() += 1;
    *st.per_status.entry(status).or_default() += 1;
    st.log.push(LoggedRequest { method: method.to_string(), path, query, status });
    resp
}

fn answer(st: &mut State, method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<Value, ApiError> {
    inject_faults(st)?;
    let readable = authenticate(st, headers)?;
    if method != Method::GET {
        return Err(ApiError::invalid("The sandbox only serves GET requests.", None, None)
            .with_status(StatusCode::METHOD_NOT_ALLOWED));
    }
    let params: Vec<(String, String)> = Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|e| ApiError::invalid(format!("Invalid query string: {e}"), None, None))?;
    let Some(rest) = uri.path().strip_prefix("/v1/") else {
        return Err(unrecognized(uri.path()));
    };
    let rest = rest.trim_end_matches('/');
    let (resource, id) = if let Some(r) = rest.strip_prefix("checkout/sessions") {
        ("checkout/sessions".to_owned(), r.strip_prefix('/').map(str::to_owned))
    } else {
        match rest.split_once('/') {
            Some((r, id)) => (r.to_owned(), Some(id.to_owned())),
            None => (rest.to_owned(), None),
        }
    };
    if id.as_deref().is_some_and(|i| i.is_empty() || i.contains('/')) {
        return Err(unrecognized(uri.path()));
    }
    let known = RESOURCES.iter().any(|(p, _)| *p == resource);
    let top_level = matches!(resource.as_str(), "account" | "balance") && id.is_none();
    if !known && !top_level {
        return Err(unrecognized(uri.path()));
    }
    if let Some(allowed) = readable {
        if !allowed.contains(&resource) {
            return Err(permission_denied(st, headers, &resource));
        }
    }
    let expand = expand_params(&params);
    match (resource.as_str(), id) {
        ("account", None) => {
            let mut acct = fixture("account");
            acct["id"] = json!(st.account_id);
            Ok(acct)
        }
        ("balance", None) => Ok(fixture("balance")),
        (_, Some(id)) => {
            let coll = st.collections.get(&resource).ok_or_else(|| unrecognized(uri.path()))?;
            let mut obj = coll.objects.get(&id).cloned().ok_or_else(|| ApiError::missing(&resource, &id, "id"))?;
            if is_deleted(&obj) {
                return Ok(
                    json!({"id": id, "object": obj.get("object").cloned().unwrap_or(json!("customer")), "deleted": true}),
                );
            }
            for e in &expand {
                let segs: Vec<&str> = e.split('.').collect();
                expand_path(st, &mut obj, &segs);
            }
            Ok(obj)
        }
        (_, None) => list(st, &resource, &params, &expand),
    }
}

fn unrecognized(path: &str) -> ApiError {
    ApiError::invalid(format!("Unrecognized request URL (GET: {path})."), None, None).with_status(StatusCode::NOT_FOUND)
}

fn inject_faults(st: &mut State) -> Result<(), ApiError> {
    let f = &mut st.faults;
    if f.outage {
        return Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            body: json!({"error": {"type": "api_error", "message": "The service is temporarily unavailable."}}),
            headers: Vec::new(),
        });
    }
    let rate_limited = |burst: &Burst| {
        let mut headers = Vec::new();
        if let Some(r) = burst.should_retry {
            headers.push(("stripe-should-retry", r.to_string()));
        }
        if let Some(s) = burst.retry_after {
            headers.push(("retry-after", s.to_string()));
        }
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            body: json!({"error": {
                "type": "invalid_request_error",
                "code": "rate_limit",
                "doc_url": "https://stripe.com/docs/error-codes/rate-limit",
                "message": "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits."
            }}),
            headers,
        }
    };
    if f.burst.count > 0 {
        f.burst.count -= 1;
        return Err(rate_limited(&f.burst));
    }
    if f.p429 > 0.0 || f.p500 > 0.0 {
        let x: f64 = f.rng.random();
        if x < f.p429 {
            return Err(rate_limited(&Burst::default()));
        }
        if x < f.p429 + f.p500 {
            return Err(ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                body: json!({"error": {"type": "api_error", "message": "An unknown error occurred"}}),
                headers: Vec::new(),
            });
        }
    }
    Ok(())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get("authorization")?.to_str().ok()?;
    v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")).map(str::trim)
}

/// `Ok(None)`: full access; `Ok(Some(set))`: a restricted key.
fn authenticate(st: &State, headers: &HeaderMap) -> Result<Option<HashSet<String>>, ApiError> {
    let unauthorized = |message: String| ApiError::invalid(message, None, None).with_status(StatusCode::UNAUTHORIZED);
    let Some(key) = bearer(headers) else {
        return Err(unauthorized(
            "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
                .to_owned(),
        ));
    };
    match st.keys.get(key) {
        Some(access) => Ok(access.clone()),
        None => Err(unauthorized(format!("Invalid API Key provided: {}", mask_key(key)))),
    }
}

fn permission_denied(st: &State, headers: &HeaderMap, resource: &str) -> ApiError {
    let masked = bearer(headers).map(mask_key).unwrap_or_default();
    ApiError::invalid(
        format!(
            "The provided key '{masked}' does not have the required permissions for this endpoint on account '{}'. Having the 'rak_{}_read' permission would allow this request to continue.",
            st.account_id,
            singular(resource)
        ),
        None,
        None,
    )
    .with_status(StatusCode::FORBIDDEN)
}

/// `expand[]=a` and `expand[0]=a` alike.
fn expand_params(params: &[(String, String)]) -> Vec<String> {
    array_param(params, "expand")
}

fn array_param(params: &[(String, String)], name: &str) -> Vec<String> {
    params
        .iter()
        .filter(|(k, _)| {
            k.strip_prefix(name)
                .and_then(|r| r.strip_prefix('['))
                .and_then(|r| r.strip_suffix(']'))
                .is_some_and(|inner| inner.chars().all(|c| c.is_ascii_digit()))
        })
        .map(|(_, v)| v.clone())
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Replaces ids along `segs` by the objects they name; arrays apply the rest
/// of the path to each element.
fn expand_path(st: &State, v: &mut Value, segs: &[&str]) {
    let Some((first, rest)) = segs.split_first() else { return };
    match v {
        Value::Array(items) => {
            for item in items {
                expand_path(st, item, segs);
            }
        }
        Value::Object(m) => {
            let Some(child) = m.get_mut(*first) else { return };
            if let Some(id) = child.as_str() {
                if let Some(found) = st.find_any(id) {
                    *child = found.clone();
                }
            }
            expand_path(st, child, rest);
        }
        _ => {}
    }
}

fn parse_i64(params: &[(String, String)], name: &str) -> Result<Option<i64>, ApiError> {
    match param(params, name) {
        None => Ok(None),
        Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
            ApiError::invalid(format!("Invalid integer: {v}"), Some(name), Some("parameter_invalid_integer"))
        }),
    }
}

fn field_matches(v: &Value, field: &str, wanted: &str) -> bool {
    match v.get(field) {
        Some(Value::String(s)) => s == wanted,
        Some(Value::Bool(b)) => b.to_string() == wanted,
        Some(Value::Number(n)) => n.to_string() == wanted,
        Some(Value::Object(o)) => o.get("id").and_then(Value::as_str) == Some(wanted),
        _ => false,
    }
}

fn list(st: &State, resource: &str, params: &[(String, String)], expand: &[String]) -> Result<Value, ApiError> {
    let limit = match parse_i64(params, "limit")? {
        None => 10,
        Some(l) if l < 1 => {
            return Err(ApiError::invalid(
                "This value must be greater than or equal to 1.",
                Some("limit"),
                Some("parameter_invalid_integer"),
            ))
        }
        Some(l) if l > 100 => {
            return Err(ApiError::invalid(
                format!("This value must be less than or equal to 100 (it currently is '{l}')."),
                Some("limit"),
                Some("parameter_invalid_integer"),
            ))
        }
        Some(l) => usize::try_from(l).unwrap_or(100),
    };
    let gte = parse_i64(params, "created[gte]")?;
    let gt = parse_i64(params, "created[gt]")?;
    let lte = parse_i64(params, "created[lte]")?;
    let lt = parse_i64(params, "created[lt]")?;
    let exact = parse_i64(params, "created")?;
    let eq: Vec<(&str, &str)> =
        equality_filters(resource).iter().filter_map(|f| param(params, f).map(|v| (*f, v))).collect();
    let sub_status = (resource == "subscriptions").then(|| param(params, "status").unwrap_or("")).map(str::to_owned);
    let sub_price = if resource == "subscriptions" { param(params, "price") } else { None };
    let mut event_types: Vec<String> = Vec::new();
    if resource == "events" {
        let types = array_param(params, "types");
        if types.len() > 20 {
            return Err(ApiError::invalid(
                "You may pass at most 20 event types in `types`.",
                Some("types"),
                Some("parameter_invalid_array"),
            ));
        }
        event_types = types;
        if let Some(t) = param(params, "type") {
            event_types.push(t.to_owned());
        }
    }

    let matches = |v: &Value| -> bool {
        if is_deleted(v) {
            return false;
        }
        let c = created_of(v);
        if gte.is_some_and(|x| c < x)
            || gt.is_some_and(|x| c <= x)
            || lte.is_some_and(|x| c > x)
            || lt.is_some_and(|x| c >= x)
            || exact.is_some_and(|x| c != x)
        {
            return false;
        }
        if !eq.iter().all(|(f, w)| field_matches(v, f, w)) {
            return false;
        }
        if let Some(status) = &sub_status {
            let s = v.get("status").and_then(Value::as_str).unwrap_or("");
            let ok = match status.as_str() {
                "" => !matches!(s, "canceled" | "incomplete_expired"),
                "all" => true,
                "ended" => matches!(s, "canceled" | "incomplete_expired"),
                other => s == other,
            };
            if !ok {
                return false;
            }
        }
        if let Some(price) = sub_price {
            let has = v
                .pointer("/items/data")
                .and_then(Value::as_array)
                .is_some_and(|items| items.iter().any(|i| field_matches(i, "price", price)));
            if !has {
                return false;
            }
        }
        if !event_types.is_empty() {
            let t = v.get("type").and_then(Value::as_str).unwrap_or("");
            let ok = event_types.iter().any(|w| match w.strip_suffix('*') {
                Some(prefix) => t.starts_with(prefix),
                None => t == w,
            });
            if !ok {
                return false;
            }
        }
        true
    };

    let empty = Collection::default();
    let coll = st.collections.get(resource).unwrap_or(&empty);
    let position = |param_name: &str, id: &str| -> Result<usize, ApiError> {
        let key = coll.key_of(id).ok_or_else(|| ApiError::missing(resource, id, param_name))?;
        coll.order.binary_search(&key).map_err(|_| ApiError::missing(resource, id, param_name))
    };
    let get = |k: &(i64, String)| coll.objects.get(&k.1);
    let (page, has_more) = if let Some(after) = param(params, "starting_after") {
        let pos = position("starting_after", after)?;
        take(coll.order[..pos].iter().rev().filter_map(get).filter(|v| matches(v)), limit)
    } else if let Some(before) = param(params, "ending_before") {
        let pos = position("ending_before", before)?;
        let (mut page, more) = take(coll.order[pos + 1..].iter().filter_map(get).filter(|v| matches(v)), limit);
        page.reverse();
        (page, more)
    } else {
        take(coll.order.iter().rev().filter_map(get).filter(|v| matches(v)), limit)
    };
    let data_expands: Vec<Vec<&str>> =
        expand.iter().filter_map(|e| e.strip_prefix("data.")).map(|e| e.split('.').collect()).collect();
    let data: Vec<Value> = page
        .into_iter()
        .map(|v| {
            let mut v = v.clone();
            for segs in &data_expands {
                expand_path(st, &mut v, segs);
            }
            v
        })
        .collect();
    Ok(json!({"object": "list", "url": format!("/v1/{resource}"), "has_more": has_more, "data": data}))
}

/// Up to `limit` items and whether more follow.
fn take<'a>(mut it: impl Iterator<Item = &'a Value>, limit: usize) -> (Vec<&'a Value>, bool) {
    let mut out = Vec::with_capacity(limit.min(100));
    for v in it.by_ref() {
        if out.len() == limit {
            return (out, true);
        }
        out.push(v);
    }
    (out, false)
}

// ---------------------------------------------------------------------------
// Seeding
// ---------------------------------------------------------------------------

fn fixtures() -> &'static Value {
    static PARSED: OnceLock<Value> = OnceLock::new();
    PARSED.get_or_init(|| serde_json::from_str(FIXTURES).unwrap_or_else(|_| json!({"resources": {}})))
}

/// A copy of Stripe's example object `name` (e.g. `customer`, `charge`,
/// `checkout.session`); `{}` if unknown.
pub fn fixture(name: &str) -> Value {
    fixtures().get("resources").and_then(|r| r.get(name)).cloned().unwrap_or_else(|| json!({}))
}

/// Minor units per major unit (Stripe's zero-decimal currencies are 1).
/// <https://docs.stripe.com/currencies#zero-decimal>
pub fn minor_per_major(currency: &str) -> i64 {
    const ZERO_DECIMAL: &[&str] = &[
        "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf",
    ];
    if ZERO_DECIMAL.contains(&currency.to_ascii_lowercase().as_str()) {
        1
    } else {
        100
    }
}

/// Builders of realistic objects from Stripe's fixture shapes. Each returns
/// a `serde_json::Value`; adjust with [`merge`].
pub struct Seed;

impl Seed {
    pub fn customer(id: &str, email: Option<&str>, created: i64) -> Value {
        merge(
            fixture("customer"),
            json!({"id": id, "email": email, "created": created, "discount": null, "livemode": false}),
        )
    }

    /// A customer with a name and phone too.
    pub fn customer_full(
        id: &str,
        email: Option<&str>,
        name: Option<&str>,
        phone: Option<&str>,
        created: i64,
    ) -> Value {
        merge(Self::customer(id, email, created), json!({"name": name, "phone": phone}))
    }

    /// A succeeded, captured card charge; its balance transaction id is
    /// `txn_` + the charge id's suffix (see [`Seed::balance_transaction_for`]).
    pub fn charge(id: &str, customer: Option<&str>, amount: i64, currency: &str, created: i64) -> Value {
        let suffix = id.trim_start_matches("ch_").trim_start_matches("py_");
        merge(
            fixture("charge"),
            json!({
                "id": id, "customer": customer, "amount": amount, "amount_captured": amount, "amount_refunded": 0,
                "currency": currency, "created": created, "captured": true, "paid": true, "refunded": false,
                "status": "succeeded", "balance_transaction": format!("txn_{suffix}"), "source": null,
                "receipt_url": null, "livemode": false, "description": null,
                "refunds": {"object": "list", "data": [], "has_more": false, "url": format!("/v1/charges/{id}/refunds")},
            }),
        )
    }

    /// A failed charge (nothing captured, no balance transaction).
    pub fn failed_charge(id: &str, customer: Option<&str>, amount: i64, currency: &str, created: i64) -> Value {
        merge(
            Self::charge(id, customer, amount, currency, created),
            json!({"status": "failed", "paid": false, "captured": false, "amount_captured": 0,
                   "balance_transaction": null, "failure_code": "card_declined",
                   "failure_message": "Your card was declined."}),
        )
    }

    /// Sets `payment_method_details.type` (e.g. `klarna`).
    pub fn with_payment_method(charge: Value, kind: &str) -> Value {
        let mut c = charge;
        c["payment_method_details"] = json!({ "type": kind, kind: {} });
        c
    }

    /// The balance transaction of `charge`. With `exchange_rate`, the charge
    /// settled in USD: amount = major units × rate, in cents.
    pub fn balance_transaction_for(charge: &Value, exchange_rate: Option<f64>) -> Value {
        let id = charge.get("balance_transaction").and_then(Value::as_str).unwrap_or("txn_unknown");
        let amount = charge.get("amount_captured").and_then(Value::as_i64).unwrap_or(0);
        let currency = charge.get("currency").and_then(Value::as_str).unwrap_or("usd");
        let created = created_of(charge);
        let (settled, settled_currency) = match exchange_rate {
            Some(rate) => {
                let major = amount as f64 / minor_per_major(currency) as f64;
                ((major * rate * 100.0).round() as i64, "usd")
            }
            None => (amount, currency),
        };
        let fee = settled * 29 / 1000 + 30;
        merge(
            fixture("balance_transaction"),
            json!({
                "id": id, "amount": settled, "currency": settled_currency, "exchange_rate": exchange_rate,
                "created": created, "available_on": created + 2 * 86_400, "fee": fee, "net": settled - fee,
                "source": charge.get("id").cloned().unwrap_or(Value::Null), "description": null,
            }),
        )
    }

    pub fn refund(id: &str, charge: &Value, amount: i64, created: i64) -> Value {
        merge(
            fixture("refund"),
            json!({
                "id": id, "amount": amount, "charge": charge.get("id").cloned().unwrap_or(Value::Null),
                "currency": charge.get("currency").cloned().unwrap_or(json!("usd")),
                "customer": charge.get("customer").cloned().unwrap_or(Value::Null),
                "created": created, "status": "succeeded",
            }),
        )
    }

    pub fn product(id: &str, name: &str, created: i64) -> Value {
        merge(
            fixture("product"),
            json!({"id": id, "name": name, "created": created, "updated": created, "default_price": null,
                   "description": null, "package_dimensions": null, "livemode": false}),
        )
    }

    /// A price; `recurring = Some((interval, interval_count))` for
    /// subscriptions (`day|week|month|year`), `None` for one-time.
    pub fn price(
        id: &str,
        product: &str,
        unit_amount: i64,
        currency: &str,
        recurring: Option<(&str, u32)>,
        created: i64,
    ) -> Value {
        let (kind, rec) = match recurring {
            Some((interval, count)) => (
                "recurring",
                json!({"interval": interval, "interval_count": count, "meter": null,
                       "trial_period_days": null, "usage_type": "licensed"}),
            ),
            None => ("one_time", Value::Null),
        };
        let mut p = merge(
            fixture("price"),
            json!({"id": id, "product": product, "unit_amount": unit_amount,
                   "unit_amount_decimal": unit_amount.to_string(), "currency": currency,
                   "type": kind, "created": created, "transform_quantity": null, "livemode": false}),
        );
        p["recurring"] = rec;
        p
    }

    /// A subscription with one item of `price` (embedded, as Stripe does;
    /// its `product` stays an id, expandable). Status-dependent dates are
    /// filled in (trial for `trialing`, `canceled_at`/`ended_at` for `canceled`).
    pub fn subscription(id: &str, customer: &str, price: &Value, quantity: u32, status: &str, created: i64) -> Value {
        let item_id = format!("si_{}", id.trim_start_matches("sub_"));
        let item = merge(
            fixture("subscription_item"),
            json!({"id": item_id, "created": created, "quantity": quantity, "subscription": id,
                   "current_period_start": created, "current_period_end": created + 30 * 86_400}),
        );
        let mut item = item;
        item["price"] = price.clone();
        if let Some(m) = item.as_object_mut() {
            m.remove("plan");
        }
        let (trial_start, trial_end) = if status == "trialing" {
            (json!(created), json!(created + 14 * 86_400))
        } else {
            (Value::Null, Value::Null)
        };
        let ended = if matches!(status, "canceled" | "incomplete_expired") {
            json!(created + 60 * 86_400)
        } else {
            Value::Null
        };
        let mut s = merge(
            fixture("subscription"),
            json!({
                "id": id, "customer": customer, "status": status, "created": created, "start_date": created,
                "billing_cycle_anchor": created, "currency": price.get("currency").cloned().unwrap_or(json!("usd")),
                "cancel_at_period_end": false, "cancel_at": null, "canceled_at": ended, "ended_at": ended,
                "trial_start": trial_start, "trial_end": trial_end, "livemode": false, "pending_update": null,
                "pause_collection": null, "next_pending_invoice_item_invoice": null, "transfer_data": null,
                "billing_cycle_anchor_config": null, "billing_schedules": [], "pending_invoice_item_interval": null,
            }),
        );
        s["items"] = json!({"object": "list", "data": [item], "has_more": false, "total_count": 1,
                            "url": format!("/v1/subscription_items?subscription={id}")});
        s
    }

    /// An event in Stripe's shape.
    pub fn event(id: &str, event_type: &str, object: Value, created: i64, livemode: bool) -> Value {
        let mut e = merge(
            fixture("event"),
            json!({"id": id, "type": event_type, "created": created, "livemode": livemode,
                   "api_version": SANDBOX_API_VERSION, "pending_webhooks": 0,
                   "request": {"id": null, "idempotency_key": null}}),
        );
        e["data"] = json!({ "object": object });
        e
    }
}

/// How many objects of each resource a data set holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DemoSummary {
    pub counts: BTreeMap<String, usize>,
    /// Customers without an email (the connector must skip them).
    pub customers_without_email: usize,
}

impl DemoSummary {
    fn of(data: &[(&'static str, Value)]) -> Self {
        let mut s = Self::default();
        for (r, v) in data {
            *s.counts.entry((*r).to_owned()).or_default() += 1;
            if *r == "customers" && v.get("email").is_none_or(Value::is_null) {
                s.customers_without_email += 1;
            }
        }
        s
    }

    pub fn count(&self, resource: &str) -> usize {
        self.counts.get(resource).copied().unwrap_or(0)
    }
}

/// First `created` of the demo data (2025-01-01T00:00:00Z).
pub const DEMO_EPOCH: i64 = 1_735_689_600;

/// A deterministic, realistic data set: 4 products, 7 prices (monthly,
/// yearly, weekly, daily, every-3-months, metered, EUR), `n_customers`
/// customers (every 10th without email, some with phone and
/// `metadata.customer_tier`), 0–4 charges each (USD; customer 1 and every
/// 7th has a JPY charge and customer 2 and every 5th a EUR one, both with an
/// exchange rate; partial and full refunds; failed charges; Klarna), their
/// balance transactions, refunds, and subscriptions of several intervals and
/// statuses. Objects come in insertion order (products and prices first).
pub fn demo_dataset(n_customers: usize, seed: u64) -> Vec<(&'static str, Value)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out: Vec<(&'static str, Value)> = Vec::new();
    let t0 = DEMO_EPOCH;

    let products = [
        ("prod_DemoStarter", "Starter"),
        ("prod_DemoPro", "Pro"),
        ("prod_DemoTeam", "Team"),
        ("prod_DemoUsage", "API usage"),
    ];
    for (i, (id, name)) in products.iter().enumerate() {
        out.push(("products", Seed::product(id, name, t0 - 86_400 * (10 - i as i64))));
    }
    let mut prices = vec![
        Seed::price("price_DemoStarterMonthly", "prod_DemoStarter", 900, "usd", Some(("month", 1)), t0 - 86_400),
        Seed::price("price_DemoProYearly", "prod_DemoPro", 29_000, "usd", Some(("year", 1)), t0 - 86_400),
        Seed::price("price_DemoTeamWeekly", "prod_DemoTeam", 1_500, "usd", Some(("week", 1)), t0 - 86_400),
        Seed::price("price_DemoStarterDaily", "prod_DemoStarter", 100, "usd", Some(("day", 1)), t0 - 86_400),
        Seed::price("price_DemoProQuarterly", "prod_DemoPro", 7_500, "usd", Some(("month", 3)), t0 - 86_400),
        Seed::price("price_DemoUsageMetered", "prod_DemoUsage", 5, "usd", Some(("month", 1)), t0 - 86_400),
        Seed::price("price_DemoProMonthlyEur", "prod_DemoPro", 2_500, "eur", Some(("month", 1)), t0 - 86_400),
    ];
    prices[5]["recurring"]["usage_type"] = json!("metered");
    prices[0]["nickname"] = json!("Starter monthly");
    for p in &prices {
        out.push(("prices", p.clone()));
    }

    const FIRST: &[&str] =
        &["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Linus"];
    const LAST: &[&str] =
        &["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton", "Torvalds"];
    const STATUSES: &[&str] =
        &["active", "trialing", "past_due", "canceled", "active", "incomplete_expired", "unpaid", "active"];
    let span = 300 * 86_400i64;
    let mut refund_seq = 0usize;

    for i in 0..n_customers {
        let cus = format!("cus_Demo{i:06}");
        let created = t0 + (i as i64 * 7_919) % span;
        let first = FIRST[i % FIRST.len()];
        let last = LAST[(i / FIRST.len()) % LAST.len()];
        let email = (i % 10 != 9).then(|| format!("{}.{}{}@example.com", first.to_lowercase(), last.to_lowercase(), i));
        let phone = (i % 3 == 0).then(|| format!("+1 (415) 555-{:04}", i % 10_000));
        let mut customer =
            Seed::customer_full(&cus, email.as_deref(), Some(&format!("{first} {last}")), phone.as_deref(), created);
        if i % 4 == 0 {
            customer["metadata"] = json!({"customer_tier": if i % 8 == 0 { "gold" } else { "silver" }});
        }
        out.push(("customers", customer));

        let n_charges = rng.random_range(0..=4usize).max(usize::from(i < 6));
        for j in 0..n_charges {
            let ch = format!("ch_Demo{i:06}x{j}");
            let when = created + 3_600 + (j as i64) * 20 * 86_400 + rng.random_range(0..3_600);
            let (currency, amount, rate) = if j == 0 && (i == 1 || i % 7 == 1) {
                ("jpy", rng.random_range(10..200) * 100, Some(0.0067))
            } else if j == 0 && (i == 2 || i % 5 == 2) {
                ("eur", rng.random_range(500..20_000), Some(1.08))
            } else {
                ("usd", rng.random_range(500..50_000), None)
            };
            if (i + j) % 13 == 6 {
                out.push(("charges", Seed::failed_charge(&ch, Some(&cus), amount, currency, when)));
                continue;
            }
            let mut charge = Seed::charge(&ch, Some(&cus), amount, currency, when);
            if (i + j) % 9 == 5 {
                charge = Seed::with_payment_method(charge, "klarna");
            }
            let refund = if i == 3 || (i + j) % 11 == 4 {
                Some(amount) // full refund
            } else if (i + j) % 4 == 3 {
                Some(amount / 4)
            } else {
                None
            };
            out.push(("balance_transactions", Seed::balance_transaction_for(&charge, rate)));
            if let Some(r) = refund {
                refund_seq += 1;
                let re = Seed::refund(&format!("re_Demo{refund_seq:07}"), &charge, r, when + 86_400);
                charge = merge(
                    charge,
                    json!({"amount_refunded": r, "refunded": r >= amount,
                           "refunds": {"object": "list", "data": [re.clone()], "has_more": false}}),
                );
                out.push(("refunds", re));
            }
            out.push(("charges", charge));
        }

        if i % 5 < 2 || i < 4 {
            let price = &prices[(i / 2) % prices.len()];
            let status = STATUSES[i % STATUSES.len()];
            let sub = format!("sub_Demo{i:06}");
            let quantity = if i % 6 == 0 { 3 } else { 1 };
            out.push(("subscriptions", Seed::subscription(&sub, &cus, price, quantity, status, created + 600)));
            if status == "canceled" && i % 2 == 1 {
                // Came back later on another plan.
                let again = &prices[(i / 2 + 1) % prices.len()];
                out.push((
                    "subscriptions",
                    Seed::subscription(&format!("{sub}b"), &cus, again, 1, "active", created + 90 * 86_400),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const RK: &str = "rk_test_restrictedkey000000000000wxyz";

    async fn sandbox() -> StripeSandbox {
        StripeSandbox::start(StripeSandboxOptions::default().with_restricted_key(RK, &["customers", "charges"]))
            .await
            .unwrap()
    }

    async fn get_with(sb: &StripeSandbox, key: Option<&str>, path_and_query: &str) -> (u16, Value, HeaderMap) {
        let mut req = reqwest::Client::new().get(format!("{}{}", sb.base_url(), path_and_query));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body: Value = resp.json().await.unwrap();
        (status, body, headers)
    }

    async fn get(sb: &StripeSandbox, path_and_query: &str) -> (u16, Value) {
        let (s, b, _) = get_with(sb, Some(DEFAULT_SECRET_KEY), path_and_query).await;
        (s, b)
    }

    fn ids(body: &Value) -> Vec<String> {
        body["data"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_owned()).collect()
    }

    #[tokio::test]
    async fn pages_through_250_customers_newest_first_without_gaps_or_repeats() {
        let sb = sandbox().await;
        for i in 0..250 {
            // Groups of five share a timestamp: ties are ordered by id desc.
            sb.insert("customers", Seed::customer(&format!("cus_{i:04}"), None, 1_700_000_000 + (i / 5) as i64));
        }
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut more_flags = Vec::new();
        loop {
            let q = match &cursor {
                Some(c) => format!("/v1/customers?limit=100&starting_after={c}"),
                None => "/v1/customers?limit=100".to_owned(),
            };
            let (status, body) = get(&sb, &q).await;
            assert_eq!(status, 200);
            assert_eq!(body["object"], "list");
            let page = ids(&body);
            more_flags.push(body["has_more"].as_bool().unwrap());
            cursor = page.last().cloned();
            seen.extend(page);
            if !body["has_more"].as_bool().unwrap() {
                break;
            }
        }
        assert_eq!(more_flags, [true, true, false]);
        let expected: Vec<String> = (0..250).rev().map(|i| format!("cus_{i:04}")).collect();
        assert_eq!(seen, expected);

        // Default limit is 10; ending_before walks back towards newer objects.
        let (_, body) = get(&sb, "/v1/customers").await;
        assert_eq!(ids(&body).len(), 10);
        let (_, body) = get(&sb, "/v1/customers?limit=3&ending_before=cus_0100").await;
        assert_eq!(ids(&body), ["cus_0103", "cus_0102", "cus_0101"]);
        assert_eq!(body["has_more"], true);
        let (_, body) = get(&sb, "/v1/customers?limit=3&ending_before=cus_0248").await;
        assert_eq!(ids(&body), ["cus_0249"]);
        assert_eq!(body["has_more"], false);
    }

    #[tokio::test]
    async fn rejects_bad_limits_and_unknown_cursors_like_stripe() {
        let sb = sandbox().await;
        sb.insert("customers", Seed::customer("cus_a", None, 1));
        for q in ["/v1/customers?limit=101", "/v1/customers?limit=0", "/v1/customers?limit=x"] {
            let (status, body) = get(&sb, q).await;
            assert_eq!(status, 400, "{q}");
            assert_eq!(body["error"]["type"], "invalid_request_error");
            assert_eq!(body["error"]["param"], "limit");
        }
        let (status, body) = get(&sb, "/v1/customers?starting_after=cus_nope").await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["code"], "resource_missing");
        assert_eq!(body["error"]["param"], "starting_after");
        assert_eq!(body["error"]["message"], "No such customer: 'cus_nope'");
    }

    #[tokio::test]
    async fn filters_by_created_range_and_customer() {
        let sb = sandbox().await;
        for i in 0..10 {
            let cus = if i % 2 == 0 { "cus_even" } else { "cus_odd" };
            sb.insert_charge(Seed::charge(&format!("ch_{i}"), Some(cus), 100, "usd", 1_000 + i), None);
        }
        let (_, body) = get(&sb, "/v1/charges?limit=100&created[gte]=1003&created[lt]=1007").await;
        assert_eq!(ids(&body), ["ch_6", "ch_5", "ch_4", "ch_3"]);
        let (_, body) = get(&sb, "/v1/charges?limit=100&created%5Bgt%5D=1003&created%5Blte%5D=1005").await;
        assert_eq!(ids(&body), ["ch_5", "ch_4"]);
        let (_, body) = get(&sb, "/v1/charges?limit=100&customer=cus_odd&created[gte]=1005").await;
        assert_eq!(ids(&body), ["ch_9", "ch_7", "ch_5"]);
        assert_eq!(sb.count("balance_transactions"), 10);
    }

    #[tokio::test]
    async fn subscriptions_hide_ended_ones_unless_status_all() {
        let sb = sandbox().await;
        let price = Seed::price("price_m", "prod_x", 900, "usd", Some(("month", 1)), 1);
        for (i, status) in ["active", "canceled", "incomplete_expired", "trialing", "past_due"].iter().enumerate() {
            sb.insert(
                "subscriptions",
                Seed::subscription(&format!("sub_{i}"), "cus_1", &price, 1, status, 10 + i as i64),
            );
        }
        let (_, body) = get(&sb, "/v1/subscriptions?limit=100").await;
        assert_eq!(ids(&body), ["sub_4", "sub_3", "sub_0"]);
        let (_, body) = get(&sb, "/v1/subscriptions?limit=100&status=all").await;
        assert_eq!(ids(&body).len(), 5);
        let (_, body) = get(&sb, "/v1/subscriptions?status=canceled").await;
        assert_eq!(ids(&body), ["sub_1"]);
        let (_, body) = get(&sb, "/v1/subscriptions?status=all&customer=cus_2").await;
        assert!(ids(&body).is_empty());
        let (_, body) = get(&sb, "/v1/subscriptions?status=all&price=price_m&limit=2").await;
        assert_eq!(ids(&body), ["sub_4", "sub_3"]);
        assert_eq!(body["has_more"], true);
    }

    #[tokio::test]
    async fn events_filter_by_type_and_types_and_cap_types_at_20() {
        let sb = sandbox().await;
        sb.set_now(5_000);
        let a = sb.emit_event("charge.refunded", json!({"id": "ch_1", "object": "charge"}));
        let b = sb.emit_event("customer.subscription.updated", json!({"id": "sub_1", "object": "subscription"}));
        sb.advance(10);
        let c = sb.emit_event("invoice.payment_failed", json!({"id": "in_1", "object": "invoice"}));
        let (_, body) = get(&sb, "/v1/events").await;
        assert_eq!(ids(&body), [c.clone(), b.clone(), a.clone()]);
        assert_eq!(body["data"][0]["created"], 5_010);
        assert_eq!(body["data"][0]["data"]["object"]["id"], "in_1");
        let (_, body) = get(&sb, "/v1/events?type=charge.refunded").await;
        assert_eq!(ids(&body), std::slice::from_ref(&a));
        let (_, body) = get(&sb, "/v1/events?type=customer.*").await;
        assert_eq!(ids(&body), std::slice::from_ref(&b));
        let (_, body) = get(&sb, "/v1/events?types[]=charge.refunded&types[]=invoice.payment_failed").await;
        assert_eq!(ids(&body), [c, a]);
        let many: String = (0..21).map(|i| format!("&types[]=t.{i}")).collect();
        let (status, body) = get(&sb, &format!("/v1/events?limit=10{many}")).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["param"], "types");
    }

    #[tokio::test]
    async fn expands_nested_ids_on_lists_and_single_objects() {
        let sb = sandbox().await;
        sb.insert("customers", Seed::customer("cus_1", Some("a@example.com"), 1));
        sb.insert("products", Seed::product("prod_1", "Gold", 1));
        let price = Seed::price("price_1", "prod_1", 1000, "usd", Some(("year", 1)), 1);
        sb.insert("prices", price.clone());
        sb.insert("subscriptions", Seed::subscription("sub_1", "cus_1", &price, 2, "active", 5));
        sb.insert_charge(Seed::charge("ch_1", Some("cus_1"), 5000, "eur", 7), Some(1.1));

        let (_, body) = get(&sb, "/v1/charges?expand[]=data.balance_transaction&expand[]=data.customer").await;
        let ch = &body["data"][0];
        assert_eq!(ch["balance_transaction"]["object"], "balance_transaction");
        assert_eq!(ch["balance_transaction"]["exchange_rate"], 1.1);
        assert_eq!(ch["balance_transaction"]["amount"], 5500);
        assert_eq!(ch["customer"]["email"], "a@example.com");

        let (_, body) = get(&sb, "/v1/subscriptions?expand[0]=data.items.data.price.product").await;
        assert_eq!(body["data"][0]["items"]["data"][0]["price"]["product"]["name"], "Gold");
        assert_eq!(body["data"][0]["items"]["data"][0]["quantity"], 2);

        let (_, body) = get(&sb, "/v1/charges/ch_1?expand[]=balance_transaction").await;
        assert_eq!(body["balance_transaction"]["id"], "txn_1");
        // Without expand, ids stay ids.
        let (_, body) = get(&sb, "/v1/charges/ch_1").await;
        assert_eq!(body["balance_transaction"], "txn_1");
        assert_eq!(body["customer"], "cus_1");
    }

    #[tokio::test]
    async fn unknown_and_deleted_objects_answer_like_stripe() {
        let sb = sandbox().await;
        sb.insert("customers", Seed::customer("cus_1", None, 1));
        sb.insert("customers", Seed::customer("cus_2", None, 2));
        let (status, body) = get(&sb, "/v1/customers/cus_x").await;
        assert_eq!(status, 404);
        assert_eq!(
            body,
            json!({"error": {"type": "invalid_request_error", "code": "resource_missing",
                              "message": "No such customer: 'cus_x'", "param": "id"}})
        );
        assert!(sb.delete_customer("cus_1"));
        let (status, body) = get(&sb, "/v1/customers/cus_1").await;
        assert_eq!(status, 200);
        assert_eq!(body, json!({"id": "cus_1", "object": "customer", "deleted": true}));
        let (_, body) = get(&sb, "/v1/customers").await;
        assert_eq!(ids(&body), ["cus_2"]);
        assert!(sb.update(
            "customers",
            "cus_2",
            json!({"email": "new@example.com", "metadata": {"customer_tier": "gold"}})
        ));
        let (_, body) = get(&sb, "/v1/customers/cus_2").await;
        assert_eq!(body["email"], "new@example.com");
        assert_eq!(body["metadata"]["customer_tier"], "gold");
        assert_eq!(body["object"], "customer");
        let (status, _) = get(&sb, "/v1/widgets").await;
        assert_eq!(status, 404);
    }

    #[tokio::test]
    async fn authenticates_like_stripe_with_masked_keys_and_restricted_permissions() {
        let sb = sandbox().await;
        let (status, body, _) = get_with(&sb, Some("sk_test_wrongkey1234abcd"), "/v1/customers").await;
        assert_eq!(status, 401);
        assert_eq!(body["error"]["message"], "Invalid API Key provided: sk_test_****abcd");
        let (status, _, _) = get_with(&sb, None, "/v1/customers").await;
        assert_eq!(status, 401);

        let (status, _, _) = get_with(&sb, Some(RK), "/v1/customers").await;
        assert_eq!(status, 200);
        let (status, body, _) = get_with(&sb, Some(RK), "/v1/subscriptions?limit=1").await;
        assert_eq!(status, 403);
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(msg.contains("'rk_test_****wxyz'"), "{msg}");
        assert!(msg.contains("'rak_subscription_read'"), "{msg}");
        assert!(!msg.contains(RK));

        let (status, body) = get(&sb, "/v1/account").await;
        assert_eq!(status, 200);
        assert_eq!(body["object"], "account");
        let (status, body) = get(&sb, "/v1/balance").await;
        assert_eq!((status, body["object"].as_str()), (200, Some("balance")));
    }

    #[tokio::test]
    async fn bursts_of_429_then_normal_answers_and_counters() {
        let sb = sandbox().await;
        sb.insert("customers", Seed::customer("cus_1", None, 1));
        sb.burst(Burst { count: 2, should_retry: Some(true), retry_after: Some(1) });
        for _ in 0..2 {
            let (status, body, headers) = get_with(&sb, Some(DEFAULT_SECRET_KEY), "/v1/customers").await;
            assert_eq!(status, 429);
            assert_eq!(body["error"]["code"], "rate_limit");
            assert_eq!(headers["stripe-should-retry"], "true");
            assert_eq!(headers["retry-after"], "1");
        }
        let (status, _) = get(&sb, "/v1/customers").await;
        assert_eq!(status, 200);
        assert_eq!(sb.request_count(), 3);
        assert_eq!(sb.request_count_for("/v1/customers"), 3);
        assert_eq!(sb.status_count(429), 2);
        assert_eq!(sb.requests()[2].status, 200);

        sb.set_outage(true);
        assert_eq!(get(&sb, "/v1/customers").await.0, 503);
        sb.clear_faults();
        sb.set_latency(Duration::from_millis(50));
        let started = std::time::Instant::now();
        assert_eq!(get(&sb, "/v1/customers").await.0, 200);
        assert!(started.elapsed() >= Duration::from_millis(50));
        sb.reset_log();
        assert_eq!(sb.request_count(), 0);
    }

    #[tokio::test]
    async fn random_errors_follow_the_seed() {
        let mut runs = Vec::new();
        for _ in 0..2 {
            let sb = StripeSandbox::start(StripeSandboxOptions::default().with_seed(7)).await.unwrap();
            sb.set_error_rates(0.3, 0.2);
            let mut statuses = Vec::new();
            for _ in 0..40 {
                statuses.push(get(&sb, "/v1/customers").await.0);
            }
            runs.push(statuses);
        }
        assert_eq!(runs[0], runs[1]);
        assert!(runs[0].contains(&429) && runs[0].contains(&500) && runs[0].contains(&200));
    }

    #[test]
    fn fixtures_parse_and_seeds_keep_stripe_shapes() {
        assert_eq!(fixture("customer")["object"], "customer");
        let c = Seed::charge("ch_1", Some("cus_1"), 1234, "jpy", 10);
        assert_eq!(c["object"], "charge");
        assert_eq!(c["amount_captured"], 1234);
        assert_eq!(c["payment_method_details"]["type"], "card");
        let txn = Seed::balance_transaction_for(&c, Some(0.0067));
        // 1234 JPY (zero-decimal) × 0.0067 = 8.27 USD.
        assert_eq!(txn["amount"], 827);
        assert_eq!(txn["currency"], "usd");
        assert_eq!(txn["source"], "ch_1");
        let s = Seed::subscription(
            "sub_1",
            "cus_1",
            &Seed::price("price_1", "prod_1", 500, "usd", Some(("week", 2)), 1),
            1,
            "trialing",
            100,
        );
        assert_eq!(s["items"]["data"][0]["price"]["recurring"]["interval_count"], 2);
        assert_eq!(s["trial_end"], 100 + 14 * 86_400);
        assert_eq!(s["status"], "trialing");
    }

    #[test]
    fn the_demo_dataset_is_deterministic_and_covers_the_edge_cases() {
        let a = demo_dataset(60, 1);
        assert_eq!(a, demo_dataset(60, 1));
        assert_ne!(a, demo_dataset(60, 2));
        let summary = DemoSummary::of(&a);
        assert_eq!(summary.count("customers"), 60);
        assert_eq!(summary.customers_without_email, 6);
        let of = |r: &'static str| a.iter().filter(move |(res, _)| *res == r).map(|(_, v)| v);
        assert!(of("charges").any(|c| c["currency"] == "jpy"));
        assert!(of("charges").any(|c| c["currency"] == "eur"));
        assert!(of("balance_transactions").any(|t| t["exchange_rate"] == 1.08));
        assert!(of("charges").any(|c| c["refunded"] == true));
        assert!(of("charges").any(|c| c["refunded"] == false && c["amount_refunded"].as_i64().unwrap() > 0));
        assert!(of("charges").any(|c| c["status"] == "failed"));
        assert!(of("charges").any(|c| c["payment_method_details"]["type"] == "klarna"));
        assert!(summary.count("refunds") > 0);
        let statuses: HashSet<&str> = of("subscriptions").map(|s| s["status"].as_str().unwrap()).collect();
        for s in ["active", "trialing", "past_due", "canceled", "incomplete_expired"] {
            assert!(statuses.contains(s), "missing {s}");
        }
        let intervals: HashSet<String> =
            of("subscriptions").map(|s| s["items"]["data"][0]["price"]["recurring"]["interval"].to_string()).collect();
        assert!(intervals.len() >= 3);
        // Every charge's balance transaction exists.
        let txns: HashSet<&str> = of("balance_transactions").map(|t| t["id"].as_str().unwrap()).collect();
        assert!(of("charges")
            .filter(|c| c["status"] == "succeeded")
            .all(|c| txns.contains(c["balance_transaction"].as_str().unwrap())));
        // Small sets still have the special cases.
        let small = demo_dataset(4, 9);
        assert!(small.iter().any(|(r, v)| *r == "charges" && v["currency"] == "jpy"));
        assert!(small.iter().any(|(r, v)| *r == "charges" && v["currency"] == "eur"));
    }

    #[tokio::test]
    async fn seeded_demo_data_is_served() {
        let sb = sandbox().await;
        let summary = sb.seed_demo_dataset(30, 3);
        assert_eq!(sb.count("customers"), 30);
        assert_eq!(sb.count("charges"), summary.count("charges"));
        let (_, body) = get(&sb, "/v1/customers?limit=100").await;
        assert_eq!(ids(&body).len(), 30);
    }

    #[tokio::test]
    async fn refund_charge_updates_the_charge() {
        let sb = sandbox().await;
        sb.insert_charge(Seed::charge("ch_r", Some("cus_1"), 1000, "usd", 10), None);
        let re = sb.refund_charge("ch_r", 400).unwrap();
        let c = sb.get("charges", "ch_r").unwrap();
        assert_eq!((c["amount_refunded"].as_i64(), c["refunded"].as_bool()), (Some(400), Some(false)));
        sb.refund_charge("ch_r", 600).unwrap();
        let c = sb.get("charges", "ch_r").unwrap();
        assert_eq!(c["refunded"], true);
        assert_eq!(sb.get("refunds", &re).unwrap()["amount"], 400);
        assert!(sb.refund_charge("ch_none", 1).is_none());
    }

    #[test]
    fn masks_keys_like_stripe() {
        assert_eq!(mask_key("sk_test_abcdefgh1234"), "sk_test_****1234");
        assert_eq!(mask_key("rk_live_zz9876"), "rk_live_****9876");
    }
}
