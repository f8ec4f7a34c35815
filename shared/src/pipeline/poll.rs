//! The poller: Stripe → queue, on a schedule. Makes the Brevo side complete
//! (history from before the connector, webhooks missed during an outage) and
//! keeps it complete. It never maps or pushes: it only enqueues messages the
//! consumer understands.
//!
//! Per resource (customers, charges, … see [`RESOURCES`]) the cursor table
//! holds a [`CursorRecord`] in one of two modes:
//!
//! - **Backfill**: the resource is listed with `created[gte]=since`,
//!   `limit=100`, `starting_after` paging. Each page becomes ONE
//!   [`Snapshot`] message naming the distinct customers it touched (customers
//!   already named earlier in the same run are left out), keyed
//!   `backfill:<resource>:<run>:<page cursor>` so a replayed page is
//!   deduplicated by the consumer. Snapshots are sent in `SendMessageBatch`
//!   groups of 10 ([`PollOptions::pages_per_flush`] pages per batch) and the
//!   cursor is checkpointed right after each batch is durably queued, so a
//!   crash replays at most one batch of pages and a stop never skips one.
//!   Prices and products name no customer and enqueue nothing (the
//!   subscriptions backfill recomputes every subscriber, plan names
//!   included); guest checkout sessions (no `customer`) are counted only.
//!   When the list is exhausted the resource switches to incremental.
//! - **Incremental**: `/v1/events` filtered with the resource's `types[]`
//!   (≤ 20 per request, split when more) is the change feed. Each event is
//!   enqueued as the webhook would ([`Source::Poller`], same event id) so the
//!   consumer's idempotency merges webhook and poller copies. The cursor is
//!   the newest processed event (`events_created`, `events_last_id`); the next
//!   run walks forward with `ending_before=<that id>` page by page
//!   (checkpointing each page), so events sharing a second are neither lost
//!   nor repeated. Without an id (right after a backfill, or when the id is
//!   gone) it lists `created[gte]=events_created` through every page and
//!   re-enqueues that second's events (the consumer deduplicates).
//!   Stripe keeps events 30 days: a cursor older than 25 days falls back to a
//!   backfill from the cursor time, with a warning.
//!   <https://docs.stripe.com/api/events/list>
//!
//! One poller at a time: a lease in the cursor table (expiring after the run's
//! deadline, so a crashed run does not block the next). The run stops cleanly
//! before its deadline (the Lambda's remaining time) and the next one resumes.
//! Counters (requests, objects, messages, retries) are logged at the end and
//! added to each resource's record for `stripe-brevo status`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::pipeline::consume::{Snapshot, SNAPSHOT_OBJECT};
use crate::ports::{
    Clock, CursorRecord, CursorStore, EventQueue, QueueError, QueueMessage, RemoteError, RemoteErrorKind, Source,
    StoreError, SyncMode, Vendor,
};
use crate::settings::{Settings, SyncSettings};

/// Stripe keeps events for 30 days; past 25 the poller re-lists instead.
/// <https://docs.stripe.com/api/events>
pub const EVENTS_FALLBACK_AGE_SECS: i64 = 25 * 86_400;

/// At most 20 `types[]` per `/v1/events` request.
pub const MAX_TYPES_PER_REQUEST: usize = 20;

/// SQS `SendMessageBatch` takes at most 10 entries.
pub const SNAPSHOTS_PER_BATCH: usize = 10;

// ---------------------------------------------------------------------------
// The Stripe port
// ---------------------------------------------------------------------------

pub use crate::ports::{FeedError, FeedPage, FeedUsage, Position, StripeFeed};

// ---------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------

/// Which `sync:` toggle switches a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toggle {
    Customers,
    Payments,
    Subscriptions,
    Invoices,
    Products,
}

impl Toggle {
    pub fn is_on(self, sync: &SyncSettings) -> bool {
        match self {
            Self::Customers => sync.customers,
            Self::Payments => sync.payments,
            Self::Subscriptions => sync.subscriptions,
            Self::Invoices => sync.invoices,
            Self::Products => sync.products,
        }
    }
}

/// One Stripe resource the poller lists and follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceSpec {
    /// The name in the cursor table, `status` and the backfill override.
    pub name: &'static str,
    pub path: &'static str,
    /// Extra list parameters (`status=all` so canceled subscriptions count;
    /// expansions that carry the customer of refunds and balance transactions
    /// without one request per object).
    pub params: &'static [(&'static str, &'static str)],
    pub toggle: Toggle,
    /// Event types followed in incremental mode.
    pub events: &'static [&'static str],
}

/// Every resource, in processing order. `sync:` toggles map as: customers →
/// customers; payments → charges, payment_intents, refunds,
/// balance_transactions, checkout_sessions; subscriptions → subscriptions;
/// invoices → invoices; products → products, prices.
pub const RESOURCES: &[ResourceSpec] = &[
    ResourceSpec {
        name: "customers",
        path: "/v1/customers",
        params: &[],
        toggle: Toggle::Customers,
        events: &["customer.created", "customer.updated", "customer.deleted"],
    },
    ResourceSpec {
        name: "subscriptions",
        path: "/v1/subscriptions",
        params: &[("status", "all")],
        toggle: Toggle::Subscriptions,
        events: &[
            "customer.subscription.created",
            "customer.subscription.updated",
            "customer.subscription.deleted",
            "customer.subscription.trial_will_end",
            "customer.subscription.paused",
            "customer.subscription.resumed",
            "customer.subscription.pending_update_applied",
            "customer.subscription.pending_update_expired",
        ],
    },
    ResourceSpec {
        name: "charges",
        path: "/v1/charges",
        params: &[],
        toggle: Toggle::Payments,
        events: &[
            "charge.succeeded",
            "charge.captured",
            "charge.failed",
            "charge.updated",
            "charge.refunded",
            "charge.refund.updated",
            "charge.dispute.created",
            "charge.dispute.updated",
            "charge.dispute.closed",
        ],
    },
    ResourceSpec {
        name: "payment_intents",
        path: "/v1/payment_intents",
        params: &[],
        toggle: Toggle::Payments,
        events: &[
            "payment_intent.succeeded",
            "payment_intent.payment_failed",
            "payment_intent.canceled",
            "payment_intent.processing",
            "payment_intent.requires_action",
        ],
    },
    ResourceSpec {
        name: "invoices",
        path: "/v1/invoices",
        params: &[],
        toggle: Toggle::Invoices,
        events: &[
            "invoice.created",
            "invoice.finalized",
            "invoice.paid",
            "invoice.payment_succeeded",
            "invoice.payment_failed",
            "invoice.payment_action_required",
            "invoice.voided",
            "invoice.marked_uncollectible",
        ],
    },
    ResourceSpec {
        name: "refunds",
        path: "/v1/refunds",
        params: &[("expand[]", "data.charge")],
        toggle: Toggle::Payments,
        events: &["refund.created", "refund.updated", "refund.failed"],
    },
    ResourceSpec {
        name: "balance_transactions",
        path: "/v1/balance_transactions",
        params: &[("expand[]", "data.source")],
        toggle: Toggle::Payments,
        // No events of their own: charges' events cover them.
        events: &[],
    },
    ResourceSpec {
        name: "checkout_sessions",
        path: "/v1/checkout/sessions",
        params: &[],
        toggle: Toggle::Payments,
        events: &[
            "checkout.session.completed",
            "checkout.session.expired",
            "checkout.session.async_payment_succeeded",
            "checkout.session.async_payment_failed",
        ],
    },
    ResourceSpec {
        name: "products",
        path: "/v1/products",
        params: &[],
        toggle: Toggle::Products,
        events: &["product.created", "product.updated", "product.deleted"],
    },
    ResourceSpec {
        name: "prices",
        path: "/v1/prices",
        params: &[],
        toggle: Toggle::Products,
        events: &["price.created", "price.updated", "price.deleted", "plan.created", "plan.updated", "plan.deleted"],
    },
];

/// The resource named `name` (`checkout.sessions` and `checkout/sessions` are
/// accepted for `checkout_sessions`).
pub fn resource(name: &str) -> Option<&'static ResourceSpec> {
    let n = name.trim().replace(['.', '/'], "_");
    RESOURCES.iter().find(|r| r.name == n)
}

/// The resources the config's `sync:` toggles switch on.
pub fn enabled_resources(sync: &SyncSettings) -> Vec<&'static ResourceSpec> {
    RESOURCES.iter().filter(|r| r.toggle.is_on(sync)).collect()
}

/// The resource whose events family an event type belongs to.
fn family_of(event_type: &str) -> Option<&'static str> {
    let prefixes: [(&str, &str); 10] = [
        ("customer.subscription.", "subscriptions"),
        ("customer.", "customers"),
        ("charge.", "charges"),
        ("payment_intent.", "payment_intents"),
        ("invoice.", "invoices"),
        ("refund.", "refunds"),
        ("checkout.session.", "checkout_sessions"),
        ("product.", "products"),
        ("price.", "prices"),
        ("plan.", "prices"),
    ];
    prefixes.iter().find(|(p, _)| event_type.starts_with(p)).map(|(_, r)| *r)
}

/// The event types followed for `spec`: its own, plus the config's `events:`
/// of its family (so every event that may become a Brevo event is polled
/// while its resource is on). Sorted, distinct.
pub fn event_types_for(spec: &ResourceSpec, settings: &Settings) -> Vec<String> {
    let mut types: Vec<String> = spec.events.iter().map(|s| (*s).to_owned()).collect();
    for t in &settings.stripe.events {
        if family_of(t) == Some(spec.name) {
            types.push(t.clone());
        }
    }
    types.sort();
    types.dedup();
    types
}

// ---------------------------------------------------------------------------
// The request
// ---------------------------------------------------------------------------

/// What an invocation asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PollRequest {
    /// Restart a historical sync (`{"mode":"backfill",…}`); `None` for the
    /// schedule, which resumes whatever each resource is doing.
    pub backfill: Option<BackfillRequest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BackfillRequest {
    /// Lower bound (unix seconds); `None`: the config's `since`, else all history.
    pub since: Option<i64>,
    /// Resources to restart; `None`: every enabled one.
    pub resources: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid poller request: {0}")]
pub struct BadRequest(pub String);

impl PollRequest {
    /// From the invocation payload: an EventBridge scheduled event (→ resume),
    /// or an override `{"mode":"backfill","since":"2023-01-01","resources":[…]}`
    /// (also accepted inside an EventBridge event's `detail`).
    pub fn from_event(event: &serde_json::Value) -> Result<Self, BadRequest> {
        let body = match event.get("mode") {
            Some(_) => event,
            None => match event.get("detail") {
                Some(d) if d.get("mode").is_some() => d,
                _ => return Ok(Self::default()),
            },
        };
        let mode = body
            .get("mode")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| BadRequest("`mode` must be a string".into()))?;
        match mode {
            "scheduled" | "incremental" | "resume" => Ok(Self::default()),
            "backfill" => {
                let since = match body.get("since") {
                    None | Some(serde_json::Value::Null) => None,
                    Some(serde_json::Value::String(s)) => Some(
                        parse_date(s).ok_or_else(|| BadRequest(format!("`since` must be YYYY-MM-DD, got {s:?}")))?,
                    ),
                    Some(serde_json::Value::Number(n)) => {
                        Some(n.as_i64().ok_or_else(|| BadRequest("`since` must be unix seconds".into()))?)
                    }
                    Some(_) => return Err(BadRequest("`since` must be YYYY-MM-DD".into())),
                };
                let resources = match body.get("resources") {
                    None | Some(serde_json::Value::Null) => None,
                    Some(serde_json::Value::Array(items)) => {
                        let mut out = Vec::with_capacity(items.len());
                        for item in items {
                            let name = item
                                .as_str()
                                .ok_or_else(|| BadRequest("`resources` must be a list of names".into()))?;
                            let spec = resource(name).ok_or_else(|| {
                                let known: Vec<&str> = RESOURCES.iter().map(|r| r.name).collect();
                                BadRequest(format!("unknown resource {name:?} (known: {})", known.join(", ")))
                            })?;
                            out.push(spec.name.to_owned());
                        }
                        Some(out)
                    }
                    Some(_) => return Err(BadRequest("`resources` must be a list of names".into())),
                };
                Ok(Self { backfill: Some(BackfillRequest { since, resources }) })
            }
            other => Err(BadRequest(format!("unknown mode {other:?} (backfill or scheduled)"))),
        }
    }
}

/// `YYYY-MM-DD` (UTC midnight) or an RFC 3339 time → unix seconds.
fn parse_date(s: &str) -> Option<i64> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(s.trim(), &fmt) {
        return Some(d.midnight().assume_utc().unix_timestamp());
    }
    time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

// ---------------------------------------------------------------------------
// The poller
// ---------------------------------------------------------------------------

/// Tunables that are not part of the YAML config.
#[derive(Debug, Clone)]
pub struct PollOptions {
    /// Stop starting requests when less than this is left before the deadline.
    pub deadline_margin: Duration,
    /// Added to the run's remaining time for the lease's expiry.
    pub lease_grace_secs: i64,
    /// Backfill pages per queue batch and checkpoint (≤ 10 snapshots per
    /// `SendMessageBatch`; 1 = checkpoint every page, 10× the SQS calls).
    pub pages_per_flush: usize,
    /// Stop after this many list pages in one run (tests, CLI dry steps).
    pub max_pages_per_run: Option<u64>,
    /// Incremental cursors older than this fall back to a re-list.
    pub events_fallback_age_secs: i64,
    /// Customer ids remembered per run to avoid naming one twice (bounded memory).
    pub dedup_capacity: usize,
}

impl Default for PollOptions {
    fn default() -> Self {
        Self {
            deadline_margin: Duration::from_secs(20),
            lease_grace_secs: 60,
            pages_per_flush: SNAPSHOTS_PER_BATCH,
            max_pages_per_run: None,
            events_fallback_age_secs: EVENTS_FALLBACK_AGE_SECS,
            dedup_capacity: 200_000,
        }
    }
}

/// What ends a run early.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    BadRequest(#[from] BadRequest),
    #[error("cursor table: {0}")]
    Store(#[from] StoreError),
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
}

impl PollError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::BadRequest(_) => false,
            Self::Store(e) => e.is_retryable(),
            Self::Queue(e) => e.is_retryable(),
        }
    }
}

/// One resource's part of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ResourceReport {
    pub resource: String,
    /// The mode at the end of the run.
    pub mode: SyncMode,
    pub pages: u64,
    pub requests: u64,
    pub retries: u64,
    pub objects: u64,
    pub messages: u64,
    /// True when a backfill reached the end of its list in this run.
    pub backfill_finished: bool,
    /// True when an incremental cursor was too old and a re-list started.
    pub fell_back: bool,
    pub error: Option<String>,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PollReport {
    /// False when another poller held the lease (nothing was done).
    pub ran: bool,
    /// True when the deadline or page budget stopped the run before the end.
    pub stopped_early: bool,
    pub resources: Vec<ResourceReport>,
}

impl PollReport {
    pub fn requests(&self) -> u64 {
        self.resources.iter().map(|r| r.requests).sum()
    }
    pub fn retries(&self) -> u64 {
        self.resources.iter().map(|r| r.retries).sum()
    }
    pub fn objects(&self) -> u64 {
        self.resources.iter().map(|r| r.objects).sum()
    }
    pub fn messages(&self) -> u64 {
        self.resources.iter().map(|r| r.messages).sum()
    }
    /// Resources whose part failed (their records hold `last_error`).
    pub fn failed(&self) -> Vec<&ResourceReport> {
        self.resources.iter().filter(|r| r.error.is_some()).collect()
    }
    /// True when every resource is incremental (no backfill left).
    pub fn caught_up(&self) -> bool {
        self.resources.iter().all(|r| r.mode == SyncMode::Incremental)
    }
}

/// The poller's dependencies.
pub struct Poller<F, Q, S, C> {
    pub stripe: F,
    pub queue: Q,
    pub cursors: S,
    pub clock: C,
    pub settings: Arc<Settings>,
    pub options: PollOptions,
}

/// Mutable state of one run.
struct Run {
    deadline: Instant,
    pages_left: Option<u64>,
    stopped: bool,
    /// Customers already named in a snapshot during this run.
    named: HashSet<String>,
    started: i64,
}

/// Why one resource's step stopped with an error.
enum StepError {
    /// Recorded on the resource; the run goes on with the others.
    Stripe(RemoteError),
    Fatal(PollError),
}

impl From<QueueError> for StepError {
    fn from(e: QueueError) -> Self {
        Self::Fatal(PollError::Queue(e))
    }
}

impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        Self::Fatal(PollError::Store(e))
    }
}

/// The fields of an event the queue attributes need.
#[derive(Deserialize)]
struct EventHead {
    id: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    created: Option<i64>,
    livemode: Option<bool>,
}

/// The fields of a listed object that say which customer it concerns.
#[derive(Deserialize)]
struct ObjectHead<'a> {
    id: Option<String>,
    object: Option<String>,
    #[serde(borrow)]
    customer: Option<&'a RawValue>,
    /// Refunds (`expand[]=data.charge`).
    #[serde(borrow)]
    charge: Option<&'a RawValue>,
    /// Balance transactions (`expand[]=data.source`).
    #[serde(borrow)]
    source: Option<&'a RawValue>,
}

/// An id or an expanded object's `id`.
fn id_of(raw: &RawValue) -> Option<String> {
    let text = raw.get();
    if text.starts_with('"') {
        serde_json::from_str::<String>(text).ok()
    } else if text.starts_with('{') {
        #[derive(Deserialize)]
        struct Id {
            id: Option<String>,
        }
        serde_json::from_str::<Id>(text).ok().and_then(|o| o.id)
    } else {
        None
    }
}

/// The customer an expanded object (a refund's charge, a balance
/// transaction's source) belongs to; `None` for a bare id.
fn customer_of_expanded(raw: &RawValue) -> Option<String> {
    if !raw.get().starts_with('{') {
        return None;
    }
    let head: ObjectHead<'_> = serde_json::from_str(raw.get()).ok()?;
    head.customer.and_then(id_of)
}

/// The customer a listed object concerns (`None`: guest checkout, price, product…).
pub fn customer_of(object_json: &str) -> Option<String> {
    let head: ObjectHead<'_> = serde_json::from_str(object_json).ok()?;
    let found = if head.object.as_deref() == Some("customer") {
        head.id
    } else if let Some(c) = head.customer.and_then(id_of) {
        Some(c)
    } else if let Some(c) = head.charge.and_then(customer_of_expanded) {
        Some(c)
    } else {
        head.source.and_then(customer_of_expanded)
    };
    found.filter(|c| c.starts_with("cus_"))
}

fn last_id(items: &[Box<RawValue>]) -> Option<String> {
    items.last().and_then(|r| id_of(r))
}

/// A fresh backfill run id: the start time plus randomness, so a restarted
/// backfill never shares snapshot keys (and thus dedup records) with an old one.
fn new_run_id(now: i64) -> String {
    let r: u32 = rand::random();
    format!("{now}-{r:08x}")
}

impl<F, Q, S, C> Poller<F, Q, S, C>
where
    F: StripeFeed,
    Q: EventQueue,
    S: CursorStore,
    C: Clock,
{
    /// One run: takes the lease (returns `ran: false` when another poller
    /// holds it), applies a backfill override, follows incremental resources,
    /// then advances backfills until done or `deadline`, releases the lease.
    pub async fn run(&self, request: &PollRequest, owner: &str, deadline: Instant) -> Result<PollReport, PollError> {
        let now = self.clock.now_unix();
        let remaining =
            i64::try_from(deadline.saturating_duration_since(Instant::now()).as_secs()).unwrap_or(i64::MAX / 4);
        let until = now.saturating_add(remaining).saturating_add(self.options.lease_grace_secs.max(1));
        if !self.cursors.acquire_lease(owner, now, until).await? {
            tracing::info!(owner, "another poller holds the lease: skipping this run");
            return Ok(PollReport::default());
        }
        let result = self.run_leased(request, deadline, now).await;
        if let Err(e) = self.cursors.release_lease(owner).await {
            tracing::warn!(cause = %e, "could not release the poller lease (it expires on its own)");
        }
        let report = result?;
        for r in &report.resources {
            tracing::info!(
                resource = %r.resource, mode = ?r.mode, pages = r.pages, requests = r.requests, retries = r.retries,
                objects = r.objects, messages = r.messages, backfill_finished = r.backfill_finished,
                error = r.error.as_deref().unwrap_or(""), "poller resource done"
            );
        }
        tracing::info!(
            requests = report.requests(),
            retries = report.retries(),
            objects = report.objects(),
            messages = report.messages(),
            stopped_early = report.stopped_early,
            caught_up = report.caught_up(),
            "poller run done"
        );
        Ok(report)
    }

    async fn run_leased(&self, request: &PollRequest, deadline: Instant, now: i64) -> Result<PollReport, PollError> {
        let settings_since = self.settings.stripe.since.map(|d| d.midnight().assume_utc().unix_timestamp());
        let enabled = enabled_resources(&self.settings.stripe.sync);
        let mut records: Vec<(&'static ResourceSpec, CursorRecord)> = Vec::with_capacity(enabled.len());
        for spec in &enabled {
            let rec = match self.cursors.load(spec.name).await? {
                Some(r) => r,
                None => {
                    let mut r = CursorRecord::new(spec.name);
                    start_backfill(&mut r, settings_since, now);
                    r
                }
            };
            records.push((spec, rec));
        }
        if let Some(bf) = &request.backfill {
            if let Some(names) = &bf.resources {
                for n in names {
                    if !enabled.iter().any(|s| s.name == n) {
                        tracing::warn!(resource = %n, "backfill requested for a resource the config's sync: section switches off; skipped");
                    }
                }
            }
            for (spec, rec) in &mut records {
                let wanted = bf.resources.as_ref().is_none_or(|names| names.iter().any(|n| n == spec.name));
                if wanted {
                    start_backfill(rec, bf.since.or(settings_since), now);
                    self.cursors.save(rec).await?;
                    tracing::info!(resource = spec.name, since = ?rec.since, run = ?rec.run, "historical sync started");
                }
            }
        }

        let mut run = Run {
            deadline,
            pages_left: self.options.max_pages_per_run,
            stopped: false,
            named: HashSet::new(),
            started: now,
        };
        let mut report = PollReport { ran: true, ..PollReport::default() };
        // Incremental first (cheap, keeps contacts fresh), then backfills.
        let (incremental, backfill): (Vec<_>, Vec<_>) =
            records.into_iter().partition(|(_, r)| r.mode == SyncMode::Incremental);
        for (spec, mut rec) in incremental.into_iter().chain(backfill) {
            let r = self.step(spec, &mut rec, &mut run).await?;
            report.resources.push(r);
        }
        report.stopped_early = run.stopped;
        Ok(report)
    }

    /// One resource: its mode's work, counters, status fields, a final save.
    async fn step(
        &self,
        spec: &'static ResourceSpec,
        rec: &mut CursorRecord,
        run: &mut Run,
    ) -> Result<ResourceReport, PollError> {
        let before = self.stripe.usage();
        let mut rep = ResourceReport { resource: spec.name.to_owned(), ..ResourceReport::default() };
        rec.last_run = Some(run.started);
        let outcome = match rec.mode {
            SyncMode::Incremental => self.incremental(spec, rec, run, &mut rep).await,
            SyncMode::Backfill => self.backfill(spec, rec, run, &mut rep).await,
        };
        let after = self.stripe.usage();
        rep.requests = after.requests.saturating_sub(before.requests);
        rep.retries = after.retries.saturating_sub(before.retries);
        rec.requests += rep.requests;
        rec.retries += rep.retries;
        rep.mode = rec.mode;
        match outcome {
            Ok(()) => {
                rec.last_success = Some(run.started);
                rec.last_error = None;
            }
            Err(StepError::Stripe(e)) => {
                tracing::error!(resource = spec.name, cause = %e, retryable = e.is_retryable(), kind = e.kind.as_str(), "poller could not read Stripe");
                rec.last_error = Some(e.message.clone());
                rep.error = Some(e.message);
            }
            Err(StepError::Fatal(e)) => {
                rec.last_error = Some(e.to_string());
                if let Err(se) = self.cursors.save(rec).await {
                    tracing::warn!(cause = %se, "could not record the error on the cursor");
                }
                return Err(e);
            }
        }
        self.cursors.save(rec).await?;
        Ok(rep)
    }

    /// False once the deadline (minus the margin) or the page budget is reached.
    fn may_request(&self, run: &mut Run) -> bool {
        if run.stopped {
            return false;
        }
        let out_of_pages = run.pages_left == Some(0);
        let out_of_time = Instant::now() + self.options.deadline_margin >= run.deadline;
        if out_of_pages || out_of_time {
            run.stopped = true;
            return false;
        }
        if let Some(p) = run.pages_left.as_mut() {
            *p -= 1;
        }
        true
    }

    // --- backfill ---------------------------------------------------------

    async fn backfill(
        &self,
        spec: &ResourceSpec,
        rec: &mut CursorRecord,
        run: &mut Run,
        rep: &mut ResourceReport,
    ) -> Result<(), StepError> {
        let run_id = match &rec.run {
            Some(r) => r.clone(),
            None => {
                let r = new_run_id(run.started);
                rec.run = Some(r.clone());
                r
            }
        };
        let mut params: Vec<(&str, String)> = spec.params.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        if let Some(since) = rec.since {
            params.push(("created[gte]", since.to_string()));
        }
        let flush_every = self.options.pages_per_flush.clamp(1, SNAPSHOTS_PER_BATCH);
        let live = Some(self.stripe.is_live());
        let mut cursor: Option<String> = rec.starting_after.clone();
        let mut buffer: Vec<QueueMessage> = Vec::with_capacity(flush_every);
        let mut pending_pages = 0usize;
        let mut pending_objects = 0u64;
        let mut restarted = false;
        let mut finished = false;
        while self.may_request(run) {
            let position = cursor.as_deref().map_or(Position::Start, Position::After);
            let page = match self.stripe.page(spec.path, &params, position).await {
                Ok(p) => p,
                Err(FeedError::CursorGone) if !restarted => {
                    // The object we stopped at is gone: start the list over
                    // (pages are keyed by their cursor; the consumer's reload
                    // is idempotent, so a replay only costs requests).
                    tracing::warn!(
                        resource = spec.name,
                        "backfill cursor object no longer exists; restarting the list"
                    );
                    self.flush(rec, &mut buffer, cursor.clone(), &mut pending_pages, &mut pending_objects, rep).await?;
                    restarted = true;
                    cursor = None;
                    continue;
                }
                Err(FeedError::CursorGone) => {
                    self.flush(rec, &mut buffer, cursor.clone(), &mut pending_pages, &mut pending_objects, rep).await?;
                    return Err(StepError::Stripe(RemoteError::new(
                        Vendor::Stripe,
                        RemoteErrorKind::Unavailable,
                        "backfill cursor object vanished twice",
                    )));
                }
                Err(FeedError::Remote(e)) => {
                    self.flush(rec, &mut buffer, cursor.clone(), &mut pending_pages, &mut pending_objects, rep).await?;
                    return Err(StepError::Stripe(e));
                }
            };
            rep.pages += 1;
            pending_pages += 1;
            pending_objects += page.items.len() as u64;
            let mut customers: Vec<String> = Vec::new();
            for item in &page.items {
                let Some(c) = customer_of(item.get()) else { continue };
                if run.named.contains(&c) {
                    continue;
                }
                if run.named.len() >= self.options.dedup_capacity {
                    run.named.clear();
                }
                run.named.insert(c.clone());
                customers.push(c);
            }
            if !customers.is_empty() {
                let key = format!("backfill:{}:{}:{}", spec.name, run_id, cursor.as_deref().unwrap_or("start"));
                let snapshot = Snapshot { object: SNAPSHOT_OBJECT.to_owned(), key: key.clone(), customers };
                let body = serde_json::to_string(&snapshot)
                    .map_err(|e| StepError::Fatal(PollError::Queue(QueueError::Rejected(e.to_string()))))?;
                buffer.push(QueueMessage {
                    body,
                    event_id: key,
                    event_type: SNAPSHOT_OBJECT.to_owned(),
                    livemode: live,
                    source: Source::Backfill,
                });
            }
            let next = if page.has_more { last_id(&page.items) } else { None };
            finished = next.is_none();
            cursor = next;
            if finished || pending_pages >= flush_every {
                self.flush(rec, &mut buffer, cursor.clone(), &mut pending_pages, &mut pending_objects, rep).await?;
            }
            if finished {
                break;
            }
        }
        self.flush(rec, &mut buffer, cursor, &mut pending_pages, &mut pending_objects, rep).await?;
        if finished {
            rep.backfill_finished = true;
            rec.mode = SyncMode::Incremental;
            rec.starting_after = None;
            // `events_created` was set when the backfill started: the
            // incremental walk picks up every change made since.
            self.cursors.save(rec).await?;
            tracing::info!(resource = spec.name, "backfill finished; following events from now on");
        }
        Ok(())
    }

    /// Sends the buffered snapshots, then checkpoints the cursor (never the
    /// other way round, so a failure replays pages instead of skipping them).
    async fn flush(
        &self,
        rec: &mut CursorRecord,
        buffer: &mut Vec<QueueMessage>,
        cursor: Option<String>,
        pending_pages: &mut usize,
        pending_objects: &mut u64,
        rep: &mut ResourceReport,
    ) -> Result<(), StepError> {
        if *pending_pages == 0 && buffer.is_empty() {
            return Ok(());
        }
        if !buffer.is_empty() {
            self.queue.send_all(buffer).await?;
        }
        rec.starting_after = cursor;
        rec.synced += *pending_objects;
        rec.messages_enqueued += buffer.len() as u64;
        rep.objects += *pending_objects;
        rep.messages += buffer.len() as u64;
        self.cursors.save(rec).await?;
        buffer.clear();
        *pending_pages = 0;
        *pending_objects = 0;
        Ok(())
    }

    // --- incremental ------------------------------------------------------

    async fn incremental(
        &self,
        spec: &ResourceSpec,
        rec: &mut CursorRecord,
        run: &mut Run,
        rep: &mut ResourceReport,
    ) -> Result<(), StepError> {
        let now = run.started;
        let cursor_time = rec.events_created.unwrap_or(now);
        if cursor_time < now - self.options.events_fallback_age_secs {
            tracing::warn!(
                resource = spec.name,
                cursor_age_days = (now - cursor_time) / 86_400,
                "events cursor is older than Stripe's event retention allows: re-listing the gap with a backfill from the cursor time"
            );
            rep.fell_back = true;
            start_backfill(rec, Some(cursor_time), now);
            self.cursors.save(rec).await?;
            return self.backfill(spec, rec, run, rep).await;
        }
        let types = event_types_for(spec, &self.settings);
        if types.is_empty() {
            rec.events_created = Some(now);
            return Ok(());
        }
        let chunks: Vec<&[String]> = types.chunks(MAX_TYPES_PER_REQUEST).collect();
        let found_new = match (&rec.events_last_id, chunks.len()) {
            (Some(last), 1) => {
                let last = last.clone();
                match self.walk_up(chunks[0], &last, rec, run, rep).await {
                    Ok(n) => n,
                    Err(Walk::CursorGone) => {
                        tracing::warn!(
                            resource = spec.name,
                            "events cursor id no longer exists; listing by time instead"
                        );
                        self.walk_down(&chunks, cursor_time, rec, run, rep).await?
                    }
                    Err(Walk::Step(e)) => return Err(e),
                }
            }
            _ => self.walk_down(&chunks, cursor_time, rec, run, rep).await?,
        };
        // Idle for a day: move the cursor time (not the id) to this run's
        // start minus 5 minutes of listing lag, so a quiet resource does not
        // trip the 25-day fallback.
        if !found_new && !run.stopped && rec.events_created.is_some_and(|t| t < now - 86_400) {
            rec.events_created = Some(now - 300);
        }
        Ok(())
    }

    /// Walks forward from the cursor event with `ending_before`, oldest page
    /// first, checkpointing each page. Returns whether any event was found.
    async fn walk_up(
        &self,
        types: &[String],
        last: &str,
        rec: &mut CursorRecord,
        run: &mut Run,
        rep: &mut ResourceReport,
    ) -> Result<bool, Walk> {
        let params: Vec<(&str, String)> = types.iter().map(|t| ("types[]", t.clone())).collect();
        let mut before = last.to_owned();
        let mut found = false;
        while self.may_request(run) {
            let page = match self.stripe.page("/v1/events", &params, Position::Before(&before)).await {
                Ok(p) => p,
                Err(FeedError::CursorGone) => return Err(Walk::CursorGone),
                Err(FeedError::Remote(e)) => return Err(Walk::Step(StepError::Stripe(e))),
            };
            rep.pages += 1;
            if page.items.is_empty() {
                break;
            }
            found = true;
            // Newest first in the page: enqueue oldest first.
            let messages: Vec<QueueMessage> = page.items.iter().rev().filter_map(|r| event_message(r.get())).collect();
            self.queue.send_all(&messages).await.map_err(|e| Walk::Step(e.into()))?;
            let newest = page.items.first().and_then(|r| serde_json::from_str::<EventHead>(r.get()).ok());
            let n = page.items.len() as u64;
            rec.synced += n;
            rec.messages_enqueued += messages.len() as u64;
            rep.objects += n;
            rep.messages += messages.len() as u64;
            if let Some(EventHead { id: Some(id), created, .. }) = newest {
                rec.events_created = created.or(rec.events_created);
                rec.events_last_id = Some(id.clone());
                before = id;
            }
            self.cursors.save(rec).await.map_err(|e| Walk::Step(e.into()))?;
            if !page.has_more {
                break;
            }
        }
        Ok(found)
    }

    /// Lists `created[gte]=since` through every page of each type chunk,
    /// newest first, enqueueing as it goes; the cursor moves to the newest
    /// event only when every chunk was read to its end.
    async fn walk_down(
        &self,
        chunks: &[&[String]],
        since: i64,
        rec: &mut CursorRecord,
        run: &mut Run,
        rep: &mut ResourceReport,
    ) -> Result<bool, StepError> {
        let skip = rec.events_last_id.clone();
        let mut seen: HashSet<String> = HashSet::new();
        let mut newest: Option<(i64, String)> = None;
        for chunk in chunks {
            let mut params: Vec<(&str, String)> = chunk.iter().map(|t| ("types[]", t.clone())).collect();
            params.push(("created[gte]", since.to_string()));
            let mut after: Option<String> = None;
            let mut first_page = true;
            loop {
                if !self.may_request(run) {
                    return Ok(false);
                }
                let position = after.as_deref().map_or(Position::Start, Position::After);
                let page = match self.stripe.page("/v1/events", &params, position).await {
                    Ok(p) => p,
                    Err(FeedError::CursorGone) => {
                        return Err(StepError::Stripe(RemoteError::new(
                            Vendor::Stripe,
                            RemoteErrorKind::Unavailable,
                            "events page cursor vanished",
                        )))
                    }
                    Err(FeedError::Remote(e)) => return Err(StepError::Stripe(e)),
                };
                rep.pages += 1;
                if first_page {
                    if let Some(EventHead { id: Some(id), created: Some(c), .. }) =
                        page.items.first().and_then(|r| serde_json::from_str::<EventHead>(r.get()).ok())
                    {
                        if newest.as_ref().is_none_or(|(nc, _)| c > *nc) {
                            newest = Some((c, id));
                        }
                    }
                    first_page = false;
                }
                let mut messages = Vec::with_capacity(page.items.len());
                for item in &page.items {
                    let Some(m) = event_message(item.get()) else { continue };
                    if skip.as_deref() == Some(m.event_id.as_str()) || !seen.insert(m.event_id.clone()) {
                        continue;
                    }
                    messages.push(m);
                }
                self.queue.send_all(&messages).await?;
                let n = page.items.len() as u64;
                rec.synced += n;
                rec.messages_enqueued += messages.len() as u64;
                rep.objects += n;
                rep.messages += messages.len() as u64;
                match (page.has_more, last_id(&page.items)) {
                    (true, Some(id)) => after = Some(id),
                    _ => break,
                }
            }
        }
        let found = !seen.is_empty();
        if let Some((c, id)) = newest {
            rec.events_created = Some(c);
            rec.events_last_id = Some(id);
        }
        self.cursors.save(rec).await?;
        Ok(found)
    }
}

enum Walk {
    CursorGone,
    Step(StepError),
}

/// Resets a record to a new backfill from `since`; counters are kept. The
/// events cursor starts now, so changes made during the backfill are
/// followed afterwards.
fn start_backfill(rec: &mut CursorRecord, since: Option<i64>, now: i64) {
    rec.mode = SyncMode::Backfill;
    rec.since = since;
    rec.run = Some(new_run_id(now));
    rec.starting_after = None;
    rec.events_created = Some(now);
    rec.events_last_id = None;
}

/// An event as the webhook would queue it; `None` (logged) when it lacks an
/// id or type, or does not fit one SQS message.
fn event_message(raw: &str) -> Option<QueueMessage> {
    let head: EventHead = match serde_json::from_str(raw) {
        Ok(h) => h,
        Err(_) => {
            tracing::warn!("events list returned an object that is not an event; skipped");
            return None;
        }
    };
    let (Some(id), Some(event_type)) = (head.id, head.event_type) else {
        tracing::warn!("event without id or type; skipped");
        return None;
    };
    let m = QueueMessage {
        body: raw.to_owned(),
        event_id: id,
        event_type,
        livemode: head.livemode,
        source: Source::Poller,
    };
    if m.sqs_size() > crate::ports::MAX_MESSAGE_BYTES {
        tracing::warn!(event_id = %m.event_id, bytes = m.sqs_size(), "event does not fit one queue message; skipped");
        return None;
    }
    Some(m)
}

#[cfg(test)]
mod tests {
    //! GIVEN a fake Stripe (objects in memory, listed like Stripe: newest
    //! first, `created` filters, `starting_after`/`ending_before`, `types[]`),
    //! the in-memory queue and cursor store, WHEN the poller runs, THEN …
    #![allow(clippy::unwrap_used)]
    use async_trait::async_trait;
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;

    use serde_json::{json, Value};

    use super::*;
    use crate::adapters::memory::{FixedClock, MemoryCursors, MemoryQueue};

    const NOW: i64 = 1_767_225_600; // 2026-01-01

    #[derive(Default)]
    struct FakeStripe {
        lists: Mutex<BTreeMap<String, Vec<Value>>>,
        requests: AtomicU64,
        fail_next: AtomicU64,
        log: Mutex<Vec<String>>,
    }

    impl FakeStripe {
        fn insert(&self, path: &str, v: Value) {
            self.lists.lock().unwrap().entry(path.to_owned()).or_default().push(v);
        }
        fn sorted(&self, path: &str) -> Vec<Value> {
            let mut items = self.lists.lock().unwrap().get(path).cloned().unwrap_or_default();
            let key = |v: &Value| (v["created"].as_i64().unwrap_or(0), v["id"].as_str().unwrap_or("").to_owned());
            items.sort_by_key(|v| std::cmp::Reverse(key(v)));
            items
        }
        fn requests_to(&self, path: &str) -> usize {
            self.log.lock().unwrap().iter().filter(|p| p.as_str() == path).count()
        }
    }

    #[async_trait]
    impl StripeFeed for FakeStripe {
        fn is_live(&self) -> bool {
            false
        }
        async fn page(
            &self,
            path: &str,
            params: &[(&str, String)],
            position: Position<'_>,
        ) -> Result<FeedPage, FeedError> {
            self.requests.fetch_add(1, Ordering::SeqCst);
            self.log.lock().unwrap().push(path.to_owned());
            if self.fail_next.load(Ordering::SeqCst) > 0 {
                self.fail_next.fetch_sub(1, Ordering::SeqCst);
                return Err(FeedError::Remote(RemoteError::new(
                    Vendor::Stripe,
                    RemoteErrorKind::Unavailable,
                    "Stripe server error (HTTP 500)",
                )));
            }
            let gte: Option<i64> = params.iter().find(|(k, _)| *k == "created[gte]").and_then(|(_, v)| v.parse().ok());
            let types: Vec<&str> = params.iter().filter(|(k, _)| *k == "types[]").map(|(_, v)| v.as_str()).collect();
            assert!(types.len() <= MAX_TYPES_PER_REQUEST, "at most 20 types per request");
            let all = self.sorted(path);
            let matches = |v: &Value| {
                gte.is_none_or(|g| v["created"].as_i64().unwrap_or(0) >= g)
                    && (types.is_empty() || types.contains(&v["type"].as_str().unwrap_or("")))
            };
            let pos_of = |id: &str| all.iter().position(|v| v["id"] == id);
            let (items, has_more): (Vec<Value>, bool) = match position {
                Position::Start | Position::After(_) => {
                    let start = match position {
                        Position::After(id) => pos_of(id).ok_or(FeedError::CursorGone)? + 1,
                        _ => 0,
                    };
                    let rest: Vec<Value> = all[start..].iter().filter(|v| matches(v)).cloned().collect();
                    (rest.iter().take(100).cloned().collect(), rest.len() > 100)
                }
                Position::Before(id) => {
                    let end = pos_of(id).ok_or(FeedError::CursorGone)?;
                    let newer: Vec<Value> = all[..end].iter().filter(|v| matches(v)).cloned().collect();
                    let n = newer.len();
                    (newer[n.saturating_sub(100)..].to_vec(), n > 100)
                }
            };
            let items = items.iter().map(|v| RawValue::from_string(v.to_string()).unwrap()).collect();
            Ok(FeedPage { items, has_more })
        }
        fn usage(&self) -> FeedUsage {
            FeedUsage { requests: self.requests.load(Ordering::SeqCst), retries: 0 }
        }
    }

    type TestPoller = Poller<Arc<FakeStripe>, Arc<MemoryQueue>, Arc<MemoryCursors>, Arc<FixedClock>>;

    fn only(sync: &[&str]) -> Settings {
        let mut s = Settings::default();
        s.stripe.sync = SyncSettings {
            customers: sync.contains(&"customers"),
            payments: sync.contains(&"payments"),
            subscriptions: sync.contains(&"subscriptions"),
            invoices: sync.contains(&"invoices"),
            products: sync.contains(&"products"),
        };
        s
    }

    fn poller(settings: Settings, options: PollOptions) -> TestPoller {
        Poller {
            stripe: Arc::new(FakeStripe::default()),
            queue: Arc::new(MemoryQueue::new()),
            cursors: Arc::new(MemoryCursors::new()),
            clock: Arc::new(FixedClock::at(NOW)),
            settings: Arc::new(settings),
            options,
        }
    }

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    fn seed_customers(p: &TestPoller, n: usize) {
        for i in 0..n {
            p.stripe.insert(
                "/v1/customers",
                json!({"id": format!("cus_{i:05}"), "object": "customer", "created": NOW - 100_000 + i as i64}),
            );
        }
    }

    fn snapshots(q: &MemoryQueue) -> Vec<Snapshot> {
        q.messages()
            .iter()
            .filter(|m| m.source == Source::Backfill)
            .map(|m| serde_json::from_str(&m.body).unwrap())
            .collect()
    }

    fn event(id: &str, t: &str, created: i64, customer: &str) -> Value {
        json!({"id": id, "object": "event", "type": t, "created": created, "livemode": false,
               "data": {"object": {"id": "x", "object": "customer", "customer": customer}}})
    }

    #[tokio::test]
    async fn backfill_sends_one_snapshot_per_page_in_batches_and_switches_to_incremental() {
        let p = poller(only(&["customers"]), PollOptions::default());
        seed_customers(&p, 1_050);
        let report = p.run(&PollRequest::default(), "a", far()).await.unwrap();
        let snaps = snapshots(&p.queue);
        assert_eq!(snaps.len(), 11, "ceil(1050/100) pages, one snapshot each");
        let ids: BTreeSet<String> = snaps.iter().flat_map(|s| s.customers.clone()).collect();
        assert_eq!(ids.len(), 1_050);
        assert_eq!(snaps.iter().map(|s| s.customers.len()).sum::<usize>(), 1_050, "no customer named twice");
        let keys: BTreeSet<&str> = snaps.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys.len(), 11);
        assert!(
            snaps[0].key.starts_with("backfill:customers:") && snaps[0].key.ends_with(":start"),
            "{}",
            snaps[0].key
        );
        assert_eq!(p.stripe.requests_to("/v1/customers"), 11, "exactly the minimum number of list requests");
        let rec = p.cursors.load("customers").await.unwrap().unwrap();
        assert_eq!(rec.mode, SyncMode::Incremental);
        assert_eq!(rec.synced, 1_050);
        assert_eq!(rec.messages_enqueued, 11);
        assert_eq!(rec.events_created, Some(NOW), "events are followed from the backfill's start");
        assert_eq!(rec.last_success, Some(NOW));
        assert!(report.resources[0].backfill_finished && report.caught_up());
    }

    #[tokio::test]
    async fn an_interrupted_backfill_resumes_without_gaps_or_duplicates() {
        let opts = PollOptions { max_pages_per_run: Some(3), pages_per_flush: 2, ..PollOptions::default() };
        let p = poller(only(&["customers"]), opts);
        seed_customers(&p, 1_234);
        let mut runs = 0;
        loop {
            runs += 1;
            let r = p.run(&PollRequest::default(), &format!("run{runs}"), far()).await.unwrap();
            if r.caught_up() {
                break;
            }
            assert!(r.stopped_early);
            assert!(runs < 20);
        }
        assert_eq!(runs, 5, "13 pages at 3 per run");
        let snaps = snapshots(&p.queue);
        let keys: BTreeSet<&str> = snaps.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys.len(), snaps.len(), "no page enqueued twice");
        let ids: Vec<String> = snaps.iter().flat_map(|s| s.customers.clone()).collect();
        let distinct: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), 1_234, "no gap");
        assert_eq!(ids.len(), 1_234, "no duplicate");
    }

    #[tokio::test]
    async fn snapshots_name_customers_through_expanded_charges_and_skip_catalog_objects() {
        let p = poller(only(&["payments", "products"]), PollOptions::default());
        p.stripe.insert("/v1/refunds", json!({"id": "re_1", "object": "refund", "created": 10, "charge": {"id": "ch_1", "object": "charge", "customer": "cus_R"}}));
        p.stripe.insert("/v1/balance_transactions", json!({"id": "txn_1", "object": "balance_transaction", "created": 10, "source": {"id": "ch_2", "object": "charge", "customer": {"id": "cus_B", "object": "customer"}}}));
        p.stripe.insert("/v1/checkout/sessions", json!({"id": "cs_1", "object": "checkout.session", "created": 10, "customer": null, "customer_details": {"email": "guest@example.com"}}));
        p.stripe.insert("/v1/products", json!({"id": "prod_1", "object": "product", "created": 10}));
        p.stripe.insert("/v1/prices", json!({"id": "price_1", "object": "price", "created": 10, "product": "prod_1"}));
        p.stripe.insert("/v1/charges", json!({"id": "ch_1", "object": "charge", "created": 10, "customer": "cus_R"}));
        let report = p.run(&PollRequest::default(), "a", far()).await.unwrap();
        let names: BTreeSet<String> = snapshots(&p.queue).into_iter().flat_map(|s| s.customers).collect();
        assert_eq!(names, BTreeSet::from(["cus_B".to_owned(), "cus_R".to_owned()]));
        assert_eq!(
            snapshots(&p.queue).len(),
            2,
            "cus_R once across charges and refunds; nothing for catalog or guests"
        );
        let listed: BTreeSet<&str> = report.resources.iter().map(|r| r.resource.as_str()).collect();
        assert_eq!(
            listed,
            BTreeSet::from([
                "charges",
                "payment_intents",
                "refunds",
                "balance_transactions",
                "checkout_sessions",
                "products",
                "prices"
            ])
        );
    }

    #[tokio::test]
    async fn a_backfill_override_restarts_only_the_named_resources_from_its_since() {
        let p = poller(only(&["customers", "subscriptions"]), PollOptions::default());
        seed_customers(&p, 5);
        p.run(&PollRequest::default(), "a", far()).await.unwrap();
        let before = p.cursors.load("subscriptions").await.unwrap().unwrap();
        assert_eq!(before.mode, SyncMode::Incremental);
        let req =
            PollRequest::from_event(&json!({"mode": "backfill", "since": "2025-12-30", "resources": ["customers"]}))
                .unwrap();
        p.stripe.log.lock().unwrap().clear();
        p.run(&req, "b", far()).await.unwrap();
        let snaps = snapshots(&p.queue);
        assert_eq!(snaps.len(), 2, "the first backfill and the restarted one");
        assert_ne!(snaps[0].key, snaps[1].key, "a restarted backfill has a new run id");
        assert_eq!(snaps[1].customers.len(), 5);
        assert_eq!(p.stripe.requests_to("/v1/customers"), 1);
        let rec = p.cursors.load("customers").await.unwrap().unwrap();
        assert_eq!(rec.since, Some(NOW - 2 * 86_400));
        assert_eq!(p.cursors.load("subscriptions").await.unwrap().unwrap().run, before.run);
    }

    #[tokio::test]
    async fn events_sharing_one_second_are_all_enqueued_once_across_runs() {
        let p = poller(only(&["customers"]), PollOptions::default());
        p.run(&PollRequest::default(), "a", far()).await.unwrap(); // empty backfill → incremental
        for i in 0..250 {
            p.stripe.insert("/v1/events", event(&format!("evt_a{i:04}"), "customer.updated", NOW + 5, "cus_1"));
        }
        p.stripe.insert("/v1/events", event("evt_other", "payout.paid", NOW + 5, "cus_1"));
        p.run(&PollRequest::default(), "a", far()).await.unwrap();
        // More in the very same second, then the next second.
        for i in 250..400 {
            p.stripe.insert("/v1/events", event(&format!("evt_a{i:04}"), "customer.updated", NOW + 5, "cus_1"));
        }
        p.stripe.insert("/v1/events", event("evt_b", "customer.created", NOW + 6, "cus_2"));
        p.run(&PollRequest::default(), "a", far()).await.unwrap();
        p.run(&PollRequest::default(), "a", far()).await.unwrap();
        let events: Vec<QueueMessage> = p.queue.messages().into_iter().filter(|m| m.source == Source::Poller).collect();
        let ids: BTreeSet<&str> = events.iter().map(|m| m.event_id.as_str()).collect();
        assert_eq!(ids.len(), 401, "every matching event");
        assert!(!ids.contains("evt_other"), "types[] filter applies");
        // The first incremental run lists by time (no id yet) and may repeat
        // only the cursor's second; later runs walk by id and repeat nothing.
        assert!(events.len() <= 401 + 1, "{} messages", events.len());
        let m = events.iter().find(|m| m.event_id == "evt_b").unwrap();
        assert_eq!((m.event_type.as_str(), m.livemode), ("customer.created", Some(false)));
        assert!(m.body.contains("\"data\""), "the raw event is queued");
        let rec = p.cursors.load("customers").await.unwrap().unwrap();
        assert_eq!((rec.events_created, rec.events_last_id.as_deref()), (Some(NOW + 6), Some("evt_b")));
    }

    #[tokio::test]
    async fn a_cursor_older_than_25_days_falls_back_to_a_relist_from_the_cursor_time() {
        let p = poller(only(&["customers"]), PollOptions::default());
        let mut rec = CursorRecord::new("customers");
        rec.mode = SyncMode::Incremental;
        rec.events_created = Some(NOW - 30 * 86_400);
        rec.events_last_id = Some("evt_gone".into());
        p.cursors.save(&rec).await.unwrap();
        p.stripe.insert("/v1/customers", json!({"id": "cus_old", "object": "customer", "created": NOW - 40 * 86_400}));
        p.stripe.insert("/v1/customers", json!({"id": "cus_gap", "object": "customer", "created": NOW - 20 * 86_400}));
        let report = p.run(&PollRequest::default(), "a", far()).await.unwrap();
        assert!(report.resources[0].fell_back);
        assert_eq!(p.stripe.requests_to("/v1/events"), 0, "no events request for the gap");
        let names: Vec<String> = snapshots(&p.queue).into_iter().flat_map(|s| s.customers).collect();
        assert_eq!(names, vec!["cus_gap".to_owned()], "re-listed from the cursor time only");
        let rec = p.cursors.load("customers").await.unwrap().unwrap();
        assert_eq!(
            (rec.mode, rec.since, rec.events_created),
            (SyncMode::Incremental, Some(NOW - 30 * 86_400), Some(NOW))
        );
    }

    #[tokio::test]
    async fn a_quiet_resource_moves_its_cursor_time_so_it_never_falls_back() {
        let p = poller(only(&["customers"]), PollOptions::default());
        let mut rec = CursorRecord::new("customers");
        rec.mode = SyncMode::Incremental;
        rec.events_created = Some(NOW - 2 * 86_400);
        rec.events_last_id = Some("evt_last".into());
        p.cursors.save(&rec).await.unwrap();
        p.stripe.insert("/v1/events", event("evt_last", "customer.updated", NOW - 2 * 86_400, "cus_1"));
        p.run(&PollRequest::default(), "a", far()).await.unwrap();
        let rec = p.cursors.load("customers").await.unwrap().unwrap();
        assert_eq!((rec.events_created, rec.events_last_id.as_deref()), (Some(NOW - 300), Some("evt_last")));
        assert!(p.queue.messages().is_empty());
    }

    #[tokio::test]
    async fn a_vanished_cursor_event_falls_back_to_listing_by_time() {
        let p = poller(only(&["customers"]), PollOptions::default());
        let mut rec = CursorRecord::new("customers");
        rec.mode = SyncMode::Incremental;
        rec.events_created = Some(NOW - 10);
        rec.events_last_id = Some("evt_missing".into());
        p.cursors.save(&rec).await.unwrap();
        p.stripe.insert("/v1/events", event("evt_1", "customer.updated", NOW - 5, "cus_1"));
        p.run(&PollRequest::default(), "a", far()).await.unwrap();
        assert_eq!(p.queue.messages().len(), 1);
        assert_eq!(p.cursors.load("customers").await.unwrap().unwrap().events_last_id.as_deref(), Some("evt_1"));
    }

    #[tokio::test]
    async fn a_held_lease_skips_the_run_and_a_finished_run_releases_it() {
        let p = poller(only(&["customers"]), PollOptions::default());
        seed_customers(&p, 3);
        assert!(p.cursors.acquire_lease("other", NOW, NOW + 600).await.unwrap());
        let r = p.run(&PollRequest::default(), "me", far()).await.unwrap();
        assert!(!r.ran);
        assert_eq!(p.stripe.requests.load(Ordering::SeqCst), 0);
        p.clock.advance(601); // the other run crashed: its lease expires
        assert!(p.run(&PollRequest::default(), "me", far()).await.unwrap().ran);
        assert!(p.cursors.acquire_lease("third", NOW + 601, NOW + 700).await.unwrap(), "released at the end");
    }

    #[tokio::test]
    async fn a_passed_deadline_makes_no_request_and_keeps_the_cursor() {
        let p = poller(only(&["customers"]), PollOptions::default());
        seed_customers(&p, 300);
        let r = p.run(&PollRequest::default(), "a", Instant::now() + Duration::from_secs(5)).await.unwrap();
        assert!(r.ran && r.stopped_early);
        assert_eq!(p.stripe.requests.load(Ordering::SeqCst), 0);
        let rec = p.cursors.load("customers").await.unwrap().unwrap();
        assert_eq!((rec.mode, rec.starting_after.as_deref()), (SyncMode::Backfill, None));
    }

    #[tokio::test]
    async fn a_queue_outage_fails_the_run_without_moving_the_cursor() {
        let p = poller(only(&["customers"]), PollOptions::default());
        seed_customers(&p, 250);
        p.queue.set_down(true);
        let e = p.run(&PollRequest::default(), "a", far()).await.unwrap_err();
        assert!(matches!(e, PollError::Queue(_)) && e.is_retryable());
        let rec = p.cursors.load("customers").await.unwrap().unwrap();
        assert_eq!(rec.starting_after, None);
        assert!(rec.last_error.is_some());
        assert!(p.cursors.acquire_lease("b", NOW, NOW + 1).await.unwrap(), "lease released after a failure");
        p.cursors.release_lease("b").await.unwrap();
        p.queue.set_down(false);
        p.run(&PollRequest::default(), "a", far()).await.unwrap();
        assert_eq!(snapshots(&p.queue).iter().map(|s| s.customers.len()).sum::<usize>(), 250);
    }

    #[tokio::test]
    async fn a_stripe_failure_is_recorded_on_the_resource_and_the_next_run_resumes() {
        let opts = PollOptions { pages_per_flush: 1, ..PollOptions::default() };
        let p = poller(only(&["customers"]), opts);
        seed_customers(&p, 250);
        p.run(&PollRequest { backfill: None }, "a", far()).await.unwrap();
        // Simulate: a fresh backfill that fails on its second page.
        let req = PollRequest::from_event(&json!({"mode": "backfill"})).unwrap();
        let p2 = Poller {
            stripe: p.stripe.clone(),
            queue: p.queue.clone(),
            cursors: p.cursors.clone(),
            clock: p.clock.clone(),
            settings: p.settings.clone(),
            options: PollOptions { max_pages_per_run: Some(1), pages_per_flush: 1, ..PollOptions::default() },
        };
        p2.run(&req, "a", far()).await.unwrap();
        p.stripe.fail_next.store(1, Ordering::SeqCst);
        let r = p.run(&PollRequest::default(), "a", far()).await.unwrap();
        assert_eq!(r.failed().len(), 1);
        let rec = p.cursors.load("customers").await.unwrap().unwrap();
        assert_eq!(rec.last_error.as_deref(), Some("Stripe server error (HTTP 500)"));
        assert!(rec.starting_after.is_some(), "progress kept");
        p.run(&PollRequest::default(), "a", far()).await.unwrap();
        let rec = p.cursors.load("customers").await.unwrap().unwrap();
        assert_eq!((rec.mode, rec.last_error.as_deref()), (SyncMode::Incremental, None));
    }

    #[test]
    fn event_types_are_split_by_resource_and_never_exceed_20_per_request() {
        let mut s = Settings::default();
        s.stripe.events = (0..30)
            .map(|i| format!("charge.custom_{i}"))
            .chain(["customer.subscription.trial_will_end".to_owned()])
            .collect();
        let charges = event_types_for(resource("charges").unwrap(), &s);
        assert_eq!(charges.len(), 39);
        assert!(charges.chunks(MAX_TYPES_PER_REQUEST).all(|c| c.len() <= 20));
        let subs = event_types_for(resource("subscriptions").unwrap(), &s);
        assert!(subs.contains(&"customer.subscription.trial_will_end".to_owned()));
        assert!(!event_types_for(resource("customers").unwrap(), &s)
            .iter()
            .any(|t| t.starts_with("customer.subscription.")));
        for r in RESOURCES {
            assert!(r.events.len() <= MAX_TYPES_PER_REQUEST);
        }
    }

    #[tokio::test]
    async fn more_than_20_types_are_polled_in_several_requests() {
        let mut s = only(&["payments"]);
        s.stripe.events = (0..30).map(|i| format!("charge.custom_{i}")).collect();
        let p = poller(s, PollOptions::default());
        p.run(&PollRequest::default(), "a", far()).await.unwrap(); // backfills (empty)
        p.stripe.insert("/v1/events", event("evt_x", "charge.custom_29", NOW + 1, "cus_1"));
        p.stripe.insert("/v1/events", event("evt_y", "charge.succeeded", NOW + 1, "cus_1"));
        p.run(&PollRequest::default(), "a", far()).await.unwrap();
        let ids: BTreeSet<String> = p.queue.messages().into_iter().map(|m| m.event_id).collect();
        assert_eq!(ids, BTreeSet::from(["evt_x".to_owned(), "evt_y".to_owned()]));
    }

    #[test]
    fn sync_toggles_map_to_resources() {
        let names = |s: SyncSettings| enabled_resources(&s).iter().map(|r| r.name).collect::<Vec<_>>();
        let off =
            SyncSettings { customers: false, payments: false, subscriptions: false, invoices: false, products: false };
        assert_eq!(
            names(SyncSettings { payments: true, ..off }),
            ["charges", "payment_intents", "refunds", "balance_transactions", "checkout_sessions"]
        );
        assert_eq!(names(SyncSettings { products: true, ..off }), ["products", "prices"]);
        assert_eq!(names(SyncSettings::default()).len(), 10);
    }

    #[test]
    fn requests_parse_from_the_schedule_and_the_override() {
        let sched: Value = serde_json::from_str(include_str!("../../../events/schedule/scheduled.json")).unwrap();
        assert_eq!(PollRequest::from_event(&sched).unwrap(), PollRequest::default());
        let bf: Value = serde_json::from_str(include_str!("../../../events/schedule/backfill.json")).unwrap();
        let r = PollRequest::from_event(&bf).unwrap().backfill.unwrap();
        assert_eq!(r.since, Some(1_672_531_200));
        assert_eq!(r.resources.unwrap(), ["customers", "charges", "subscriptions"]);
        let r = PollRequest::from_event(&json!({"detail": {"mode": "backfill", "resources": ["checkout.sessions"]}}))
            .unwrap();
        assert_eq!(r.backfill.unwrap().resources.unwrap(), ["checkout_sessions"]);
        assert!(PollRequest::from_event(&json!({"mode": "backfill", "resources": ["widgets"]}))
            .unwrap_err()
            .0
            .contains("widgets"));
        assert!(PollRequest::from_event(&json!({"mode": "backfill", "since": "01/01/2023"})).is_err());
        assert!(PollRequest::from_event(&json!({"mode": "explode"})).is_err());
    }
}
