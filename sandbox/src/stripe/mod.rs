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
//! - Stripe's per-account rate limit, off by default
//!   ([`StripeSandboxOptions::rate_limit`], [`StripeSandbox::set_rate_limit`]):
//!   every client of the sandbox shares it, 429 `rate_limit` beyond it, and
//!   the figures ([`StripeSandbox::rate_stats`]: requests, 429s, the busiest
//!   second); observer keys stay outside it;
//! - a response latency with jitter ([`StripeSandboxOptions::latency`],
//!   [`StripeSandbox::set_response_latency`]; none by default), not a fault:
//!   [`StripeSandbox::clear_faults`] leaves it;
//! - a request log and counters.
//!
//! Objects are built from Stripe's own example objects
//! (`fixtures/stripe_fixtures.json`, MIT) by [`Seed`]; [`demo_dataset`] makes a
//! deterministic, realistic data set of any size.
//!
//! It binds 127.0.0.1 on a free port only and stops when the handle drops.
//!
//! Layout: this file holds the handle ([`StripeSandbox`]: start, data,
//! clock, observation) and its options; `store` the shared state;
//! `resources` the table of served resources; `http` the router and its
//! errors, `auth` the keys; `pagination` and `query` the list and parameter
//! helpers; `faults` fault injection; `limit` the account's rate limit; one file per resource family
//! (`customers`, `charges`, `catalog`, `subscriptions`, `events`) with its
//! [`Seed`] builders and its handle helpers; `seed` the fixtures and `demo`
//! the demo data set.

mod auth;
mod catalog;
mod charges;
mod customers;
mod demo;
mod events;
mod faults;
mod http;
mod limit;
mod pagination;
mod query;
mod resources;
mod seed;
mod store;
mod subscriptions;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use serde_json::Value;

pub use charges::minor_per_major;
pub use demo::{demo_dataset, DemoSummary, DEMO_EPOCH};
pub use faults::Burst;
pub use limit::{RateLimit, RateStats, LIVE_MODE_PER_SECOND, TEST_MODE_PER_SECOND};
pub use resources::RESOURCES;
pub use seed::{fixture, Seed};
pub use store::merge;

use store::{lock, Shared, State};

/// The full-access test key every sandbox accepts unless told otherwise.
pub const DEFAULT_SECRET_KEY: &str = "sk_test_sandbox_0000000000000000000000000000";
/// The API version written into emitted events.
pub const SANDBOX_API_VERSION: &str = "2024-06-20";

// ---------------------------------------------------------------------------
// Options
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
    /// Delay before every answer, uniform in [latency − jitter, latency +
    /// jitter] (see [`crate::latency`]); zero by default.
    pub latency: Duration,
    pub jitter: Duration,
    /// The account's rate limit ([`RateLimit::TEST`], [`RateLimit::LIVE`] or
    /// any); `None` (the default): unlimited.
    pub rate_limit: Option<RateLimit>,
    /// Full-access keys outside the account: never rate limited, left out
    /// of [`StripeSandbox::rate_stats`] (a test's own checks of the data).
    pub observer_keys: Vec<String>,
}

impl Default for StripeSandboxOptions {
    fn default() -> Self {
        Self {
            secret_keys: vec![DEFAULT_SECRET_KEY.to_owned()],
            restricted_keys: Vec::new(),
            account_id: "acct_1PgafTB7WZ01zgkW".to_owned(),
            seed: 42,
            now: None,
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            rate_limit: None,
            observer_keys: Vec::new(),
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

    /// The account admits at most `limit.per_second` requests in any second.
    pub fn with_rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// A full-access key for a test's own reads, outside the account's rate
    /// limit and figures (real Stripe has no such key: it keeps the test's
    /// checks out of what the code under test is measured on).
    pub fn with_observer_key(mut self, key: impl Into<String>) -> Self {
        self.observer_keys.push(key.into());
        self
    }

    /// Every answer waits uniformly in [latency − jitter, latency + jitter].
    pub fn with_latency(mut self, latency: Duration, jitter: Duration) -> Self {
        self.latency = latency;
        self.jitter = jitter;
        self
    }
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
        for k in &opts.observer_keys {
            keys.insert(k.clone(), None);
        }
        let state = Arc::new(Mutex::new(State::new(keys, &opts)));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let app = Router::new().fallback(http::handle).with_state(state.clone());
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
    // (Family helpers live with their family: `delete_customer` in
    // `customers`, `insert_charge`/`refund_charge` in `charges`,
    // `emit_event` in `events`; faults in `faults`.)

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

    /// Inserts [`demo_dataset`]`(n_customers, seed)`.
    pub fn seed_demo_dataset(&self, n_customers: usize, seed: u64) -> DemoSummary {
        let data = demo_dataset(n_customers, seed);
        let summary = DemoSummary::of(&data);
        self.insert_all(data.into_iter().map(|(r, v)| (r.to_owned(), v)));
        summary
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
