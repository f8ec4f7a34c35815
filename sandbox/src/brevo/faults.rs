//! Brevo's endpoint families (rate-limited separately by Brevo) and fault
//! injection per family: queued faults for the next `n` requests, a seeded
//! probability per request, and an outage (503 to everything). A fault is
//! decided before the request is looked at; a 429 carries Brevo's
//! `x-sib-ratelimit-limit/-remaining/-reset` headers. Also Brevo's own rate
//! limits, when set (not a fault: `reset_faults` keeps them): at most N
//! requests of a family per one-second window, the others answer 429 until
//! the window ends. The limits are the account's: one sandbox is one
//! account, so every client of it shares them. 429s are counted per family
//! ([`BrevoSandbox::rate_limited`]).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue};
use rand::Rng;

use crate::latency::Latency;

use super::http::{error, Answer};
use super::state::{Shared, State};
use super::{BrevoSandbox, FamilyCounts};

/// Brevo endpoint families (rate-limited separately by Brevo).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// `/v3/contacts*` (contacts, import, lists, attributes).
    Contacts,
    /// `/v3/events*`.
    Events,
    /// `/v3/orders*`.
    Orders,
    /// Everything else (`/v3/account`, unknown paths).
    Other,
}

impl Family {
    pub const ALL: [Family; 4] = [Family::Contacts, Family::Events, Family::Orders, Family::Other];

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
}

/// An injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429 with Brevo's rate-limit headers (reset = the options' value).
    RateLimited,
    /// This status (500, 502, 503, …) with a JSON error body.
    Status(u16),
    /// Answer normally, after this long.
    Delay(Duration),
}

/// A family's rate limit and its current one-second window.
#[derive(Debug, Clone, Copy)]
pub(super) struct Window {
    pub(super) per_second: u32,
    started: Instant,
    used: u32,
}

impl Window {
    pub(super) fn new(per_second: u32) -> Self {
        Self { per_second, started: Instant::now(), used: 0 }
    }

    /// Takes one request from the window; false when it is used up.
    fn admit(&mut self) -> bool {
        if self.started.elapsed() >= Duration::from_secs(1) {
            self.started = Instant::now();
            self.used = 0;
        }
        if self.used < self.per_second {
            self.used += 1;
            true
        } else {
            false
        }
    }
}

/// One family's faults: queued ones first, then the random one.
#[derive(Debug, Default)]
pub(super) struct FaultPlan {
    queued: VecDeque<Fault>,
    random: Option<(f64, Fault)>,
}

impl BrevoSandbox {
    /// The next `n` requests of `family` get `fault`.
    pub fn fail_next(&self, family: Family, n: usize, fault: Fault) {
        let mut st = self.shared.lock();
        let plan = st.faults.entry(family).or_default();
        plan.queued.extend(std::iter::repeat_n(fault, n));
    }

    /// Each request of `family` gets `fault` with this probability (seeded RNG).
    pub fn fail_randomly(&self, family: Family, probability: f64, fault: Fault) {
        let p = if probability.is_finite() { probability.clamp(0.0, 1.0) } else { 0.0 };
        self.shared.lock().faults.entry(family).or_default().random = Some((p, fault));
    }

    /// While on, every request is answered 503.
    pub fn set_outage(&self, on: bool) {
        self.shared.lock().outage = on;
    }

    /// Brevo's rate limit for `family` from now on (`None`: unlimited):
    /// at most `per_second` requests per one-second window, then 429.
    pub fn set_rate_limit(&self, family: Family, per_second: Option<u32>) {
        let mut st = self.shared.lock();
        match per_second {
            Some(n) => st.limits.insert(family, Window::new(n)),
            None => st.limits.remove(&family),
        };
    }

    /// The response latency from now on: each answer waits uniformly in
    /// [latency − jitter, latency + jitter]. Not a fault: kept by `reset_faults`.
    pub fn set_response_latency(&self, latency: Duration, jitter: Duration) {
        self.shared.lock().latency.latency = Latency::new(latency, jitter);
    }

    /// The response latency in effect.
    pub fn response_latency(&self) -> Latency {
        self.shared.lock().latency.latency
    }

    /// 429s answered per family — Brevo's limits, which are the account's
    /// (one sandbox is one account: every client shares them), and injected
    /// ones — since the start or `clear_request_log`.
    pub fn rate_limited(&self) -> FamilyCounts {
        self.shared.lock().rate_limited
    }

    /// Removes every injected fault and ends an outage (the response latency stays).
    pub fn reset_faults(&self) {
        let mut st = self.shared.lock();
        st.faults.clear();
        st.outage = false;
    }
}

impl State {
    /// This request's fault: a 503 during an outage, else the family's next
    /// one, else a 429 when the family's rate limit is used up.
    pub(super) fn fault_for(&mut self, family: Family) -> Option<Fault> {
        if self.outage {
            return Some(Fault::Status(503));
        }
        let injected = self.next_fault(family);
        if injected.is_some() {
            return injected;
        }
        let admitted = self.limits.get_mut(&family).is_none_or(Window::admit);
        (!admitted).then_some(Fault::RateLimited)
    }

    fn next_fault(&mut self, family: Family) -> Option<Fault> {
        let plan = self.faults.get_mut(&family)?;
        if let Some(f) = plan.queued.pop_front() {
            return Some(f);
        }
        let (p, fault) = plan.random?;
        self.rng.random_bool(p).then_some(fault)
    }
}

/// Carries out `fault`: a delay sleeps (outside the lock) and lets the
/// request be answered normally (`None`); a 429 or another status is the
/// answer, the 429's rate-limit headers added to `extra`.
pub(super) async fn apply(
    fault: Option<Fault>,
    family: Family,
    shared: &Shared,
    extra: &mut HeaderMap,
) -> Option<Answer> {
    match fault {
        Some(Fault::Delay(d)) => {
            tokio::time::sleep(d).await;
            None
        }
        Some(Fault::RateLimited) => {
            let mut st = shared.lock();
            *match family {
                Family::Contacts => &mut st.rate_limited.contacts,
                Family::Events => &mut st.rate_limited.events,
                Family::Orders => &mut st.rate_limited.orders,
                Family::Other => &mut st.rate_limited.other,
            } += 1;
            let num = |n: u64| HeaderValue::from_str(&n.to_string()).unwrap_or(HeaderValue::from_static("0"));
            let limit = st.limits.get(&family).map_or(st.limit, |w| u64::from(w.per_second));
            extra.insert("x-sib-ratelimit-limit", num(limit));
            extra.insert("x-sib-ratelimit-remaining", HeaderValue::from_static("0"));
            extra.insert("x-sib-ratelimit-reset", num(st.reset_secs));
            Some(error(429, "too_many_requests", "Too many requests"))
        }
        Some(Fault::Status(s)) => Some(error(s, "internal_error", "Internal server error")),
        None => None,
    }
}
