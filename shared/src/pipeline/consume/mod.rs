//! The consumer: queue messages → Brevo. The only place that maps and pushes.
//!
//! [`Consumer::consume`] takes one batch through named steps, each in its own
//! file and each working on the batch's [`Item`]s (one per message: the
//! message, what it asks for, its idempotency claim, its outcome):
//!
//! 1. [`plan`]: parse every message (a Stripe event, or a backfill snapshot
//!    naming customers); drop what must not act (livemode mismatch, thin
//!    events, in-batch duplicates, permanently bad messages).
//! 2. [`claim`]: claim each key in the idempotency store (a completed key is a
//!    duplicate and sends nothing; one held elsewhere comes back later); then
//!    [`imports`]: look at the imports that check messages name (an import
//!    is followed to its end, never taken as applied from its 202).
//! 3. [`reload`]: find the customers behind charges and catalogue objects,
//!    then reload every touched customer's *current* state from Stripe once
//!    per batch (so late or out-of-order events converge on the newest state).
//! 4. [`contacts`]: compute metrics and contacts, push the ones the
//!    [`ledger`] does not know as unchanged (upserts, or an import for big
//!    batches) with list removals; take deleted customers out of the managed
//!    lists.
//! 5. [`forward`]: send the young, configured events, and eCommerce orders.
//! 6. [`settle`]: complete or release each claim, dead-letter what is
//!    permanently bad, log one line per message, add the `status` counters.
//!
//! A message whose part failed is released and returned for retry; the rest
//! are completed. Each message's logs are inside its own span (message id,
//! Stripe event id and type), within the caller's batch span.
//!
//! **Bounded work.** Given a deadline ([`Consumer::consume_until`]: the
//! Lambda's, or a budget in the CLI), the consumer never starts a Stripe
//! reload it could not finish with [`ConsumeOptions::reserve`] left for
//! pushing and settling. Fan-out is split into small idempotent units put
//! back on the queue: a snapshot or catalogue event naming more than
//! [`ConsumeOptions::max_customers_per_message`] customers becomes child
//! snapshots (keys `<key>/<n>`), and a message whose customers were not
//! reached in time is re-enqueued as a fresh copy (its receive count starts
//! again, so nothing is dead-lettered for being large). A copy whose twin is
//! being processed elsewhere is re-enqueued with a delay instead of failing.

mod claim;
mod contacts;
mod defer;
mod forward;
mod imports;
mod item;
pub mod ledger;
mod plan;
mod reload;
mod settle;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use serde::Deserialize;

use tokio::time::Instant;

use crate::ports::{
    BrevoApi, Clock, ContactLedger, CursorStore, DeadLetters, EventQueue, IdempotencyStore, RemoteError,
    RemoteErrorKind, Source, StripeApi, Vendor,
};
use crate::settings::Settings;

use item::Batch;

/// One message as the queue delivered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    /// The queue's id for it (SQS `messageId`), used to report failures.
    pub message_id: String,
    pub body: String,
    /// Attributes, when present (the body is authoritative).
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub source: Option<Source>,
    pub receive_count: u32,
}

/// A backfill snapshot: "these customers changed", no event to forward.
/// Written by the poller; `key` is its own idempotency key space.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct Snapshot {
    /// Always `"stripe_brevo.snapshot"`.
    pub object: String,
    /// e.g. `backfill:charges:<run>:<page cursor>`.
    pub key: String,
    pub customers: Vec<String>,
}

pub const SNAPSHOT_OBJECT: &str = "stripe_brevo.snapshot";

pub use imports::{ImportCheck, ImportRow, RowMark, IMPORT_CHECK_OBJECT, MODIFIED_MARGIN_SECS};

/// Why a message must come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryCause {
    /// A Stripe or Brevo call failed with this kind.
    Remote(Vendor, RemoteErrorKind),
    /// Another worker holds an unexpired claim on the same key.
    InProgressElsewhere,
    /// The idempotency store could not be reached.
    IdempotencyStore,
    /// The deadline came before the message was reached, and no queue was
    /// given to put a copy on.
    Deadline,
    /// A copy could not be put back on the queue.
    Requeue,
    /// The message is permanently bad but the dead-letter queue refused it.
    DeadLetterQueue,
    /// The message is permanently bad and no dead-letter queue is configured:
    /// returned so the queue's redrive policy moves it.
    NoDeadLetterQueue,
}

/// A message to retry: the cause decided on, and a detail for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    pub cause: RetryCause,
    /// Safe to log: no key, body or raw e-mail address.
    pub detail: String,
}

impl Retry {
    pub fn new(cause: RetryCause, detail: impl Into<String>) -> Self {
        Self { cause, detail: detail.into() }
    }

    /// From a vendor failure (its vendor and kind are the cause).
    pub fn remote(e: &RemoteError) -> Self {
        Self::new(RetryCause::Remote(e.vendor, e.kind), e.message.clone())
    }

    /// True when retrying cannot help until someone fixes the vendor key
    /// (401): the CLI stops instead of retrying in vain.
    pub fn key_refused(&self) -> Option<Vendor> {
        match self.cause {
            RetryCause::Remote(v, RemoteErrorKind::Unauthorized) => Some(v),
            _ => None,
        }
    }
}

impl std::fmt::Display for Retry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.cause {
            // A permanent Stripe/Brevo refusal (e.g. a missing permission) may
            // succeed once the operator fixes it: retried, then DLQ by redrive.
            RetryCause::Remote(_, kind) if !kind.is_retryable() => write!(f, "permanent: {}", self.detail),
            RetryCause::NoDeadLetterQueue => write!(f, "permanent: {}", self.detail),
            _ => f.write_str(&self.detail),
        }
    }
}

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Applied (contact pushed, event forwarded when due).
    Done,
    /// Already processed (idempotency record, or a copy in the same batch).
    Duplicate,
    /// Acknowledged without action, with the reason (logged).
    Ignored(&'static str),
    /// Must come back: reported as a batch item failure.
    Retry(Retry),
    /// Acknowledged because a copy of it (or its split into smaller units)
    /// is back on the queue, with the reason (logged).
    Deferred(&'static str),
    /// Permanently unprocessable: sent to the dead-letter queue.
    Dead(String),
}

impl Outcome {
    pub fn is_retry(&self) -> bool {
        matches!(self, Self::Retry(_))
    }
}

/// Counters of one batch (also summed by `status`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumeStats {
    pub messages: usize,
    pub duplicates: usize,
    pub customers_reloaded: usize,
    pub contacts_synced: usize,
    pub contacts_skipped_no_email: usize,
    pub contacts_failed: usize,
    pub events_sent: usize,
    pub events_too_old: usize,
    pub retries: usize,
    pub dead: usize,
    /// Messages acknowledged because a copy or their units were re-enqueued.
    pub deferred: usize,
    /// Messages the consumer put back on the queue (copies and units).
    pub requeued: usize,
}

impl std::ops::AddAssign<&ConsumeStats> for ConsumeStats {
    /// Sums batches (the CLI's totals, the benches).
    fn add_assign(&mut self, s: &ConsumeStats) {
        self.messages += s.messages;
        self.duplicates += s.duplicates;
        self.customers_reloaded += s.customers_reloaded;
        self.contacts_synced += s.contacts_synced;
        self.contacts_skipped_no_email += s.contacts_skipped_no_email;
        self.contacts_failed += s.contacts_failed;
        self.events_sent += s.events_sent;
        self.events_too_old += s.events_too_old;
        self.retries += s.retries;
        self.dead += s.dead;
        self.deferred += s.deferred;
        self.requeued += s.requeued;
    }
}

impl ConsumeStats {
    /// One `batch done` log line with every counter.
    pub fn log(&self) {
        tracing::info!(
            messages = self.messages,
            duplicates = self.duplicates,
            customers = self.customers_reloaded,
            contacts_synced = self.contacts_synced,
            skipped_no_email = self.contacts_skipped_no_email,
            contacts_failed = self.contacts_failed,
            events_sent = self.events_sent,
            events_too_old = self.events_too_old,
            retries = self.retries,
            dead = self.dead,
            deferred = self.deferred,
            requeued = self.requeued,
            "batch done"
        );
    }
}

#[derive(Debug, Clone)]
pub struct BatchReport {
    /// One per input message, same order.
    pub outcomes: Vec<(String, Outcome)>,
    pub stats: ConsumeStats,
}

impl BatchReport {
    /// Message ids to report as batch item failures (never empty ids).
    pub fn retry_ids(&self) -> Vec<String> {
        self.outcomes.iter().filter(|(id, o)| o.is_retry() && !id.is_empty()).map(|(id, _)| id.clone()).collect()
    }
}

/// Tunables that are not part of the YAML config.
#[derive(Debug, Clone)]
pub struct ConsumeOptions {
    /// How long an event id stays deduplicated (≥ 7 days: Stripe retries for 3).
    pub dedup_ttl_secs: i64,
    /// How long an in-progress claim blocks others (longer than one run).
    pub in_progress_secs: i64,
    /// Customers reloaded from Stripe at the same time.
    pub reload_concurrency: usize,
    /// Contacts upserted at the same time (the Brevo client rate-limits).
    pub push_concurrency: usize,
    /// A message naming more customers than this is split into units of this
    /// size, re-enqueued (needs [`Consumer::requeue`]).
    pub max_customers_per_message: usize,
    /// Time kept before the deadline for pushing, forwarding and settling: no
    /// Stripe reload starts later than `deadline - reserve`.
    pub reserve: std::time::Duration,
    /// Delay of the copy of a message whose twin is in progress elsewhere.
    pub twin_delay_secs: u32,
    /// Looks at an import before its rows still missing count as not
    /// applied (they are then upserted one by one). With the first after
    /// `connectors.brevo.import_check_delay` (60 s) and each later one twice
    /// as late (at most 900 s), 8 looks span about 75 minutes.
    pub import_checks: u32,
}

impl Default for ConsumeOptions {
    fn default() -> Self {
        Self {
            dedup_ttl_secs: 7 * 86_400,
            in_progress_secs: 900,
            reload_concurrency: 4,
            push_concurrency: 4,
            max_customers_per_message: 10,
            reserve: std::time::Duration::from_secs(20),
            twin_delay_secs: 60,
            import_checks: 8,
        }
    }
}

/// The consumer's dependencies.
pub struct Consumer<S, B, I, C> {
    pub stripe: S,
    pub brevo: B,
    pub dedup: I,
    pub clock: C,
    pub dead_letters: Option<Arc<dyn DeadLetters>>,
    /// Where the contact counters for `status` are added (the cursor table).
    pub status: Option<Arc<dyn CursorStore>>,
    /// The queue the batch came from, for units and copies put back on it.
    /// Without it, fan-out is processed in place and deferred work retried.
    pub requeue: Option<Arc<dyn EventQueue>>,
    /// The contacts last written to Brevo, shared by every instance (see
    /// [`ledger`]). Without it every reloaded contact is sent.
    pub ledger: Option<Arc<dyn ContactLedger>>,
    pub settings: Arc<Settings>,
    pub options: ConsumeOptions,
}

impl<S, B, I, C> Consumer<S, B, I, C>
where
    S: StripeApi,
    B: BrevoApi,
    I: IdempotencyStore,
    C: Clock,
{
    /// Processes one batch without a deadline; never fails as a whole.
    pub async fn consume(&self, messages: &[InboundMessage]) -> BatchReport {
        self.consume_until(messages, None).await
    }

    /// Processes one batch, starting no work it could not finish before
    /// `deadline`; never fails as a whole.
    pub async fn consume_until(&self, messages: &[InboundMessage], deadline: Option<Instant>) -> BatchReport {
        // Keep the reserve, but never more than half of a short budget, so a
        // function with a small timeout still makes progress.
        let reload_until = deadline.map(|d| {
            let budget = d.saturating_duration_since(Instant::now());
            d.checked_sub(self.options.reserve.min(budget / 2)).unwrap_or(d)
        });
        let mut batch = Batch::new(self.clock.now_unix(), messages, reload_until);
        tracing::info!(messages = messages.len(), budget_ms = ?deadline.map(|d| d.saturating_duration_since(Instant::now()).as_millis() as u64), "batch started");
        self.plan(&mut batch);
        self.claim(&mut batch).await;
        self.check_imports(&mut batch).await;
        self.find_customers(&mut batch).await;
        self.split_fanout(&mut batch).await;
        let states = self.reload(&mut batch).await;
        self.map_contacts(&mut batch, states);
        self.push_contacts(&mut batch).await;
        self.remove_deleted(&mut batch).await;
        self.forward_events(&mut batch).await;
        self.forward_orders(&mut batch).await;
        self.defer_unreached(&mut batch).await;
        self.settle(&mut batch).await;
        self.dead_letter_and_log(&mut batch).await;
        self.record_counts(&batch).await;
        batch.report()
    }
}
